"""Load, check and compile event schemas; keep them in a registry.

Everything expensive happens once, in :func:`compile_schema`: the metaschema
check, the structural checks and the building of the validators. Validating
an event then costs one call to generated code (``fastjsonschema``); the
slower ``jsonschema`` validator runs only to explain a failure.
"""

from __future__ import annotations

import copy
import json
import math
import os
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import IO, Any, TypeVar

import fastjsonschema
import jsonschema
import referencing
import referencing.exceptions
import referencing.jsonschema
import yaml

from . import _categories
from .errors import (
    EventValidationError,
    InvalidSchemaError,
    SchemaLoadError,
    SchemaRegistrationError,
    UnregisteredSchemaError,
)

# Schemas without "$schema" are read as Draft 7, the draft of the 0.1.0 era.
DEFAULT_DRAFT = jsonschema.Draft7Validator
# Drafts that fastjsonschema compiles; later drafts validate with jsonschema only.
_FAST_DRAFTS = (jsonschema.Draft4Validator, jsonschema.Draft6Validator, jsonschema.Draft7Validator)
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

MAX_SCHEMA_BYTES = 1024 * 1024
# http(s) only, redirects included: no file:, ftp: or data: handler to be redirected to.
_OPENER = urllib.request.OpenerDirector()
for _handler in (
    urllib.request.ProxyHandler(),
    urllib.request.HTTPHandler(),
    urllib.request.HTTPSHandler(),
    urllib.request.HTTPDefaultErrorHandler(),
    urllib.request.HTTPRedirectHandler(),
    urllib.request.HTTPErrorProcessor(),
):
    _OPENER.add_handler(_handler)


def _version_key(version: object) -> str:
    """``1`` and ``"1"`` name the same schema version."""
    if isinstance(version, bool) or not isinstance(version, (int, str)):
        raise SchemaRegistrationError(
            f"schema version must be an int or a str, got {type(version).__name__}: {version!r}"
        )
    return str(version)


@dataclass(frozen=True, eq=False)
class Schema:
    """A registered schema: its identity, a private copy of its document, its validators."""

    id: str
    version: int | str
    document: Mapping[str, Any]
    _fast: Callable[[Any], Any] | None = field(repr=False)
    _explainer: jsonschema.protocols.Validator = field(repr=False)

    @property
    def key(self) -> tuple[str, str]:
        return (self.id, _version_key(self.version))

    def validate(self, event: Any) -> None:
        """Raise :class:`EventValidationError` unless ``event`` matches; never mutates it."""
        fast = self._fast
        if fast is not None:
            try:
                fast(event)
                return
            except (fastjsonschema.JsonSchemaValueException, RecursionError):
                pass
        self.explain(event)

    def explain(self, event: Any) -> None:
        """Raise the :class:`EventValidationError` that best explains why ``event`` fails.

        Runs the full jsonschema validator; returns only if it finds no error.
        """
        try:
            best = jsonschema.exceptions.best_match(self._explainer.iter_errors(event))
        except RecursionError:
            # A recursive schema ($ref: "#") meets an event nested past the
            # interpreter's stack: an invalid event, not a crash.
            raise self.reject("the event is nested too deeply to validate", event) from None
        if best is not None:
            raise self._error(best.message, best) from None
        if self._fast is not None:  # the validators disagree: trust the stricter one
            try:
                self._fast(event)
            except fastjsonschema.JsonSchemaValueException as exc:
                path = "$" + "".join(f"[{p!r}]" for p in (exc.path or [])[1:])
                raise self.reject_at(path, exc.message, event) from None
            except RecursionError:
                raise self.reject("the event is nested too deeply to validate", event) from None

    def _where(self) -> str:
        return f"event for schema {self.id!r} version {self.version!r}"

    def _error(self, reason: str, cause: jsonschema.ValidationError) -> EventValidationError:
        error = _rewrap(
            EventValidationError,
            f"{self._where()} is invalid at {cause.json_path}: {reason}",
            cause,
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


_E = TypeVar("_E", EventValidationError, InvalidSchemaError)


def _rewrap(kind: type[_E], message: str, cause: Any) -> _E:
    """``cause`` (a jsonschema error) as ``kind``, with ``message`` and every detail kept."""
    return kind(
        message,
        validator=cause.validator,
        path=cause.relative_path,
        context=cause.context,
        validator_value=cause.validator_value,
        instance=cause.instance,
        schema=cause.schema,
        schema_path=cause.relative_schema_path,
    )


def compile_schema(document: Mapping[str, Any]) -> Schema:
    """Check ``document`` and return a compiled :class:`Schema`; never mutates it.

    Raises :class:`InvalidSchemaError` (a ``jsonschema.SchemaError``) when the
    document does not match its metaschema, and
    :class:`SchemaRegistrationError` (a ``ValueError``) when ``$id`` or
    ``version`` is missing, a property name starts with ``__``, a property's
    ``categories`` is not a list of strings, a ``$ref`` points outside the
    document (remote references are never fetched) or to nothing in it, or the
    document is nested too deeply to check.
    """
    try:
        return _compile(document)
    except RecursionError:
        raise SchemaRegistrationError(
            "the schema is nested too deeply to check (Python's recursion limit)"
        ) from None


def _compile(document: Mapping[str, Any]) -> Schema:
    if not isinstance(document, Mapping):
        raise SchemaRegistrationError(
            f"a schema must be a JSON object (dict), got {type(document).__name__}"
        )
    missing = [key for key in ("$id", "version") if key not in document]
    if missing:
        raise SchemaRegistrationError(
            "schema is missing required key(s): " + ", ".join(repr(k) for k in missing)
        )
    doc: dict[str, Any] = copy.deepcopy(dict(document))  # ours alone: the caller's stays as is
    schema_id, version = doc["$id"], doc["version"]
    if not isinstance(schema_id, str) or not schema_id:
        raise SchemaRegistrationError(f"schema '$id' must be a non-empty string, got {schema_id!r}")
    _version_key(version)
    where = f"schema {schema_id!r} version {version!r}"
    for path, node in _walk(doc, "#"):
        if not _is_json(node):
            raise SchemaRegistrationError(
                f"{where} holds {node!r} (of type {type(node).__name__}) at {path}: a schema "
                "is JSON data (objects with string keys, arrays, strings, finite numbers, "
                "booleans, null)"
            )
    if not isinstance(doc.get("$schema", ""), str):
        raise SchemaRegistrationError(
            f"{where} has a '$schema' that is not a string: {doc['$schema']!r}"
        )

    validator_cls = jsonschema.validators.validator_for(doc, default=DEFAULT_DRAFT)
    try:
        validator_cls.check_schema(doc)
    except jsonschema.SchemaError as exc:
        raise _rewrap(
            InvalidSchemaError,
            f"{where} is not a valid JSON Schema at {exc.json_path}: {exc.message}",
            exc,
        ) from None
    for path, name in _property_names(doc):
        if name.startswith("__"):
            raise SchemaRegistrationError(
                f"{where} declares property {name!r} at {path}: names starting with '__' "
                "are reserved for the event capsule"
            )
    _categories.check(doc)
    for path, ref in _refs(doc):
        if not ref.startswith("#"):
            raise SchemaRegistrationError(
                f"{where} has a $ref to {ref!r} at {path}: only references inside the "
                "schema ('#/...') are supported; remote schemas are never fetched"
            )
    _check_subschemas(doc, validator_cls, where)
    fast = None
    if validator_cls in _FAST_DRAFTS:
        try:
            fast = fastjsonschema.compile(  # it rewrites $refs in place: give it a copy
                copy.deepcopy(doc), handlers=_NO_FETCH, use_default=False, use_formats=False
            )
        except (fastjsonschema.JsonSchemaDefinitionException, re.error):
            fast = None  # a construct the code generator lacks: jsonschema alone will do
    return Schema(schema_id, version, doc, fast, validator_cls(doc))


def _check_subschemas(
    doc: dict[str, Any], validator_cls: type[jsonschema.protocols.Validator], where: str
) -> None:
    """Resolve every ``$ref`` and compile every regex as the validator will, once.

    A ``$ref`` to a path or anchor that is not in the document would otherwise
    raise a referencing error out of every ``record_event``, and a pattern
    Python cannot compile (Draft 4's metaschema does not check
    ``patternProperties``) an ``re.error`` out of registration.
    """
    dialect = validator_cls.META_SCHEMA.get("$schema", "")
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
        keyed = contents.get("patternProperties")
        for pattern in [contents.get("pattern"), *(keyed if isinstance(keyed, Mapping) else ())]:
            if not isinstance(pattern, str):
                continue
            try:
                re.compile(pattern)
            except re.error as exc:
                raise InvalidSchemaError(
                    f"{where} has a pattern Python cannot compile: {pattern!r} ({exc})"
                ) from None
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


def _refuse(uri: str) -> Any:
    raise SchemaRegistrationError(f"remote $ref {uri!r} is never fetched")


_NO_FETCH = {"http": _refuse, "https": _refuse, "file": _refuse, "": _refuse, "ftp": _refuse}


def _is_json(node: Any) -> bool:
    """Whether ``node`` itself is JSON data (YAML also yields dates, bytes and sets)."""
    if isinstance(node, dict):
        return all(isinstance(key, str) for key in node)
    if isinstance(node, float):
        return math.isfinite(node)
    return node is None or isinstance(node, (str, int, list))


def _walk(node: Any, path: str) -> Iterator[tuple[str, Any]]:
    yield path, node
    if isinstance(node, Mapping):
        for key, value in node.items():
            yield from _walk(value, f"{path}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _walk(value, f"{path}/{index}")


def _property_names(document: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    for path, node in _walk(document, "#"):
        if isinstance(node, Mapping) and isinstance(node.get("properties"), Mapping):
            for name in node["properties"]:
                yield f"{path}/properties", name


def _refs(document: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    for path, node in _walk(document, "#"):
        if isinstance(node, Mapping) and isinstance(node.get("$ref"), str):
            yield path, node["$ref"]


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


def parse_document(text: str | bytes, source: str) -> Any:
    """Parse JSON or YAML text (YAML is a superset of JSON); safe loading only."""
    try:
        return json.loads(text)
    except ValueError:
        pass
    except RecursionError:
        raise SchemaLoadError(f"{source} is nested too deeply to parse") from None
    try:
        return yaml.load(text, Loader=_YAML_LOADER)  # noqa: S506 - a safe loader
    except yaml.YAMLError as exc:
        raise SchemaLoadError(f"{source} is neither JSON nor YAML: {exc}") from None
    except RecursionError:
        raise SchemaLoadError(f"{source} is nested too deeply to parse") from None


def load_file(source: str | os.PathLike[str] | IO[Any]) -> Any:
    """Read a schema document from a path, a PathLike or an open (text or binary) file."""
    if hasattr(source, "read"):
        name = getattr(source, "name", repr(source))
        return parse_document(source.read(), str(name))
    with open(source, "rb") as handle:
        return parse_document(handle.read(), os.fspath(source))


def load_url(url: str, timeout: float, max_bytes: int = MAX_SCHEMA_BYTES) -> Any:
    """Fetch a schema document over http(s) within ``timeout`` seconds and ``max_bytes``.

    Raises :class:`SchemaLoadError` for another scheme, a network error, an
    HTTP error status, a body over ``max_bytes`` or unparseable content.
    """
    scheme = urllib.parse.urlsplit(url).scheme.lower()
    if scheme not in ("http", "https"):
        raise SchemaLoadError(
            f"schema URL {url!r} must use http or https, not {scheme or 'no scheme'!r}"
        )
    deadline = time.monotonic() + timeout
    chunks: list[bytes] = []
    size = 0
    try:
        with _OPENER.open(url, timeout=timeout) as response:
            while size <= max_bytes:
                if time.monotonic() > deadline:
                    raise SchemaLoadError(f"fetching schema {url!r} took longer than {timeout} s")
                chunk = response.read1(64 * 1024)
                if not chunk:
                    break
                chunks.append(chunk)
                size += len(chunk)
    except urllib.error.HTTPError as exc:
        raise SchemaLoadError(
            f"fetching schema {url!r} failed: HTTP {exc.code} {exc.reason}"
        ) from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise SchemaLoadError(f"fetching schema {url!r} failed: {reason}") from None
    body = b"".join(chunks)
    if len(body) > max_bytes:
        raise SchemaLoadError(f"schema at {url!r} is larger than {max_bytes} bytes")
    return parse_document(body, url)
