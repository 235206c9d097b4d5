"""The export step: rebuild the candidate's model from its checkpoint and export it as a graph.

    python export_model.py                                    # the harness's export step
    python export_model.py CODE_DIR CKPT OUT.pt2 --scale tiny  # one checkpoint (smoke check)

With no arguments it reads $EXECUTOR_OUTPUT_DIR/ckpt.pt and the model code that training
saved in $EXECUTOR_OUTPUT_DIR/code, and writes $EXECUTOR_EXPORT_DIR/ckpt.pt2. This is the
only place the candidate's code runs after training: the harness runs it with training's view
of the files (no held-out text). The evaluator then loads only the graph (ATen operators and
tensors, checked by load_graph.py), checks that its weights are those of ckpt.pt, and scores
it; intermediate checkpoints (speedrun) are scored with this graph and their own weights, so
they are not exported.

The smoke check (evaluate.py --check) runs the same work in a child process: export_in_child.
"""

import argparse
import atexit
import multiprocessing
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import IO

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from eval_settings import SCALES  # noqa: E402  (read before the candidate's code is importable)

EXPORT_TIMEOUT_S = 600


def export(code_dir: Path, ckpt_path: Path, out: Path, batch: int, seq: int, device: str) -> None:
    sys.path.insert(0, str(code_dir))
    from model import GPT, GPTConfig  # the candidate's code

    ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=True)
    model = GPT(GPTConfig(**ckpt["config"]))
    model.load_state_dict(ckpt["model"])
    model = model.to(device).float().eval()
    example = torch.zeros(batch, seq, dtype=torch.long, device=device)
    with torch.no_grad():
        exported = torch.export.export(model, (example,), strict=False)
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.export.save(exported, str(out))


def _export_forked(code_dir: Path, ckpt: Path, out: Path, scale: str, log_fd: int) -> None:
    """The forked child's work, as a process of the export step's own would do it: output to
    `log_fd`, no result path, the exit handlers that the candidate's code registers run
    (those of the process it was forked from are not its own)."""
    os.dup2(log_fd, 1)
    os.dup2(log_fd, 2)
    os.environ.pop("EXECUTOR_RESULT_PATH", None)
    os.chdir(out.parent)
    atexit._clear()
    # A pool of compute threads that the parent started did not survive the fork (only this
    # thread did): a parallel region would wait for it forever. One thread, as the export step
    # of a tiny run has.
    torch.set_num_threads(1)
    try:
        s = SCALES[scale]
        export(code_dir, ckpt, out, s.batch, s.seq_len, "cpu")
    finally:
        atexit._run_exitfuncs()


def _exit_code(
    code_dir: Path, ckpt: Path, out: Path, scale: str, device: str, log: IO[bytes]
) -> int | None:
    """The child's exit status (None: killed after EXPORT_TIMEOUT_S), its output in `log`."""
    if device == "cpu":
        sys.stdout.flush()  # else the child writes what is buffered here a second time
        sys.stderr.flush()
        child = multiprocessing.get_context("fork").Process(
            target=_export_forked, args=(code_dir, ckpt, out, scale, log.fileno())
        )
        child.start()
        child.join(EXPORT_TIMEOUT_S)
        if child.exitcode is None:
            child.kill()
            child.join()
            return None
        return child.exitcode
    env = {k: v for k, v in os.environ.items() if k != "EXECUTOR_RESULT_PATH"}
    cmd = [sys.executable, __file__, str(code_dir), str(ckpt), str(out), "--scale", scale]
    try:
        return subprocess.run(
            [*cmd, "--device", device],
            env=env,
            cwd=out.parent,
            stdout=log,
            stderr=log,
            timeout=EXPORT_TIMEOUT_S,
        ).returncode
    except subprocess.TimeoutExpired:
        return None


def export_in_child(code_dir: Path, ckpt: Path, out: Path, scale: str, device: str) -> None:
    """The export step's work on one checkpoint in a child process (the candidate's code runs
    there, never in the caller), for the smoke check: SystemExit saying why when it fails.

    On the CPU the child is a fork of the caller, which has torch's export machinery loaded
    already (a fresh interpreter spends 3 CPU-s loading it again); the caller must hold nothing
    the candidate may not see. A CUDA runtime that the caller has touched cannot be used in a
    fork, so with CUDA the child is a fresh interpreter."""
    with tempfile.TemporaryFile() as log:
        code = _exit_code(code_dir, ckpt, out, scale, device, log)
        if code is None:
            raise SystemExit(f"exporting the model took over {EXPORT_TIMEOUT_S}s")
        if code != 0:
            log.seek(0)
            text = log.read().decode(errors="replace")
            tail = "\n".join(text.strip().splitlines()[-12:])
            raise SystemExit(
                f"could not rebuild and export the model from {ckpt.name} (the model must load "
                f"from its checkpoint and be exportable with torch.export):\n{tail}"
            )


def main() -> None:
    p = argparse.ArgumentParser(description="Export the trained model with torch.export.")
    p.add_argument("paths", nargs="*", metavar="CODE_DIR CKPT OUT", help="one checkpoint")
    p.add_argument("--scale", default=os.environ.get("EXECUTOR_SCALE", "tiny"))
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = p.parse_args()
    if args.scale not in SCALES:
        raise SystemExit(f"unknown scale {args.scale!r}; choose one of: {', '.join(SCALES)}")
    s = SCALES[args.scale]
    if args.paths:
        if len(args.paths) != 3:
            p.error("give CODE_DIR CKPT OUT, or nothing for the export step")
        code_dir, ckpt, out = map(Path, args.paths)
    else:
        out_dir = Path(os.environ["EXECUTOR_OUTPUT_DIR"])
        code_dir, ckpt = out_dir / "code", out_dir / "ckpt.pt"
        out = Path(os.environ["EXECUTOR_EXPORT_DIR"]) / "ckpt.pt2"
        if not ckpt.is_file():
            raise SystemExit(f"training wrote no checkpoint: {ckpt} is missing")
    export(code_dir, ckpt, out, s.batch, s.seq_len, args.device)


if __name__ == "__main__":
    main()
