"""Helpers for testing code that records events.

``capture_events`` collects what an :class:`~jupyter_telemetry.EventLog`
writes, parsed back from the very JSON lines its handlers receive::

    from jupyter_telemetry.testing import capture_events

    with capture_events(app.eventlog) as events:
        app.open_file("/home/ada/notebook.ipynb")
    assert events[0]["__schema__"] == "https://events.example.org/jupyter/file-opened"
    assert events[0]["path"] == "/home/ada/notebook.ipynb"

``read_events`` reads a JSON-lines file back. With pytest, the
``eventlog_capture`` fixture (registered automatically when this package is
installed) captures for the rest of a test::

    def test_open(eventlog_capture):
        events = eventlog_capture(app.eventlog)
        app.open_file("/home/ada/notebook.ipynb")
        assert [e["path"] for e in events] == ["/home/ada/notebook.ipynb"]
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .eventlog import EventLog

Capsule = dict[str, Any]


class _CaptureHandler(logging.Handler):
    """Parse each JSON line an EventLog emits and append it to a list."""

    def __init__(self, events: list[Capsule]) -> None:
        super().__init__()
        self.events = events

    def emit(self, record: logging.LogRecord) -> None:
        self.events.append(json.loads(record.getMessage()))


@contextmanager
def capture_events(eventlog: EventLog) -> Iterator[list[Capsule]]:
    """Yield a list that receives every capsule ``eventlog`` records inside the block.

    Each item is the event's JSON line, parsed: the four ``__`` capsule keys
    followed by the (redacted) event. The eventlog's own handlers keep
    working; the capture handler is removed on exit, even after an error.
    An EventLog with no handler and no exporter records nothing, but it does
    while a capture is attached.
    """
    events: list[Capsule] = []
    handler = _CaptureHandler(events)
    eventlog.handlers = [*eventlog.handlers, handler]
    try:
        yield events
    finally:
        eventlog.handlers = [h for h in eventlog.handlers if h is not handler]


def read_events(path: str | os.PathLike[str]) -> list[Capsule]:
    """Every event in a JSON-lines file (as the file sink writes it), in order.

    Raises ``ValueError`` naming the file and line number for a line that is
    not a JSON object, and ``OSError`` when the file cannot be read.
    """
    events: list[Capsule] = []
    with open(path, encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            try:
                event = json.loads(line)
            except ValueError as exc:
                raise ValueError(f"{os.fspath(path)}:{number}: not JSON: {exc}") from None
            if not isinstance(event, dict):
                raise ValueError(
                    f"{os.fspath(path)}:{number}: expected a JSON object, "
                    f"got {type(event).__name__}"
                )
            events.append(event)
    return events


try:
    import pytest
except ModuleNotFoundError:  # pragma: no cover - only pytest loads this module as a plugin
    pass
else:

    @pytest.fixture
    def eventlog_capture() -> Iterator[Callable[[EventLog], list[Capsule]]]:
        """A function that captures an EventLog's events until the end of the test.

        ``events = eventlog_capture(eventlog)`` returns the list that
        :func:`capture_events` fills; every capture is detached at teardown.
        """
        with ExitStack() as stack:
            yield lambda eventlog: stack.enter_context(capture_events(eventlog))


__all__ = ["capture_events", "read_events"]
