"""The capsule: the envelope every recorded event is wrapped in."""

from __future__ import annotations

import functools
import re
import time
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from typing import Any, NamedTuple

METADATA_VERSION = 1
CAPSULE_KEYS = ("__timestamp__", "__schema__", "__schema_version__", "__metadata_version__")

_EPOCH = datetime(1970, 1, 1)
_MICROSECOND = timedelta(microseconds=1)
_SECOND = timedelta(seconds=1)
# The offset before the Z is the ``isoformat() + "Z"`` of an aware time: jupyter-telemetry
# 0.1.0 wrote it for an aware override, and jupyter_events writes it for every event.
_TIMESTAMP = re.compile(
    r"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d{1,9}))?(?:([+-]\d\d):(\d\d))?Z", re.ASCII
)


def format_timestamp(utc: datetime) -> str:
    """Render a naive UTC datetime as RFC 3339 with a single trailing ``Z``.

    This is what jupyter-telemetry 0.1.0 wrote (``isoformat() + "Z"``); the
    fraction is omitted when the microsecond is zero, as ``isoformat`` does.
    """
    return utc.isoformat() + "Z"


#: ``(unix second, its isoformat + ".", its isoformat + "Z")`` for the second last stamped;
#: one tuple, read once per call, so a thread never mixes two seconds
_second: tuple[int, str, str] = (-1, "", "")


def timestamp(override: datetime | None = None) -> tuple[int, str]:
    """Return ``(unix_nanoseconds, rfc3339)`` for now, or for ``override``.

    A naive ``override`` is taken as UTC; an aware one is converted to UTC.
    Both forms denote the same instant, to the microsecond.
    """
    if override is None:
        micros = time.time_ns() // 1000
        second = _second
        if micros // 1_000_000 != second[0]:
            second = _new_second(micros // 1_000_000)
        fraction = str(micros % 1_000_000 + 1_000_000)[1:]  # six digits, faster than a format
        if fraction == "000000":  # as isoformat(): no fraction at all
            return micros * 1000, second[2]
        return micros * 1000, second[1] + fraction + "Z"
    if not isinstance(override, datetime):
        raise TypeError(
            f"timestamp_override must be a datetime.datetime, got {type(override).__name__}"
        )
    if override.tzinfo is not None:
        override = override.astimezone(timezone.utc).replace(tzinfo=None)
    return (override - _EPOCH) // _MICROSECOND * 1000, format_timestamp(override)


def _new_second(second: int) -> tuple[int, str, str]:
    global _second
    iso = (_EPOCH + timedelta(seconds=second)).isoformat()
    _second = (second, iso + ".", iso + "Z")
    return _second


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


def parse_timestamp(text: str) -> int:
    """``__timestamp__`` (RFC 3339, UTC, trailing ``Z``) as exact Unix nanoseconds.

    The inverse of :func:`timestamp`. Also reads ``...+02:00Z`` (0.1.0's aware
    override, jupyter_events' ``+00:00Z``): the offset applies. Raises
    ``ValueError`` naming the text for any other form or an impossible date.
    """
    # Fast path: the second parsed last, then ".ffffff" and "Z" or "+00:00Z", the
    # forms this package and jupyter_events write; anything else takes the regex.
    if type(text) is str:
        prefix, second = _parsed
        if text.startswith(prefix):
            rest = text[19:]
            if rest == "Z" or rest == "+00:00Z":
                return second * 1_000_000_000
            if rest[:1] == "." and (rest[7:] == "Z" or rest[7:] == "+00:00Z"):
                digits = rest[1:7]
                if digits.isdigit() and digits.isascii():
                    return second * 1_000_000_000 + int(digits) * 1000
    return _parse_timestamp(text)


_parsed: tuple[str, int] = ("\0", 0)  # (a "YYYY-MM-DDTHH:MM:SS" prefix, its Unix second)


def _parse_timestamp(text: str) -> int:
    global _parsed
    match = _TIMESTAMP.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        raise ValueError(
            f"__timestamp__ {text!r} is not RFC 3339 UTC with a trailing 'Z' "
            "(e.g. 2024-02-29T12:00:00.123456Z)"
        )
    year, month, day, hour, minute, sec, fraction, hours, minutes = match.groups()
    try:
        local = datetime(int(year), int(month), int(day), int(hour), int(minute), int(sec))
    except ValueError as exc:
        raise ValueError(f"__timestamp__ {text!r}: {exc}") from None
    second = (local - _EPOCH) // _SECOND
    if hours is None or (hours in ("+00", "-00") and minutes == "00"):
        _parsed = (text[:19], second)
    else:
        sign = -1 if hours[0] == "-" else 1
        second -= sign * (int(hours[1:]) * 3600 + int(minutes) * 60)
    return second * 1_000_000_000 + (int(fraction.ljust(9, "0")) if fraction else 0)


class Header(NamedTuple):
    """The capsule fields of an event recorded elsewhere, checked."""

    time_ns: int
    schema_id: str
    version: int | str


#: ``Header`` built by ``tuple.__new__`` in C, not its generated Python ``__new__``
_header = functools.partial(tuple.__new__, Header)


def read_header(capsule: Mapping[str, Any]) -> Header:
    """Check the four capsule fields of ``capsule`` (a parsed line, a jupyter_events event).

    Raises ``ValueError`` saying what is wrong: a missing field, a
    ``__timestamp__`` :func:`parse_timestamp` refuses, an empty or non-string
    ``__schema__``, a ``__schema_version__`` that is neither int nor str, or a
    ``__metadata_version__`` other than ``METADATA_VERSION``.
    """
    if type(capsule) is not dict and not isinstance(capsule, Mapping):
        raise ValueError(f"not an event capsule: a {type(capsule).__name__}, not a JSON object")
    try:
        stamp = capsule["__timestamp__"]
        schema_id = capsule["__schema__"]
        version = capsule["__schema_version__"]
        metadata = capsule["__metadata_version__"]
    except KeyError:
        missing = [key for key in CAPSULE_KEYS if key not in capsule]
        raise ValueError("not an event capsule: missing " + ", ".join(missing)) from None
    if not isinstance(schema_id, str) or not schema_id:
        raise ValueError(f"__schema__ must be a non-empty string, got {schema_id!r}")
    if isinstance(version, bool) or not isinstance(version, (int, str)):
        raise ValueError(f"__schema_version__ must be an int or a string, got {version!r}")
    if type(metadata) is not int or metadata != METADATA_VERSION:
        raise ValueError(f"__metadata_version__ {metadata!r} is not {METADATA_VERSION}")
    return _header((parse_timestamp(stamp), schema_id, version))
