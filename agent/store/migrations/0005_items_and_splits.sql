-- Per-item outcomes of each run, the split its evaluator scored, the conditions it ran under,
-- and the tables a search's verdicts were computed into (so a recomputation can be compared).
-- A run from before this migration has no split (NULL), no conditions and no items.
ALTER TABLE runs ADD COLUMN split TEXT;              -- screen | confirm
ALTER TABLE runs ADD COLUMN conditions TEXT;         -- JSON: host, sandbox, budget, clock
CREATE TABLE run_items (
    run_id TEXT PRIMARY KEY REFERENCES runs(id),
    n INTEGER NOT NULL,                -- items in the file
    encoding TEXT NOT NULL,            -- runner/items.py ENCODING
    sha256 TEXT NOT NULL,              -- of the items' canonical JSON, checked on every read
    blob BLOB NOT NULL                 -- the items, column by column, compressed
);
CREATE TABLE search_tables (
    search_id TEXT NOT NULL REFERENCES searches(id),
    name TEXT NOT NULL,                -- e.g. confirmation
    body TEXT NOT NULL,                -- JSON, canonical (sorted keys)
    sha256 TEXT NOT NULL,              -- of body
    created_at REAL NOT NULL,
    PRIMARY KEY (search_id, name)
);
-- The metric a search's verdicts are about, as {"name": ..., "direction": ...}: the store alone
-- must be enough to recompute its tables.
ALTER TABLE searches ADD COLUMN metric TEXT;
