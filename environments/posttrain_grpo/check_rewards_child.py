"""The child process of check_rewards.py: it imports the workspace's rewards.py under an audit
hook and answers the parent's probe calls over a private pipe.

    python -s -B check_rewards_child.py PROBES_JSON REQUEST_FD REPLY_FD FORMAT_W ANSWER_W

cwd is the workspace. The parent alone reads the replies, on REPLY_FD: what the reward code
prints goes to /dev/null, and it cannot reach the descriptor (check_rewards_static.py leaves
it no os, no open, no frames; the hook refuses any open). Each request is a line "PROBE FN";
each reply one JSON line: {"value": v}, {"raised": text} or {"bad": text}. A line
{"violation": text} goes out the moment the hook refuses an event, before anything else.
"""

from __future__ import annotations

import json
import math
import os
import resource
import sys
import types
from typing import Any

MEMORY_BYTES = 2 << 30  # address space: a reward that allocates without bound fails fast
CPU_SECONDS = 60  # a backstop if the parent could not kill this process
MAX_FUNCTIONS = 64
# Events the interpreter raises for the reward code's legitimate work: loading and running
# modules, building classes (dataclasses reads signatures, so code objects; typing and
# namedtuple read their caller's frame). The reward code cannot raise them itself (no eval,
# exec, compile, sys, id or dunders: check_rewards_static.py). Once the functions are built,
# nothing may read a frame or a function's internals.
QUIET = frozenset(
    {"import", "marshal.loads", "exec", "compile", "object.__setattr__", "builtins.id"}
)
QUIET_WHILE_IMPORTING = QUIET | {
    "sys._getframe",
    "sys._getframemodulename",
    "object.__getattr__",
}
CODE_SUFFIXES = (".py", ".pyc", ".so", ".pth")

_write, _read, _dumps = os.write, os.read, json.dumps
_state: dict[str, Any] = {"fd": -1, "trusted": False, "roots": (), "quiet": QUIET_WHILE_IMPORTING}


def send(msg: dict) -> None:
    data = (_dumps(msg) + "\n").encode()
    while data:
        data = data[_write(_state["fd"], data) :]


def _inside_roots(path: object) -> bool:
    if isinstance(path, bytes):
        path = path.decode("utf-8", "replace")
    if not isinstance(path, str):
        return False
    full = os.path.realpath(path)
    return any(full == r or full.startswith(r + os.sep) for r in _state["roots"])


def _read_only(mode: object, flags: object) -> bool:
    if isinstance(mode, str):
        return mode in ("r", "rb")
    writes = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
    return isinstance(flags, int) and not flags & writes


def _allowed(event: str, args: tuple) -> bool:
    if event in _state["quiet"]:
        return True
    if event == "open":  # the import system reading code
        path, mode, flags = (*args, None, None, None)[:3]
        return (
            isinstance(path, str)
            and path.endswith(CODE_SUFFIXES)
            and _read_only(mode, flags)
            and _inside_roots(path)
        )
    if event in ("os.listdir", "os.scandir"):  # the import system's directory caches
        return bool(args) and _inside_roots(args[0])
    return False


def _hook(event: str, args: tuple) -> None:
    if _state["trusted"] or _allowed(event, args):
        return
    shown = ", ".join(
        str(a)[:80] if isinstance(a, str | bytes | int | float) else type(a).__name__
        for a in args[:3]
    )
    send({"violation": f"{event}({shown})"})
    raise PermissionError(f"{event} is not allowed in a reward function")


def _describe_exception(e: BaseException) -> str:
    try:
        text = str(e)
    except BaseException:  # its own __str__ may fail
        text = "?"
    text = " ".join(text.split())[:160]
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


def _describe(fn: object) -> dict:
    """Name and place of a reward function, read from slots (no reward code runs)."""
    if isinstance(fn, types.FunctionType):
        code = fn.__code__
        name = fn.__qualname__
        where = f"{os.path.basename(code.co_filename)}:{code.co_firstlineno}"
    else:
        name, where = type(fn).__qualname__, ""
    return {"name": "".join(c for c in str(name) if c.isprintable())[:60], "where": where}


def _pairs(funcs: object) -> list[tuple[Any, float]] | str:
    """reward_functions' result as (function, weight) pairs, or why it is not a valid one."""
    if type(funcs) not in (list, tuple):
        return f"returns a {type(funcs).__name__}, not a list of (function, weight) pairs"
    assert isinstance(funcs, list | tuple)
    if not 0 < len(funcs) <= MAX_FUNCTIONS:
        return f"returns {len(funcs)} pairs: 1 to {MAX_FUNCTIONS} are allowed"
    out = []
    for i, pair in enumerate(funcs):
        if type(pair) not in (tuple, list) or len(pair) != 2:
            return f"item {i} is not a (function, weight) pair"
        fn, weight = pair
        if not callable(fn):
            return f"item {i}'s function is a {type(fn).__name__}, not callable"
        if type(weight) not in (int, float) or not math.isfinite(weight):
            return f"item {i}'s weight is a {type(weight).__name__}: use a finite number"
        out.append((fn, float(weight)))
    return out


def _call(fn: Any, probe: dict) -> dict:
    try:
        value = fn(probe["completion"], probe["reference"])
    except BaseException as e:  # SystemExit too: a reward may not end training
        return {"raised": _describe_exception(e)}
    kind = type(value)
    if kind is int:
        try:
            return {"value": float(value)}
        except OverflowError:
            return {"bad": "returns an int too large for a float"}
    if kind in (float, bool):
        return {"value": float(value)}
    return {"bad": f"returns a {kind.__name__}, not a float, int or bool"}


def main() -> None:
    probes_path, request_fd, reply_fd = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    format_weight, answer_weight = float(sys.argv[4]), float(sys.argv[5])
    _state["fd"] = reply_fd
    with open(probes_path, encoding="utf-8") as f:
        probes = json.load(f)
    for limit, value in ((resource.RLIMIT_AS, MEMORY_BYTES), (resource.RLIMIT_CPU, CPU_SECONDS)):
        hard = resource.getrlimit(limit)[1]
        if hard == resource.RLIM_INFINITY or hard > value:
            resource.setrlimit(limit, (value, hard))
    import check_rewards_static  # from this script's folder, before the path changes

    for name in sorted(check_rewards_static.ALLOWED_MODULES):  # imported before the hook
        __import__(name)
    # The workspace, not this script's folder, is where `import rewards` looks first.
    sys.path[0] = os.getcwd()
    roots = {os.path.realpath(p or ".") for p in sys.path}
    roots |= {os.path.realpath(p) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix)}
    _state["roots"] = tuple(sorted(roots))
    sys.addaudithook(_hook)
    try:
        import rewards

        funcs = rewards.reward_functions(format_weight, answer_weight)
    except BaseException as e:
        send({"error": _describe_exception(e), "cls": "import"})
        return
    _state["quiet"] = QUIET
    pairs = _pairs(funcs)
    if isinstance(pairs, str):
        send({"error": f"reward_functions(...) {pairs}", "cls": "interface"})
        return
    _state["trusted"] = True
    described = [{**_describe(fn), "weight": w} for fn, w in pairs]
    _state["trusted"] = False
    send({"ready": described})
    buffer = b""
    while True:
        while b"\n" not in buffer:
            chunk = _read(request_fd, 4096)
            if not chunk:
                return
            buffer += chunk
        line, buffer = buffer.split(b"\n", 1)
        if line == b"q":
            return
        i, j = map(int, line.split())
        send(_call(pairs[j][0], probes[i]))


if __name__ == "__main__":
    main()
