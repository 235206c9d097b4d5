"""The implementer: idea text -> edits -> a validated commit on the baseline.

`attempts.implement` (samples x attempts, `Implementation`, `CURRENT_CANDIDATE`),
`config.ImplementerConfig`, `context` (what the LLM sees; `ContextTooLarge`), `edits*`
(parse and apply), `validate`. Import from the modules themselves: this package file stays
empty so the CLI can read `config.py` at startup without git, the sandbox and the manifest.
"""
