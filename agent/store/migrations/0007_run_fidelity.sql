-- Multi-fidelity screening (a search's --screen): the share of the training budget a run
-- trained for. NULL: the full budget, which every run had before this migration; only those
-- count as an idea's screening reward, its metrics, or a baseline's.
ALTER TABLE runs ADD COLUMN fidelity REAL;
