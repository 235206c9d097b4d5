"""Protected evaluator of `pretrain_nanogpt`: held-out loss of the exported model, with checks.

    python evaluate.py            # the harness's evaluate step: writes $EXECUTOR_RESULT_PATH
    python evaluate.py --check    # smoke: export ckpt.pt and check the graph on training text

The evaluate step runs no candidate code. It reads the graph that the export step wrote
($EXECUTOR_EXPORT_DIR/ckpt.pt2, made by export_model.py without access to held-out text),
loads it with load_graph.py (ATen operators and plain tensors only), checks that its weights
are the ones training saved in ckpt.pt, and computes everything itself:

- val_loss: mean next-token cross-entropy (nats) over held-out text, in windows of the
  scale's context length; only this step can read that text;
- causality, on batches just scored: log-probabilities at position t must not change when
  tokens after t change, nor when other rows of the batch change. Batches, cut positions and
  rows are drawn fresh at every evaluation and recorded in the result under "checks"; a
  model that peeks is flagged and its val_loss is reported as NaN (so is a rejected graph's);
- leakage: a val loss below the train loss (on training windows drawn at random) by more
  than honest models show (the floor in eval_settings.py, measured on the baseline) means
  the model has seen the held-out text; so does a train loss that is not finite. The windows
  are scored in stages, stopping early only far above the floor (eval_settings.py, IN
  STAGES); the checks record how many were scored;
- a loss that is not finite is flagged;
- speedrun: time_to_target_s is the harness's time ($EXECUTOR_OUTPUT_TIMES) of the
  earliest checkpoint that reaches the target, scored with the graph and its own weights.

Splits: the held-out text is cut into windows (the first 2 x val_tokens tokens, or all of it
where val_tokens is None); EXECUTOR_EVAL_SPLIT=screen (the default) scores the even-indexed
windows, confirm the odd-indexed ones, and the checks run on the split's own batches.
--check ignores the split. Beside result.json the step writes items.jsonl, one row per
scored window of the final checkpoint: {"id": "w000123", "value": its mean loss in nats,
"tokens": its target tokens}, so val_loss is the mean of the values. A model whose val_loss
is not a finite number (rejected, peeking, or a loss that is NaN or infinite) gets no items
file.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import secrets
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # the settings, loader and shard format live beside this file
from eval_settings import (  # noqa: E402
    EARLY_PASS_SE,
    LEAK_STAGES,
    SCALES,
    Settings,
    smoke_settings,
)
from export_model import export_in_child  # noqa: E402
from load_graph import GraphRejected, free_values, load_graph  # noqa: E402
from prepare_fineweb import read_shard  # noqa: E402

SPLIT_VAR = "EXECUTOR_EVAL_SPLIT"
SPLITS = ("screen", "confirm")  # even- and odd-indexed held-out windows
TOLERANCE = 1e-3  # nats a log-probability may move in the checks (honest models: exactly 0)
Forward = Callable[[torch.Tensor], torch.Tensor]
Seen = Callable[[int, torch.Tensor], None]  # (batch index, its logits) as a batch is scored


# --- data (read here, never through the candidate's data.py) ---------------------------


def _tokens(dataset: str, shakespeare: Path, fineweb: Path, shards: str, what: str) -> np.ndarray:
    """The Shakespeare text's bytes, or the tokens of the first FineWeb shard matching `shards`."""
    if dataset == "shakespeare":
        return np.frombuffer(shakespeare.read_bytes(), np.uint8)
    found = sorted(fineweb.glob(shards))
    if not found:
        raise SystemExit(f"FineWeb {what} missing in {fineweb}: run prepare_fineweb.py")
    return read_shard(found[0])


def train_tokens(env_dir: Path, dataset: str) -> np.ndarray:
    data = Path(os.environ.get("NANOGPT_DATA_DIR") or env_dir / "data")
    text = env_dir / "data" / "shakespeare" / "train.txt"
    return _tokens(dataset, text, data / "fineweb10B", "*.bin", "shards")


def heldout_tokens(env_dir: Path, dataset: str) -> np.ndarray:
    held = Path(os.environ.get("NANOGPT_HELDOUT_DIR") or env_dir / "heldout")
    text = env_dir / "heldout" / "shakespeare_val.txt"
    return _tokens(dataset, text, held / "fineweb10B", "fineweb_val_*.bin", "held-out shard")


def windows(
    tokens: np.ndarray, seq_len: int, limit: int | None = None, first: int = 0, step: int = 1
) -> torch.Tensor:
    """Non-overlapping windows of seq_len + 1 tokens (inputs and shifted targets) over the
    first `limit` targets; of those, windows first, first + step, ..."""
    n = len(tokens) if limit is None else min(len(tokens), limit + 1)
    count = (n - 1) // seq_len
    starts = np.lib.stride_tricks.sliding_window_view(tokens[:n], seq_len + 1)[::seq_len]
    return torch.from_numpy(starts[:count][first::step].astype(np.int64))


def eval_split(value: str | None) -> str:
    """The held-out split to score: the harness's EXECUTOR_EVAL_SPLIT, screen when unset."""
    if value is None:
        return "screen"
    if value not in SPLITS:
        raise SystemExit(f"{SPLIT_VAR} must be screen or confirm, not {value!r}")
    return value


def split_windows(
    tokens: np.ndarray, seq_len: int, val_tokens: int | None, split: str
) -> tuple[list[int], torch.Tensor]:
    """(window indices, windows) of `split`: every other window of the first 2 x val_tokens
    tokens (all of them when val_tokens is None), so each split scores val_tokens tokens and
    the two share none."""
    limit = None if val_tokens is None else 2 * val_tokens
    count = ((len(tokens) if limit is None else min(len(tokens), limit + 1)) - 1) // seq_len
    if val_tokens is not None and count < 2 * (val_tokens // seq_len):
        print(
            f"note: the held-out text holds {count} windows, fewer than the "
            f"{2 * (val_tokens // seq_len)} the two splits take (prepare_fineweb.py's "
            "--val-tokens): each split scores half of them",
            file=sys.stderr,
        )
    first = SPLITS.index(eval_split(split))
    return list(range(first, count, 2)), windows(tokens, seq_len, limit, first, 2)


def random_windows(
    tokens: np.ndarray, seq_len: int, count: int, gen: torch.Generator
) -> torch.Tensor:
    """`count` windows of seq_len + 1 tokens at random places: a model cannot know which."""
    starts = torch.randint(0, len(tokens) - seq_len, (count,), generator=gen).numpy()
    return torch.from_numpy(tokens[starts[:, None] + np.arange(seq_len + 1)].astype(np.int64))


# --- the model, as a checked graph --------------------------------------------------------


def same_bits(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Equal bit for bit (so NaN equals the same NaN)."""
    flat = [t.detach().contiguous().flatten().view(torch.uint8) for t in (a, b)]
    return torch.equal(*flat)


def load_model(
    graph: Path, ckpt: Path, s: Settings, device: str
) -> tuple[torch.nn.Module | None, list[str]]:
    """(module, []) for a graph that passes the rules, else (None, [the reason])."""
    try:
        ep = load_graph(graph)
    except GraphRejected as e:
        return None, [f"the exported graph is rejected: {e}"]
    # Weights are what training saved within its budget; an export step that trained on, or
    # baked tables into constants, would score more than the training step produced.
    saved = torch.load(ckpt, map_location="cpu", weights_only=True)
    saved = saved.get("model") if isinstance(saved, dict) else None
    if not isinstance(saved, dict):
        raise SystemExit(f'{ckpt.name} is not {{"config": ..., "model": state_dict}}')
    for name, value in ep.state_dict.items():
        mine = saved.get(name)
        if not isinstance(mine, torch.Tensor) or mine.shape != value.shape:
            mine = None
        if mine is None or not same_bits(mine.to(value), value):
            return None, [f"the exported graph's {name} is not the {name} saved in {ckpt.name}"]
    if (n := free_values(ep)) > s.max_free_values:
        return None, [
            f"the exported graph holds {n} numbers besides the checkpoint's weights (constants, "
            f"non-persistent buffers, literals); at most {s.max_free_values} are allowed"
        ]
    module = ep.module(check_guards=False).to(device)
    return module, []


def make_forward(module: torch.nn.Module, s: Settings, device: str) -> Forward:
    @torch.no_grad()
    def forward(idx: torch.Tensor) -> torch.Tensor:
        logits = module(idx.to(device))
        ok = isinstance(logits, torch.Tensor) and logits.dim() == 3
        if not ok or tuple(logits.shape[:2]) != tuple(idx.shape) or logits.shape[2] < s.vocab:
            shape = getattr(logits, "shape", type(logits).__name__)
            raise SystemExit(
                f"the model must return logits of shape ({s.batch}, {s.seq_len}, >= {s.vocab}), "
                f"not {shape}"
            )
        return logits.float()

    return forward


# --- measurements -------------------------------------------------------------------------


def window_losses(
    forward: Forward, data: torch.Tensor, batch: int, seen: Seen | None = None
) -> np.ndarray:
    """Each window's mean next-token cross-entropy (float64); the last batch is padded.
    `seen` gets each full batch's logits."""
    out = []
    for i in range(0, len(data), batch):
        chunk = data[i : i + batch]
        n = len(chunk)
        if n < batch:  # the graph has a fixed batch size
            chunk = torch.cat([chunk, chunk[:1].expand(batch - n, -1)])
        logits = forward(chunk[:, :-1])
        if seen is not None and n == batch:
            seen(i // batch, logits)
        logits = logits[:n]
        targets = chunk[:n, 1:].to(logits.device)
        loss = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), reduction="none")
        out.append(loss.view(n, -1).double().mean(1).cpu().numpy())
    return np.concatenate(out)


def clears_floor(val_loss: float, train_losses: np.ndarray, min_gap: float) -> bool:
    """The gap is above the floor by EARLY_PASS_SE standard errors of these windows' mean (never
    for a loss that is not a number)."""
    se = float(train_losses.std(ddof=1)) / math.sqrt(len(train_losses))
    return val_loss - float(train_losses.mean()) - min_gap >= EARLY_PASS_SE * se


def train_loss_in_stages(
    forward: Forward, train: torch.Tensor, s: Settings, val_loss: float
) -> tuple[float, int]:
    """(mean loss, windows scored) of the training windows, scored LEAK_STAGES batches-rounded
    parts at a time: it stops before the end only where the gap clears the floor by a wide
    margin (see IN STAGES in eval_settings.py), else it scores them all."""
    part = math.ceil(len(train) / LEAK_STAGES / s.batch) * s.batch
    losses = np.empty(0)
    while len(losses) < len(train):
        scored = window_losses(forward, train[len(losses) : len(losses) + part], s.batch)
        losses = np.concatenate([losses, scored])
        if len(losses) < len(train) and clears_floor(val_loss, losses, s.min_gap):
            break
    return float(losses.mean()), len(losses)


def moved(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """|a - b| per position: the largest change of a log-probability (NaN counts as moved)."""
    d = torch.where(a == b, 0.0, (a - b).abs().nan_to_num(nan=math.inf))
    return d.amax(-1)


def spread(k: int, n: int, gen: torch.Generator) -> torch.Tensor:
    """n draws from 0..k-1 that cover every value once before any repeats (when n >= k)."""
    perms = [torch.randperm(k, generator=gen) for _ in range(-(-n // k))]
    return torch.cat(perms)[:n]


def pick_batches(rows: int, s: Settings, gen: torch.Generator) -> list[int]:
    """The batches to check, then as many others whose text replaces theirs, drawn from `gen`
    among the full batches of `rows` rows."""
    full = rows // s.batch
    if full < 2 * s.check_batches:
        raise SystemExit(f"too little text for the checks: {full} batches of {s.batch}")
    return torch.randperm(full, generator=gen)[: 2 * s.check_batches].tolist()


def causality_checks(
    forward: Forward,
    inputs: torch.Tensor,
    s: Settings,
    gen: torch.Generator,
    picks: Sequence[int],
    scored: dict[int, torch.Tensor] | None = None,
) -> tuple[list[str], dict]:
    """Checks that predictions use only earlier tokens of their own row.

    `inputs` are the scored rows in scoring order, so a checked batch is exactly a batch that
    was scored; `scored` holds the log-probabilities that scoring computed for the checked
    batches, which the checks then compare against (else one more forward computes them).
    Changes use the text of another scored batch, so a check looks like any other input.
    Which batches (`picks`, from pick_batches), cuts and rows are tested comes from `gen`
    and is recorded.
    """
    B, T = s.batch, inputs.shape[1]
    record: dict = {
        "batches": picks[: s.check_batches],
        "replacements": picks[s.check_batches :],
        "cuts": [],
        "kept_rows": [],
    }
    bases = {}
    for b, o in zip(record["batches"], record["replacements"], strict=True):
        rows, other = inputs[b * B : (b + 1) * B], inputs[o * B : (o + 1) * B]
        # The same rows through the graph twice: where they were scored, the scoring pass is
        # the first (and every check below compares against what was scored).
        first = (scored or {}).get(b)
        base = bases[b] = F.log_softmax(forward(rows), -1) if first is None else first
        if (d := float(moved(F.log_softmax(forward(rows), -1), base).max())) > TOLERANCE:
            return [f"the model's output is not deterministic in eval mode (moved {d:.3g})"], record
        # A random half of the rows keeps its text while the other half changes. First, so
        # that a change in the cut checks below comes from the row's own future.
        for _ in range(s.split_passes):
            kept = torch.randperm(B, generator=gen)[: B // 2]
            record["kept_rows"].append(kept.tolist())
            mixed = other.clone()
            mixed[kept] = rows[kept]
            d = float(moved(F.log_softmax(forward(mixed), -1)[kept], base[kept]).max())
            if d > TOLERANCE:
                return [
                    f"rows are not independent: log-probabilities of a row change (by up to "
                    f"{d:.3g}) when other rows of the batch change; the model mixes information "
                    "across sequences"
                ], record
    positions = torch.arange(T)
    for b, o in zip(record["batches"], record["replacements"], strict=True):
        rows, other = inputs[b * B : (b + 1) * B], inputs[o * B : (o + 1) * B]
        # Each row gets its own cut; over the passes every cut position is tested once per
        # batch when they fit (tiny), else a random sample of them.
        cuts = spread(T - 1, s.cut_passes * B, gen).view(s.cut_passes, B)
        record["cuts"].append(cuts.tolist())
        for cut in cuts:
            after = positions[None, :] > cut[:, None]  # (B, T): the text that changes
            changed = F.log_softmax(forward(torch.where(after, other, rows)), -1)
            before = moved(changed, bases[b]).masked_fill(after.to(changed.device), 0.0)
            if (d := float(before.max())) > TOLERANCE:
                r, t = divmod(int(before.argmax()), T)
                return [
                    f"not causal: log-probabilities at position {t} (row {r} of batch {b}) change "
                    f"by {d:.3g} when tokens after {int(cut[r])} change; the model attends to "
                    "future tokens"
                ], record
    return [], record


def assess(
    forward: Forward, val: torch.Tensor, train: torch.Tensor, s: Settings, gen: torch.Generator
) -> tuple[dict[str, float], list[str], dict, np.ndarray]:
    """Score one model, then check it on the batches just scored: (metrics, flags, record,
    each window's loss). val_loss is the mean of the window losses, exactly."""
    # Drawn before scoring, so that scoring keeps what the checks compare against.
    picks = pick_batches(len(val), s, gen)
    checked = set(picks[: s.check_batches])
    scored: dict[int, torch.Tensor] = {}

    def keep(index: int, logits: torch.Tensor) -> None:
        if index in checked:
            scored[index] = F.log_softmax(logits, -1)

    losses = window_losses(forward, val, s.batch, keep)
    val_loss = float(losses.mean())
    if not math.isfinite(val_loss):
        return {"val_loss": val_loss}, [f"val_loss is not finite ({val_loss})"], {}, losses
    flags, record = causality_checks(forward, val[:, :-1], s, gen, picks, scored)
    if flags:
        return {"val_loss": math.nan}, flags, record, losses  # a peeking model gets no loss
    train_loss, record["train_windows"] = train_loss_in_stages(forward, train, s, val_loss)
    gap = val_loss - train_loss
    if not math.isfinite(train_loss):
        # NaN compares as no gap at all: a model that knew the held-out text could return
        # NaN on any other text and pass.
        flags.append(f"train_loss is not finite ({train_loss}): the leakage check needs it")
    elif gap < s.min_gap:
        flags.append(
            f"val_loss {val_loss:.3f} is {-gap:.3f} below train_loss {train_loss:.3f}, beyond "
            f"what honest models show ({-s.min_gap:.2f}): it has likely seen the held-out text"
        )
    return {"val_loss": val_loss, "train_loss": train_loss}, flags, record, losses


# --- speedrun: the harness's time to the target -----------------------------------------


def timed_checkpoints(out_dir: Path, times_path: Path) -> list[tuple[float, Path]]:
    """Checkpoints the harness timed, earliest first. Training's own clock (elapsed_s in a
    checkpoint) is never read: a file the harness did not time does not count."""
    times = json.loads(times_path.read_text())
    found = []
    for name, t in times.items():
        path = out_dir / name
        timed = isinstance(t, (int, float)) and math.isfinite(t)
        if timed and re.fullmatch(r"ckpt(_\d+)?\.pt", name) and path.is_file():
            found.append((float(t), path))
    return sorted(found)


def time_to_target(
    module: torch.nn.Module,
    forward: Forward,
    timed: list[tuple[float, Path]],
    val: torch.Tensor,
    train: torch.Tensor,
    s: Settings,
    gen: torch.Generator,
    final_val_loss: float,
) -> tuple[dict[str, float], list[str], dict]:
    """The earliest timed checkpoint at or below the target, scored with the final graph and its
    own weights (so its score depends only on what training wrote by then) and checked like
    the final model. A checkpoint whose weights do not fit the graph does not count."""
    assert s.target is not None
    keys = list(module.state_dict())
    records: dict = {}
    for t, path in timed:
        if path.name == "ckpt.pt":  # the graph's own weights: scored and checked already
            if final_val_loss <= s.target:
                return {"target_reached": 1.0, "time_to_target_s": t}, [], records
            continue
        state = torch.load(path, map_location="cpu", weights_only=True)
        state = state.get("model") if isinstance(state, dict) else None
        try:
            module.load_state_dict({k: state[k] for k in keys})  # type: ignore[index]
        except (KeyError, RuntimeError, TypeError) as e:
            records[path.name] = {"time_s": t, "skipped": f"weights do not fit the graph ({e})"}
            continue
        metrics, flags, record, _ = assess(forward, val, train, s, gen)
        records[path.name] = {"time_s": t, **metrics, **record}
        if flags:
            return {"target_reached": 0.0}, [f"{path.name}: {f}" for f in flags], records
        if metrics["val_loss"] <= s.target:
            return {"target_reached": 1.0, "time_to_target_s": t}, [], records
    return {"target_reached": 0.0}, [], records


# --- the whole evaluation ---------------------------------------------------------------


def smoke_check(out_dir: Path, env_dir: Path, scale: str, device: str) -> dict:
    """Smoke (no held-out text here): export ckpt.pt in a child, then check the graph on
    training text, the batches the checks take and no more."""
    s = smoke_settings(SCALES[scale])
    ckpt = out_dir / "ckpt.pt"
    with tempfile.TemporaryDirectory(prefix="nanogpt-check-") as tmp:
        graph = Path(tmp) / "ckpt.pt2"
        export_in_child(out_dir / "code", ckpt, graph, scale, device)
        module, flags = load_model(graph, ckpt, s, device)
    # Drawn once the candidate's code has exited: the child (a fork of this process on the
    # CPU) never held it.
    seed = secrets.randbits(63)
    gen = torch.Generator().manual_seed(seed)
    checks: dict = {"seed": seed}
    if module is not None:
        forward = make_forward(module, s, device)
        n_check = 2 * s.check_batches * s.batch
        train = random_windows(train_tokens(env_dir, s.dataset), s.seq_len, n_check, gen)
        picks = pick_batches(len(train), s, gen)
        flags, checks["ckpt.pt"] = causality_checks(forward, train[:, :-1], s, gen, picks)
    return {"metrics": {}, "flags": flags, "checks": checks, "items": []}


def evaluate(
    out_dir: Path,
    env_dir: Path,
    scale: str,
    device: str,
    check_only: bool = False,
    export_dir: Path | None = None,
    times_path: Path | None = None,
    split: str = "screen",
) -> dict:
    """{"metrics": ..., "flags": [...], "checks": what was checked, "items": [a row per scored
    window]} on `split`'s held-out windows; check_only: smoke (no held-out text, no split)."""
    ckpt = out_dir / "ckpt.pt"
    if not ckpt.is_file():
        raise SystemExit(f"training wrote no checkpoint: {ckpt} is missing")
    if check_only:
        return smoke_check(out_dir, env_dir, scale, device)
    s = SCALES[scale]
    split = eval_split(split)
    seed = secrets.randbits(63)  # what is checked must not be predictable from this code
    gen = torch.Generator().manual_seed(seed)
    checks: dict = {"seed": seed}
    n_train = s.train_tokens // s.seq_len
    train = random_windows(train_tokens(env_dir, s.dataset), s.seq_len, n_train, gen)

    if export_dir is None:
        raise SystemExit("no EXECUTOR_EXPORT_DIR: the export step's graph is what is scored")
    graph = export_dir / "ckpt.pt2"
    if not graph.is_file():
        raise SystemExit(f"the export step wrote no graph: {graph} is missing")
    if s.target is not None and (times_path is None or not times_path.is_file()):
        raise SystemExit("no EXECUTOR_OUTPUT_TIMES: the harness's checkpoint times are needed")
    module, flags = load_model(graph, ckpt, s, device)
    if module is None:
        # No loss, but the metric is reported (NaN): the harness reads flags beside it.
        return {"metrics": {"val_loss": math.nan}, "flags": flags, "checks": checks, "items": []}
    forward = make_forward(module, s, device)
    index, val = split_windows(heldout_tokens(env_dir, s.dataset), s.seq_len, s.val_tokens, split)
    checks |= {"split": split, "val_windows": len(index)}
    metrics, flags, checks["ckpt.pt"], losses = assess(forward, val, train, s, gen)
    items = []
    if math.isfinite(metrics["val_loss"]):  # else no loss to reward, and no items either
        items = [
            {"id": f"w{i:06d}", "value": float(v), "tokens": s.seq_len}
            for i, v in zip(index, losses, strict=True)
        ]
    if s.target is not None and times_path is not None and not flags:
        timed = timed_checkpoints(out_dir, times_path)
        reached, flags, checks["timed"] = time_to_target(
            module, forward, timed, val, train, s, gen, metrics["val_loss"]
        )
        metrics.update(reached)
    return {"metrics": metrics, "flags": flags, "checks": checks, "items": items}


def main() -> None:
    p = argparse.ArgumentParser(description="Evaluate a pretrain_nanogpt checkpoint.")
    p.add_argument("--check", action="store_true", help="export and causality checks only")
    p.add_argument("--scale", default=os.environ.get("EXECUTOR_SCALE", "tiny"))
    args = p.parse_args()
    if args.scale not in SCALES:
        raise SystemExit(f"unknown scale {args.scale!r}; choose one of: {', '.join(SCALES)}")
    device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
    out_dir = Path(os.environ.get("EXECUTOR_OUTPUT_DIR", "out"))
    env_dir = Path(os.environ.get("EXECUTOR_ENV_DIR", HERE))
    export_dir = os.environ.get("EXECUTOR_EXPORT_DIR")
    times = os.environ.get("EXECUTOR_OUTPUT_TIMES")
    split = "screen" if args.check else eval_split(os.environ.get(SPLIT_VAR))
    result = evaluate(
        out_dir,
        env_dir,
        args.scale,
        device,
        args.check,
        Path(export_dir) if export_dir else None,
        Path(times) if times else None,
        split,
    )
    items = result.pop("items")
    print(json.dumps(result))
    if args.check:
        if result["flags"]:
            raise SystemExit("model check failed: " + "; ".join(result["flags"]))
        return
    path = Path(os.environ["EXECUTOR_RESULT_PATH"])
    # Per-window losses, for paired comparisons between arms; whole, and before result.json,
    # which the harness takes as the sign that the step is done. None for a model without a
    # loss (and none left over from an earlier evaluation).
    items_path = path.parent / "items.jsonl"
    if items:
        tmp = items_path.with_name(items_path.name + ".tmp")
        tmp.write_text("".join(json.dumps(r) + "\n" for r in items))
        os.replace(tmp, items_path)
    else:
        items_path.unlink(missing_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(result))
    os.replace(tmp, path)


if __name__ == "__main__":
    main()
