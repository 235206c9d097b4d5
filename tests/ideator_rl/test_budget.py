"""A training's screening budget (--timeout): its runs' fidelity, how it is described, and that
a resumed training keeps the budget it started with."""

from __future__ import annotations

from contextlib import closing
from dataclasses import replace

from agent.executor import RunRequest
from agent.ideator_rl.budget import TIMEOUT_KEY, describe, full_budget, with_fidelity
from agent.ideator_rl.config import TrainIdeatorConfig
from agent.ideator_rl.records import Records
from agent.ideator_rl.trainer import _open_training
from agent.store import Store
from environments import resolve_environment


def test_a_short_timeout_is_a_recorded_share_of_the_budget(run_dir) -> None:
    env = resolve_environment("pretrain_nanogpt")  # tiny: timeout 105, 90 CPU-s of training
    req = RunRequest(env, "tiny", timeout_s=45.0, run_dir=run_dir)
    short = with_fidelity(req)
    assert short.fidelity == 30 / 90
    assert describe(short) == "30 CPU-s of training (33% of the scale's 90)"
    full = full_budget(short)
    assert full.timeout_s is None and full.fidelity is None
    assert with_fidelity(full).fidelity is None  # the scale's own timeout: the full budget
    assert describe(full) == "the full budget (90 CPU-s of training)"
    assert with_fidelity(replace(req, timeout_s=500.0)).fidelity is None  # longer: capped
    toy = RunRequest(resolve_environment("tests/toy_env"), "tiny", timeout_s=9.0, run_dir=run_dir)
    assert with_fidelity(toy).fidelity is None  # no training budget to share


def test_a_resumed_training_keeps_its_budget_and_settings(toy_env, run_dir) -> None:
    env = resolve_environment(str(toy_env))
    cfg = TrainIdeatorConfig(steps=3, knobs="lr")
    req = RunRequest(env, "tiny", timeout_s=20.0, run_dir=run_dir)
    with closing(Store(run_dir)) as store:
        records = Records(store)
        tid, got, timeout = _open_training(records, cfg, req, resume=False)
        assert (got, timeout) == (cfg, 20.0)
        assert records.latest()["config"][TIMEOUT_KEY] == 20.0
        # Resumed with another --timeout (or none) and other settings: the stored ones win.
        again = replace(req, timeout_s=None)
        tid2, got2, timeout2 = _open_training(records, TrainIdeatorConfig(), again, resume=True)
        assert (tid2, got2, timeout2) == (tid, cfg, 20.0)
