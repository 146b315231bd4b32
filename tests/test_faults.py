"""Faults: failing handlers, a collector that dies, comes back or never comes."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from conftest import EVENT, SCHEMA, SCHEMA_ID, read_lines

from jupyter_telemetry import EventLog


def test_full_disk_handler_is_reported_once_and_harms_nothing_else(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    full = logging.FileHandler("/dev/full")  # a real device: every write fails with ENOSPC
    good = logging.FileHandler(tmp_path / "events.log")
    log = EventLog(handlers=[full, good], allowed_schemas=[SCHEMA_ID])
    log.register_schema(SCHEMA)
    for count in range(100):
        assert log.record_event(SCHEMA_ID, 1, {**EVENT, "count": count}) is not None
    good.close()
    assert [x["count"] for x in read_lines(tmp_path / "events.log")] == list(range(100))
    err = capsys.readouterr().err
    assert err.count("--- Logging error ---") == 1, err[:2000]
    assert "No space left on device" in err

    # the handler is otherwise untouched: other records still report their errors
    other = logging.getLogger("test_faults.other")
    other.propagate = False
    other.addHandler(full)
    other.error("not an event")
    other.removeHandler(full)
    assert capsys.readouterr().err.count("--- Logging error ---") == 1


def test_a_failure_streak_that_ends_and_starts_again_is_reported_again(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    class Flaky(logging.Handler):
        broken = True

        def emit(self, record: logging.LogRecord) -> None:
            try:
                if self.broken:
                    raise OSError("disk full")
            except OSError:
                self.handleError(record)

    flaky = Flaky()
    log = EventLog(handlers=[flaky], allowed_schemas=[SCHEMA_ID])
    log.register_schema(SCHEMA)
    for broken in (True, True, False, True, True):
        flaky.broken = broken
        log.record_event(SCHEMA_ID, 1, EVENT)
    assert capsys.readouterr().err.count("--- Logging error ---") == 2
