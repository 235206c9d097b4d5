"""The baseline repo's parts: config, data pipeline, schedule, model, checkpoints, DDP."""

from __future__ import annotations

import json
import math
import resource
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from tests.env_modules import run_script, trained
from tests.pretrain_nanogpt.conftest import ENV, REPO


def _arrays() -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [
        rng.integers(0, 256, 5000).astype(np.uint8),
        rng.integers(0, 256, 3000).astype(np.uint8),
    ]


def test_same_seed_serves_identical_batches(repo: SimpleNamespace) -> None:
    a = repo.data.Batches(_arrays(), 8, 64, seed=3)
    b = repo.data.Batches(_arrays(), 8, 64, seed=3)
    c = repo.data.Batches(_arrays(), 8, 64, seed=4)
    for _ in range(5):
        (xa, ya), (xb, yb), (xc, _) = a.next(), b.next(), c.next()
        assert torch.equal(xa, xb) and torch.equal(ya, yb)
        assert not torch.equal(xa, xc)


def test_targets_are_inputs_shifted_within_one_shard(repo: SimpleNamespace) -> None:
    # Each shard holds a distinct constant ramp, so a window that crossed shards would show it.
    arrays = [np.arange(0, 1000, dtype=np.int64), np.arange(5000, 5400, dtype=np.int64)]
    x, y = repo.data.Batches(arrays, 64, 32, seed=0).next()
    assert x.shape == y.shape == (64, 32) and x.dtype == torch.int64
    assert torch.equal(x[:, 1:], y[:, :-1])
    assert ((y - x) == 1).all(), "a window crossed a shard boundary"
    assert (x[:, 0] >= 5000).any() and (x[:, 0] < 1000).any(), "both shards are sampled"


def test_ranks_split_the_global_batch_independent_of_world_size(repo: SimpleNamespace) -> None:
    whole = repo.data.Batches(_arrays(), 8, 16, seed=1, rank=0, world_size=1)
    ranks = [repo.data.Batches(_arrays(), 4, 16, seed=1, rank=r, world_size=2) for r in (0, 1)]
    for _ in range(3):
        x, _ = whole.next()
        parts = [r.next()[0] for r in ranks]
        assert torch.equal(torch.cat(parts), x)
        assert not torch.equal(parts[0], parts[1])


def test_bundled_split_keeps_validation_text_out_of_training() -> None:
    train = (ENV / "data" / "shakespeare" / "train.txt").read_bytes()
    val = (ENV / "heldout" / "shakespeare_val.txt").read_bytes()
    assert len(val) > 100_000 and len(train) > 900_000
    assert val[:2000] not in train and val[-2000:] not in train


@pytest.mark.parametrize("schedule", ["linear", "cosine", "constant"])
def test_schedule_warms_up_then_decays_to_the_floor(repo: SimpleNamespace, schedule: str) -> None:
    cfg = repo.config.config_for("tiny", [f"--schedule={schedule}", "--warmup_steps=10"])
    lr = lambda step, p: repo.train.lr_at(cfg, step, p)  # noqa: E731
    assert lr(0, 0.0) == pytest.approx(cfg.lr / 10)
    assert lr(9, 0.0) == pytest.approx(cfg.lr)
    end = cfg.lr if schedule == "constant" else cfg.lr * cfg.min_lr_frac
    assert lr(500, 1.0) == pytest.approx(end)
    assert lr(500, 2.0) == pytest.approx(end), "progress past the budget is clamped"
    values = [lr(100, p / 10) for p in range(11)]
    assert values == sorted(values, reverse=True)
    if schedule == "cosine":
        assert lr(100, 0.5) == pytest.approx(cfg.lr * (1 + cfg.min_lr_frac) / 2)


def test_unknown_schedule_is_an_error(repo: SimpleNamespace) -> None:
    cfg = repo.config.config_for("tiny", ["--schedule=wsd"])
    with pytest.raises(ValueError, match="unknown schedule"):
        repo.train.lr_at(cfg, 0, 0.5)


def test_overrides_are_typed_and_checked(repo: SimpleNamespace) -> None:
    cfg = repo.config.config_for("gpu", ["--lr=0.01", "--n-layer=3", "--compile=false"])
    assert (cfg.lr, cfg.n_layer, cfg.compile, cfg.n_embd) == (0.01, 3, False, 768)
    with pytest.raises(SystemExit, match="bad override"):
        repo.config.config_for("tiny", ["--no_such_field=1"])
    with pytest.raises(SystemExit, match="unknown scale"):
        repo.config.config_for("huge")


@pytest.mark.parametrize(("scale", "millions"), [("tiny", (0.5, 3)), ("gpu", (120, 130))])
def test_model_sizes_and_output_shapes(repo: SimpleNamespace, scale: str, millions: tuple) -> None:
    cfg = repo.config.config_for(scale)
    with torch.device("meta"):  # sizes without allocating 124M parameters
        model = repo.model.GPT(repo.model.GPTConfig(**repo.config.model_args(cfg)))
        logits = model(torch.zeros(2, 17, dtype=torch.long))
    assert millions[0] < model.num_params() / 1e6 < millions[1]
    assert logits.shape == (2, 17, cfg.vocab_size)


def test_model_is_causal(repo: SimpleNamespace) -> None:
    torch.manual_seed(0)
    model = repo.model.GPT(repo.model.GPTConfig(n_layer=2, n_embd=64, seq_len=32)).eval()
    x = torch.randint(0, 256, (3, 32))
    y = x.clone()
    y[:, 20:] = torch.randint(0, 256, (3, 12))
    with torch.no_grad():
        assert torch.allclose(model(x)[:, :20], model(y)[:, :20], atol=1e-5)
        assert not torch.allclose(model(x)[:, 20:], model(y)[:, 20:], atol=1e-5)


def test_rotary_turns_each_pair_of_halves_by_its_angle(repo: SimpleNamespace) -> None:
    # (x1, x2) = (x[i], x[i + hd/2]) -> (x1 cos - x2 sin, x2 cos + x1 sin), for q and k alike.
    B, T, H, hd = 2, 5, 3, 8
    torch.manual_seed(0)
    qk = torch.randn(B, T, 2, H, 2, hd // 2)
    angle = torch.randn(T, hd // 2)
    cos, sin = angle.cos(), angle.sin()
    got = repo.model.apply_rotary(
        qk, cos[:, None, None, None], torch.stack((-sin, sin), dim=1)[:, None, None]
    )
    c, s = cos[:, None, None], sin[:, None, None]  # (T, 1, 1, hd/2) against (B, T, 2, H, hd/2)
    x1, x2 = qk[..., 0, :], qk[..., 1, :]
    assert torch.equal(got[..., 0, :], x1 * c - x2 * s)
    assert torch.equal(got[..., 1, :], x2 * c + x1 * s)


def test_a_tiny_training_step_runs_few_large_operators(repo: SimpleNamespace) -> None:
    """Every operator on 32768+ elements (ATen's grain size) is a parallel region whose
    threads wait at a barrier, long when another process holds a core: the step stays a few
    large fused operators (168 today; 355 with q and k rotated apart and a per-tensor AdamW)."""
    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils._pytree import tree_leaves

    class LargeOps(TorchDispatchMode):
        count = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
            out = func(*args, **(kwargs or {}))
            alias = func._schema.returns[0].alias_info if func._schema.returns else None
            if alias is None or alias.is_write:  # views move no data
                sizes = [t.numel() for t in tree_leaves((args, kwargs, out)) if torch.is_tensor(t)]
                self.count += max(sizes, default=0) >= 32768
            return out

    cfg = repo.config.config_for("tiny")
    torch.manual_seed(0)
    model = repo.model.GPT(repo.model.GPTConfig(**repo.config.model_args(cfg)))
    optimizer = repo.train.make_optimizer(model, cfg)
    x, y = torch.randint(0, 256, (2, cfg.batch_size, cfg.seq_len))

    def step() -> None:
        logits = model(x)
        torch.nn.functional.cross_entropy(logits.flatten(0, 1), y.flatten()).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    step()  # the optimizer's state is created on the first step
    with LargeOps() as ops:
        step()
    assert 100 < ops.count <= 200, ops.count


def test_checkpoint_round_trip(repo: SimpleNamespace, tmp_path: Path) -> None:
    cfg = repo.config.config_for("tiny", ["--n_layer=2"])
    torch.manual_seed(0)
    model = repo.model.GPT(repo.model.GPTConfig(**repo.config.model_args(cfg))).eval()
    path = tmp_path / "ckpt.pt"
    repo.train.save_checkpoint(model, cfg, path, step=7, elapsed_s=1.5)
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt.pt"], "no temporary file left"
    ckpt = torch.load(path, weights_only=True)
    assert ckpt["step"] == 7 and ckpt["config"]["n_layer"] == 2
    again = repo.model.GPT(repo.model.GPTConfig(**ckpt["config"])).eval()
    again.load_state_dict(ckpt["model"])
    x = torch.randint(0, 256, (2, 64))
    with torch.no_grad():
        assert torch.equal(model(x), again(x))


def test_smoke_run_writes_what_the_evaluator_reads(smoke_output: Path) -> None:
    assert (smoke_output / "ckpt.pt").is_file()
    assert {p.name for p in (smoke_output / "code").iterdir()} >= {"model.py", "train.py"}
    rows = [json.loads(line) for line in (smoke_output / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2]
    assert all(math.isfinite(r["loss"]) and r["loss"] < 6 for r in rows)


@pytest.mark.training
@pytest.mark.parametrize("clock", ["wall", "cpu"])
def test_training_stops_within_the_harness_budget(tmp_path: Path, clock: str) -> None:
    out = tmp_path / "out"
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    trained(ENV, out, "--scale", "tiny", EXECUTOR_TIME_BUDGET_S="10", EXECUTOR_BUDGET_CLOCK=clock)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    ckpt = torch.load(out / "ckpt.pt", weights_only=True)
    # The checkpoint is saved within the budget, counted from process start on its clock.
    assert 0 < ckpt["elapsed_s"] <= 10.0
    assert ckpt["step"] >= 1
    if clock == "cpu":  # the harness's count: about the budget, whatever the machine's load
        cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
        assert 7.0 < cpu < 12.0, cpu


def test_an_unknown_budget_clock_is_refused_in_one_line(tmp_path: Path) -> None:
    clock = {"EXECUTOR_BUDGET_CLOCK": "gpu", "EXECUTOR_OUTPUT_DIR": str(tmp_path)}
    proc = run_script(["train.py", "--smoke"], REPO, **clock)
    assert proc.returncode != 0
    assert proc.stderr.strip() == "EXECUTOR_BUDGET_CLOCK='gpu': use wall or cpu"


@pytest.mark.training
def test_ddp_on_two_cpu_processes(tmp_path: Path) -> None:
    """The real DDP path (gloo backend): two ranks train in step and rank 0 saves."""
    out = tmp_path / "out"
    cmd = [
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        "train.py",
        "--scale",
        "tiny",
        "--smoke",
        "--n_layer=2",
    ]
    variables = {"EXECUTOR_OUTPUT_DIR": str(out), "EXECUTOR_ENV_DIR": str(ENV)}
    proc = run_script(cmd, REPO, OMP_NUM_THREADS="1", **variables)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ckpt = torch.load(out / "ckpt.pt", weights_only=True)
    assert ckpt["step"] == 2 and ckpt["config"]["n_layer"] == 2
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 2, "only rank 0 logs"
