"""Destinations for recorded events, all speaking one small protocol.

``record_event`` builds one :class:`Emission` per event — validated,
redacted, wrapped in its capsule and serialised once — and hands it to each
live sink in turn. A sink's ``emit`` must not raise and must not block on I/O
it does not own; ``record_event`` still guards every call, so one failing
sink never stops the others.
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple, Protocol


class Emission(NamedTuple):
    """One recorded event, as every sink receives it."""

    capsule: dict[str, Any]  #: the envelope plus the (redacted) event, as written
    line: str  #: ``capsule`` as one pure-ASCII JSON object (``_render.dumps``), no newline
    time_ns: int  #: ``__timestamp__`` as Unix nanoseconds
    schema_id: str
    version: int | str


#: ``emission((capsule, line, time_ns, schema_id, version))``: an :class:`Emission` built by
#: ``tuple.__new__`` in C; ``Emission(...)`` runs a generated Python ``__new__`` per event.
emission = functools.partial(tuple.__new__, Emission)


class Sink(Protocol):
    """What every destination implements."""

    def emit(self, emission: Emission) -> None:
        """Deliver or enqueue one event; report failures, never raise them."""

    def flush(self, timeout: float | None = None) -> bool:
        """Push out what is queued; ``True`` when everything was delivered in time."""

    def shutdown(self, timeout: float | None = None) -> None:
        """Flush within ``timeout`` seconds and release resources; idempotent."""
