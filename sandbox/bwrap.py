"""Bubblewrap (`bwrap`): the local sandbox's filesystem, process and network isolation.

A step sees a new mount namespace built from an allow-list, never the host's tree:
- the system (/usr, /etc, the /bin and /lib links), the Python that runs the harness and
  its environment, read-only;
- the run's folders as RunLayout's table says: workspace and output writable while
  training, the export folder while exporting, the result folder for the evaluator alone;
- the environment folder read-only, with its eval-only paths replaced by empty ones for
  every step but the evaluator;
- the workspace's `.git` pointer read-only (the harness runs git there afterwards);
- a private /tmp and /dev/shm of bounded size, a fresh /proc of a new PID namespace (no other
  process of the machine is visible), and no network unless asked for.
The step dies with the harness (`--die-with-parent`), and everything in its PID namespace
dies with the step.

Debian's package is `bubblewrap`. It runs as root, and unprivileged where the kernel allows
user namespaces; `usable()` probes once which applies.
"""

from __future__ import annotations

import functools
import glob
import os
import shutil
import subprocess
import sys
from pathlib import Path

from sandbox.base import RunLayout, Step

# Top-level system paths bound read-only where they exist (symlinks are recreated as links).
SYSTEM = ("/usr", "/etc", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/opt")
INSTALL_HINT = "install bubblewrap (Debian/Ubuntu: apt-get install bubblewrap)"


@functools.cache
def problem() -> str | None:
    """Why bwrap cannot isolate steps here, or None when it can (probed once per process)."""
    exe = shutil.which("bwrap")
    if exe is None:
        return f"bwrap not found: {INSTALL_HINT}"
    probe = [
        exe,
        "--die-with-parent",
        "--unshare-pid",
        "--unshare-net",
        "--ro-bind",
        "/",
        "/",
        "--proc",
        "/proc",
        "--dev",
        "/dev",
        "--tmpfs",
        "/tmp",
        "--",
        "/bin/true",
    ]
    try:
        proc = subprocess.run(probe, capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError) as e:
        return f"bwrap could not start ({e})"
    if proc.returncode != 0:
        first = (proc.stderr.strip().splitlines() or ["no message"])[0]
        return (
            f"bwrap cannot create namespaces here ({first}): run as root, or allow "
            "unprivileged user namespaces (sysctl kernel.unprivileged_userns_clone=1)"
        )
    return None


def usable() -> bool:
    return problem() is None


def python_roots() -> list[Path]:
    """Folders the harness's Python needs: its environment, the base install, and the real
    interpreter's folder when the venv links elsewhere."""
    roots = {Path(sys.prefix), Path(sys.base_prefix), Path(os.path.realpath(sys.executable)).parent}
    return sorted(r for r in roots if r.exists())


def argv(
    layout: RunLayout,
    step: Step,
    *,
    network: bool,
    tmp_bytes: int,
    read_only: tuple[str, ...] = (),
) -> list[str]:
    """The bwrap command line that runs `step.command` with the access of RunLayout's table."""
    exe = shutil.which("bwrap") or "bwrap"
    args = [
        exe,
        "--die-with-parent",
        "--unshare-pid",
        "--unshare-ipc",
        "--unshare-uts",
        "--unshare-cgroup-try",
    ]
    if not network:
        args.append("--unshare-net")
    # Scratch first: every bind below lands on top of these (a project or venv kept under
    # /tmp stays visible).
    args += ["--proc", "/proc", "--dev", "/dev"]
    args += ["--size", str(tmp_bytes), "--tmpfs", "/tmp"]
    args += ["--size", str(tmp_bytes), "--tmpfs", "/dev/shm"]
    for top in SYSTEM:
        p = Path(top)
        if p.is_symlink():
            args += ["--symlink", os.readlink(p), top]
        elif p.is_dir():
            args += ["--ro-bind", top, top]
    for root in python_roots():
        args += ["--ro-bind", str(root), str(root)]
    for extra in read_only:  # e.g. a model cache; never writable (a cache is shared by runs)
        if Path(extra).exists():
            args += ["--ro-bind", extra, extra]
    if Path("/sys").is_dir():
        args += ["--ro-bind", "/sys", "/sys"]
    if step.gpus:
        for dev in sorted(glob.glob("/dev/nvidia*")) + sorted(glob.glob("/dev/dri/*")):
            args += ["--dev-bind", dev, dev]
    # The environment, then its eval-only paths masked for every step but the evaluator.
    env_dir = str(layout.env_dir)
    if layout.env_dir.is_dir():
        args += ["--ro-bind", env_dir, env_dir]
    if not step.evaluating:
        for hidden in layout.eval_only:
            if hidden.is_dir():
                args += ["--tmpfs", str(hidden), "--remount-ro", str(hidden)]
            elif hidden.exists():
                args += ["--ro-bind", "/dev/null", str(hidden)]
    writes = step.writes_workspace
    ws = str(layout.workspace)
    args += ["--bind" if writes else "--ro-bind", ws, ws]
    git_pointer = layout.workspace / ".git"
    if git_pointer.exists():
        args += ["--ro-bind", str(git_pointer), str(git_pointer)]
    out = str(layout.output_dir)
    args += ["--bind" if writes else "--ro-bind", out, out]
    if layout.export_dir is not None and (step.writes_export_dir or step.evaluating):
        exp = str(layout.export_dir)
        args += ["--bind" if step.writes_export_dir else "--ro-bind", exp, exp]
    if step.evaluating:
        res = str(layout.result_dir)
        args += ["--bind", res, res]
    # The root is bwrap's own tmpfs holding the mount points: read-only too, so a write
    # outside the allowed folders fails instead of landing in a private scratch copy.
    args += ["--remount-ro", "/", "--chdir", ws, "--", "/bin/sh", "-c", step.command]
    return args
