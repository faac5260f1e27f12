"""The fault suite's publisher (faults/driver.py) when its own producer stalls: a new
producer sends on; when it gives up, what it never sent is not expected of the hub and
the phase fails. kafka-python's producer played by a fake."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest
from kafka.errors import KafkaTimeoutError

from contracts.topics import Topics
from faults import driver
from faults.checker import Outcome, expected_from
from faults.model import Message, ValidEvent
from faults.plan import PROFILES, Plan
from faults.report import PhaseReport
from services.shared.settings import HubSettings


class FakeFuture:
    def __init__(self) -> None:
        self.errbacks: list[Callable[[Exception], None]] = []

    def add_errback(self, errback: Callable[[Exception], None]) -> None:
        self.errbacks.append(errback)


class FakeProducer:
    """Accepts sends until `stall_after` of them, then waits on metadata in vain; on
    close, fails the last one it accepted (held, never delivered)."""

    made: list[FakeProducer] = []
    stall_after: list[int | None] = []  # per producer made, in order

    def __init__(self, **options: Any) -> None:
        n = len(FakeProducer.made)
        self.stall = FakeProducer.stall_after[n] if n < len(FakeProducer.stall_after) else None
        self.sent: list[bytes | None] = []
        self.futures: list[FakeFuture] = []
        self.closed = False
        FakeProducer.made.append(self)

    def send(self, topic: str, key: bytes | None, value: bytes | None,
             headers: list[tuple[str, bytes]]) -> FakeFuture:
        if self.stall is not None and len(self.sent) >= self.stall:
            raise KafkaTimeoutError("Failed to update metadata after 60.0 secs.")
        self.sent.append(value)
        self.futures.append(FakeFuture())
        return self.futures[-1]

    def flush(self, timeout: float) -> None:
        return None

    def close(self, timeout: float) -> None:
        if not self.closed and self.stall is not None and self.futures:
            for errback in self.futures[-1].errbacks:
                errback(RuntimeError("closed before delivery"))
        self.closed = True


def plan(count: int) -> Plan:
    steady = [(Message("events", b"k", f"v{n}".encode()), ValidEvent(f"A80100000000{n % 3}",
                                                                      f"e{n}"))
              for n in range(count)]
    return Plan(1, replace(PROFILES["short"], rate=10_000.0), 1, steady, [], [])


@pytest.fixture
def producers(monkeypatch: pytest.MonkeyPatch) -> type[FakeProducer]:
    FakeProducer.made, FakeProducer.stall_after = [], []
    monkeypatch.setattr(driver, "KafkaProducer", FakeProducer)
    monkeypatch.setattr(driver, "client_options", lambda settings: {})
    return FakeProducer


def publish(p: Plan) -> driver.Published:
    publisher = driver.Publisher(p, HubSettings(), Topics("t."), time.time())
    publisher.run()
    return publisher.result


def test_a_producer_that_loses_its_metadata_is_replaced_and_the_stream_goes_on(
        producers: type[FakeProducer]) -> None:
    producers.stall_after = [3]
    p = plan(8)
    result = publish(p)
    first, second = producers.made
    assert first.sent == [b"v0", b"v1", b"v2"] and first.closed
    assert second.sent == [f"v{n}".encode() for n in range(3, 8)]
    assert result.stopped is None
    assert any("a new producer sends on" in e for e in result.errors)
    # The one the old producer held and never delivered is left out, not counted lost.
    assert result.failed == {p.steady[2][0]}
    assert expected_from(p, result.failed).unpublished == 1


def test_a_publisher_that_gives_up_leaves_out_what_it_never_sent_and_fails_the_phase(
        producers: type[FakeProducer]) -> None:
    producers.stall_after = [2] + [0] * driver.PRODUCERS_REPLACED
    p = plan(6)
    result = publish(p)
    assert len(producers.made) == 1 + driver.PRODUCERS_REPLACED
    assert result.stopped is not None and "metadata" in result.stopped
    assert {m for m, _ in p.steady[1:]} <= result.failed  # v1 held at close, v2.. never sent
    assert expected_from(p, result.failed).pupils == {}  # no pupil of it is expected whole
    report = PhaseReport(1, Outcome(), [], True, publisher_stopped=result.stopped)
    assert any("publisher stopped" in why for why in report.failures)
