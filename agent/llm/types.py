"""The LLM package's plain types: messages, completions, call records, errors."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Literal


@dataclass(frozen=True)
class Message:
    role: Literal["user", "assistant"]
    content: str


@dataclass(frozen=True)
class Completion:
    text: str
    provider: str  # a name of agent.llm.providers.PROVIDERS: "anthropic", "openai", ...
    model: str  # the model the request named
    input_tokens: int  # as reported by the server (for a cache hit: the original call's usage)
    output_tokens: int
    cost_usd: float | None  # None when the model is not in the price table; 0.0 for a cache hit
    latency_s: float  # wall time of the successful request (about 0 for a cache hit)
    cached: bool
    request_hash: str


@dataclass(frozen=True)
class CallRecord:
    """Handed to on_call after every complete(): hit or miss, success or final failure."""

    provider: str
    model: str
    request_hash: str
    input_tokens: int
    output_tokens: int
    cost_usd: float | None
    latency_s: float
    cached: bool
    retries: int
    error: str | None

    @classmethod
    def of(cls, completion: Completion, *, retries: int) -> CallRecord:
        """The record of a call that returned `completion`: its fields, shared by name."""
        shared = {f.name: getattr(completion, f.name) for f in fields(Completion)}
        del shared["text"]  # a record keeps the call's accounting, never the answer itself
        return cls(**shared, retries=retries, error=None)


class LLMError(Exception):
    """A user-facing failure. The message is always one line: what happened, what to do."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(str(message).split()))


class MissingKeyError(LLMError):
    """The API key environment variable a provider needs is not set."""


@dataclass(frozen=True)
class Prompt:
    """One request as a provider's `_send` gets it."""

    messages: list[Message]
    system: str | None
    max_tokens: int
    temperature: float

    def turns(self) -> list[dict[str, str]]:
        """The messages as the SDKs (and the cache key) take them."""
        return [{"role": m.role, "content": m.content} for m in self.messages]


@dataclass(frozen=True)
class RawAnswer:
    """What a provider's SDK call returned, before caching and costing."""

    text: str
    model: str  # as reported by the server
    input_tokens: int
    output_tokens: int
