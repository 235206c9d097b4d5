"""Per-item outcomes: what the evaluator scored, item by item, checked and packed for the store.

The evaluate step writes `items.jsonl` beside result.json: one JSON object per item with a
string `id` (the same item gets the same id in every arm of a run directory), a `value` (the
item's share of the manifest metric, which is the plain mean of the non-null values: 1/0 for
a correct answer, a window's loss), and a few extra fields (answered, extracted answer, ...).
Paired statistics (agent/significance.py) need these: the same items scored for an idea and
for the baseline.

The evaluator is trusted, but its file is still checked (sizes, types, unique ids, and that
the values reproduce the reported metric), so a broken evaluator cannot put half a table in
the store. The store keeps the items column by column, zlib-compressed, with the sha256 of
their canonical JSON, checked again on every read.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ITEMS_FILE = "items.jsonl"
ENCODING = "columns-json-zlib-v1"
MAX_ITEMS = 1_000_000
MAX_BYTES = 256 * 1024 * 1024
MAX_ID_CHARS = 64
MAX_TEXT_CHARS = 200
MAX_FIELDS = 16
METRIC_TOLERANCE = 1e-6  # relative: the values' mean against the reported metric
_FIELD = re.compile(r"[a-z_][a-z0-9_]{0,31}")

Scalar = bool | int | float | str | None


class ItemsError(ValueError):
    """The evaluator's items file (or a stored copy) is malformed; the message says how."""


@dataclass(frozen=True)
class ItemOutcomes:
    """One run's items, as columns: `ids[k]` has `values[k]` and `fields[name][k]`."""

    ids: tuple[str, ...]
    values: tuple[float | None, ...]
    fields: dict[str, tuple[Scalar, ...]]

    def __len__(self) -> int:
        return len(self.ids)

    def scored(self) -> dict[str, float]:
        """id -> value of the items that make up the metric (non-null values)."""
        return {i: v for i, v in zip(self.ids, self.values, strict=True) if v is not None}

    def metric(self) -> float | None:
        """The mean of the scored values (what the manifest metric must equal), or None."""
        scored = [v for v in self.values if v is not None]
        return math.fsum(scored) / len(scored) if scored else None

    def binary(self) -> bool:
        """Every scored value is 0 or 1 (accuracy-like: McNemar applies)."""
        return all(v in (0.0, 1.0) for v in self.values if v is not None)

    def canonical(self) -> bytes:
        """The items as canonical JSON: what the stored hash covers."""
        doc = {"ids": list(self.ids), "values": list(self.values), "fields": self.fields}
        return json.dumps(
            doc, sort_keys=True, separators=(",", ":"), allow_nan=False, ensure_ascii=False
        ).encode()

    def sha256(self) -> str:
        return hashlib.sha256(self.canonical()).hexdigest()

    def pack(self) -> bytes:
        return zlib.compress(self.canonical(), 9)

    @classmethod
    def unpack(cls, blob: bytes, sha256: str) -> ItemOutcomes:
        """Items from the store's blob, refused unless they hash to `sha256`."""
        try:
            raw = zlib.decompress(blob)
        except zlib.error as e:
            raise ItemsError(f"stored items do not decompress ({e})") from None
        if hashlib.sha256(raw).hexdigest() != sha256:
            raise ItemsError("stored items do not match their sha256: the store was altered")
        doc = json.loads(raw)
        fields = {k: tuple(v) for k, v in doc["fields"].items()}
        return cls(tuple(doc["ids"]), tuple(doc["values"]), fields)

    def to_rows(self) -> list[dict[str, Any]]:
        rows = []
        for k, (item, value) in enumerate(zip(self.ids, self.values, strict=True)):
            row: dict[str, Any] = {"id": item, "value": value}
            row.update({name: col[k] for name, col in self.fields.items() if col[k] is not None})
            rows.append(row)
        return rows


def _scalar(value: Any, where: str) -> Scalar:
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        if not math.isfinite(value):
            raise ItemsError(f"{where} is not a finite number")
        return value
    if isinstance(value, str):
        if len(value) > MAX_TEXT_CHARS:
            raise ItemsError(f"{where} is over {MAX_TEXT_CHARS} characters")
        return value
    raise ItemsError(f"{where} must be a number, a bool, a short string or null")


def parse_items(lines: list[str]) -> ItemOutcomes:
    """Items from the lines of an items file; ItemsError (one line) if any is malformed."""
    ids: list[str] = []
    values: list[float | None] = []
    rows: list[dict[str, Scalar]] = []
    seen: set[str] = set()
    names: set[str] = set()
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        if len(ids) >= MAX_ITEMS:
            raise ItemsError(f"more than {MAX_ITEMS} items")
        try:
            row = json.loads(line)
        except ValueError:
            raise ItemsError(f"line {n} is not JSON") from None
        if not isinstance(row, dict):
            raise ItemsError(f"line {n} is not a JSON object")
        item = row.pop("id", None)
        if not isinstance(item, str) or not 0 < len(item) <= MAX_ID_CHARS:
            raise ItemsError(f"line {n}: id must be a string of 1-{MAX_ID_CHARS} characters")
        if item in seen:
            raise ItemsError(f"line {n}: id {item!r} appears twice")
        seen.add(item)
        value = row.pop("value", None)
        if isinstance(value, bool) or not (value is None or isinstance(value, int | float)):
            raise ItemsError(f"line {n}: value must be a number or null")
        if value is not None and not math.isfinite(value):
            raise ItemsError(f"line {n}: value is not finite")
        extra = {}
        for name, v in row.items():
            if not _FIELD.fullmatch(name):
                raise ItemsError(f"line {n}: field name {name[:40]!r} is not a short identifier")
            extra[name] = _scalar(v, f"line {n}: {name}")
        names.update(extra)
        if len(names) > MAX_FIELDS:
            raise ItemsError(f"more than {MAX_FIELDS} distinct fields")
        ids.append(item)
        values.append(None if value is None else float(value))
        rows.append(extra)
    fields = {name: tuple(r.get(name) for r in rows) for name in sorted(names)}
    return ItemOutcomes(tuple(ids), tuple(values), fields)


def read_items(result_dir: Path) -> ItemOutcomes | None:
    """The evaluator's items in `result_dir`, or None when it wrote no items file."""
    path = result_dir / ITEMS_FILE
    if not path.is_file() or path.is_symlink():
        return None
    if path.stat().st_size > MAX_BYTES:
        raise ItemsError(f"{ITEMS_FILE} is over {MAX_BYTES // 2**20} MiB")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ItemsError(f"{ITEMS_FILE} is unreadable ({e})") from None
    return parse_items(text.splitlines())


def metric_mismatch(items: ItemOutcomes, name: str, reported: float) -> str | None:
    """One line when the items' mean does not reproduce the reported metric, else None."""
    mean = items.metric()
    if mean is None:
        return f"{ITEMS_FILE} has no scored items, but the evaluator reported {name}"
    if not math.isclose(mean, reported, rel_tol=METRIC_TOLERANCE, abs_tol=1e-12):
        return (
            f"{ITEMS_FILE}'s values average {mean:.9g}, but the evaluator reported "
            f"{name}={reported:.9g}"
        )
    return None
