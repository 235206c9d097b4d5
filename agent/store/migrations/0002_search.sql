-- The search archive: which search an idea belongs to, its epoch, role and fate.
-- IF NOT EXISTS: stores of schema version 1 created these tables when a search first opened
-- them, so a version-1 store may hold them already.
CREATE TABLE IF NOT EXISTS searches (
    id TEXT PRIMARY KEY,
    env TEXT NOT NULL,
    env_hash TEXT NOT NULL,
    scale TEXT NOT NULL,
    config TEXT NOT NULL,              -- JSON: the search's settings, fixed at its start
    status TEXT NOT NULL,              -- running | done | stopped (budget) | failed
    reason TEXT,
    baseline_candidate TEXT,           -- the candidate whose runs are this search's baseline
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS search_epochs (
    search_id TEXT NOT NULL REFERENCES searches(id),
    epoch INTEGER NOT NULL,
    status TEXT NOT NULL,              -- generated | done
    PRIMARY KEY (search_id, epoch)
);
CREATE TABLE IF NOT EXISTS search_ideas (
    idea_id TEXT PRIMARY KEY REFERENCES ideas(id),
    search_id TEXT NOT NULL REFERENCES searches(id),
    epoch INTEGER NOT NULL,
    role TEXT NOT NULL,                -- fresh | exploit | explore | hparam | replay | rerun
    ideator TEXT NOT NULL,
    status TEXT NOT NULL,              -- proposed | running | succeeded | failed | duplicate | ...
    reason TEXT,
    duplicate_of TEXT,
    payload TEXT,                      -- JSON: hparam values and edits, replayed diffs
    position INTEGER NOT NULL          -- order within the epoch
);
