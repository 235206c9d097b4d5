"""Anthropic Messages API client (the real `anthropic` SDK, its own retries off)."""

from __future__ import annotations

import os
from typing import Any, cast

import anthropic

from agent.llm.base import LLMClient
from agent.llm.failures import CallFailure, SdkErrors, sdk_failure
from agent.llm.types import MissingKeyError, Prompt, RawAnswer

_ERRORS = SdkErrors(
    anthropic.APITimeoutError,
    anthropic.APIConnectionError,
    anthropic.APIStatusError,
    anthropic.AnthropicError,
)
KEY_ENV = "ANTHROPIC_API_KEY"


class AnthropicClient(LLMClient):
    key_hint = KEY_ENV
    url_hint = "--base-url / ANTHROPIC_BASE_URL"

    def __init__(
        self, provider: str, model: str, *, base_url: str | None = None, **options: Any
    ) -> None:
        # Checked here, before any network, so a missing key fails at startup, not mid-run.
        # The SDK sends the key even to a local server, so it must be set (to anything) there.
        self._api_key = os.environ.get(KEY_ENV)
        if not self._api_key:
            raise MissingKeyError(
                f"{KEY_ENV} is not set: export it (for a local server given with --base-url, "
                "any value will do)"
            )
        # Read ANTHROPIC_BASE_URL like the SDK would, so the URL is part of the cache key.
        base_url = base_url or os.environ.get("ANTHROPIC_BASE_URL") or None
        super().__init__(provider, model, base_url=base_url, **options)

    def _new_sdk(self) -> anthropic.AsyncAnthropic:
        return anthropic.AsyncAnthropic(
            api_key=self._api_key, base_url=self.base_url, max_retries=0, timeout=self.timeout_s
        )

    async def _send(self, sdk: anthropic.AsyncAnthropic, prompt: Prompt) -> RawAnswer:
        # `temperature` is deliberately not sent: SDK 2.x speaks API version 2026-10-21, which
        # answers HTTP 400 to any sampling parameter (temperature, top_p, top_k), even 1.0.
        # It still takes part in the cache key, so callers can keep passing it.
        extra: dict[str, Any] = {"system": prompt.system} if prompt.system else {}
        response = await sdk.messages.create(
            model=self.model,
            messages=cast(Any, prompt.turns()),
            max_tokens=prompt.max_tokens,
            **extra,
        )
        text = "".join(
            getattr(block, "text", "") for block in response.content if block.type == "text"
        )
        usage = response.usage
        tokens = (usage.input_tokens or 0, usage.output_tokens or 0) if usage else (0, 0)
        return RawAnswer(text, response.model or self.model, *tokens)

    def _failure(self, exc: BaseException) -> CallFailure | None:
        return sdk_failure(exc, _ERRORS)
