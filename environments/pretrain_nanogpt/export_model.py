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
"""

import argparse
import os
import sys
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from eval_settings import SCALES  # noqa: E402  (read before the candidate's code is importable)


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
