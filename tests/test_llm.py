"""agent.llm against the real openai / anthropic SDKs, talking HTTP to a scripted local server."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from pathlib import Path
from typing import Any

import pytest

from agent.llm import (
    CallRecord,
    LLMClient,
    LLMError,
    Message,
    MissingKeyError,
    make_client,
    parse_spec,
)
from agent.llm.pricing import cost_usd, load_prices, lookup_price
from tests.llm_server import (
    ErrorReply,
    Reply,
    ScriptedLLMServer,
    llm_server_fixture,  # noqa: F401  (provides the `llm_server` fixture)
)

PROVIDERS_UNDER_TEST = ["openai", "anthropic"]
PRICED_MODEL = {"openai": "gpt-4o", "anthropic": "claude-sonnet-4-6"}
KEY_ENV = {"openai": "OPENAI_API_KEY", "anthropic": "ANTHROPIC_API_KEY"}
HELLO = [Message("user", "Say hello")]


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Dummy keys, and none of the developer's own LLM settings leaking into the tests."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-openai")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-test-anthropic")
    for name in ("OPENAI_BASE_URL", "ANTHROPIC_BASE_URL", "EXECUTOR_PRICES"):
        monkeypatch.delenv(name, raising=False)


def base_url_for(srv: ScriptedLLMServer, provider: str) -> str:
    return srv.anthropic_base_url if provider == "anthropic" else srv.openai_base_url


def client_for(
    srv: ScriptedLLMServer, provider: str, model: str | None = None, **options: Any
) -> LLMClient:
    options.setdefault("backoff_base_s", 0.001)
    model = model or PRICED_MODEL.get(provider, "some-model")
    return make_client(f"{provider}:{model}", base_url=base_url_for(srv, provider), **options)


def free_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def assert_one_line(err: BaseException) -> str:
    message = str(err)
    assert message and "\n" not in message and "Traceback" not in message
    return message


# -- plain answers -----------------------------------------------------------------------------


async def test_openai_plain_answer(llm_server: ScriptedLLMServer) -> None:
    llm_server.script(Reply("hello there", input_tokens=1000, output_tokens=500))
    client = client_for(llm_server, "openai")
    answer = await client.complete(HELLO, system="Be brief.", max_tokens=100, temperature=0.2)

    assert answer.text == "hello there"
    assert (answer.provider, answer.model) == ("openai", "gpt-4o")
    assert (answer.input_tokens, answer.output_tokens) == (1000, 500)
    price = lookup_price("gpt-4o")
    assert price is not None
    assert answer.cost_usd == pytest.approx(
        (1000 * price.input_per_mtok + 500 * price.output_per_mtok) / 1e6
    )
    assert answer.cost_usd > 0
    assert not answer.cached
    assert len(answer.request_hash) == 64

    [request] = llm_server.requests
    assert request.path == "/v1/chat/completions"
    assert request.headers["authorization"] == "Bearer sk-test-openai"
    # The system prompt is prepended as a system message.
    assert request.json["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Say hello"},
    ]
    assert request.json["model"] == "gpt-4o"
    assert request.json["max_tokens"] == 100
    assert request.json["temperature"] == 0.2
    # The SDK's own retries are off: ours do it.
    assert request.headers.get("x-stainless-retry-count", "0") == "0"


async def test_anthropic_plain_answer(llm_server: ScriptedLLMServer) -> None:
    llm_server.script(Reply("bonjour", input_tokens=2000, output_tokens=300))
    client = client_for(llm_server, "anthropic")
    answer = await client.complete(
        [Message("user", "Hi"), Message("assistant", "Hello?"), Message("user", "In French")],
        system="You translate.",
        max_tokens=50,
    )

    assert answer.text == "bonjour"
    assert (answer.provider, answer.model) == ("anthropic", "claude-sonnet-4-6")
    assert (answer.input_tokens, answer.output_tokens) == (2000, 300)
    assert answer.cost_usd == pytest.approx((2000 * 3.0 + 300 * 15.0) / 1e6)

    [request] = llm_server.requests
    assert request.path == "/v1/messages"
    assert "sk-test-anthropic" in (
        request.headers.get("x-api-key", "") + request.headers.get("authorization", "")
    )
    # The system prompt goes to the `system` parameter, not into the messages.
    assert request.json["system"] == "You translate."
    assert [m["role"] for m in request.json["messages"]] == ["user", "assistant", "user"]
    assert request.json["max_tokens"] == 50
    # API version 2026-10-21 (anthropic SDK 2.x) rejects sampling parameters.
    assert "temperature" not in request.json


async def test_callable_answers_from_the_prompt(llm_server: ScriptedLLMServer) -> None:
    llm_server.default = lambda req: req["messages"][-1]["content"].upper()
    client = client_for(llm_server, "openai")
    answer = await client.complete([Message("user", "echo me")])
    assert answer.text == "ECHO ME"


@pytest.mark.parametrize("provider", PROVIDERS_UNDER_TEST)
async def test_empty_answer_is_not_an_error(llm_server: ScriptedLLMServer, provider: str) -> None:
    llm_server.script("")
    answer = await client_for(llm_server, provider).complete(HELLO)
    assert answer.text == ""


async def test_local_provider_defaults_and_unknown_price(
    llm_server: ScriptedLLMServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY")  # optional for local servers
    assert make_client("vllm:Qwen/Qwen2.5-7B").endpoint == "http://localhost:8000/v1"
    assert make_client("ollama:qwen2.5:7b").endpoint == "http://localhost:11434/v1"
    assert make_client("sglang:m").endpoint == "http://localhost:30000/v1"

    llm_server.script("local answer")
    client = client_for(llm_server, "ollama", "qwen2.5:7b")
    answer = await client.complete(HELLO)
    assert (answer.text, answer.provider, answer.model) == ("local answer", "ollama", "qwen2.5:7b")
    assert answer.cost_usd is None  # unknown model: unknown cost, not free
    assert llm_server.requests[0].headers["authorization"] == "Bearer EMPTY"
    assert llm_server.requests[0].json["model"] == "qwen2.5:7b"


async def test_openai_reasoning_models_get_their_parameters(llm_server: ScriptedLLMServer) -> None:
    llm_server.script("thought about it")
    await client_for(llm_server, "openai", "o3-mini").complete(HELLO, max_tokens=300)
    body = llm_server.requests[0].json
    assert body["max_completion_tokens"] == 300
    assert "max_tokens" not in body and "temperature" not in body


# -- retries and errors ------------------------------------------------------------------------


@pytest.mark.parametrize("provider", PROVIDERS_UNDER_TEST)
async def test_429_then_success_is_retried(llm_server: ScriptedLLMServer, provider: str) -> None:
    llm_server.script(ErrorReply(429, "slow down", headers={"retry-after": "0"}), "finally")
    records: list[CallRecord] = []
    # A large backoff base proves retry-after (0 s) is what decides the wait.
    client = client_for(llm_server, provider, on_call=records.append, backoff_base_s=30.0)
    started = time.monotonic()
    answer = await client.complete(HELLO)

    assert answer.text == "finally"
    assert time.monotonic() - started < 5
    assert len(llm_server.requests) == 2
    [record] = records
    assert record.retries == 1
    assert record.error is None
    assert record.cost_usd == answer.cost_usd


@pytest.mark.parametrize(
    ("provider", "status"), [("openai", 500), ("anthropic", 500), ("anthropic", 529)]
)
async def test_server_error_then_success_is_retried(
    llm_server: ScriptedLLMServer, provider: str, status: int
) -> None:
    llm_server.script(ErrorReply(status, "internal trouble"), "recovered")
    answer = await client_for(llm_server, provider).complete(HELLO)
    assert answer.text == "recovered"
    assert len(llm_server.requests) == 2


@pytest.mark.parametrize("provider", PROVIDERS_UNDER_TEST)
async def test_401_fails_at_once(llm_server: ScriptedLLMServer, provider: str) -> None:
    llm_server.script(ErrorReply(401, "invalid api key"), "never reached")
    records: list[CallRecord] = []
    client = client_for(llm_server, provider, on_call=records.append)
    with pytest.raises(LLMError) as info:
        await client.complete(HELLO)

    message = assert_one_line(info.value)
    assert "HTTP 401" in message
    assert "invalid api key" in message
    assert KEY_ENV[provider] in message
    assert len(llm_server.requests) == 1
    [record] = records
    assert record.error == message
    assert record.retries == 0


@pytest.mark.parametrize("status", [400, 403, 404])
async def test_other_client_errors_are_not_retried(
    llm_server: ScriptedLLMServer, status: int
) -> None:
    llm_server.default = ErrorReply(status, "nope")
    with pytest.raises(LLMError) as info:
        await client_for(llm_server, "openai").complete(HELLO)
    assert f"HTTP {status}" in assert_one_line(info.value)
    assert len(llm_server.requests) == 1


async def test_gives_up_after_max_retries(llm_server: ScriptedLLMServer) -> None:
    llm_server.default = ErrorReply(503, "overloaded\nreally")
    records: list[CallRecord] = []
    client = client_for(llm_server, "anthropic", max_retries=2, on_call=records.append)
    with pytest.raises(LLMError) as info:
        await client.complete(HELLO)

    message = assert_one_line(info.value)
    assert "HTTP 503 after 3 tries" in message
    assert "overloaded really" in message  # the server's multi-line detail, flattened
    assert len(llm_server.requests) == 3
    assert records[0].retries == 2
    assert records[0].error == message


async def test_unreachable_server_fails_fast_with_the_url() -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"
    records: list[CallRecord] = []
    client = make_client(
        "openai:gpt-4o", base_url=url, max_retries=1, backoff_base_s=0.001, on_call=records.append
    )
    started = time.monotonic()
    with pytest.raises(LLMError) as info:
        await client.complete(HELLO)

    assert time.monotonic() - started < 5
    message = assert_one_line(info.value)
    assert url in message
    assert "after 2 tries" in message
    assert "connection refused" in message
    assert "OPENAI_BASE_URL" in message
    assert records[0].retries == 1


async def test_timeout_is_reported(llm_server: ScriptedLLMServer) -> None:
    llm_server.script(Reply("too late", delay_s=1.5))
    client = client_for(llm_server, "openai", timeout_s=0.2, max_retries=0)
    with pytest.raises(LLMError) as info:
        await client.complete(HELLO)
    message = assert_one_line(info.value)
    assert "did not answer within 0.2s" in message


async def test_scripted_server_with_empty_script_says_so(llm_server: ScriptedLLMServer) -> None:
    with pytest.raises(LLMError) as info:
        await client_for(llm_server, "openai", max_retries=0).complete(HELLO)
    assert "script is empty" in str(info.value)


# -- cache -------------------------------------------------------------------------------------


@pytest.mark.parametrize("provider", PROVIDERS_UNDER_TEST)
async def test_cache_hit_makes_no_request(
    llm_server: ScriptedLLMServer, provider: str, tmp_path: Path
) -> None:
    llm_server.default = lambda req: f"answer #{len(llm_server.requests)}"
    records: list[CallRecord] = []
    client = client_for(llm_server, provider, cache_dir=tmp_path, on_call=records.append)

    first = await client.complete(HELLO, system="sys")
    second = await client.complete(HELLO, system="sys")
    assert len(llm_server.requests) == 1
    assert second.text == first.text == "answer #1"
    assert second.cached and not first.cached
    assert second.cost_usd == 0.0
    assert second.request_hash == first.request_hash
    assert (second.input_tokens, second.output_tokens) == (first.input_tokens, first.output_tokens)
    assert [r.cached for r in records] == [False, True]

    # Stored as cache_dir/ab/abcdef....json, with no temporary files left behind.
    key = first.request_hash
    entry_path = tmp_path / key[:2] / f"{key}.json"
    assert json.loads(entry_path.read_text())["text"] == "answer #1"
    assert [p.name for p in tmp_path.rglob("*") if p.is_file()] == [entry_path.name]

    # Another nonce is another sample: a new request.
    third = await client.complete(HELLO, system="sys", nonce="sample-2")
    assert (third.text, third.cached) == ("answer #2", False)
    assert len(llm_server.requests) == 2

    # Any other change of the request misses too.
    await client.complete(HELLO, system="sys", temperature=0.0)
    assert len(llm_server.requests) == 3


async def test_cache_survives_a_new_client(llm_server: ScriptedLLMServer, tmp_path: Path) -> None:
    llm_server.default = "the answer"
    prompts = [[Message("user", f"question {i}")] for i in range(3)]
    first_run = client_for(llm_server, "anthropic", cache_dir=tmp_path)
    for prompt in prompts:
        await first_run.complete(prompt)
    assert len(llm_server.requests) == 3

    records: list[CallRecord] = []
    rerun = client_for(llm_server, "anthropic", cache_dir=tmp_path, on_call=records.append)
    answers = [await rerun.complete(prompt) for prompt in prompts]
    assert len(llm_server.requests) == 3  # the re-run reached no server
    assert all(a.cached and a.text == "the answer" for a in answers)
    assert sum(r.cost_usd or 0.0 for r in records) == 0.0


async def test_errors_are_not_cached(llm_server: ScriptedLLMServer, tmp_path: Path) -> None:
    llm_server.script(ErrorReply(401, "bad key"), "good")
    client = client_for(llm_server, "openai", cache_dir=tmp_path)
    with pytest.raises(LLMError):
        await client.complete(HELLO)
    answer = await client.complete(HELLO)
    assert (answer.text, answer.cached) == ("good", False)
    assert len(llm_server.requests) == 2


async def test_corrupt_cache_entry_is_a_miss(llm_server: ScriptedLLMServer, tmp_path: Path) -> None:
    llm_server.default = "fresh"
    client = client_for(llm_server, "openai", cache_dir=tmp_path)
    first = await client.complete(HELLO)
    key = first.request_hash
    (tmp_path / key[:2] / f"{key}.json").write_text("{not json")
    again = await client.complete(HELLO)
    assert (again.text, again.cached) == ("fresh", False)
    assert len(llm_server.requests) == 2


def test_cache_key_depends_on_base_url(tmp_path: Path) -> None:
    """Two servers behind the same model name must not share answers."""

    async def ask(url: str) -> str:
        client = make_client("vllm:m", base_url=url, cache_dir=tmp_path)
        return (await client.complete(HELLO)).text

    with ScriptedLLMServer(default="from A") as a, ScriptedLLMServer(default="from B") as b:
        assert asyncio.run(ask(a.openai_base_url)) == "from A"
        assert asyncio.run(ask(b.openai_base_url)) == "from B"


# -- concurrency and event loops ---------------------------------------------------------------


async def test_concurrency_is_bounded(llm_server: ScriptedLLMServer) -> None:
    def slow(req: dict[str, Any]) -> str:
        time.sleep(0.2)
        return req["messages"][-1]["content"]

    llm_server.default = slow
    client = client_for(llm_server, "openai", max_concurrency=2)
    answers = await asyncio.gather(*(client.complete([Message("user", f"q{i}")]) for i in range(6)))
    assert [a.text for a in answers] == [f"q{i}" for i in range(6)]
    assert len(llm_server.requests) == 6
    assert llm_server.max_in_flight == 2


def test_client_survives_a_new_event_loop(llm_server: ScriptedLLMServer) -> None:
    """The CLI may call asyncio.run more than once with the same client."""
    llm_server.default = "ok"
    client = client_for(llm_server, "anthropic", max_concurrency=1)
    for i in range(2):
        answer = asyncio.run(client.complete([Message("user", f"run {i}")]))
        assert answer.text == "ok"
    assert len(llm_server.requests) == 2


# -- keys and specs ----------------------------------------------------------------------------


@pytest.mark.parametrize("provider", PROVIDERS_UNDER_TEST)
def test_missing_key(monkeypatch: pytest.MonkeyPatch, provider: str) -> None:
    monkeypatch.delenv(KEY_ENV[provider])
    with pytest.raises(MissingKeyError) as info:
        make_client(f"{provider}:x")
    assert KEY_ENV[provider] in assert_one_line(info.value)
    # Also with a base URL: the SDK sends a key anyway.
    with pytest.raises(MissingKeyError):
        make_client(f"{provider}:x", base_url="http://127.0.0.1:1")


def test_empty_key_counts_as_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "")
    with pytest.raises(MissingKeyError):
        make_client("openai:gpt-4o")


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("anthropic:claude-sonnet-4-5", ("anthropic", "claude-sonnet-4-5")),
        ("openai:gpt-4o-mini", ("openai", "gpt-4o-mini")),
        ("ollama:qwen2.5:7b", ("ollama", "qwen2.5:7b")),
        ("ollama:hf.co/org/model:Q4_K_M", ("ollama", "hf.co/org/model:Q4_K_M")),
        ("vllm:Qwen/Qwen2.5-Coder-7B-Instruct", ("vllm", "Qwen/Qwen2.5-Coder-7B-Instruct")),
        ("sglang:meta-llama/Llama-3.1-8B", ("sglang", "meta-llama/Llama-3.1-8B")),
        (" OpenAI:gpt-4o ", ("openai", "gpt-4o")),
    ],
)
def test_parse_spec(spec: str, expected: tuple[str, str]) -> None:
    assert parse_spec(spec) == expected


@pytest.mark.parametrize("spec", ["claude-sonnet-4-5", "anthropic:", ":gpt-4o", "gemini:pro", ""])
def test_parse_spec_rejects(spec: str) -> None:
    with pytest.raises(LLMError) as info:
        parse_spec(spec)
    message = assert_one_line(info.value)
    for provider in ("anthropic", "openai", "vllm", "ollama", "sglang"):
        assert provider in message


def test_make_client_rejects_bad_spec() -> None:
    with pytest.raises(LLMError):
        make_client("nope:model")


# -- price table -------------------------------------------------------------------------------


def test_price_glob_matching() -> None:
    dated = lookup_price("claude-sonnet-4-5-20250929")
    assert dated is not None and dated == lookup_price("claude-sonnet-4-5")
    # The longest matching pattern wins: gpt-4o-mini is not priced as gpt-4o.
    mini, full = lookup_price("gpt-4o-mini-2024-07-18"), lookup_price("gpt-4o-2024-08-06")
    assert mini is not None and full is not None
    assert mini.input_per_mtok < full.input_per_mtok
    # Old Opus 4 / 4.1 and new Opus 4.5+ are priced apart.
    old, new = lookup_price("claude-opus-4-20250514"), lookup_price("claude-opus-4-7")
    assert old is not None and new is not None and old.input_per_mtok > new.input_per_mtok
    models = (
        "claude-opus-4-1-20250805",
        "claude-sonnet-4-6",
        "claude-sonnet-5",
        "claude-haiku-4-5",
        "gpt-5.5",
        "gpt-5.4-mini",
        "gpt-4.1",
        "gpt-4.1-mini",
        "o3",
        "o4-mini-2025-04-16",
    )
    for model in models:
        assert lookup_price(model) is not None, model


def test_unknown_model_costs_none() -> None:
    assert lookup_price("my-finetune") is None
    assert cost_usd("my-finetune", 1000, 1000) is None
    assert cost_usd("gpt-4o", 0, 0) == 0.0


def test_price_override_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    prices = tmp_path / "prices.toml"
    prices.write_text(
        '[models]\n"gpt-4o*" = { input = 1.0, output = 2.0 }\n'
        '"my-finetune" = { input = 0.5, output = 0.5 }\n'
    )
    monkeypatch.setenv("EXECUTOR_PRICES", str(prices))
    assert cost_usd("gpt-4o", 1_000_000, 1_000_000) == pytest.approx(3.0)
    assert cost_usd("my-finetune", 2_000_000, 0) == pytest.approx(1.0)
    # Entries it does not mention keep their bundled price.
    assert lookup_price("claude-sonnet-4-5") is not None
    assert "my-finetune" in load_prices()


async def test_price_override_applies_to_completions(
    llm_server: ScriptedLLMServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    prices = tmp_path / "prices.toml"
    prices.write_text('[models]\n"local-*" = { input = 10.0, output = 20.0 }\n')
    monkeypatch.setenv("EXECUTOR_PRICES", str(prices))
    llm_server.script(Reply("x", input_tokens=100_000, output_tokens=50_000))
    answer = await client_for(llm_server, "vllm", "local-model").complete(HELLO)
    assert answer.cost_usd == pytest.approx(2.0)


def test_bad_price_override_fails_at_make_client(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    prices = tmp_path / "prices.toml"
    prices.write_text('[models]\n"gpt-4o" = { input = 1.0 }\n')
    monkeypatch.setenv("EXECUTOR_PRICES", str(prices))
    with pytest.raises(LLMError) as info:
        make_client("openai:gpt-4o")
    assert "EXECUTOR_PRICES" in assert_one_line(info.value)

    monkeypatch.setenv("EXECUTOR_PRICES", str(tmp_path / "missing.toml"))
    with pytest.raises(LLMError) as info:
        make_client("openai:gpt-4o")
    assert "missing.toml" in assert_one_line(info.value)


@pytest.mark.parametrize("provider", PROVIDERS_UNDER_TEST)
async def test_base_url_from_environment(
    llm_server: ScriptedLLMServer, monkeypatch: pytest.MonkeyPatch, provider: str
) -> None:
    monkeypatch.setenv(f"{provider.upper()}_BASE_URL", base_url_for(llm_server, provider))
    llm_server.script("via env")
    client = make_client(f"{provider}:{PRICED_MODEL[provider]}")
    assert client.base_url == base_url_for(llm_server, provider)
    assert (await client.complete(HELLO)).text == "via env"
