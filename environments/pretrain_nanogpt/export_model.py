"""Rebuild the candidate's model from its code and checkpoint, and export it with torch.export.

The evaluator runs this in a child process because it executes the candidate's code: what
that code does at import or build time stays in this process. The evaluator itself loads
only the exported graph (aten operations and weights), so the function it scores and
checks for causality is exactly the one saved here.

    python export_model.py CODE_DIR CKPT OUT.pt2 --batch B --seq T --device cpu
"""

import argparse
import sys

import torch


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("code_dir")
    p.add_argument("ckpt")
    p.add_argument("out")
    p.add_argument("--batch", type=int, required=True)
    p.add_argument("--seq", type=int, required=True)
    p.add_argument("--device", default="cpu")
    args = p.parse_args()
    sys.path.insert(0, args.code_dir)
    from model import GPT, GPTConfig  # the candidate's code

    ckpt = torch.load(args.ckpt, map_location="cpu", weights_only=True)
    model = GPT(GPTConfig(**ckpt["config"]))
    model.load_state_dict(ckpt["model"])
    model = model.to(args.device).float().eval()
    example = torch.zeros(args.batch, args.seq, dtype=torch.long, device=args.device)
    with torch.no_grad():
        exported = torch.export.export(model, (example,), strict=False)
    torch.export.save(exported, args.out)


if __name__ == "__main__":
    main()
