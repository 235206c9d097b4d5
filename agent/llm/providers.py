"""LLM providers by name: "PROVIDER:MODEL" specs, the built-in providers, and third parties.

A provider is a factory `(provider, model, *, base_url, cache_dir, ...) -> LLMClient` that
make_client calls with every option of agent/llm/base.py's ClientOptions; an `LLMClient`
subclass is one. Third parties add providers under the entry-point group
"executor.llm_providers", or give one directly: "package.module:Client:MODEL".
"""

from __future__ import annotations

from typing import Protocol, Unpack

from agent.llm.base import ClientOptions, LLMClient
from agent.llm.types import LLMError
from plugins import Registry


class ProviderFactory(Protocol):
    def __call__(
        self, provider: str, model: str, **options: Unpack[ClientOptions]
    ) -> LLMClient: ...


PROVIDERS: Registry[ProviderFactory] = Registry(
    "LLM provider", "executor.llm_providers", error=LLMError
)
# Declared, not imported: an SDK is imported only when its provider is used, which keeps
# `import agent.llm` cheap. The OpenAI client also serves OpenAI-compatible local servers.
PROVIDERS.declare(
    "anthropic", "agent.llm.anthropic_client:AnthropicClient", install="'anthropic>=0.40'"
)
for _name in ("openai", "vllm", "ollama", "sglang"):
    PROVIDERS.declare(_name, "agent.llm.openai_client:OpenAIClient", install="'openai>=1.40'")


def parse_spec(spec: str) -> tuple[str, str]:
    """Split a spec: "anthropic:claude-sonnet-4-5" -> ("anthropic", "claude-sonnet-4-5").

    Only the first ':' separates, so model names may contain ':' ("ollama:qwen2.5:7b"); a
    provider given as "package.module:Client" keeps its own ':' ("pkg.llm:Client:MODEL").
    """
    head, sep, model = spec.strip().partition(":")
    provider = head.strip().lower()
    if provider not in PROVIDERS:
        provider, model = PROVIDERS.split(spec.strip())
    model = model.strip()
    if not sep or not model or (provider not in PROVIDERS and ":" not in provider):
        raise LLMError(
            f"bad model spec {spec!r}: write PROVIDER:MODEL, e.g. anthropic:claude-sonnet-4-6 "
            f"or ollama:qwen2.5:7b, with PROVIDER one of {', '.join(PROVIDERS.names())} "
            "(or package.module:Client)"
        )
    return provider, model
