"""The hub's one error policy, in words: whose fault is a failure?

- **The message's** (a sender's bad input, or a domain refusal): it can never be used.
  It is dead-lettered with its reason and the consumer moves on. Raised as
  `MessageRefused`, or as a service's own named error mapped to a reason.
- **Ours** (a bug: any other exception while handling one message): also dead-lettered,
  as `internal_error`, so one message cannot stop a partition; logged as an error with
  the exception and counted, because someone must fix the code and re-send the bytes.
- **The infrastructure's** (PostgreSQL or Kafka unreachable, a pool timeout): nothing is
  wrong with the message. The consumer waits, backing off, and retries it.

Pure: no I/O. `services.shared.consuming` applies this to every consumer.
"""

from __future__ import annotations

from collections.abc import Mapping

import psycopg
from aiokafka.errors import KafkaError as AsyncKafkaError
from eventsourcing import persistence as store
from kafka.errors import KafkaError
from psycopg import errors as sql
from psycopg_pool import PoolTimeout

from contracts.dead_letter import Problem, ReasonCode

INFRASTRUCTURE_ERRORS: tuple[type[BaseException], ...] = (
    # Unreachable, restarting, failing over, or deadlocked: waiting cures it.
    psycopg.OperationalError, psycopg.InterfaceError, sql.ReadOnlySqlTransaction, PoolTimeout,
    store.OperationalError, store.InterfaceError, store.InternalError,
    # Two writers at once (a rebalance): retrying re-reads the stream and decides again.
    store.IntegrityError,
    # A schema or a grant that does not match the code: an operator cures it, and no
    # message should be set aside meanwhile.
    sql.UndefinedTable, sql.UndefinedColumn, sql.UndefinedFunction, sql.InsufficientPrivilege,
    store.ProgrammingError,
    KafkaError, AsyncKafkaError, ConnectionError, TimeoutError,
)


class MessageRefused(Exception):
    """Raised when a message can never be used: the reason code and, for each thing
    wrong, where and what (never the values themselves: they may be SEN data)."""

    def __init__(self, reason: ReasonCode, problems: list[Problem]) -> None:
        super().__init__(f"{reason}: " + "; ".join(f"{p.path}: {p.message}" for p in problems))
        self.reason = reason
        self.problems = problems


def is_infrastructure(error: BaseException) -> bool:
    """True for trouble that waiting can cure: retry, do not dead-letter."""
    return isinstance(error, INFRASTRUCTURE_ERRORS)


def refusal_of(error: Exception, refusals: Mapping[type[Exception], ReasonCode]
               ) -> MessageRefused | None:
    """The refusal an exception stands for, or None when it is a bug of ours. (A
    message that fails its contract is refused where it is parsed; a validation error
    later, while storing, is ours.)"""
    if isinstance(error, MessageRefused):
        return error
    for kind, reason in refusals.items():
        if isinstance(error, kind):
            return MessageRefused(reason, [Problem(path="", message=f"{type(error).__name__}: "
                                                   f"{error}")])
    return None


def internal_error(error: Exception, service: str) -> MessageRefused:
    """A bug of ours, as a dead letter's reason: the exception's type, not its text,
    since a message could hold a pupil's details."""
    return MessageRefused("internal_error", [Problem(
        path="", message=f"the hub's {service} service failed on this message "
        f"({type(error).__name__}); this is the hub's fault, not the sender's")])
