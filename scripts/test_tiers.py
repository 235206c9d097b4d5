#!/usr/bin/env python3
"""How the suite splits into tiers (pyproject's markers), and the fast tier's slowest tests.

    scripts/test_tiers.py                 # counts, then run the fast tier and list its slowest
    scripts/test_tiers.py --count         # counts only (collect-only, a few seconds)
    scripts/test_tiers.py --over 1 --top 30 tests/posttrain_grpo

A fast-tier test that takes more than a couple of seconds on a quiet machine needs something
(training, a subprocess-heavy CLI run, Ray, Chromium, a timeout it waits out): mark it by that
(`training`, `docker` or `slow`, in its file or through tests/conftest.py's fixture marks).
Times are setup + call + teardown; a session fixture's setup counts for the first test using it.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter, defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TIERS = ("training", "docker", "slow")
FAST = " and ".join(f"not {t}" for t in TIERS)


class Recorder:
    """A pytest plugin: each collected test's tier marks, and each test's time."""

    def __init__(self) -> None:
        self.marks: dict[str, set[str]] = {}
        self.seconds: defaultdict[str, float] = defaultdict(float)

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        for item in session.items:
            self.marks[item.nodeid] = {m.name for m in item.iter_markers()} & set(TIERS)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.seconds[report.nodeid] += report.duration


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--count", action="store_true", help="count the tiers only (collect-only)")
    ap.add_argument("--over", type=float, default=2.0, help="list fast tests over this (s)")
    ap.add_argument("--top", type=int, default=20, help="list at most this many")
    ap.add_argument("paths", nargs="*", help="test files or folders (default: the suite)")
    args = ap.parse_args()

    counted = Recorder()
    rc = pytest.main(["--collect-only", "-q", "-p", "no:cacheprovider", *args.paths], [counted])
    if rc != 0:
        return int(rc)
    tiers = Counter(t for marks in counted.marks.values() for t in marks)
    fast = sum(1 for marks in counted.marks.values() if not marks)
    total = len(counted.marks)
    print(f"\n{total} tests: fast {fast} ({100 * fast / max(total, 1):.0f}%), ", end="")
    print(", ".join(f"{t} {tiers[t]}" for t in TIERS), "(a test may carry several marks)")
    if args.count:
        return 0

    timed = Recorder()
    rc = pytest.main(["-q", "-p", "no:cacheprovider", "-m", FAST, *args.paths], [timed])
    times = sorted(timed.seconds.items(), key=lambda kv: -kv[1])
    print(f"\nfast tier: {len(times)} tests, {sum(timed.seconds.values()):.1f} s summed")
    slow = [(nodeid, s) for nodeid, s in times if s > args.over]
    print(f"over {args.over:g} s: {len(slow)}" + (" (the slowest first)" if slow else ""))
    for nodeid, s in slow[: args.top]:
        print(f"  {s:6.2f} s  {nodeid}")
    return int(rc)


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))  # `tests` is imported as a package from the repository root
    raise SystemExit(main())
