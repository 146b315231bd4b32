"""Personal-data categories: decide once per schema and policy what is recorded.

:func:`redactor` compiles a schema whose subschemas carry ``categories`` (lists
of strings) and a policy (allowed categories, always with ``unrestricted``;
allowed property paths) into a plan, once; its function applies the plan to
each event. A property named in ``allowed_properties`` (a dotted path from the
root, array items transparent: ``users.email``) is recorded with its subtree,
its ancestors kept as containers for it. Otherwise a property under a withheld
parent is withheld; one with categories is recorded when all are allowed; one
without inherits its parent's decision, but at the top level it is withheld,
as are undeclared top-level keys. Withheld values become ``null``; keys and
array lengths stay. Followed: ``properties``, ``items``, ``prefixItems``,
``additionalItems``, ``additionalProperties``/``patternProperties``/
``unevaluatedProperties`` (undeclared keys), ``dependencies``,
``dependentSchemas``, local ``$ref``, ``allOf``/``anyOf``/``oneOf``/``if``/
``then``/``else``; the categories of all subschemas describing one value are
united, so doubt withholds. A recursive ``$ref`` is recorded whole when every
category it reaches is allowed, else withheld whole.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any, Final, NamedTuple, TypeAlias
from urllib.parse import unquote

from .errors import SchemaRegistrationError

#: A compiled plan: ``KEEP`` the value as is, ``NULL`` it, or call a function for a new one.
Plan: TypeAlias = Callable[[Any], Any] | bool
KEEP: Final = True
NULL: Final = False
UNRESTRICTED: Final = "unrestricted"
# The decision a parent hands down to its children without categories.
ROOT, RECORDED, WITHHELD = "root", "recorded", "withheld"
_UNRESOLVED: Final[Mapping[str, Any]] = {"categories": ["\x00unresolvable $ref"]}  # never allowed
_ANY: Final[Mapping[str, Any]] = {}  # the items of an array whose schema says nothing of them

_MAPS = frozenset(
    "properties patternProperties definitions $defs dependencies dependentSchemas".split()
)
_LISTS = frozenset("allOf anyOf oneOf items prefixItems".split())
_ONE = frozenset(
    "additionalProperties unevaluatedProperties items additionalItems contains not if then else".split()
)


def _subschemas(
    node: Any, pointer: str, names: tuple[str, ...]
) -> Iterator[tuple[str, tuple[str, ...], Mapping[str, Any]]]:
    """Every subschema with its JSON pointer and its dotted property path."""
    if not isinstance(node, Mapping):
        return
    yield pointer, names, node
    for key, value in node.items():
        if key in _MAPS and isinstance(value, Mapping):
            for name, sub in value.items():
                deeper = (*names, name) if key == "properties" else names
                yield from _subschemas(sub, f"{pointer}/{key}/{name}", deeper)
        elif key in _LISTS and isinstance(value, list):
            for index, sub in enumerate(value):
                yield from _subschemas(sub, f"{pointer}/{key}/{index}", names)
        elif key in _ONE:
            yield from _subschemas(value, f"{pointer}/{key}", names)


def check(document: Mapping[str, Any]) -> None:
    """Raise :class:`SchemaRegistrationError` (a ``ValueError``) naming the property
    path and JSON pointer of the first ``categories`` that is not a list of strings."""
    for pointer, names, node in _subschemas(document, "#", ()):
        value = node.get("categories")
        if "categories" in node and not (
            isinstance(value, list) and all(isinstance(c, str) for c in value)
        ):
            what = f"property {'.'.join(names)!r} at {pointer}" if names else pointer
            raise SchemaRegistrationError(
                f"schema {document.get('$id')!r} version {document.get('version')!r}: "
                f"'categories' of {what} must be a list of strings, got {value!r}"
            )


def uses_categories(document: Mapping[str, Any]) -> bool:
    """Whether any subschema of ``document`` declares ``categories``."""
    return any("categories" in node for _, _, node in _subschemas(document, "#", ()))


def _resolve(document: Mapping[str, Any], ref: str) -> Any:
    # "<$id>#/x" names this document as surely as "#/x" does
    base, _, fragment = ref.partition("#")
    if base not in ("", document.get("$id")) or fragment[:1] not in ("", "/"):
        return _UNRESOLVED  # another document, or a "#name" anchor: not followed
    node: Any = document
    for escaped in unquote(fragment).split("/")[1:]:
        part = escaped.replace("~1", "/").replace("~0", "~")
        if isinstance(node, Mapping) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return _UNRESOLVED
    return node


class _Facets(NamedTuple):
    """What the subschemas describing one value say, merged."""

    categories: frozenset[str] | None  #: ``None``: none declared
    properties: dict[str, list[Any]]
    other: list[Any]  #: subschemas of undeclared keys
    items: list[Any]
    ids: frozenset[int]  #: of every subschema merged, to spot recursion


def _facets(nodes: list[Any], document: Mapping[str, Any]) -> _Facets:
    categories: set[str] | None = None
    properties: dict[str, list[Any]] = {}
    other: list[Any] = []
    items: list[Any] = []
    seen: set[int] = set()
    todo = list(nodes)
    while todo:
        node = todo.pop()
        if not isinstance(node, Mapping) or id(node) in seen:
            continue
        seen.add(id(node))
        if "categories" in node:
            declared = node["categories"]  # unchecked when only a $ref reaches it
            valid = isinstance(declared, list) and all(isinstance(c, str) for c in declared)
            categories = (categories or set()) | set(
                declared if valid else _UNRESOLVED["categories"]
            )
        for name, sub in (node.get("properties") or {}).items():
            properties.setdefault(name, []).append(sub)
        other += (node.get("patternProperties") or {}).values()
        other += [node.get("additionalProperties"), node.get("unevaluatedProperties")]
        for key in ("items", "prefixItems", "additionalItems"):
            value = node.get(key)
            items += value if isinstance(value, list) else [value]
        if isinstance(node.get("$ref"), str):
            todo.append(_resolve(document, node["$ref"]))
        for key in ("dependencies", "dependentSchemas"):
            todo += (node.get(key) or {}).values()
        for key in ("allOf", "anyOf", "oneOf"):
            todo += node.get(key) or []
        todo += [node.get("if"), node.get("then"), node.get("else")]
    return _Facets(
        None if categories is None else frozenset(categories),
        properties,
        [n for n in other if isinstance(n, Mapping)],
        [n for n in items if isinstance(n, Mapping)],
        frozenset(seen),
    )


class _Compiler:
    """Turns (subschemas, property path, the parent's decision) into a :data:`Plan`."""

    def __init__(self, document: Mapping[str, Any], allowed: frozenset[str], named: frozenset[str]):
        self.document, self.allowed, self.named = document, allowed, named

    def node(self, nodes: list[Any], path: str | None, parent: str, up: frozenset[int]) -> Plan:
        """The plan of one value; ``path`` is ``None`` for keys the schema does not name;
        ``up`` holds the ids of the subschemas of its ancestors."""
        if path in self.named:
            return KEEP
        facets = _facets(nodes, self.document)
        if parent == WITHHELD or (facets.categories is None and parent == ROOT):
            state = WITHHELD
        elif facets.categories is None or facets.categories <= self.allowed:
            state = RECORDED
        else:
            state = WITHHELD
        if facets.ids & up:  # a recursive $ref: all or nothing
            return KEEP if state == RECORDED and self._reachable(nodes) <= self.allowed else NULL
        return self.container(facets, path, state, up | facets.ids)

    def container(self, facets: _Facets, path: str | None, state: str, up: frozenset[int]) -> Plan:
        """The plan of a value whose own decision is ``state``."""
        prefix = f"{path}." if path else ""
        below = [n[len(prefix) :] for n in self.named if path is not None and n.startswith(prefix)]
        if state == WITHHELD and not below:
            return NULL
        if not (below or facets.properties or facets.other or facets.items):
            return KEEP
        children = dict(facets.properties)
        for rest in below:
            children.setdefault(rest.split(".", 1)[0], facets.other)
        plans = {name: self.node(sub, prefix + name, state, up) for name, sub in children.items()}
        other = self.node(facets.other, None, state, up)
        # The event itself is a dict; an array's items share its path.
        item = KEEP if path == "" else self.node(facets.items or [_ANY], path, state, up)
        if state != WITHHELD and other is item is KEEP and all(p is KEEP for p in plans.values()):
            return KEEP
        return _apply(plans, other, item, keep_odd=state != WITHHELD)

    def _reachable(self, nodes: list[Any]) -> frozenset[str]:
        found: set[str] = set()
        seen: set[int] = set()
        todo = [nodes]
        while todo:
            facets = _facets(todo.pop(), self.document)
            if facets.ids <= seen:
                continue
            seen |= facets.ids
            found |= facets.categories or frozenset()
            todo += [*facets.properties.values(), facets.other, facets.items]
        return frozenset(found)


def _apply(plans: dict[str, Plan], other: Plan, item: Plan, keep_odd: bool) -> Callable[[Any], Any]:
    """The function for one container: a dict by key, a list by item, anything else whole
    (``keep_odd``) or as ``null``. It never mutates its argument."""
    nulls = tuple(name for name, plan in plans.items() if plan is NULL)
    calls = tuple((name, plan) for name, plan in plans.items() if callable(plan))
    known = frozenset(plans)
    objects = bool(nulls or calls or other is not KEEP)
    others = None if other is KEEP else other if callable(other) else (lambda _: None)
    items = None if item is KEEP else item if callable(item) else (lambda _: None)

    def redact(value: Any) -> Any:
        if isinstance(value, dict):
            if not objects:
                return value
            out = dict(value)
            if others is not None and not known.issuperset(out):
                for key in out.keys() - known:
                    out[key] = others(out[key])
            for key in nulls:
                if key in out:
                    out[key] = None
            for key, plan in calls:
                if key in out:
                    out[key] = plan(out[key])
            return out
        if isinstance(value, (list, tuple)):
            return value if items is None else list(map(items, value))
        return value if keep_odd else None

    return redact


def redactor(
    document: Mapping[str, Any], allowed: list[str] | Mapping[str, Any], schema_id: str
) -> Callable[[dict[str, Any]], dict[str, Any]] | None:
    """The redaction function for ``document`` under ``allowed``, or ``None`` to record all.

    ``allowed`` is ``EventLog.allowed_schemas``: the list form allows only
    ``unrestricted``; the dict form reads ``allowed_categories`` and
    ``allowed_properties`` of ``schema_id``. ``None`` when the schema declares
    no categories (recorded in full, as in 0.1.0, under either form) or when
    the policy withholds nothing. The function returns a new dict that shares
    the subtrees it leaves unchanged and never mutates its argument; neither
    ``document`` nor ``allowed`` is mutated or kept.
    """
    if not uses_categories(document):
        return None
    options = (allowed.get(schema_id) or {}) if isinstance(allowed, Mapping) else {}
    categories = frozenset(options.get("allowed_categories", ())) | {UNRESTRICTED}
    compiler = _Compiler(document, categories, frozenset(options.get("allowed_properties", ())))
    root = _facets([document], document)
    plan = compiler.container(root, "", ROOT, root.ids)
    return plan if callable(plan) else None
