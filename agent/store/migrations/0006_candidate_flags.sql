-- What a focus's check (environments/manifest.py `Focus.check`) flagged on a candidate it let
-- through, e.g. a reward that is constant on the probes: JSON list of one-line reasons.
ALTER TABLE candidates ADD COLUMN flags TEXT;
