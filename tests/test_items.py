"""Per-item outcomes (runner/items.py): checked when read, packed with a hash, refused when
the store's copy was altered, and required to reproduce the evaluator's metric."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agent.store import Store, StoreError
from environments import load_environment
from runner.items import ITEMS_FILE, ItemOutcomes, ItemsError, metric_mismatch, parse_items
from runner.run import RunOutcome, score
from sandbox import RunStatus

ROWS = [
    {"id": "p0000:original", "value": 1, "answered": True, "extracted": "12"},
    {"id": "p0000:rename", "value": None, "answered": True, "extracted": "12"},
    {"id": "p0001:original", "value": 0, "answered": False, "extracted": None},
]


def lines(rows: list[object]) -> list[str]:
    return [json.dumps(r) for r in rows]


def test_items_parse_into_columns_and_back() -> None:
    items = parse_items(lines(ROWS))
    assert items.ids == ("p0000:original", "p0000:rename", "p0001:original")
    assert items.scored() == {"p0000:original": 1.0, "p0001:original": 0.0}
    assert items.metric() == 0.5 and items.binary()
    assert items.fields["answered"] == (True, True, False)
    assert items.to_rows()[2] == {"id": "p0001:original", "value": 0.0, "answered": False}
    again = ItemOutcomes.unpack(items.pack(), items.sha256())
    assert again == items and len(items.pack()) < len(items.canonical()) + 64


@pytest.mark.parametrize(
    ("rows", "needle"),
    [
        ([{"value": 1}], "id must be a string"),
        ([{"id": "a", "value": 1}, {"id": "a", "value": 0}], "appears twice"),
        ([{"id": "x" * 65, "value": 1}], "id must be a string"),
        ([{"id": "a", "value": "1"}], "value must be a number"),
        ([{"id": "a", "value": True}], "value must be a number"),
        (['{"id": "a", "value": NaN}'], "not finite"),
        ([{"id": "a", "value": 1, "Bad-Name": 1}], "not a short identifier"),
        ([{"id": "a", "value": 1, "note": "x" * 201}], "over 200 characters"),
        ([{"id": "a", "value": 1, "nested": {"a": 1}}], "short string or null"),
        ([[1, 2]], "not a JSON object"),
    ],
)
def test_malformed_items_are_refused_in_one_line(rows: list[object], needle: str) -> None:
    text = [r if isinstance(r, str) else json.dumps(r) for r in rows]
    with pytest.raises(ItemsError, match=needle):
        parse_items(text)


def test_items_must_reproduce_the_metric() -> None:
    items = parse_items(lines(ROWS))
    assert metric_mismatch(items, "accuracy", 0.5) is None
    assert "average 0.5" in str(metric_mismatch(items, "accuracy", 0.52))
    only_variants = parse_items(lines([ROWS[1]]))
    assert "no scored items" in str(metric_mismatch(only_variants, "accuracy", 0.5))


def test_a_run_stores_its_items_and_an_altered_copy_is_refused(tmp_path: Path) -> None:
    store = Store(tmp_path)
    idea = store.add_idea("x", "toy", "h", "tiny", "cli")
    cand = store.add_candidate(idea, 0, "patch", "abc")
    store.start_run(cand, "tiny", 0, "local", tmp_path, "run-1", split="confirm")
    items = parse_items(lines(ROWS))
    store.finish_run(
        "run-1", "succeeded", reason=None, metrics={}, flags=[], reward=0.5, timings={}, items=items
    )
    assert store.run_items("run-1") == items and store.run("run-1")["split"] == "confirm"  # type: ignore[index]
    # One flipped outcome in the stored blob: the hash no longer matches, nothing is read.
    forged = ItemOutcomes(items.ids, (0.0, None, 1.0), items.fields)
    with store.tx() as db:
        db.execute("UPDATE run_items SET blob=? WHERE run_id='run-1'", (forged.pack(),))
    with pytest.raises(StoreError, match="do not match their sha256"):
        store.run_items("run-1")
    store.close()


def _score(toy_env: Path, tmp_path: Path, metric: float, items: str | None) -> RunOutcome:
    env = load_environment(toy_env)
    path = tmp_path / "result.json"
    path.write_text(json.dumps({"metrics": {"val_mse": metric}}))
    if items is not None:
        (tmp_path / ITEMS_FILE).write_text(items)
    return score(env, path, lambda status, reason, **kw: RunOutcome(status, reason, tmp_path, **kw))


def test_scoring_reads_the_items_and_checks_them_against_the_metric(toy_env, tmp_path) -> None:
    good = "\n".join(lines([{"id": "x0", "value": 0.25}, {"id": "x1", "value": 0.75}]))
    out = _score(toy_env, tmp_path, 0.5, good)
    assert out.status is RunStatus.SUCCEEDED and out.items is not None and len(out.items) == 2
    out = _score(toy_env, tmp_path, 0.4, good)
    assert out.status is RunStatus.FAILED and "average 0.5" in str(out.reason)
    assert out.reward is None and out.items is None
    out = _score(toy_env, tmp_path, 0.5, '{"id": "x0"}\nnot json\n')
    assert out.status is RunStatus.FAILED and "line 2 is not JSON" in str(out.reason)
    (tmp_path / ITEMS_FILE).unlink()
    out = _score(toy_env, tmp_path, 0.5, None)  # an evaluator that writes none still scores
    assert out.status is RunStatus.SUCCEEDED and out.items is None
