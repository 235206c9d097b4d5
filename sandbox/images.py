"""Images for the Docker sandbox: one per environment Dockerfile, cached by content hash.

An environment's Dockerfile installs dependencies only (code and data are mounted at run
time), so it is built with a context holding nothing but itself: builds stay fast, and the
hash of the Dockerfile alone names the image. Editing the evaluator does not rebuild.
"""

from __future__ import annotations

import hashlib
import io
import threading
from pathlib import Path
from typing import Any

from sandbox.base import SandboxUnavailable

BASE_IMAGE = "executor-base:bookworm"  # built by scripts/docker_engine.sh
_locks: dict[str, threading.Lock] = {}
_locks_guard = threading.Lock()


def image_tag(dockerfile: Path) -> str:
    digest = hashlib.sha256(dockerfile.read_bytes()).hexdigest()[:16]
    return f"executor-env:{digest}"


def _has_image(client: Any, tag: str) -> bool:
    import docker.errors

    try:
        client.images.get(tag)
        return True
    except docker.errors.ImageNotFound:
        return False


def ensure_image(client: Any, dockerfile: Path | None, image: str | None = None) -> str:
    """The image a run uses: `image` if given, else the Dockerfile's (built once), else the base.

    Blocking (docker SDK); call it in a thread. Concurrent callers build a tag once.
    """
    import docker.errors

    if image is None and dockerfile is None:
        image = BASE_IMAGE
    if image is not None:
        if not _has_image(client, image):
            hint = "pull or build it"
            if image == BASE_IMAGE:
                hint = "scripts/docker_engine.sh builds it"
            raise SandboxUnavailable(f"Docker image {image!r} not found: {hint}")
        return image
    assert dockerfile is not None
    tag = image_tag(dockerfile)
    with _locks_guard:
        lock = _locks.setdefault(tag, threading.Lock())
    with lock:
        if _has_image(client, tag):
            return tag
        try:
            client.images.build(
                fileobj=io.BytesIO(dockerfile.read_bytes()),
                tag=tag,
                rm=True,
                labels={"executor.dockerfile": str(dockerfile)},
            )
        except (docker.errors.BuildError, docker.errors.APIError) as e:
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise SandboxUnavailable(
                f"building {dockerfile} failed ({first}); fix the Dockerfile or pass an image "
                "with --sandbox docker:image=NAME"
            ) from None
    return tag
