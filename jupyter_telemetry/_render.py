"""The JSON line: one pure-ASCII JSON object per event (placeholder, see the logsink branch)."""

from __future__ import annotations

import json
from typing import Any

import orjson

_SCALARS = (str, int, bool, type(None))


def _non_finite(value: Any) -> bool:
    stack = [value]
    while stack:
        item = stack.pop()
        kind = type(item)
        if kind in _SCALARS:
            continue
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, (list, tuple)):
            stack.extend(item)
        elif isinstance(item, float) and item - item != 0.0:
            return True
    return False


def ensure_finite(event: dict[str, Any]) -> None:
    """Raise ``TypeError`` if ``event`` holds NaN or Infinity, or cannot be serialised."""
    if b"null" in orjson.dumps(event) and _non_finite(event):
        raise TypeError("NaN and Infinity have no JSON encoding")


def dumps(obj: Any, **_: Any) -> str:
    """``obj`` as one pure-ASCII JSON line; ``TypeError`` for what JSON cannot hold."""
    line = orjson.dumps(obj).decode()
    if "null" in line and _non_finite(obj):
        raise TypeError("NaN and Infinity have no JSON encoding")
    if not line.isascii():
        line = json.dumps(json.loads(line), separators=(",", ":"))
    return line
