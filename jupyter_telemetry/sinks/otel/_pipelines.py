"""What a sink's worker does with a batch: encode and export it, or emit it into a provider."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

from opentelemetry._logs import LoggerProvider as APILoggerProvider

from ..._version import __version__
from ._config import SCOPE
from ._encode import Encoder
from ._records import Item, emit
from ._transport import Transport

Counts = tuple[int, int, int]  # (exported, export failed, unencodable)


class Pipeline(Protocol):
    """One per worker thread; only that thread calls :meth:`send`."""

    def send(self, batch: Sequence[Item]) -> Counts:
        """Deliver ``batch``; never raises for a record, reports through ``report``."""

    def shutdown(self) -> None:
        """Release the exporter (interrupts a retry back-off); idempotent."""

    @property
    def in_call(self) -> bool:
        """Inside its exporter's call (a fork now leaves gRPC unusable in the child)."""


class Owned:
    """Encode and export through an exporter of our own (one per worker)."""

    def __init__(self, transport: Transport, encoder: Encoder, report: Callable[[str], None]):
        self.transport, self.encoder, self.report = transport, encoder, report
        self._shut = False

    @property
    def in_call(self) -> bool:
        return self.transport.in_call

    def send(self, batch: Sequence[Item]) -> Counts:
        counts = self._send(batch)
        if counts[1] and self.transport.settings.protocol == "grpc":
            self._renew()
        return counts

    def _renew(self) -> None:
        """After a failed export, a new gRPC channel: the old one waits out its reconnect
        back-off (up to 2 min) and would fail the next batches fast after the collector
        returned."""
        old = self.transport
        try:
            self.transport = old.renewed()
        except Exception:  # keep the old one; it reconnects in time
            return
        old.shutdown()
        if self._shut:  # shutdown() ran meanwhile and may have missed the new one
            self.transport.shutdown()

    def _send(self, batch: Sequence[Item]) -> Counts:
        if self.transport.seam:
            records, bad = [], 0
            for item in batch:
                try:
                    records.append(self.encoder.record(item))
                except Exception:
                    bad += 1
                    self.report("unencodable")
            if not records:
                return 0, 0, bad
            ok = self.transport.send(self.encoder.request(records), len(records))
            if ok is not None:
                return (len(records), 0, bad) if ok else (0, len(records), bad)
        exported, failed, bad = self.transport.export(batch)
        if bad:
            self.report("unencodable")
        return exported, failed, bad

    def shutdown(self) -> None:
        if not self._shut:  # the worker and an exit may both get here
            self._shut = True
            self.transport.shutdown()


class Emitting:
    """``Logger.emit`` into the application's provider; its processors export."""

    def __init__(self, provider: APILoggerProvider, report: Callable[[str], None]) -> None:
        self.logger = provider.get_logger(SCOPE, __version__)
        self.report = report

    in_call = False  # the application's processors export, not us

    def send(self, batch: Sequence[Item]) -> Counts:
        bad = 0
        for item in batch:
            try:
                emit(self.logger, item)
            except Exception:
                bad += 1
                self.report("unencodable")
        return 0, 0, bad

    def shutdown(self) -> None:
        pass
