"""CQRS and analytics streams (event sourcing is in test_eventstore.py)."""

from __future__ import annotations

from typing import Any

from reactivex.testing import TestScheduler

import pfrx
from pfrx import operators as pf
from pfrx.examples.filesystem import DeleteFile, FileReadEvent, ReadFile, WriteFile, file_context
from pfrx.examples.patterns import (
    AnalyticsStream,
    CommandProcessed,
    CQRSStream,
    FileAnalyticsEvent,
    QueryResult,
)

ALICE = file_context("alice", "s1")
BOB = file_context("bob", "s2")


def events_of(stream: pfrx.Stream) -> tuple[list[Any], list[pfrx.Dropped]]:
    seen: list[Any] = []
    lost: list[pfrx.Dropped] = []
    stream.results.subscribe(lambda env: seen.append(env.event))
    stream.dropped.subscribe(lost.append)
    return seen, lost


def test_cqrs_commands_change_the_read_model_and_queries_read_it() -> None:
    stream = pfrx.Stream(pf.process(CQRSStream()))
    seen, lost = events_of(stream)
    stream.send(ReadFile("/a", "alice"), ALICE)
    stream.send(WriteFile("/a", "one", "alice"), ALICE)
    stream.send(ReadFile("/a", "bob"), BOB)
    stream.send(DeleteFile("/a", "bob"), BOB)
    stream.send(ReadFile("/a", "alice"), ALICE)
    stream.send("not a message", ALICE)
    assert seen == [
        QueryResult("/a", None, 0),
        CommandProcessed("write_file", "/a", "alice", 1),
        QueryResult("/a", b"one", 1),
        CommandProcessed("delete_file", "/a", "bob", 2),
        QueryResult("/a", None, 2),
    ]
    assert not seen[0].found and seen[2].found
    assert [d.reason for d in lost] == ["unknown_message"]


def test_analytics_counts_by_operation_and_user() -> None:
    scheduler = TestScheduler()
    scheduler.advance_to(3.0)
    stream = pfrx.Stream(pf.process(AnalyticsStream(scheduler=scheduler)), scheduler=scheduler)
    seen, lost = events_of(stream)
    stream.send(ReadFile("/a", "alice"), ALICE)
    stream.send(WriteFile("/a", "x", "alice"), ALICE)
    stream.send(FileReadEvent("/a", b"", "bob", 0.0), BOB)  # facts count too
    stream.send(42, BOB)
    assert all(isinstance(e, FileAnalyticsEvent) for e in seen)
    assert [(e.operation, e.user_id, e.timestamp) for e in seen] == [
        ("read", "alice", 3.0),
        ("write", "alice", 3.0),
        ("read", "bob", 3.0),
    ]
    final = seen[-1].metrics
    assert final.total == 3
    assert dict(final.by_operation) == {"read": 2, "write": 1}
    assert dict(final.by_user) == {"alice": 2, "bob": 1}
    assert [d.reason for d in lost] == ["unknown_operation"]
    assert AnalyticsStream.get_operation_type(DeleteFile("/a", "u")) == "delete"
