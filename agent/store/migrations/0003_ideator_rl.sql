-- An ideator training: the training, every sample, every step's collapse instruments, and
-- the execution cache.
-- IF NOT EXISTS: stores of schema version 1 created these tables when a training first
-- opened them, so a version-1 store may hold them already.
CREATE TABLE IF NOT EXISTS rl_trainings (
    id TEXT PRIMARY KEY,
    env TEXT NOT NULL,
    env_hash TEXT NOT NULL,
    scale TEXT NOT NULL,
    config TEXT NOT NULL,              -- JSON: TrainIdeatorConfig, fixed at the start
    status TEXT NOT NULL,              -- running | done | failed
    reason TEXT,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS rl_samples (
    training_id TEXT NOT NULL REFERENCES rl_trainings(id),
    step INTEGER NOT NULL,             -- 1-based optimizer step the sample trained
    position INTEGER NOT NULL,         -- index in the step's batch
    grp INTEGER NOT NULL,              -- GRPO group (prompt) inside the batch
    completion TEXT NOT NULL,
    thinking_tokens INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    idea TEXT NOT NULL,                -- "" when the completion held none
    idea_id TEXT REFERENCES ideas(id), -- the executed idea (shared by cached repeats)
    status TEXT NOT NULL,              -- run status, rejected (not implementable) or no_idea
    reason TEXT,
    cached INTEGER NOT NULL,           -- 1: the result came from an earlier identical idea
    execution_reward REAL NOT NULL,    -- the run's reward, or the failure reward
    reward REAL NOT NULL,              -- what GRPO trained on (after shaping)
    parts TEXT NOT NULL,               -- JSON: transformed, diversity, novelty, length terms
    PRIMARY KEY (training_id, step, position)
);
CREATE TABLE IF NOT EXISTS rl_steps (
    training_id TEXT NOT NULL REFERENCES rl_trainings(id),
    step INTEGER NOT NULL,
    instruments TEXT NOT NULL,         -- JSON: the collapse instruments of this step
    created_at REAL NOT NULL,
    PRIMARY KEY (training_id, step)
);
CREATE TABLE IF NOT EXISTS rl_cache (
    key TEXT NOT NULL,                 -- the idea, canonical for its implementer
    env_hash TEXT NOT NULL,
    scale TEXT NOT NULL,
    idea_id TEXT NOT NULL REFERENCES ideas(id),
    status TEXT NOT NULL,
    reason TEXT,
    reward REAL,
    PRIMARY KEY (key, env_hash, scale)
);
