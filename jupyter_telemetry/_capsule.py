"""The capsule: the envelope every recorded event is wrapped in."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from typing import Any

METADATA_VERSION = 1
CAPSULE_KEYS = ("__timestamp__", "__schema__", "__schema_version__", "__metadata_version__")

_EPOCH = datetime(1970, 1, 1)
_MICROSECOND = timedelta(microseconds=1)


def format_timestamp(utc: datetime) -> str:
    """Render a naive UTC datetime as RFC 3339 with a single trailing ``Z``.

    This is what jupyter-telemetry 0.1.0 wrote (``isoformat() + "Z"``); the
    fraction is omitted when the microsecond is zero, as ``isoformat`` does.
    """
    return utc.isoformat() + "Z"


_second_cache: tuple[int, str] = (-1, "")


def _format_micros(micros: int) -> str:
    """``format_timestamp`` for Unix microseconds, reusing the formatted second."""
    global _second_cache
    second, fraction = divmod(micros, 1_000_000)
    cached_second, prefix = _second_cache
    if second != cached_second:
        prefix = (_EPOCH + timedelta(seconds=second)).isoformat()
        _second_cache = (second, prefix)
    return f"{prefix}.{fraction:06d}Z" if fraction else prefix + "Z"


def timestamp(override: datetime | None = None) -> tuple[int, str]:
    """Return ``(unix_nanoseconds, rfc3339)`` for now, or for ``override``.

    A naive ``override`` is taken as UTC; an aware one is converted to UTC.
    Both forms denote the same instant, to the microsecond.
    """
    if override is None:
        micros = time.time_ns() // 1000
        return micros * 1000, _format_micros(micros)
    if not isinstance(override, datetime):
        raise TypeError(
            f"timestamp_override must be a datetime.datetime, got {type(override).__name__}"
        )
    if override.tzinfo is not None:
        override = override.astimezone(timezone.utc).replace(tzinfo=None)
    return (override - _EPOCH) // _MICROSECOND * 1000, format_timestamp(override)


def capsule(schema_id: str, version: int | str, payload: dict[str, Any], ts: str) -> dict[str, Any]:
    """Return a new dict: the four capsule fields followed by ``payload``.

    Raises ``KeyError`` naming the key when ``payload`` would overwrite a
    capsule field; the caller turns that into a validation error.
    """
    envelope = {
        "__timestamp__": ts,
        "__schema__": schema_id,
        "__schema_version__": version,
        "__metadata_version__": METADATA_VERSION,
        **payload,
    }
    # A collision is the only way the sizes can disagree: O(1), not a key scan.
    if len(envelope) != len(payload) + 4:
        raise KeyError(next(k for k in CAPSULE_KEYS if k in payload))
    return envelope
