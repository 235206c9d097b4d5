"""Price table: USD per million input / output tokens, per model name or glob pattern.

The bundled table is `prices.toml` next to this file; a TOML file named by the EXECUTOR_PRICES
environment variable is merged over it, so users can fix a price or add a model without
editing the package. A model that matches no entry has an unknown cost: None, never 0.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from fnmatch import fnmatchcase
from functools import lru_cache
from pathlib import Path

from agent.llm.types import LLMError

PRICES_ENV = "EXECUTOR_PRICES"
BUNDLED_PRICES = Path(__file__).with_name("prices.toml")
_GLOB_CHARS = frozenset("*?[")


@dataclass(frozen=True)
class Price:
    input_per_mtok: float
    output_per_mtok: float

    def cost(self, input_tokens: int, output_tokens: int) -> float:
        return (input_tokens * self.input_per_mtok + output_tokens * self.output_per_mtok) / 1e6


def _parse_table(text: str, source: str) -> dict[str, Price]:
    try:
        data = tomllib.loads(text)
        models = data.get("models", {})
        if not isinstance(models, dict):
            raise ValueError("[models] must be a table")
        table: dict[str, Price] = {}
        for name, entry in models.items():
            if not isinstance(entry, dict) or not {"input", "output"} <= entry.keys():
                raise ValueError(f"entry {name!r} needs `input` and `output` prices")
            table[name.casefold()] = Price(float(entry["input"]), float(entry["output"]))
        return table
    except (tomllib.TOMLDecodeError, ValueError, TypeError) as exc:
        detail = " ".join(str(exc).split())
        raise LLMError(
            f"cannot read the price table {source} ({detail}): fix it, e.g. "
            '[models] "my-model*" = { input = 1.0, output = 2.0 }'
        ) from exc


@lru_cache(maxsize=1)
def _bundled() -> dict[str, Price]:
    return _parse_table(BUNDLED_PRICES.read_text(encoding="utf-8"), str(BUNDLED_PRICES))


def load_prices() -> dict[str, Price]:
    """The bundled table with the EXECUTOR_PRICES file (if set) merged over it.

    The override file is re-read on every call: it is tiny, and edits take effect at once.
    """
    table = dict(_bundled())
    override = os.environ.get(PRICES_ENV)
    if override:
        path = Path(override).expanduser()
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise LLMError(
                f"{PRICES_ENV}={override} cannot be read ({exc.strerror or exc}): "
                "point it at a TOML price table or unset it"
            ) from exc
        table.update(_parse_table(text, f"{PRICES_ENV}={override}"))
    return table


def lookup_price(model: str, prices: dict[str, Price] | None = None) -> Price | None:
    """Exact name first, then the longest (most specific) matching glob pattern."""
    table = load_prices() if prices is None else prices
    name = model.casefold()
    if name in table:
        return table[name]
    matches = [p for p in table if _GLOB_CHARS & set(p) and fnmatchcase(name, p)]
    if not matches:
        return None
    return table[max(matches, key=len)]


def cost_usd(
    model: str, input_tokens: int, output_tokens: int, prices: dict[str, Price] | None = None
) -> float | None:
    price = lookup_price(model, prices)
    return None if price is None else price.cost(input_tokens, output_tokens)
