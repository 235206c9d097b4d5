"""LLM clients: one `complete()` for Anthropic, OpenAI and OpenAI-compatible local servers,
with an on-disk cache, bounded concurrency, retries and cost accounting.

    client = make_client("anthropic:claude-sonnet-4-6", cache_dir=Path("runs/cache"))
    answer = await client.complete([Message("user", "Hello")], system="Be brief.")
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from agent.llm.base import LLMClient
from agent.llm.providers import PROVIDERS, parse_spec
from agent.llm.types import CallRecord, Completion, LLMError, Message, MissingKeyError

__all__ = [
    "PROVIDERS",
    "CallRecord",
    "Completion",
    "LLMClient",
    "LLMError",
    "Message",
    "MissingKeyError",
    "make_client",
    "parse_spec",
]


def make_client(
    spec: str,
    *,
    base_url: str | None = None,
    cache_dir: Path | None = None,
    max_concurrency: int = 8,
    max_retries: int = 5,
    backoff_base_s: float = 1.0,
    timeout_s: float = 600.0,
    on_call: Callable[[CallRecord], None] | None = None,
) -> LLMClient:
    """A client for "PROVIDER:MODEL" (PROVIDER one of `PROVIDERS`, or "package.module:Client").
    Raises LLMError / MissingKeyError before any network.

    max_retries counts retries after the first try, so a call makes at most max_retries + 1
    requests.
    """
    from agent.llm.pricing import load_prices

    provider, model = parse_spec(spec)
    load_prices()  # a broken EXECUTOR_PRICES file should fail now, not after a paid call
    return PROVIDERS.get(provider)(
        provider,
        model,
        base_url=base_url,
        cache_dir=cache_dir,
        max_concurrency=max_concurrency,
        max_retries=max_retries,
        backoff_base_s=backoff_base_s,
        timeout_s=timeout_s,
        on_call=on_call,
    )
