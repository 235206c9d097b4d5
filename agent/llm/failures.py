"""Turning SDK exceptions into retry decisions and one-line messages (shared by providers)."""

from __future__ import annotations

import email.utils
import socket
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, NamedTuple

# Backoff limits: exponential growth stops here, and a server's retry-after is trusted up to this.
MAX_BACKOFF_S = 60.0
MAX_RETRY_AFTER_S = 120.0
# Statuses worth another try: timeouts, conflicts/locks, rate limits, server errors (529 included).
RETRYABLE_STATUSES = frozenset({408, 409, 429})


@dataclass(frozen=True)
class CallFailure:
    """One failed attempt, reduced to what the retry loop and the final message need."""

    kind: Literal["status", "connection", "timeout", "other"]
    detail: str
    status: int | None = None
    retry_after_s: float | None = None

    @property
    def retryable(self) -> bool:
        if self.kind in ("connection", "timeout"):
            return True
        if self.kind == "status" and self.status is not None:
            return self.status in RETRYABLE_STATUSES or self.status >= 500
        return False


class SdkErrors(NamedTuple):
    """An SDK's exception classes, by what sdk_failure makes of them."""

    timeout: type[Exception]
    connection: type[Exception]
    status: type[Exception]
    base: type[Exception]


def sdk_failure(exc: BaseException, errors: SdkErrors) -> CallFailure | None:
    """Describe an exception from the openai / anthropic SDK (both share one exception layout).

    Returns None for anything that is not an SDK error, so bugs propagate unchanged.
    """
    if isinstance(exc, errors.timeout):
        return CallFailure("timeout", "timed out")
    if isinstance(exc, errors.connection):
        return CallFailure("connection", _connection_detail(exc))
    if isinstance(exc, errors.status):
        response = getattr(exc, "response", None)
        headers = getattr(response, "headers", None) or {}
        detail = _body_message(getattr(exc, "body", None)) or getattr(response, "reason_phrase", "")
        return CallFailure(
            "status",
            _clip(detail or "no details"),
            status=int(getattr(exc, "status_code", 0)),
            retry_after_s=parse_retry_after(headers),
        )
    if isinstance(exc, errors.base):
        return CallFailure("other", _clip(str(exc) or type(exc).__name__))
    return None


def parse_retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds to wait from `retry-after-ms` or `retry-after` (seconds or an HTTP date)."""
    millis = headers.get("retry-after-ms")
    if millis is not None:
        try:
            return max(float(millis) / 1000.0, 0.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max((when - datetime.now(UTC)).total_seconds(), 0.0)


def _body_message(body: Any) -> str:
    """The human part of an error body: {"error": {"message": ...}}, {"message": ...}, text."""
    for _ in range(3):
        if isinstance(body, dict) and "error" in body:
            body = body["error"]
        else:
            break
    if isinstance(body, dict):
        for key in ("message", "detail", "msg"):
            if isinstance(body.get(key), str):
                return body[key]
        return ""
    return body if isinstance(body, str) else ""


def _connection_detail(exc: BaseException) -> str:
    """A short cause for a connection failure, found along the exception chain."""
    seen: set[int] = set()
    deepest = ""
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if isinstance(cur, ConnectionRefusedError):
            return "connection refused"
        if isinstance(cur, socket.gaierror):
            return "unknown host"
        if isinstance(cur, ssl.SSLError):
            return f"TLS error: {_clip(str(cur), 80)}"
        if str(cur):
            deepest = str(cur)
        cur = cur.__cause__ or cur.__context__
    return _clip(deepest or "connection error", 120)


def _clip(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
