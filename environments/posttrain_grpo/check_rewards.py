"""Protected check of a candidate's reward functions (the `rewards` focus's check step).

    cd WORKSPACE && python "$EXECUTOR_ENV_DIR/check_rewards.py" [--max-call-s 0.2] [--max-abs 100]

The last stdout line is `EXECUTOR_CHECK {"rejected": [...], "flags": [...]}`, one line per
reason; the exit status is 1 when anything is rejected. Two layers:

1. Static (check_rewards_static.py): rewards.py and any reward_member_*.py are parsed, never
   run; imports outside a small pure allow-list, banned builtins, dunders, frame attributes,
   attribute writes, module-level side effects and strings naming held-out data or the
   harness are rejected, each reason naming file:line.
2. Dynamic, only if the static layer passes: this process never imports candidate code. A
   child (check_rewards_child.py) with a clean environment imports rewards.py under an audit
   hook (files, processes, sockets and the like are refused and reported), builds
   `reward_functions(format_weight, answer_weight)` with config.py's defaults, and answers
   one probe call at a time (check_rewards_probes.py) over a private pipe. This process
   times each call on the child's CPU clock (wall clock where that is unreadable) and kills
   the child past the limit. It runs every probe twice (the second time in reverse order),
   then once more in a second child with another PYTHONHASHSEED: the values must match.

Rejected: a raise; a value that is not a bool, int or float, or is not finite, or beyond
--max-abs (weighted totals too); a call over --max-call-s; any refused event; an import that
fails or takes over --import-s; a reward_functions that does not return (function, finite
weight) pairs. Flagged but kept: a constant total or function, a total that pays a wrong
answer more than the right one, or never pays the right answer more than a wrong one.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import io
import json
import math
import os
import select
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # the helpers beside this file, whatever the cwd
from check_rewards_probes import KINDS, make_probes  # noqa: E402
from check_rewards_static import check_file  # noqa: E402

REPORT = "EXECUTOR_CHECK "
MAX_REASONS = 20  # lines of a report: the first ones say enough
CHILD = HERE / "check_rewards_child.py"
HASH_SEEDS = ("0", "1")


class ChildError(Exception):
    """The child died, timed out or broke the protocol: one reason line, the child is gone."""

    def __init__(self, cls: str, message: str) -> None:
        super().__init__(f"{message} [{cls}]")


class Child:
    """One probing process, spoken to over two pipes of its own."""

    def __init__(self, probes_file: Path, weights: tuple[float, float], seed: str, tmp: Path):
        req_r, self.req_w = os.pipe()
        self.rep_r, rep_w = os.pipe()
        self.stderr = (tmp / f"child{seed}.err").open("w+")
        env = {"PYTHONHASHSEED": seed, "PATH": os.environ.get("PATH", os.defpath)}
        env["LC_ALL"] = env["LANG"] = "C.UTF-8"
        cmd = [sys.executable, "-s", "-B", str(CHILD), str(probes_file), str(req_r), str(rep_w)]
        self.proc = subprocess.Popen(
            [*cmd, *map(repr, weights)], env=env, stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=self.stderr, pass_fds=(req_r, rep_w),
            start_new_session=True,
        )  # fmt: skip
        os.close(req_r)
        os.close(rep_w)
        self.buffer = b""
        self.violations: list[str] = []
        self.tick = os.sysconf("SC_CLK_TCK")

    def cpu(self) -> float | None:
        """CPU seconds the child has used, None where /proc cannot tell."""
        try:
            stat = Path(f"/proc/{self.proc.pid}/stat").read_text()
            fields = stat.rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / self.tick
        except (OSError, IndexError, ValueError):
            return None

    def receive(self, limit: float, what: str) -> dict:
        """The child's next reply within `limit` CPU seconds (its refusals noted on the way)."""
        t0, c0 = time.perf_counter(), self.cpu()
        while True:
            while b"\n" in self.buffer:
                line, self.buffer = self.buffer.split(b"\n", 1)
                try:
                    msg = json.loads(line)
                except ValueError:
                    self.kill()
                    raise ChildError("crashed", f"{what}: an unreadable reply") from None
                if "violation" in msg:
                    self.violations.append(f"{what}: does {msg['violation']}")
                    continue
                used = self._used(t0, c0)
                if used > limit:
                    self.kill()
                    raise ChildError("slow", f"{what} took {used:.2f} s (limit {limit} s)")
                return dict(msg)
            ready, _, _ = select.select([self.rep_r], [], [], min(limit, 0.05))
            if ready:
                chunk = os.read(self.rep_r, 1 << 16)
                if not chunk:
                    self.proc.wait()
                    raise ChildError("crashed", f"{what}: the process ended ({self.stderr_tail()})")
                self.buffer += chunk
            elif self._used(t0, c0) > limit or time.perf_counter() - t0 > 20 * limit + 1:
                self.kill()
                raise ChildError("slow", f"{what} took over {limit} s")

    def _used(self, t0: float, c0: float | None) -> float:
        c1 = self.cpu()
        if c0 is None or c1 is None:
            return time.perf_counter() - t0
        return c1 - c0

    def call(self, probe: int, fn: int, limit: float, what: str) -> dict:
        os.write(self.req_w, f"{probe} {fn}\n".encode())
        return self.receive(limit, what)

    def stderr_tail(self) -> str:
        self.stderr.seek(0)
        lines = [ln.strip() for ln in self.stderr.read()[-4000:].splitlines() if ln.strip()]
        return lines[-1][:200] if lines else f"exit status {self.proc.returncode}"

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.write(self.req_w, b"q\n")
        try:
            self.proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            self.kill()
        for fd in (self.req_w, self.rep_r):
            os.close(fd)
        self.stderr.close()


def config_weights(workspace: Path) -> tuple[float, float]:
    """GRPOConfig's format_weight and answer_weight defaults, read from config.py's text."""
    tree = ast.parse((workspace / "config.py").read_text(encoding="utf-8"))
    found: dict[str, float] = {}
    for cls in tree.body:
        if isinstance(cls, ast.ClassDef) and cls.name == "GRPOConfig":
            for node in cls.body:
                if (
                    isinstance(node, ast.AnnAssign)
                    and isinstance(node.target, ast.Name)
                    and node.target.id in ("format_weight", "answer_weight")
                    and node.value
                ):
                    found[node.target.id] = float(ast.literal_eval(node.value))
    return found["format_weight"], found["answer_weight"]


def run_pass(
    child: Child, probes: list[dict], funcs: list[dict], order: list[int], limit: float
) -> tuple[dict[tuple[int, int], Any], list[str]]:
    """Every function on every probe in `order`: {(probe, fn): value or reply}, reasons."""
    values: dict[tuple[int, int], Any] = {}
    reasons: dict[tuple[int, str], str] = {}  # one reason per function and class
    for i in order:
        for j, fn in enumerate(funcs):
            label = f"{fn['label']} on {probes[i]['label']}"
            reply = child.call(i, j, limit, label)
            if "raised" in reply:
                reasons.setdefault((j, "raises"), f"{label}: raised {reply['raised']} [raises]")
            elif "bad" in reply:
                reasons.setdefault((j, "type"), f"{label}: {reply['bad']} [type]")
            else:
                values[i, j] = reply["value"]
            if child.violations:  # refused once is enough
                return values, list(reasons.values())
    return values, list(reasons.values())


def probe(workspace: Path, probes: list[dict], args: argparse.Namespace) -> tuple[list, list]:
    """The dynamic layer: (rejected, flags)."""
    weights = config_weights(workspace)
    with tempfile.TemporaryDirectory(prefix="check_rewards_") as tmp:
        probes_file = Path(tmp) / "probes.json"
        probes_file.write_text(json.dumps(probes))
        runs: list[tuple[str, dict]] = []
        funcs: list[dict] = []
        for n, seed in enumerate(HASH_SEEDS):
            child = Child(probes_file, weights, seed, Path(tmp))
            try:
                reply = child.receive(args.import_s, "importing rewards.py")
                if "error" in reply:
                    error = f"rewards.py: {reply['error']} [{reply['cls']}]"
                    return [error, *_violations(child)], []
                if funcs and reply["ready"] != [_plain(fn) for fn in funcs]:
                    return ["reward_functions returns other functions or weights in another "
                            "process [nondeterministic]"], []  # fmt: skip
                funcs = [_labelled(j, fn) for j, fn in enumerate(reply["ready"])]
                forward = list(range(len(probes)))
                if n == 0:
                    orders = [("a first pass", forward), ("a reversed pass", forward[::-1])]
                else:
                    orders = [(f"another process (PYTHONHASHSEED={seed})", forward)]
                for name, order in orders:
                    values, reasons = run_pass(child, probes, funcs, order, args.max_call_s)
                    if reasons or child.violations:
                        return reasons + _violations(child), []
                    runs.append((name, values))
            except ChildError as e:
                return [str(e), *_violations(child)], []
            finally:
                child.close()
            if child.violations:
                return _violations(child), []
    return judge(probes, funcs, runs, args.max_abs)


def _labelled(j: int, fn: dict) -> dict:
    where = f" ({fn['where']})" if fn["where"] else ""
    return {**fn, "label": f"reward #{j + 1} {fn['name']}{where}"}


def _plain(fn: dict) -> dict:
    return {k: v for k, v in fn.items() if k != "label"}


def _violations(child: Child) -> list[str]:
    return [
        f"{v}; reward code may not touch files, processes, the network or the interpreter [sandbox]"
        for v in dict.fromkeys(child.violations)
    ]


def judge(
    probes: list[dict], funcs: list[dict], runs: list[tuple[str, dict]], max_abs: float
) -> tuple[list, list]:
    rejected: list[str] = []
    first = runs[0][1]
    for j, fn in enumerate(funcs):
        for i, p in enumerate(probes):
            v, label = first[i, j], f"{fn['label']} on {p['label']}"
            if not math.isfinite(v):
                rejected.append(f"{label}: returns {v} [non-finite]")
            elif abs(v) > max_abs:
                rejected.append(f"{label}: returns {v:g}; |value| may be at most {max_abs:g} "
                                "[too-large]")  # fmt: skip
            else:
                for name, other in runs[1:]:
                    if other[i, j] != v:
                        rejected.append(f"{label}: returns {v!r}, then {other[i, j]!r} in "
                                        f"{name} [nondeterministic]")  # fmt: skip
                        break
                else:
                    continue
            break  # one reason per function
    if rejected:
        return rejected, []
    totals = [
        sum(fn["weight"] * first[i, j] for j, fn in enumerate(funcs)) for i in range(len(probes))
    ]
    big = [(t, p["label"]) for t, p in zip(totals, probes, strict=True) if not abs(t) <= max_abs]
    if big:
        return [f"the weighted total is {big[0][0]:g} on {big[0][1]}; |total| may be at most "
                f"{max_abs:g} [too-large]"], []  # fmt: skip
    return [], flags(probes, funcs, first, totals)


def flags(probes: list[dict], funcs: list[dict], first: dict, totals: list[float]) -> list[str]:
    out = []
    if len(set(totals)) == 1:
        return [f"the weighted total is {totals[0]:g} on every probe: it prefers no "
                "completion to another [constant]"]  # fmt: skip
    for j, fn in enumerate(funcs):
        values = {first[i, j] for i in range(len(probes))}
        if fn["weight"] and len(values) == 1:
            out.append(f"{fn['label']} returns {values.pop():g} on every probe [constant-function]")
    by_kind = {(p["problem"], p["kind"]): t for p, t in zip(probes, totals, strict=True)}
    problems = sorted({p["problem"] for p in probes})
    worse = [k for k in problems if by_kind[k, "wrong"] > by_kind[k, "right"]]
    if worse:
        k = worse[0]
        out.append(
            f"the total pays a wrong answer more than the right one on {len(worse)} of "
            f"{len(problems)} problems (p{k}: wrong {by_kind[k, 'wrong']:g} > right "
            f"{by_kind[k, 'right']:g}) [wrong-over-right]"
        )
    if not any(by_kind[k, "right"] > by_kind[k, "wrong"] for k in problems):
        out.append("the total never pays the right answer more than a wrong one: it ignores "
                   "correctness [ignores-correctness]")  # fmt: skip
    return out


def check(workspace: Path, args: argparse.Namespace) -> tuple[list[str], list[str]]:
    """(rejected, flags) of the reward files in `workspace`."""
    files = [workspace / "rewards.py", *sorted(workspace.glob("reward_member_*.py"))]
    if not files[0].is_file():
        return ["rewards.py: missing [import]"], []
    if not args.no_static:
        rejected = [reason for f in files for reason in check_file(f, workspace)]
        if rejected:
            return rejected, []
    probes = make_probes()
    assert {p["kind"] for p in probes} == set(KINDS)
    return probe(workspace, probes, args)


def main() -> int:
    p = argparse.ArgumentParser(description="Check a candidate's reward functions.")
    p.add_argument("--max-call-s", type=float, default=0.2, help="CPU seconds per call")
    p.add_argument("--max-abs", type=float, default=100.0, help="largest |value| allowed")
    p.add_argument("--import-s", type=float, default=5.0, help="seconds to import rewards.py")
    p.add_argument("--no-static", action="store_true", help="probe only (tests the sandbox)")
    args = p.parse_args()
    # Whatever the locale, printing a quoted reason must not fail before the report line.
    if isinstance(sys.stdout, io.TextIOWrapper):
        sys.stdout.reconfigure(errors="backslashreplace")
    t0 = time.perf_counter()
    try:
        rejected, flagged = check(Path.cwd(), args)
    except Exception as e:  # the report line must come whatever happens
        rejected, flagged = [f"the checker failed: {type(e).__name__}: {e} [internal]"], []
    # One line each, whatever a reason quotes (str.split also splits at \x85, \u2028...).
    rejected, flagged = ([" ".join(s.split()) for s in lines] for lines in (rejected, flagged))
    if len(rejected) > MAX_REASONS:
        more = len(rejected) - MAX_REASONS + 1
        rejected = [*rejected[: MAX_REASONS - 1], f"and {more} more reasons [more]"]
    for line in rejected:
        print(f"rejected: {line}")
    for line in flagged:
        print(f"flag: {line}")
    print(f"check_rewards: {time.perf_counter() - t0:.1f} s")
    print(REPORT + json.dumps({"rejected": rejected, "flags": flagged}), flush=True)
    return 1 if rejected else 0


if __name__ == "__main__":
    sys.exit(main())
