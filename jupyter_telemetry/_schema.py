"""Check event schemas, compile each once into one validator; keep them in a registry.

Everything expensive happens once, in :func:`compile_schema`: the copy, the
metaschema check, the structural checks and the building of the validator
(``jsonschema_rs``, every draft). That one validator both decides and explains:
validating an event is one call into it, and its first error becomes the
:class:`EventValidationError`. Its semantics are JSON Schema's (see
``_events.py`` for how Python values map onto JSON).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import jsonschema
import jsonschema_rs
import orjson
import referencing
import referencing.exceptions
import referencing.jsonschema

from . import _categories, _document, _events
from ._load import MAX_SCHEMA_BYTES, MAX_YAML_NODES, load_file, load_url, parse_document
from .errors import (
    EventValidationError,
    InvalidSchemaError,
    SchemaRegistrationError,
    UnregisteredSchemaError,
)

# Schemas without "$schema" (or with one no draft claims) are read as Draft 7,
# the draft of the 0.1.0 era.
DEFAULT_DRAFT = jsonschema.Draft7Validator
_COMPILERS: dict[type[Any], type[jsonschema_rs.Validator]] = {
    jsonschema.Draft4Validator: jsonschema_rs.Draft4Validator,
    jsonschema.Draft6Validator: jsonschema_rs.Draft6Validator,
    jsonschema.Draft7Validator: jsonschema_rs.Draft7Validator,
    jsonschema.Draft201909Validator: jsonschema_rs.Draft201909Validator,
    jsonschema.Draft202012Validator: jsonschema_rs.Draft202012Validator,
}
_ECMA_262 = jsonschema_rs.Draft7Validator({"format": "regex"}, validate_formats=True)
_EXACT_JSON = (
    orjson.OPT_PASSTHROUGH_SUBCLASS
    | orjson.OPT_PASSTHROUGH_DATETIME
    | orjson.OPT_PASSTHROUGH_DATACLASS
)


def _version_key(version: object) -> str:
    """``1`` and ``"1"`` name the same schema version."""
    if isinstance(version, bool) or not isinstance(version, (int, str)):
        raise SchemaRegistrationError(
            f"schema version must be an int or a str, got {type(version).__name__}: {version!r}"
        )
    return str(version)


@dataclass(frozen=True, eq=False)
class Schema:
    """A registered schema: its identity, a private copy of its document, its validator."""

    id: str
    version: int | str
    document: Mapping[str, Any]
    _validator: jsonschema_rs.Validator = field(repr=False)
    #: for a schema whose references recurse: the deepest event it validates; else 0
    _max_depth: int = field(default=0, repr=False)

    @property
    def key(self) -> tuple[str, str]:
        return (self.id, _version_key(self.version))

    def validate(self, event: Any) -> None:
        """Raise unless ``event`` is JSON data that matches the schema; never mutates it.

        Raises :class:`EventValidationError` for an event that does not match
        (or is nested deeper than a deep recursive schema validates), and
        :class:`EventSerializationError` for one holding a value that is not
        JSON data or that a JSON line cannot hold (see ``_events``). NaN and
        Infinity read as null: where the verdict does not depend on them, the
        renderer refuses them instead.
        """
        checked = event
        try:
            # At C speed: only exact JSON types (and enum members) within the
            # encoder's limits pass. The validator misreads subclasses in places.
            orjson.dumps(event, option=_EXACT_JSON)
        except TypeError:
            checked = _events.plain(event, self._where())  # subclasses as their values
        if self._max_depth and _events.deeper_than(checked, self._max_depth):
            raise self.reject(
                f"the event is nested too deeply (more than {self._max_depth} levels) for "
                "this recursive schema to validate",
                event,
            )
        try:
            self._validator.validate(checked)
        except jsonschema_rs.ValidationError as exc:
            _events.plain(checked, self._where())  # the validator reads NaN and Infinity as null
            raise self._error(exc, event) from None
        except (ValueError, TypeError, OverflowError) as exc:  # e.g. a uuid.UUID
            raise _events.unreadable(self._where(), "$", str(exc)) from None

    def _where(self) -> str:
        return f"event for schema {self.id!r} version {self.version!r}"

    def _error(self, cause: jsonschema_rs.ValidationError, event: Any) -> EventValidationError:
        path = list(cause.instance_path)
        located = _at(self.document, cause.schema_path)
        error = EventValidationError(
            f"{self._where()} is invalid at {_events.json_path(path)}: {cause.message}",
            validator=cause.kind.name,
            path=path,
            instance=_at(event, path, cause.instance),
            schema_path=cause.evaluation_path,
            validator_value=located,
            schema=_at(self.document, cause.schema_path[:-1], {}),
        )
        error.schema_id, error.version = self.id, self.version
        return error

    def reject(self, reason: str, instance: Any) -> EventValidationError:
        """An :class:`EventValidationError` for a rule outside the schema itself."""
        return self.reject_at("$", reason, instance)

    def reject_at(self, path: str, reason: str, instance: Any) -> EventValidationError:
        """An :class:`EventValidationError` naming the schema, ``path`` and ``reason``."""
        error = EventValidationError(
            f"{self._where()} is invalid at {path}: {reason}", instance=instance
        )
        error.schema_id, error.version = self.id, self.version
        return error


def _at(document: Any, path: list[str | int], default: Any = None) -> Any:
    """The value at ``path`` in ``document``, or ``default`` if it is not there."""
    node = document
    for part in path:
        try:
            node = node[part]
        except (LookupError, TypeError):
            return default
    return node


def compile_schema(document: Mapping[str, Any], *, formats: bool = False) -> Schema:
    """Check ``document`` and return a compiled :class:`Schema`; never mutates it.

    ``formats``: enforce ``format`` (``date-time``, ``email``, ...); by
    default it is an annotation only, as in 0.1.0. The checks run in 0.1.0's
    order: metaschema first. Raises :class:`InvalidSchemaError` (a
    ``jsonschema.SchemaError``) when the document does not match its
    metaschema or holds a pattern that is not an ECMA-262 regular expression,
    and :class:`SchemaRegistrationError` (a ``ValueError``) when it is not
    JSON data, ``$id`` or ``version`` is missing or cannot be written to a
    JSON line, a property name starts with ``__``, a property's
    ``categories`` is not a list of strings, a reference (``$ref``,
    ``$dynamicRef``, ``$recursiveRef``) leaves the document (nothing is ever
    fetched) or points to nothing in it, or the document is nested too deeply.
    """
    try:
        return _compile(document, formats)
    except RecursionError:
        raise SchemaRegistrationError(
            "the schema is nested too deeply to check (Python's recursion limit)"
        ) from None


def _compile(document: Mapping[str, Any], formats: bool) -> Schema:
    if not isinstance(document, Mapping):
        raise SchemaRegistrationError(
            f"a schema must be a JSON object (dict), got {type(document).__name__}"
        )
    where = (
        f"schema {document['$id']!r} version {document.get('version')!r}"
        if "$id" in document
        else "a schema without '$id'"
    )
    doc, shape = _document.copy_json(document, where)  # ours alone: the caller's stays as is
    if not isinstance(doc.get("$schema", ""), str):
        raise SchemaRegistrationError(
            f"{where} has a '$schema' that is not a string: {doc['$schema']!r}"
        )
    draft = jsonschema.validators.validator_for(doc, default=DEFAULT_DRAFT)
    try:
        # Patterns are ECMA-262, not Python's re: the compiler below checks them.
        draft.check_schema(doc, format_checker=None)  # type: ignore[call-arg]
    except jsonschema.SchemaError as exc:
        raise _invalid(where, exc.json_path, exc.message, exc) from None

    missing = [key for key in ("$id", "version") if key not in doc]
    if missing:
        raise SchemaRegistrationError(
            "schema is missing required key(s): " + ", ".join(repr(k) for k in missing)
        )
    schema_id, version = doc["$id"], doc["version"]
    if not isinstance(schema_id, str) or not schema_id:
        raise SchemaRegistrationError(f"schema '$id' must be a non-empty string, got {schema_id!r}")
    _version_key(version)
    if isinstance(version, int) and not _events.fits_a_line(version):
        raise SchemaRegistrationError(
            f"{where}: an integer version must fit in 64 bits to be written to a JSON line"
        )
    for path, name in shape.property_names:
        if name.startswith("__"):
            raise SchemaRegistrationError(
                f"{where} declares property {name!r} at {_document.pointer(path)}/properties: "
                "names starting with '__' are reserved for the event capsule"
            )
    _categories.check(doc)
    for path, keyword, ref in shape.refs:
        if not ref.startswith("#"):
            raise SchemaRegistrationError(
                f"{where} has a {keyword} to {ref!r} at {_document.pointer(path)}: only "
                "references inside the schema ('#...') are supported; remote schemas are "
                "never fetched"
            )
    for path, pattern in shape.patterns:
        # every draft's metaschema says "format": "regex", not all assert it
        if not _ECMA_262.is_valid(pattern):
            raise InvalidSchemaError(
                f"{where} has a pattern that is not an ECMA-262 regular expression at "
                f"{_document.pointer(path)}: {pattern!r}"
            )
    _check_refs(doc, draft, where)
    # The root $id is a name (any string, as in 0.1.0), not a base URI to check:
    # with only '#' references, each resolves the same without it. The draft is
    # chosen above, so "$schema" too is only a name.
    anonymous = {key: value for key, value in doc.items() if key not in ("$id", "$schema")}
    try:
        validator = _COMPILERS[draft](
            anonymous, validate_formats=formats, retriever=_refuse, ignore_unknown_formats=True
        )
    except jsonschema_rs.ValidationError as exc:
        if isinstance(exc.kind, jsonschema_rs.ValidationErrorKind.Referencing):
            raise SchemaRegistrationError(
                f"{where} has a reference that points to nothing in the schema: {exc.message}"
            ) from None
        raise _invalid(
            where, _events.json_path(list(exc.instance_path)), exc.message, None
        ) from None
    except ValueError as exc:  # e.g. "Recursion limit reached"
        raise SchemaRegistrationError(f"{where} cannot be compiled: {exc}") from None
    return Schema(schema_id, version, doc, validator, _document.max_event_depth(shape))


def _invalid(where: str, path: str, reason: str, cause: Any) -> InvalidSchemaError:
    message = f"{where} is not a valid JSON Schema at {path}: {reason}"
    if cause is None:
        return InvalidSchemaError(message)
    return InvalidSchemaError(
        message,
        validator=cause.validator,
        path=cause.relative_path,
        context=cause.context,
        validator_value=cause.validator_value,
        instance=cause.instance,
        schema=cause.schema,
        schema_path=cause.relative_schema_path,
    )


def _refuse(uri: str) -> Any:
    raise SchemaRegistrationError(f"remote reference {uri!r} is never fetched")


def _check_refs(
    doc: dict[str, Any], draft: type[jsonschema.protocols.Validator], where: str
) -> None:
    """Resolve every ``$ref`` in every subschema, used or not, once.

    The compiler resolves only the references validation can reach; one that
    points to nothing is a mistake wherever it is.
    """
    dialect = draft.META_SCHEMA.get("$schema", "")
    specification = referencing.jsonschema.specification_with(
        dialect, default=referencing.Specification.OPAQUE
    )
    root = specification.create_resource(doc)
    pending = [(referencing.Registry().resolver_with_root(root), root)]
    while pending:
        resolver, resource = pending.pop()
        contents = resource.contents
        if not isinstance(contents, Mapping):
            continue
        ref = contents.get("$ref")
        if isinstance(ref, str):
            try:
                target = resolver.lookup(ref).contents
            # referencing raises TypeError/ValueError for a pointer through a boolean
            # schema or a non-numeric index into an array, not Unresolvable.
            except (referencing.exceptions.Unresolvable, TypeError, ValueError):
                raise SchemaRegistrationError(
                    f"{where} has a $ref to {ref!r}, which points to nothing in the schema"
                ) from None
            if not isinstance(target, (Mapping, bool)):
                raise SchemaRegistrationError(
                    f"{where} has a $ref to {ref!r}, which points to {target!r} "
                    f"(of type {type(target).__name__}), not to a schema"
                )
        pending.extend(
            (resolver.in_subresource(sub), sub)
            for sub in resource.subresources()
            if isinstance(sub.contents, Mapping)  # not dependencies' arrays of names
        )


class Registry:
    """Schemas keyed by ``($id, str(version))``; several versions of one ``$id`` coexist."""

    def __init__(self) -> None:
        self._schemas: dict[tuple[str, str], Schema] = {}

    def add(self, schema: Schema) -> None:
        """Register ``schema``; a second registration of its ``($id, version)`` is an error."""
        if schema.key in self._schemas:
            raise SchemaRegistrationError(
                f"schema {schema.id!r} version {schema.version!r} is already registered"
            )
        self._schemas[schema.key] = schema

    def get(self, schema_id: str, version: int | str) -> Schema:
        """Return the schema or raise :class:`UnregisteredSchemaError`."""
        try:
            return self._schemas[(schema_id, _version_key(version))]
        except (KeyError, SchemaRegistrationError):
            raise UnregisteredSchemaError(
                f"schema {schema_id!r} version {version!r} is not registered"
            ) from None

    def __iter__(self) -> Iterator[Schema]:
        return iter(list(self._schemas.values()))


__all__ = [
    "DEFAULT_DRAFT",
    "MAX_SCHEMA_BYTES",
    "MAX_YAML_NODES",
    "Registry",
    "Schema",
    "compile_schema",
    "load_file",
    "load_url",
    "parse_document",
]
