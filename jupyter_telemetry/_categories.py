"""Personal-data categories: decide once per schema and policy what is recorded.

(Placeholder: every property is recorded. The personal-data issue fills this in.)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any


def check(document: Mapping[str, Any]) -> None:
    """Raise ``ValueError`` naming the property when its ``categories`` is not a list of str."""


def redactor(
    document: Mapping[str, Any], allowed: list[str] | Mapping[str, Any], schema_id: str
) -> Callable[[dict[str, Any]], dict[str, Any]] | None:
    """The redaction function for ``document`` under ``allowed``, or ``None`` to record all."""
    return None
