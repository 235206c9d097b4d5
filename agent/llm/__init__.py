"""LLM clients: one `complete()` for Anthropic, OpenAI and OpenAI-compatible local servers,
with an on-disk cache, bounded concurrency, retries and cost accounting.

    client = make_client("anthropic:claude-sonnet-4-6", cache_dir=Path("runs/cache"))
    answer = await client.complete([Message("user", "Hello")], system="Be brief.")
"""

from __future__ import annotations

from typing import Unpack

from agent.llm.base import DEFAULT_OPTIONS, ClientOptions, LLMClient
from agent.llm.providers import PROVIDERS, parse_spec
from agent.llm.types import CallRecord, Completion, LLMError, Message, MissingKeyError

__all__ = [
    "PROVIDERS",
    "CallRecord",
    "ClientOptions",
    "Completion",
    "LLMClient",
    "LLMError",
    "Message",
    "MissingKeyError",
    "make_client",
    "parse_spec",
]


def make_client(spec: str, **options: Unpack[ClientOptions]) -> LLMClient:
    """A client for "PROVIDER:MODEL" (PROVIDER one of `PROVIDERS`, or "package.module:Client").
    Raises LLMError / MissingKeyError before any network. The provider's factory is given every
    option: those left out take their DEFAULT_OPTIONS value.

    max_retries counts retries after the first try, so a call makes at most max_retries + 1
    requests.
    """
    from agent.llm.pricing import load_prices

    provider, model = parse_spec(spec)
    load_prices()  # a broken EXECUTOR_PRICES file should fail now, not after a paid call
    return PROVIDERS.get(provider)(provider, model, **(DEFAULT_OPTIONS | options))
