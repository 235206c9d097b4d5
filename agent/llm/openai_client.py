"""OpenAI chat.completions client (the real `openai` SDK, its own retries off).

Also serves OpenAI-compatible servers: vllm, ollama and sglang differ only in their default base
URL and in not needing a real key.
"""

from __future__ import annotations

import os
import re
from typing import Any, cast

import openai

from agent.llm.base import LLMClient
from agent.llm.failures import CallFailure, SdkErrors, sdk_failure
from agent.llm.types import MissingKeyError, Prompt, RawAnswer

_ERRORS = SdkErrors(
    openai.APITimeoutError, openai.APIConnectionError, openai.APIStatusError, openai.OpenAIError
)
KEY_ENV = "OPENAI_API_KEY"
LOCAL_DEFAULT_BASE_URLS = {
    "vllm": "http://localhost:8000/v1",
    "ollama": "http://localhost:11434/v1",
    "sglang": "http://localhost:30000/v1",
}
# OpenAI reasoning models (o-series, gpt-5 and later) reject `max_tokens` and any temperature but
# the default.
_REASONING_MODEL = re.compile(r"^(o\d|gpt-[5-9])")


class OpenAIClient(LLMClient):
    def __init__(
        self, provider: str, model: str, *, base_url: str | None = None, **options: Any
    ) -> None:
        api_key = os.environ.get(KEY_ENV)
        if provider == "openai":
            # Checked before any network. The SDK sends the key to a local server too.
            if not api_key:
                raise MissingKeyError(
                    f"{KEY_ENV} is not set: export it (for a local server given with "
                    "--base-url any value will do, or use the vllm:/ollama:/sglang: providers)"
                )
            self.key_hint = KEY_ENV
            self.url_hint = "--base-url / OPENAI_BASE_URL"
            # Read OPENAI_BASE_URL like the SDK would, so the URL is part of the cache key.
            base_url = base_url or os.environ.get("OPENAI_BASE_URL") or None
        elif provider in LOCAL_DEFAULT_BASE_URLS:
            # Local servers usually ignore the key; vLLM started with --api-key checks it.
            api_key = api_key or "EMPTY"
            base_url = base_url or LOCAL_DEFAULT_BASE_URLS[provider]
            self.key_hint = f"{KEY_ENV} (the key the {provider} server expects)"
            self.url_hint = f"--base-url (default {LOCAL_DEFAULT_BASE_URLS[provider]})"
        else:
            raise ValueError(f"not an OpenAI-protocol provider: {provider}")
        self._api_key = api_key
        # Only OpenAI's own reasoning models need the special parameters; local servers take the
        # classic ones whatever the model is called.
        self._reasoning = provider == "openai" and bool(_REASONING_MODEL.match(model))
        super().__init__(provider, model, base_url=base_url, **options)

    def _new_sdk(self) -> openai.AsyncOpenAI:
        return openai.AsyncOpenAI(
            api_key=self._api_key, base_url=self.base_url, max_retries=0, timeout=self.timeout_s
        )

    async def _send(self, sdk: openai.AsyncOpenAI, prompt: Prompt) -> RawAnswer:
        chat: list[dict[str, str]] = (
            [{"role": "system", "content": prompt.system}] if prompt.system else []
        )
        chat += prompt.turns()
        params: dict[str, Any]
        if self._reasoning:
            params = {"max_completion_tokens": prompt.max_tokens}
        else:
            params = {"max_tokens": prompt.max_tokens, "temperature": prompt.temperature}
        response = await sdk.chat.completions.create(
            model=self.model, messages=cast(Any, chat), **params
        )
        text = (response.choices[0].message.content or "") if response.choices else ""
        usage = response.usage
        tokens = (usage.prompt_tokens or 0, usage.completion_tokens or 0) if usage else (0, 0)
        return RawAnswer(text, response.model or self.model, *tokens)

    def _failure(self, exc: BaseException) -> CallFailure | None:
        return sdk_failure(exc, _ERRORS)
