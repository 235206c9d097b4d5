"""Only agent/store speaks SQL: every other module reads and writes through its methods.

The environments' own code (their training and evaluation) is out of scope; the tests may
open a store file directly to check what was written.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHECKED = ["agent", "runner", "sandbox", "bench", "scripts"]
STORE = ROOT / "agent" / "store"
SQL = re.compile(
    r"\bimport sqlite3\b|\bfrom sqlite3\b|\.execute(many|script)?\("
    r"|\bSELECT\s|\bINSERT\s+(OR\s+\w+\s+)?INTO\b|\bUPDATE\s+\w+\s+SET\b|\bDELETE\s+FROM\b"
    r"|\bCREATE\s+(TABLE|INDEX)\b|\bDROP\s+TABLE\b|\bPRAGMA\s"
)


def sql_lines() -> list[str]:
    found = []
    for top in CHECKED:
        for path in sorted((ROOT / top).rglob("*")):
            if path.suffix not in {".py", ".sql"} or STORE in path.parents:
                continue
            for n, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
                if SQL.search(line):
                    found.append(f"{path.relative_to(ROOT)}:{n}: {line.strip()}")
    return found


def test_no_sql_outside_the_store() -> None:
    assert sql_lines() == [], "SQL outside agent/store: add a store method instead"


def test_the_check_sees_sql() -> None:
    # The store itself is full of it: the pattern would catch a module that did the same.
    store_lines = [
        line
        for path in STORE.rglob("*.py")
        for line in path.read_text().splitlines()
        if SQL.search(line)
    ]
    assert len(store_lines) > 20
