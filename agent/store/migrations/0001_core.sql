-- Ideas, candidates (with their attempts and diffs), runs and LLM calls.
-- IF NOT EXISTS: a store whose version row was never written (a process killed between the
-- tables and the row, before migrations were numbered) still has these tables.
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS ideas (
    id TEXT PRIMARY KEY,
    text TEXT NOT NULL,
    env TEXT NOT NULL,
    env_hash TEXT NOT NULL,
    scale TEXT NOT NULL,
    source TEXT NOT NULL,              -- cli | patch | baseline | search | ideator_rl:<training>
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS candidates (
    id TEXT PRIMARY KEY,
    idea_id TEXT NOT NULL REFERENCES ideas(id),
    sample INTEGER NOT NULL,
    status TEXT NOT NULL,              -- implementing | validated | rejected | error | abandoned
    implementer TEXT NOT NULL,         -- provider:model, "patch" or "baseline"
    parent_commit TEXT NOT NULL,
    commit_sha TEXT,
    diff TEXT,
    error TEXT,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS attempts (
    candidate_id TEXT NOT NULL REFERENCES candidates(id),
    n INTEGER NOT NULL,
    response TEXT NOT NULL,            -- what the LLM (or the patch file) said
    phase TEXT,                        -- where it failed: parse|apply|protected|compile|smoke
    error TEXT,                        -- NULL when the attempt validated
    created_at REAL NOT NULL,
    PRIMARY KEY (candidate_id, n)
);
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY,
    candidate_id TEXT NOT NULL REFERENCES candidates(id),
    scale TEXT NOT NULL,
    seed INTEGER NOT NULL,
    sandbox TEXT NOT NULL,
    status TEXT NOT NULL,              -- running, then a run status (runner/run.py)
    reason TEXT,
    metrics TEXT,                      -- JSON object
    flags TEXT,                        -- JSON list
    reward REAL,
    timings TEXT,                      -- JSON: seconds per step
    artifacts TEXT NOT NULL,           -- folder with logs/, output/, eval/
    started_at REAL NOT NULL,
    ended_at REAL
);
CREATE TABLE IF NOT EXISTS llm_calls (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    candidate_id TEXT REFERENCES candidates(id),
    provider TEXT NOT NULL,
    model TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    input_tokens INTEGER NOT NULL,
    output_tokens INTEGER NOT NULL,
    cost_usd REAL,
    latency_s REAL NOT NULL,
    cached INTEGER NOT NULL,
    retries INTEGER NOT NULL,
    error TEXT,
    created_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS candidates_by_idea ON candidates(idea_id);
CREATE INDEX IF NOT EXISTS runs_by_candidate ON runs(candidate_id);
CREATE INDEX IF NOT EXISTS calls_by_candidate ON llm_calls(candidate_id);
