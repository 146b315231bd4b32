"""traitlets trait types for :class:`~jupyter_telemetry.eventlog.EventLog`."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

from traitlets import Container, TraitError, TraitType

#: Option keys accepted for each schema in the dict form of ``allowed_schemas``.
SCHEMA_OPTION_KEYS = ("allowed_categories", "allowed_properties")


class Handlers(TraitType[list[logging.Handler], Any]):
    """A list of :class:`logging.Handler` instances.

    A callable is also accepted (handy in traitlets config files, where a
    handler is built lazily); it is called with no arguments and must return
    the list. The validated value is a new list: the caller's is not kept.
    """

    default_value: list[logging.Handler] = []
    info_text = "a list of logging.Handler instances (or a callable returning one)"

    def validate(self, obj: Any, value: Any) -> list[logging.Handler]:
        if callable(value) and not isinstance(value, logging.Handler):
            value = value()
        if value is None:
            return []
        if not isinstance(value, (list, tuple)):
            self.error(obj, value)
        for index, handler in enumerate(value):
            if not isinstance(handler, logging.Handler):
                raise TraitError(
                    f"The '{self.name}' trait of {type(obj).__name__} expected a list of "
                    f"logging.Handler; element {index} is {type(handler).__name__}: {handler!r}"
                )
        return list(value)


class SchemaOptions(Container[Any]):
    """The schemas to record: a list of ``$id``s, or a dict ``{$id: options}``.

    Options per schema (all optional): ``allowed_categories`` and
    ``allowed_properties``, each a list of strings. Unknown keys are a
    :class:`traitlets.TraitError`. The validated value is a copy, so later
    changes to the caller's list or dict have no effect until reassigned.
    """

    # A Container, so that traitlets' command line accepts
    # ``--EventLog.allowed_schemas=ID``, repeated for several, as 0.1.0's List did.
    klass = list
    default_value: list[str] = []
    info_text = "a list of schema $ids, or a dict {$id: {allowed_categories: [...], allowed_properties: [...]}}"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(default_value=[], **kwargs)

    def from_string_list(self, s_list: list[str]) -> Any:
        """Command-line values: ``$id``s, or one JSON object for the dict form."""
        if len(s_list) == 1 and s_list[0].lstrip().startswith("{"):
            return json.loads(s_list[0])
        return list(s_list)

    def validate(self, obj: Any, value: Any) -> list[str] | dict[str, dict[str, list[str]]]:
        if isinstance(value, (list, tuple, set, frozenset)):
            for schema_id in value:
                if not isinstance(schema_id, str):
                    self._fail(obj, f"schema $ids must be strings, got {schema_id!r}")
            return list(value)
        if isinstance(value, Mapping):
            return {str(k): self._options(obj, k, v) for k, v in value.items()}
        self.error(obj, value)
        raise AssertionError("unreachable")  # pragma: no cover - error() raises

    def _options(self, obj: Any, schema_id: Any, options: Any) -> dict[str, list[str]]:
        if not isinstance(schema_id, str):
            self._fail(obj, f"schema $ids must be strings, got {schema_id!r}")
        if options is None:
            return {}
        if not isinstance(options, Mapping):
            self._fail(obj, f"options for {schema_id!r} must be a dict, got {options!r}")
        unknown = sorted(set(options) - set(SCHEMA_OPTION_KEYS))
        if unknown:
            self._fail(
                obj,
                f"unknown option(s) {', '.join(map(repr, unknown))} for schema {schema_id!r}; "
                f"expected any of {', '.join(SCHEMA_OPTION_KEYS)}",
            )
        result: dict[str, list[str]] = {}
        for key, names in options.items():
            if not isinstance(names, (list, tuple)) or not all(isinstance(n, str) for n in names):
                self._fail(
                    obj, f"{key} for schema {schema_id!r} must be a list of strings, got {names!r}"
                )
            result[key] = list(names)
        return result

    def _fail(self, obj: Any, reason: str) -> None:
        raise TraitError(f"The '{self.name}' trait of {type(obj).__name__}: {reason}")
