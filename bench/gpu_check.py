"""GPU acceptance check: each environment's GPU path for a few minutes, offline.

    python bench/gpu_check.py --out runs/gpu_check.json   # one CUDA GPU: about 7 minutes
    python bench/gpu_check.py --device cpu --tiny         # the same logic at tiny shapes

Needs torch (CUDA), transformers and rich; no network, vLLM, TRL or Docker.

pretrain_nanogpt: the environment's `train.py --scale gpu` (GPT-2 small, bfloat16,
torch.compile) in a subprocess with EXECUTOR_TIME_BUDGET_S, on synthetic FineWeb shards
written here by prepare_fineweb.py's own `write_shard` (random GPT-2 token ids): tokens/s
between a logged step after warm-up and the last one, from its metrics.jsonl, and MFU.

posttrain_grpo: the repo's `load_policy`, `make_sampler` and `grpo_step` at the gpu scale's
settings (bundled GSM8K, the math prompt), on a randomly initialised policy of
Qwen2.5-0.5B's shape saved to disk here, with a BPE tokenizer trained here the way the tiny
scale's is (make_base.train_tokenizer). Rollouts use the repo's HFSampler (no vLLM). The
reward is a seeded random number: with the real rewards a random policy scores 0 everywhere,
every advantage is 0 and the update would skip every completion; random rewards put all of
them through it, the costliest case. Step time: the median over the steps after a warm-up.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import torch
from gpu_check_grpo import run_grpo
from rich.console import Console

ROOT = Path(__file__).resolve().parents[1]
NANOGPT = ROOT / "environments" / "pretrain_nanogpt"

# Dense bf16 tensor-core peaks (vendor datasheets, no sparsity), matched by the words of
# torch's device name, first match wins: the PCIe and NVL H100s are slower than the SXM one.
PEAK_BF16_FLOPS: tuple[tuple[tuple[str, ...], float], ...] = (
    (("H100", "PCIE"), 756e12),
    (("H100", "NVL"), 835e12),
    (("H100",), 989e12),
    (("H200",), 989e12),
    (("GH200",), 989e12),
    (("A100",), 312e12),
    (("L40S",), 362e12),
    (("L4",), 121e12),
)


@dataclass(frozen=True)
class NanoPreset:
    overrides: tuple[str, ...]  # train.py's --field=value arguments on top of --scale gpu
    skip_steps: int  # the measurement starts at the first logged step from this one
    train_tokens: int  # synthetic training tokens written (windows are drawn at random)


# nanoGPT at the gpu scale: rows every 2 steps so a slow GPU still gives several, measured
# from step 10 on (step 1 compiles; the first steps warm the allocator and caches).
GPU_NANOGPT = NanoPreset(("--log_every=2",), skip_steps=10, train_tokens=50_000_000)
# A model small enough for a 1-core CPU, on the same script, data format and vocabulary.
TINY_NANOGPT = NanoPreset(
    (
        "--n_layer=2", "--n_head=2", "--n_embd=64", "--seq_len=64", "--batch_size=4",
        "--grad_accum=2", "--dtype=float32", "--compile=false", "--max_steps=8",
        "--log_every=1", "--warmup_steps=2", "--save_reserve_s=0",
    ),
    skip_steps=3,
    train_tokens=200_000,
)  # fmt: skip
VAL_TOKENS = {"gpu": 2 * 10_485_760 + 1, "tiny": 50_000}  # prepare_fineweb.py's default at gpu


def load_file(path: Path, name: str) -> ModuleType:
    """A module from a file under a name of our own (the environments' repos share names)."""
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod  # dataclasses look their module up here
    spec.loader.exec_module(mod)
    return mod


def peak_flops(device_name: str) -> float | None:
    words = {w.upper() for w in re.split(r"[^A-Za-z0-9]+", device_name) if w}
    for needed, peak in PEAK_BF16_FLOPS:
        if all(w in words for w in needed):
            return peak
    return None


def write_shards(root: Path, train_tokens: int, val_tokens: int, shards: int = 2) -> dict:
    """Random GPT-2 token ids (< 50257) as FineWeb shards where train.py and evaluate.py
    look (NANOGPT_DATA_DIR / NANOGPT_HELDOUT_DIR), written by prepare_fineweb.py itself."""
    prep = load_file(NANOGPT / "prepare_fineweb.py", "nanogpt_prepare_fineweb")
    rng = np.random.default_rng(0)
    train_dir, val_dir = root / "data" / "fineweb10B", root / "heldout" / "fineweb10B"
    train_dir.mkdir(parents=True)
    val_dir.mkdir(parents=True)
    prep.write_shard(
        val_dir / "fineweb_val_000000.bin", rng.integers(0, prep.GPT2_EOT + 1, val_tokens)
    )
    per_shard = train_tokens // shards
    for i in range(1, shards + 1):
        tokens = rng.integers(0, prep.GPT2_EOT + 1, per_shard)
        prep.write_shard(train_dir / f"fineweb_train_{i:06d}.bin", tokens)
    return {"train_shards": shards, "train_tokens": per_shard * shards, "val_tokens": val_tokens}


def stream(
    cmd: list[str], env: dict, cwd: Path, log: Path, timeout: float, console: Console
) -> int:
    """Run `cmd`, echo its lines as progress and keep them in `log`; killed after `timeout`."""
    with log.open("w") as f:
        proc = subprocess.Popen(
            cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        timer = threading.Timer(timeout, proc.kill)
        timer.start()
        assert proc.stdout
        for line in proc.stdout:
            f.write(line)
            if line.strip():
                console.log(f"[dim]nanogpt |[/] {line.rstrip()}", markup=True, highlight=False)
        rc = proc.wait()
        timer.cancel()
    return rc


def run_nanogpt(args: argparse.Namespace, work: Path, console: Console) -> dict[str, Any]:
    preset = TINY_NANOGPT if args.tiny else GPU_NANOGPT
    t_start = time.perf_counter()
    console.log("nanoGPT: writing synthetic FineWeb shards")
    data = write_shards(work, preset.train_tokens, VAL_TOKENS["tiny" if args.tiny else "gpu"])
    out = work / "nanogpt_out"
    env = {
        **os.environ,
        "NANOGPT_DATA_DIR": str(work / "data"),
        "NANOGPT_HELDOUT_DIR": str(work / "heldout"),
        "EXECUTOR_TIME_BUDGET_S": str(args.nanogpt_budget),
        "EXECUTOR_BUDGET_CLOCK": "wall",
        "EXECUTOR_OUTPUT_DIR": str(out),
        "EXECUTOR_SEED": "0",
    }
    if args.device == "cpu":
        env["CUDA_VISIBLE_DEVICES"] = ""  # train.py takes the GPU whenever it sees one
    train_py = NANOGPT / "repo" / "train.py"
    cmd = [sys.executable, str(train_py), "--scale", "gpu", *preset.overrides]
    console.log(f"nanoGPT: train.py --scale gpu, budget {args.nanogpt_budget:g}s")
    log = work / "nanogpt.log"
    # train.py stops itself inside the budget; the margin covers saving the checkpoint.
    rc = stream(cmd, env, NANOGPT / "repo", log, args.nanogpt_budget + 120, console)
    if rc != 0:
        raise SystemExit(f"nanoGPT train.py failed (exit {rc}); its output: {log}")
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines() if line]
    # Step 1 compiles; later rows measure steady training. Fewer rows than that: from step 2.
    window = [r for r in rows if r["step"] >= preset.skip_steps]
    if len(window) < 2:
        window = [r for r in rows if r["step"] >= 2]
    if len(window) < 2:
        raise SystemExit(
            f"nanoGPT logged {len(rows)} rows in {args.nanogpt_budget:g}s: too few to measure; "
            "raise --nanogpt-budget"
        )
    first, last = window[0], window[-1]
    tokens, seconds = last["tokens"] - first["tokens"], last["time"] - first["time"]

    # The model's shapes and size from the environment's own config and model code.
    cfg_mod = load_file(NANOGPT / "repo" / "config.py", "nanogpt_config")
    model_mod = load_file(NANOGPT / "repo" / "model.py", "nanogpt_model")
    cfg = cfg_mod.config_for("gpu", list(preset.overrides))
    shapes = cfg_mod.model_args(cfg)
    with torch.device("meta"):
        n_params = model_mod.GPT(model_mod.GPTConfig(**shapes)).num_params()
    # 6N per token (forward and backward of every weight, the tied lm_head included), plus
    # attention's scores and weighted sum (PaLM's appendix B, nanoGPT's estimate_mfu).
    flops_per_token = 6 * n_params + 12 * cfg.n_layer * cfg.n_embd * cfg.seq_len
    done = re.search(r"done: (\d+) steps", log.read_text())
    result: dict[str, Any] = {
        "command": "train.py --scale gpu " + " ".join(preset.overrides),
        "budget_s": args.nanogpt_budget,
        "data": data,
        "shapes": {
            **shapes,
            **{k: getattr(cfg, k) for k in ("batch_size", "grad_accum", "dtype", "compile")},
        },
        "params": n_params,
        "tokens_per_step": cfg.batch_size * cfg.seq_len * cfg.grad_accum,
        "steps_done": int(done.group(1)) if done else last["step"],
        "measured_from_step": first["step"],
        "measured_to_step": last["step"],
        "measured_tokens": tokens,
        "measured_s": seconds,
        "tokens_per_s": tokens / seconds,
        "flops_per_token": flops_per_token,
        "final_loss": last["loss"],
        "wall_s": time.perf_counter() - t_start,
    }
    peak = args.peak_flops or args.peak
    result["mfu"] = flops_per_token * result["tokens_per_s"] / peak if peak else None
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    ap.add_argument("--tiny", action="store_true", help="tiny shapes and a few steps")
    ap.add_argument("--out", type=Path, help="write the JSON here too (it always goes to stdout)")
    ap.add_argument("--only", choices=("nanogpt", "grpo"), help="run one of the two")
    ap.add_argument("--nanogpt-budget", type=float, help="train.py's budget, s (default 180)")
    ap.add_argument("--grpo-budget", type=float, help="GRPO wall s, model build included (200)")
    ap.add_argument("--grpo-steps", type=int, help="most measured GRPO steps (default 8)")
    ap.add_argument("--peak-flops", type=float, help="the GPU's peak bf16 FLOP/s, for MFU")
    ap.add_argument("--keep", action="store_true", help="keep the work folder (shards, logs)")
    args = ap.parse_args()
    console = Console(stderr=True)  # progress on stderr, JSON alone on stdout
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit(
            "no CUDA device visible to torch: run this on a GPU machine, or check the logic "
            "on the CPU with --device cpu --tiny"
        )
    if args.device == "cpu" and not args.tiny:
        raise SystemExit("--device cpu needs --tiny: the GPU shapes would take hours on a CPU")
    tiny = args.tiny
    args.nanogpt_budget = args.nanogpt_budget or (60.0 if tiny else 180.0)
    args.grpo_budget = args.grpo_budget or (60.0 if tiny else 200.0)
    args.grpo_steps = args.grpo_steps or (2 if tiny else 8)
    if min(args.nanogpt_budget, args.grpo_budget, args.grpo_steps) <= 0:
        raise SystemExit("--nanogpt-budget, --grpo-budget and --grpo-steps must be positive")

    device = torch.device(args.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    args.peak = peak_flops(name) if device.type == "cuda" else None
    peak = args.peak_flops or args.peak
    report: dict[str, Any] = {
        "device": name,
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "tiny": tiny,
        "peak_bf16_flops": peak,
        "peak_note": None
        if peak
        else f"no bf16 peak known for {name!r}: MFU is null (pass --peak-flops)",
    }
    console.log(f"GPU check on {name} ({'tiny shapes' if tiny else 'the gpu scales'})")
    t0 = time.perf_counter()
    work = Path(tempfile.mkdtemp(prefix="gpu-check-"))
    try:
        if args.only != "grpo":
            report["nanogpt"] = nano = run_nanogpt(args, work, console)
            mfu = f", MFU {nano['mfu']:.1%}" if nano["mfu"] is not None else ""
            console.log(f"nanoGPT: {nano['tokens_per_s']:,.0f} tokens/s{mfu}")
        if args.only != "nanogpt":
            report["grpo"] = grpo = run_grpo(args, device, work, console)
            console.log(
                f"GRPO: median step {grpo['median_step_s']:.2f}s, rollout "
                f"{grpo['rollout_tokens_per_s']:,.0f} tokens/s"
            )
    except BaseException:
        console.log(f"work folder kept: {work}")
        raise
    if args.keep:
        console.log(f"work folder kept: {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    report["total_wall_s"] = time.perf_counter() - t0
    text = json.dumps(report, indent=2)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
        console.log(f"wrote {args.out}")
    print(text)


if __name__ == "__main__":
    main()
