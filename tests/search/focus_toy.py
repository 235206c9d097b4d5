"""The toy environment with a focus, for the focus, check and ensemble tests: ideas may change
only `schedule.py` (the learning-rate multiplier training applies), a protected check rejects
or flags by marker words, and ensembles average their members' multipliers."""

from __future__ import annotations

import json
from pathlib import Path

SCHEDULE = "def lr_scale(step: int, steps: int) -> float:\n    return 1.0\n"

CHECK = '''"""Protected check of the toy focus: marker words in schedule.py reject or flag it."""
import json
import pathlib

text = "".join(p.read_text() for p in sorted(pathlib.Path(".").glob("schedule*.py")))
rejected = ["schedule.py says REJECT_ME"] if "REJECT_ME" in text else []
flags = ["schedule.py says FLAG_ME"] if "FLAG_ME" in text else []
print("EXECUTOR_CHECK " + json.dumps({"rejected": rejected, "flags": flags}))
raise SystemExit(1 if rejected else 0)
'''

TEMPLATE = """{% for m in modules %}from {{ m }} import lr_scale as _member_{{ loop.index }}
{% endfor %}

def lr_scale(step: int, steps: int) -> float:
    members = [{% for m in modules %}_member_{{ loop.index }}, {% endfor %}]
    return sum(f(step, steps) for f in members) / len(members)
"""

FOCUS = """
[focus.schedule]
description = "The learning-rate multiplier only"
brief = "focus_schedule.md"
editable = ["schedule.py"]
knobs = ["lr"]
rank_by = "val_mse"
feedback = ["val_mse"]
check = { command = "python \\"$EXECUTOR_ENV_DIR/check_schedule.py\\"", timeout = 30 }

[focus.schedule.ensemble]
file = "schedule.py"
member = "schedule_member_{i}.py"
template = "schedule_ensemble.py.j2"
"""


def add_focus(env: Path) -> Path:
    """Turn a private copy of the toy environment into one with the `schedule` focus."""
    repo = env / "repo"
    (repo / "schedule.py").write_text(SCHEDULE)
    train = repo / "train.py"
    text = train.read_text().replace(
        "from data import N_FEATURES, train_split",
        "from data import N_FEATURES, train_split\nfrom schedule import lr_scale",
    )
    text = text.replace("w -= LR * 2 *", "w -= LR * lr_scale(step, steps) * 2 *")
    assert "lr_scale(step" in text
    train.write_text(text)
    (env / "check_schedule.py").write_text(CHECK)
    (env / "schedule_ensemble.py.j2").write_text(TEMPLATE)
    (env / "focus_schedule.md").write_text(
        "Change only `lr_scale(step, steps)` in schedule.py: the multiplier of LR.\n"
    )
    toml = env / "env.toml"
    text = toml.read_text().replace('"*_extra.py"]', '"*_extra.py", "schedule*.py"]')
    toml.write_text(text + FOCUS)
    return env


def scale_edit(value: str, marker: str = "") -> str:
    """SEARCH/REPLACE edits that make the multiplier `value` (a marker word as a comment)."""
    comment = f"  # {marker}" if marker else ""
    return (
        "schedule.py\n<<<<<<< SEARCH\n    return 1.0\n=======\n"
        f"    return {value}{comment}\n>>>>>>> REPLACE\n"
    )


def replay_file(path: Path, ideas: list[tuple[str, str]]) -> Path:
    path.write_text("".join(json.dumps({"idea": t, "code_diff": d}) + "\n" for t, d in ideas))
    return path
