"""The provider-independent half of every LLM client.

`LLMClient.complete` owns everything that is the same for all providers: the response cache,
bounded concurrency, retries with backoff (on tenacity), cost accounting and the on_call record.
A provider subclass only knows how to build its SDK client, send one request, and describe one
failure.
"""

from __future__ import annotations

import asyncio
import random
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypedDict, Unpack

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt

from agent.llm.cache import ResponseCache, request_hash
from agent.llm.failures import MAX_BACKOFF_S, MAX_RETRY_AFTER_S, CallFailure
from agent.llm.pricing import cost_usd
from agent.llm.types import CallRecord, Completion, LLMError, Message, Prompt, RawAnswer


class ClientOptions(TypedDict, total=False):
    """The settings every client takes besides provider and model (defaults: DEFAULT_OPTIONS)."""

    base_url: str | None
    cache_dir: Path | None
    max_concurrency: int
    max_retries: int
    backoff_base_s: float
    timeout_s: float
    on_call: Callable[[CallRecord], None] | None


DEFAULT_OPTIONS: ClientOptions = {
    "base_url": None,
    "cache_dir": None,
    "max_concurrency": 8,
    "max_retries": 5,
    "backoff_base_s": 1.0,
    "timeout_s": 600.0,
    "on_call": None,
}


class LLMClient(ABC):
    """One provider + model. `complete` is safe to call concurrently from many tasks."""

    provider: str
    model: str
    base_url: str | None

    # Set by subclasses: what to tell the user to check.
    key_hint: str = "the API key"
    url_hint: str = "--base-url"

    def __init__(self, provider: str, model: str, **options: Unpack[ClientOptions]) -> None:
        unknown = options.keys() - DEFAULT_OPTIONS.keys()
        if unknown:  # as an explicit signature would: a misspelt option is no silent default
            raise TypeError(f"unknown LLM client options: {', '.join(sorted(unknown))}")
        o = DEFAULT_OPTIONS | options
        if o["max_concurrency"] < 1:
            raise LLMError(f"max_concurrency must be at least 1, got {o['max_concurrency']}")
        if o["max_retries"] < 0:
            raise LLMError(f"max_retries must be 0 or more, got {o['max_retries']}")
        self.provider = provider
        self.model = model
        self.base_url = o["base_url"]
        cache_dir = o["cache_dir"]
        self.cache = ResponseCache(cache_dir) if cache_dir is not None else None
        self.max_concurrency = o["max_concurrency"]
        self.max_retries = o["max_retries"]
        self.backoff_base_s = o["backoff_base_s"]
        self.timeout_s = o["timeout_s"]
        self.on_call = o["on_call"]
        # The SDK client's connection pool and the semaphore belong to one event loop; they are
        # (re)made for whichever loop calls complete() (see _for_running_loop).
        self._sdk: Any = self._new_sdk()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._semaphore: asyncio.Semaphore | None = None

    # -- provider hooks ----------------------------------------------------------------------

    @abstractmethod
    def _new_sdk(self) -> Any:
        """A fresh SDK client with SDK retries off (our loop retries) and our timeout."""

    @abstractmethod
    async def _send(self, sdk: Any, prompt: Prompt) -> RawAnswer:
        """One request, no retries."""

    @abstractmethod
    def _failure(self, exc: BaseException) -> CallFailure | None:
        """Describe an SDK exception, or None when it is not one (then it propagates)."""

    @property
    def endpoint(self) -> str:
        """The URL requests go to, for messages."""
        return str(self._sdk.base_url).rstrip("/")

    @property
    def spec(self) -> str:
        return f"{self.provider}:{self.model}"

    # -- the shared logic --------------------------------------------------------------------

    async def complete(
        self,
        messages: list[Message],
        *,
        system: str | None = None,
        max_tokens: int = 8192,
        temperature: float = 0.7,
        nonce: str = "",
    ) -> Completion:
        prompt = Prompt(messages, system, max_tokens, temperature)
        request = {
            "provider": self.provider,
            "model": self.model,
            "base_url": self.base_url,
            "system": system,
            "messages": prompt.turns(),
            "max_tokens": max_tokens,
            "temperature": temperature,
            "nonce": nonce,
        }
        key = request_hash(request)
        started = time.monotonic()

        hit = self._cache_hit(key, started)
        if hit is not None:
            self._record(hit, retries=0)
            return hit

        tries = 0
        try:
            sdk, semaphore = self._for_running_loop()
            # The semaphore is held through backoff sleeps too, so a rate-limited provider is
            # not hit by other calls while this one waits.
            async with semaphore:
                try:
                    async for attempt in self._retrying():
                        with attempt:
                            tries = attempt.retry_state.attempt_number
                            attempt_started = time.monotonic()
                            answer = await self._send(sdk, prompt)
                except Exception as exc:
                    failure = self._failure(exc)
                    if failure is None:
                        raise
                    raise self._give_up(failure, tries) from exc
        except Exception as exc:
            self._emit(self._failed_record(key, started, tries, exc))
            raise

        completion = self._completion(key, answer, time.monotonic() - attempt_started)
        if self.cache is not None:
            self.cache.put(key, self._cache_entry(request, answer, completion))
        self._record(completion, retries=tries - 1)
        return completion

    async def aclose(self) -> None:
        """Close the SDK's connection pool (optional: it is also released at exit)."""
        await self._sdk.close()

    def _completion(self, key: str, answer: RawAnswer, latency: float) -> Completion:
        # The requested name first (what a user would put in the price table), then the name
        # the server reported (e.g. the dated version behind an alias).
        cost = cost_usd(self.model, answer.input_tokens, answer.output_tokens)
        if cost is None and answer.model and answer.model != self.model:
            cost = cost_usd(answer.model, answer.input_tokens, answer.output_tokens)
        return Completion(
            text=answer.text,
            provider=self.provider,
            model=self.model,
            input_tokens=answer.input_tokens,
            output_tokens=answer.output_tokens,
            cost_usd=cost,
            latency_s=latency,
            cached=False,
            request_hash=key,
        )

    @staticmethod
    def _cache_entry(
        request: dict[str, Any], answer: RawAnswer, completion: Completion
    ) -> dict[str, Any]:
        return {
            "version": 1,
            "text": answer.text,
            "reported_model": answer.model,
            "input_tokens": answer.input_tokens,
            "output_tokens": answer.output_tokens,
            "cost_usd": completion.cost_usd,
            "latency_s": completion.latency_s,
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "request": request,  # makes every entry self-describing when inspected by hand
        }

    def _cache_hit(self, key: str, started: float) -> Completion | None:
        if self.cache is None:
            return None
        entry = self.cache.get(key)
        if entry is None:
            return None
        return Completion(
            text=entry["text"],
            provider=self.provider,
            model=self.model,
            input_tokens=int(entry.get("input_tokens", 0)),
            output_tokens=int(entry.get("output_tokens", 0)),
            cost_usd=0.0,  # nothing was spent this time
            latency_s=time.monotonic() - started,
            cached=True,
            request_hash=key,
        )

    def _for_running_loop(self) -> tuple[Any, asyncio.Semaphore]:
        loop = asyncio.get_running_loop()
        if self._loop is not loop or self._semaphore is None:
            if self._loop is not None:
                # Reused under a new event loop (e.g. a second asyncio.run): the old pool's
                # connections belong to the old loop, so start a fresh SDK client.
                self._sdk = self._new_sdk()
            self._loop = loop
            self._semaphore = asyncio.Semaphore(self.max_concurrency)
        return self._sdk, self._semaphore

    def _retrying(self) -> AsyncRetrying:
        """Tries until success, a failure that is not worth another try, or max_retries + 1
        tries; the last exception is raised as it is, for `_give_up` to describe."""
        return AsyncRetrying(
            retry=retry_if_exception(self._retryable),
            stop=stop_after_attempt(self.max_retries + 1),
            wait=self._wait_s,
            sleep=asyncio.sleep,
            reraise=True,
        )

    def _retryable(self, exc: BaseException) -> bool:
        failure = self._failure(exc)
        return failure is not None and failure.retryable

    def _wait_s(self, state: RetryCallState) -> float:
        """Seconds before the next try: the server's retry-after, else jittered backoff."""
        exc = state.outcome.exception() if state.outcome is not None else None
        failure = self._failure(exc) if exc is not None else None
        assert failure is not None  # only retryable SDK failures are waited on
        return self._backoff_s(failure, state.attempt_number)

    def _backoff_s(self, failure: CallFailure, tries: int) -> float:
        if failure.retry_after_s is not None:
            return min(failure.retry_after_s, MAX_RETRY_AFTER_S)
        delay = min(self.backoff_base_s * 2 ** (tries - 1), MAX_BACKOFF_S)
        # Jitter spreads out the clients that all failed at the same moment.
        return delay * random.uniform(0.5, 1.0)

    def _give_up(self, failure: CallFailure, tries: int) -> LLMError:
        after = f" after {tries} tries" if tries > 1 else ""
        if failure.kind == "connection":
            return LLMError(
                f"cannot reach the LLM server at {self.endpoint}{after} ({failure.detail}): "
                f"check {self.url_hint} and that the server is running"
            )
        if failure.kind == "timeout":
            return LLMError(
                f"{self.spec} at {self.endpoint} did not answer within {self.timeout_s:g}s"
                f"{after}: raise the timeout, lower max_tokens, or check the server"
            )
        if failure.kind == "status" and failure.status is not None:
            return LLMError(
                f"{self.spec} answered HTTP {failure.status}{after} ({failure.detail}): "
                f"{self._status_advice(failure.status)}"
            )
        return LLMError(
            f"{self.spec} request to {self.endpoint} failed ({failure.detail}): "
            "check that the server speaks the expected API"
        )

    def _status_advice(self, status: int) -> str:
        if status == 401:
            return f"check {self.key_hint}"
        if status == 403:
            return f"check that {self.key_hint} may use {self.model}"
        if status == 404:
            return f"check the model name and that {self.endpoint} serves {self.model}"
        if status == 429:
            return "rate limited: lower the concurrency or try again later"
        if status >= 500:
            return "the server is failing or overloaded: try again later"
        if status in (400, 413, 422):
            return "the request was rejected: check the model name, max_tokens and prompt size"
        return "check the server's logs or the provider's status page"

    def _record(self, completion: Completion, *, retries: int) -> None:
        self._emit(CallRecord.of(completion, retries=retries))

    def _failed_record(self, key: str, started: float, tries: int, exc: Exception) -> CallRecord:
        return CallRecord(
            provider=self.provider,
            model=self.model,
            request_hash=key,
            input_tokens=0,
            output_tokens=0,
            cost_usd=None,
            latency_s=time.monotonic() - started,
            cached=False,
            retries=max(tries - 1, 0),
            error=str(exc) or type(exc).__name__,
        )

    def _emit(self, record: CallRecord) -> None:
        if self.on_call is not None:
            self.on_call(record)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.spec!r}, endpoint={self.endpoint!r})"
