"""A real local HTTP server that speaks the OpenAI and Anthropic wire protocols, with scripted
answers, so the LLM clients can be tested through the real SDKs without any network.

    with ScriptedLLMServer() as srv:
        srv.script("first answer", ErrorReply(429, headers={"retry-after": "0"}), "second")
        client = make_client("openai:gpt-4o", base_url=srv.openai_base_url)
        ...
        assert len(srv.requests) == 3

Each request takes the next item of the script, whichever protocol it came in on:
  - a str: a plain text answer;
  - Reply(text, input_tokens=..., output_tokens=..., delay_s=...): an answer with exact usage;
  - ErrorReply(status, message, headers=..., body=...): an HTTP error in the provider's JSON shape;
  - a callable (request_json) -> str | Reply | ErrorReply, to answer based on the prompt.
When the script is empty the server answers `srv.default` (same kinds of item), or, when that is
None, HTTP 500 saying the script ran out.

In a test module: `from tests.llm_server import llm_server_fixture  # noqa: F401`, then take a
`llm_server` argument.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest


@dataclass(frozen=True)
class Reply:
    """A successful answer. Token counts default to word counts of the prompt / answer."""

    text: str
    input_tokens: int | None = None
    output_tokens: int | None = None
    delay_s: float = 0.0


@dataclass(frozen=True)
class ErrorReply:
    """An HTTP error. `body` replaces the provider-shaped JSON error body when given."""

    status: int
    message: str = "scripted error"
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None


ScriptItem = str | Reply | ErrorReply | Callable[[dict[str, Any]], "str | Reply | ErrorReply"]


@dataclass(frozen=True)
class RecordedRequest:
    path: str
    headers: dict[str, str]  # lower-cased names
    json: Any


# Anthropic's `error.type` for common statuses, so the SDK sees realistic bodies.
_ANTHROPIC_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    529: "overloaded_error",
}


class ScriptedLLMServer:
    def __init__(self, default: ScriptItem | None = None) -> None:
        self.default: ScriptItem | None = default
        self.requests: list[RecordedRequest] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._script: deque[ScriptItem] = deque()
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> ScriptedLLMServer:
        handler = type("Handler", (_Handler,), {"server_state": self})
        self._httpd = _QuietServer(("127.0.0.1", 0), handler)
        # A short poll interval keeps stop() (and so every test using the fixture) fast.
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> ScriptedLLMServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- test API ----------------------------------------------------------------------------

    @property
    def port(self) -> int:
        assert self._httpd is not None, "server not started"
        return self._httpd.server_address[1]

    @property
    def openai_base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def anthropic_base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def script(self, *items: ScriptItem) -> None:
        """Queue answers for the next requests, in order."""
        with self._lock:
            self._script.extend(items)

    @property
    def pending(self) -> int:
        """How many scripted items no request has taken yet."""
        with self._lock:
            return len(self._script)

    # -- used by the handler -----------------------------------------------------------------

    def _begin(self, request: RecordedRequest) -> ScriptItem | None:
        with self._lock:
            self.requests.append(request)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            return self._script.popleft() if self._script else self.default

    def _end(self) -> None:
        with self._lock:
            self.in_flight -= 1


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that gave up (timeout tests) leaves a broken pipe behind: not worth a traceback.
        pass


class _Handler(BaseHTTPRequestHandler):
    server_state: ScriptedLLMServer

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep pytest output clean

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else {}
        except json.JSONDecodeError:
            body = raw.decode("utf-8", "replace")
        headers = {k.lower(): v for k, v in self.headers.items()}
        state = self.server_state
        item = state._begin(RecordedRequest(self.path, headers, body))
        try:
            self._answer(item, body)
        finally:
            state._end()

    def _answer(self, item: ScriptItem | None, body: Any) -> None:
        path = self.path.split("?", 1)[0]
        if path.endswith("/chat/completions"):
            protocol = "openai"
        elif path.endswith("/messages"):
            protocol = "anthropic"
        else:
            self._send_error(ErrorReply(404, f"no such endpoint: {self.path}"), "openai")
            return
        if callable(item):
            item = item(body if isinstance(body, dict) else {})
        if item is None:
            item = ErrorReply(500, "ScriptedLLMServer: the script is empty and no default is set")
        if isinstance(item, str):
            item = Reply(item)
        if isinstance(item, ErrorReply):
            self._send_error(item, protocol)
            return
        if item.delay_s:
            time.sleep(item.delay_s)
        request = body if isinstance(body, dict) else {}
        input_tokens = item.input_tokens
        if input_tokens is None:
            input_tokens = _word_count(request.get("system")) + _word_count(request.get("messages"))
        output_tokens = item.output_tokens
        if output_tokens is None:
            output_tokens = _word_count(item.text)
        model = str(request.get("model", "unknown"))
        if protocol == "openai":
            payload = _openai_completion(model, item.text, input_tokens, output_tokens)
        else:
            payload = _anthropic_message(model, item.text, input_tokens, output_tokens)
        self._send_json(200, payload)

    def _send_error(self, err: ErrorReply, protocol: str) -> None:
        body = err.body
        if body is None and protocol == "openai":
            body = {
                "error": {
                    "message": err.message,
                    "type": "scripted_error",
                    "param": None,
                    "code": None,
                }
            }
        elif body is None:
            kind = _ANTHROPIC_ERROR_TYPES.get(err.status, "api_error")
            body = {"type": "error", "error": {"type": kind, "message": err.message}}
        self._send_json(err.status, body, err.headers)

    def _send_json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.send_header("request-id", f"req_{time.monotonic_ns()}")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)


def _word_count(value: Any) -> int:
    """A stand-in for a tokenizer: words in every string inside `value`."""
    if isinstance(value, str):
        return len(value.split())
    if isinstance(value, list):
        return sum(_word_count(v) for v in value)
    if isinstance(value, dict):
        return sum(_word_count(v) for v in value.values())
    return 0


def _openai_completion(model: str, text: str, input_tokens: int, output_tokens: int) -> dict:
    return {
        "id": f"chatcmpl-{time.monotonic_ns()}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text, "refusal": None},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": input_tokens,
            "completion_tokens": output_tokens,
            "total_tokens": input_tokens + output_tokens,
        },
    }


def _anthropic_message(model: str, text: str, input_tokens: int, output_tokens: int) -> dict:
    return {
        "id": f"msg_{time.monotonic_ns()}",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [{"type": "text", "text": text}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": input_tokens, "output_tokens": output_tokens},
    }


@pytest.fixture(name="llm_server")
def llm_server_fixture() -> Iterator[ScriptedLLMServer]:
    """A started ScriptedLLMServer, stopped after the test."""
    with ScriptedLLMServer() as srv:
        yield srv
