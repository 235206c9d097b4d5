"""`executor report` opens in headless Chromium; `executor export` writes trajectories."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import assert_one_line_error

# Each test runs the CLI; most read a search run once by the CLI (the `searched` fixture).
pytestmark = pytest.mark.slow

CHROMIUM = shutil.which("chromium")


@pytest.fixture(scope="module")
def searched(tmp_path_factory) -> Path:
    """A finished 2-epoch hparam search with controls on a private copy of the toy environment."""
    from tests.conftest import TOY_ENV, clean_environ, executor_argv

    root = tmp_path_factory.mktemp("searched")
    env = root / "toy"
    shutil.copytree(TOY_ENV, env)
    runs = root / "runs"
    search = executor_argv(
        "search",
        env,
        runs,
        epochs=2,
        ideas_per_epoch=3,
        baseline_seeds=3,
        rerun_top=2,
        rerun_seeds=2,
    )
    res = subprocess.run(
        [*search, "--controls"],
        capture_output=True,
        text=True,
        timeout=300,
        env=clean_environ(),
    )
    assert res.returncode == 0, res.stderr
    return runs


def test_export_writes_one_trajectory_per_idea(cli, searched) -> None:
    res = cli("export", searched)
    assert res.rc == 0, res
    path = Path(res.stdout.strip())
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert len(rows) == 6  # the ideas; the control arm is not the ideator's
    for row in rows:
        for key in (
            "ideator_model",
            "executor_model",
            "env",
            "epoch",
            "idea",
            "code_diff",
            "result",
        ):
            assert key in row
        assert row["ideator_model"] == "hparam" and row["env"] == "toy"
        assert row["category"] == "hyperparameter"  # the diff changes numbers only
        assert row["result"]["status"] == "succeeded" and row["result"]["reward"] > 0
    assert {r["epoch"] for r in rows} == {0, 1}


@pytest.mark.skipif(
    CHROMIUM is None,
    reason="Debian's chromium is not installed "
    "(make test installs it with scripts/test_deps.sh where it can)",
)
def test_report_opens_in_headless_chromium(cli, searched, tmp_path) -> None:
    res = cli("report", searched)
    assert res.rc == 0, res
    page = Path(res.stdout.strip())
    html = page.read_text()
    assert "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")  # no fetches
    assert html.count("<svg") == 5 and "Confirmation" in html
    shot = tmp_path / "report.png"
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}",
    ]
    dom = subprocess.run(
        [CHROMIUM, *flags, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120
    )
    assert dom.returncode == 0, dom.stderr[-2000:]
    # Chromium parsed the page: the SVG plots and the confirmation table are in its DOM.
    assert dom.stdout.count("<svg") == 5 and "difference [95% CI]" in dom.stdout
    assert "control: the unchanged baseline" in dom.stdout
    png = subprocess.run(
        [CHROMIUM, *flags, "--window-size=1200,1600", f"--screenshot={shot}", page.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert png.returncode == 0 and shot.stat().st_size > 20_000  # a page with pictures on it


def test_report_and_export_of_a_run_dir_without_a_search(cli, tmp_path, toy_env) -> None:
    runs = tmp_path / "runs"
    assert cli("baseline", "--env", toy_env, "--seeds", "1", "--run-dir", runs).rc == 0
    for command in ("report", "export"):
        res = cli(command, runs)
        assert res.rc == 2
        assert_one_line_error(res, "no search")


def test_a_corrupted_store_is_reported_and_left_alone(cli, tmp_path) -> None:
    runs = tmp_path / "runs"
    runs.mkdir()
    (runs / "executor.db").write_bytes(b"not a database" * 100)
    for args in (("report", runs), ("show", "--run-dir", runs)):
        res = cli(*args)
        assert res.rc == 2
        assert_one_line_error(res, "not a readable executor store")
    assert (runs / "executor.db").read_bytes() == b"not a database" * 100


def test_the_confirmation_table_is_recomputed_bit_for_bit(cli, searched) -> None:
    res = cli("stats", searched, "--json", "--verify")
    assert res.rc == 0, res
    assert "identical: sha256" in res.stderr
    table = json.loads(res.stdout)
    kinds = [r["kind"] for r in table["rows"]]
    assert kinds == ["idea", "idea", "control"]  # two finalists, then the null control
    for row in table["rows"]:
        assert row["seeds"] == [1000, 1001] and row["items"] >= 1
    null = table["rows"][-1]
    assert null["text"].startswith("control: the unchanged baseline") and not null["wins"]
    assert table["baseline"]["seeds"] == [1000, 1001]
    shown = cli("stats", searched)
    assert shown.rc == 0 and "Holm p" in shown.stdout


def test_an_altered_item_in_the_store_is_refused_not_counted(cli, searched, tmp_path) -> None:
    """Flipping one stored outcome (the blob, not its hash) cannot change a verdict: the
    recomputation refuses the altered items in one line."""
    import sqlite3
    import zlib

    runs = tmp_path / "runs"
    shutil.copytree(searched, runs)
    db = sqlite3.connect(runs / "executor.db")
    run_id, blob = db.execute(
        "SELECT i.run_id, i.blob FROM run_items i JOIN runs r ON r.id = i.run_id"
        " WHERE r.split = 'confirm' LIMIT 1"
    ).fetchone()
    doc = json.loads(zlib.decompress(blob))
    doc["values"][0] = (doc["values"][0] or 0.0) + 1.0
    forged = zlib.compress(json.dumps(doc, sort_keys=True, separators=(",", ":")).encode())
    db.execute("UPDATE run_items SET blob=? WHERE run_id=?", (forged, run_id))
    db.commit()
    db.close()
    res = cli("stats", runs, "--verify")
    assert res.rc == 2 and "do not match their sha256" in res.stderr, res
