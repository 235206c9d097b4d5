"""The focus check's report: only a well-formed last marker line passes a candidate."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.implementer.validate import _check_report


@pytest.mark.parametrize(
    ("stdout", "expected"),
    [
        ('EXECUTOR_CHECK {"rejected": [], "flags": ["constant"]}\n', ([], ["constant"])),
        ('EXECUTOR_CHECK {"rejected": ["raises"], "flags": []}', (["raises"], [])),
        # The last marker line counts: an earlier one (printed by candidate code) does not.
        (
            'EXECUTOR_CHECK {"rejected": [], "flags": []}\n'
            'EXECUTOR_CHECK {"rejected": ["I/O"], "flags": []}\n',
            (["I/O"], []),
        ),
        ("no report at all\n", None),
        ("EXECUTOR_CHECK not json\n", None),
        ('EXECUTOR_CHECK ["rejected"]\n', None),
        ('EXECUTOR_CHECK {"rejected": "x", "flags": []}\n', None),
        ('EXECUTOR_CHECK {"rejected": [1], "flags": []}\n', None),
    ],
)
def test_the_report_is_the_last_well_formed_marker_line(
    tmp_path: Path, stdout: str, expected: tuple[list[str], list[str]] | None
) -> None:
    path = tmp_path / "check.stdout"
    path.write_text(stdout)
    assert _check_report(path) == expected


def test_a_missing_log_is_no_report(tmp_path: Path) -> None:
    assert _check_report(tmp_path / "absent") is None
