"""Read schema documents: JSON or YAML text, files and http(s) URLs.

Everything here returns plain parsed data; checking it as a schema is
:func:`jupyter_telemetry._schema.compile_schema`'s job.
"""

from __future__ import annotations

import functools
import json
import os
import time
import urllib.error
import urllib.parse
from typing import IO, TYPE_CHECKING, Any

import yaml

from .errors import SchemaLoadError

if TYPE_CHECKING:
    import urllib.request

MAX_SCHEMA_BYTES = 1024 * 1024
#: How many nodes YAML aliases may expand a document to (a document that is
#: this large by itself, alias-free, is read whole).
MAX_YAML_NODES = 100_000

_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


# http(s) only, redirects included: no file:, ftp: or data: handler to be redirected to.
@functools.cache
def _opener() -> urllib.request.OpenerDirector:
    # urllib.request (and ssl) load on the first register_schema_url, not at import.
    import urllib.request

    opener = urllib.request.OpenerDirector()
    for handler in (
        urllib.request.ProxyHandler(),
        urllib.request.HTTPHandler(),
        urllib.request.HTTPSHandler(),
        urllib.request.HTTPDefaultErrorHandler(),
        urllib.request.HTTPRedirectHandler(),
        urllib.request.HTTPErrorProcessor(),
    ):
        opener.add_handler(handler)
    return opener


def parse_document(text: str | bytes, source: str) -> Any:
    """Parse JSON or YAML text (YAML is a superset of JSON); safe loading only.

    Raises :class:`SchemaLoadError` naming ``source`` for text that is
    neither, is nested too deeply, or whose YAML aliases would expand it past
    :data:`MAX_YAML_NODES` nodes (or into itself).
    """
    try:
        return json.loads(text)
    except ValueError:
        pass
    except RecursionError:
        raise SchemaLoadError(f"{source} is nested too deeply to parse") from None
    try:
        return _load_yaml(text, source)
    except yaml.YAMLError as exc:
        raise SchemaLoadError(f"{source} is neither JSON nor YAML: {exc}") from None
    except RecursionError:
        raise SchemaLoadError(f"{source} is nested too deeply to parse") from None


def _load_yaml(text: str | bytes, source: str) -> Any:
    loader = _YAML_LOADER(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _bound_aliases(node, source)
        return loader.construct_document(node)
    finally:
        loader.dispose()


def _bound_aliases(root: yaml.Node, source: str) -> None:
    """Refuse a node graph whose aliases expand it past its own size and MAX_YAML_NODES.

    An alias is a second edge to a node already composed: counting each
    node's expanded size once (memoised) costs one pass over the text's nodes.
    """
    sizes: dict[int, int] = {}
    # (node, children pushed?) pairs; a node met again while still open is a cycle
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, expanded = stack.pop()
        if id(node) in sizes and not expanded:
            if sizes[id(node)] < 0:
                raise SchemaLoadError(
                    f"{source}: a YAML alias refers to a node that contains it "
                    "(a document without end)"
                )
            continue
        children = _children(node)
        if not expanded:
            sizes[id(node)] = -1  # open
            stack.append((node, True))
            stack.extend((child, False) for child in children)
            continue
        sizes[id(node)] = 1 + sum(sizes[id(child)] for child in children)
    total = sizes[id(root)]
    if total > max(MAX_YAML_NODES, len(sizes)):
        raise SchemaLoadError(
            f"{source}: YAML aliases expand the document to {total} nodes from {len(sizes)} "
            f"(at most {MAX_YAML_NODES}); write the repeated parts out or use '$ref'"
        )


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []


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
        with _opener().open(url, timeout=timeout) as response:
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
