"""The FileSystem domain: sandboxed I/O, the FileStream processor, windows, filters."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import reactivex
from reactivex import operators as ops
from reactivex.testing import TestScheduler

import pfrx
from pfrx import operators as pf
from pfrx.examples.filesystem import (
    AdaptiveBackpressure,
    CountWindow,
    DeleteFile,
    FileActivitySummary,
    FileBackpressure,
    FileCap,
    FileDeleteEvent,
    FileEventFilter,
    FileEventTransformer,
    FileProcessingPipeline,
    FileReadEvent,
    FileStream,
    FileStreamState,
    FileWindowing,
    FileWriteEvent,
    ProcessingStats,
    ReadFile,
    Sandbox,
    SandboxError,
    SessionWindow,
    TimeWindow,
    WriteFile,
    file_context,
    required_capability,
)

ADMIN = file_context("root", "s0", [FileCap.admin("/")])


def run(processor: FileStream, events: list[Any], context: pfrx.Context = ADMIN) -> Any:
    dropped: list[pfrx.Dropped] = []
    out = (
        pfrx.envelopes(events, context)
        .pipe(pf.process(processor, on_drop=dropped.append), ops.to_list())
        .run()
    )
    return [e.event for e in out], dropped


def test_intents_and_capabilities() -> None:
    assert required_capability(ReadFile("/a", "u")) == FileCap.read("/a")
    assert required_capability(WriteFile("/a", "x", "u")) == FileCap.write("/a")
    assert required_capability(DeleteFile("/a", "u")) == FileCap.delete("/a")
    with pytest.raises(TypeError):
        required_capability("not an intent")
    with pytest.raises(TypeError):
        ReadFile(42, "u")  # type: ignore[arg-type]
    assert ADMIN.has_capability(FileCap.delete("/x"))  # admin implies all
    assert WriteFile("/a", "é", "u").data == "é".encode()
    assert ReadFile("/a", "u", {"k": 1}).metadata["k"] == 1


def test_file_stream_reads_writes_and_deletes_for_real(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.txt").write_bytes(b"alpha")
    events, dropped = run(
        FileStream(tmp_path),
        [
            ReadFile("/docs/a.txt", "root"),
            WriteFile("/new/dir/b.txt", "beta", "root"),
            DeleteFile("/docs/a.txt", "root"),
            ReadFile("/docs/a.txt", "root"),
        ],
    )
    assert dropped and [d.reason for d in dropped] == ["not_found"]
    read, written, deleted = events
    assert isinstance(read, FileReadEvent) and read.content == b"alpha"
    assert isinstance(written, FileWriteEvent) and written.size == 4
    assert isinstance(deleted, FileDeleteEvent)
    assert (tmp_path / "new" / "dir" / "b.txt").read_bytes() == b"beta"
    assert not (tmp_path / "docs" / "a.txt").exists()


def test_file_stream_checks_capabilities_per_path(tmp_path: Path) -> None:
    (tmp_path / "public").mkdir()
    (tmp_path / "public" / "p.txt").write_text("p")
    (tmp_path / "secret.txt").write_text("s")
    reader = file_context("bob", "s", [FileCap.read("/public")])
    events, dropped = run(
        FileStream(tmp_path),
        [
            ReadFile("/public/p.txt", "bob"),
            ReadFile("/secret.txt", "bob"),
            ReadFile("/public/../secret.txt", "bob"),
            WriteFile("/public/p.txt", "x", "bob"),
        ],
        reader,
    )
    assert [e.content for e in events] == [b"p"]
    assert [d.reason for d in dropped] == ["insufficient_capabilities"] * 3
    assert (tmp_path / "public" / "p.txt").read_text() == "p"


def test_the_state_counts_reads_writes_and_errors(tmp_path: Path) -> None:
    stream = FileStream(tmp_path)
    state = stream.initial_state()
    ok = stream.process_event(WriteFile("/a", "x", "root"), ADMIN, state)
    assert isinstance(ok, pfrx.Ok) and ok.state == FileStreamState(writes=1)
    err = stream.process_event(ReadFile("/missing", "root"), ADMIN, ok.state)
    assert isinstance(err, pfrx.Err) and err.state == FileStreamState(writes=1, errors=1)
    unknown = stream.process_event("??", ADMIN, state)
    assert isinstance(unknown, pfrx.Err) and unknown.reason == "unknown_intent"


def test_paths_never_escape_the_root(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    outside = tmp_path / "outside.txt"
    outside.write_text("secret")
    (root / "inside.txt").write_text("fine")
    os.symlink(outside, root / "link_out")
    os.symlink(tmp_path, root / "dir_out")
    os.symlink(root / "inside.txt", root / "link_in")
    sandbox = Sandbox(root)
    # ``..`` never climbs above the sandbox's /
    assert sandbox.read("/../../inside.txt") == b"fine"
    # no symbolic link is followed, not even one that stays inside
    for path in ("/link_in", "/link_out", "/dir_out/outside.txt"):
        with pytest.raises(SandboxError) as refused:
            sandbox.read(path)
        assert refused.value.reason == "symlink_refused"
    with pytest.raises(SandboxError) as refused:
        sandbox.write("/dir_out/evil.txt", b"x")
    assert refused.value.reason == "symlink_refused"
    assert not (tmp_path / "evil.txt").exists()
    for bad in ("relative.txt", "", "/a\x00b", "*"):
        with pytest.raises(SandboxError) as refused:
            sandbox.read(bad)
        assert refused.value.reason == "invalid_path"
    # deleting a symbolic link is refused too: neither the link nor its target goes
    with pytest.raises(SandboxError) as refused:
        sandbox.delete("/link_out")
    assert refused.value.reason == "symlink_refused"
    assert outside.read_text() == "secret" and (root / "link_out").is_symlink()
    with pytest.raises(SandboxError):
        sandbox.delete("/")
    with pytest.raises(SandboxError) as refused:
        sandbox.read("/")
    assert refused.value.reason == "is_a_directory"
    assert sandbox.list("/") == ["dir_out", "inside.txt", "link_in", "link_out"]
    with pytest.raises(SandboxError) as refused:
        sandbox.list("/dir_out")
    assert refused.value.reason == "symlink_refused"
    with pytest.raises(ValueError, match="existing directory"):
        Sandbox(tmp_path / "nope")


def test_file_stream_drops_escapes_with_a_reason(tmp_path: Path) -> None:
    os.symlink("/etc", tmp_path / "etc")
    events, dropped = run(FileStream(tmp_path), [ReadFile("/etc/hostname", "root")])
    assert events == [] and [d.reason for d in dropped] == ["symlink_refused"]


def test_time_window_summarises_activity_per_path() -> None:
    scheduler = TestScheduler()
    stream = pfrx.Stream(TimeWindow(10.0), scheduler=scheduler)
    summaries: list[Any] = []
    stream.results.subscribe(summaries.append)
    stream.send(ReadFile("/a", "u"), ADMIN)
    stream.send(WriteFile("/a", "x", "u"), ADMIN)
    stream.send(ReadFile("/b", "u"), ADMIN)
    scheduler.advance_by(10.0)
    stream.send(DeleteFile("/a", "u"), ADMIN)
    scheduler.advance_by(10.0)
    assert summaries == [
        (FileActivitySummary("/a", 1, 1, 0, 10.0), FileActivitySummary("/b", 1, 0, 0, 10.0)),
        (FileActivitySummary("/a", 0, 0, 1, 20.0),),
    ]
    assert TimeWindow.window_size == 60.0 and FileWindowing.TimeWindow is TimeWindow


def test_count_window_gives_processing_stats() -> None:
    events = [FileReadEvent("/a", b"", "u", float(i), duration=0.5) for i in range(5)]
    out = pfrx.envelopes(events, ADMIN).pipe(CountWindow(2), ops.to_list()).run()
    assert [s.total_events for s in out] == [2, 2, 1]  # a partial window on completion
    assert all(isinstance(s, ProcessingStats) and s.avg_processing_time == 0.5 for s in out)
    assert CountWindow().size == 100


def test_session_window_summarises_each_users_session() -> None:
    scheduler = TestScheduler()
    stream = pfrx.Stream(SessionWindow(5.0), scheduler=scheduler)
    sessions: list[Any] = []
    stream.results.subscribe(sessions.append)
    alice, bob = file_context("alice"), file_context("bob")
    stream.send(ReadFile("/a", "alice"), alice)
    stream.send(WriteFile("/a", "x", "bob"), bob)
    scheduler.advance_by(2.0)
    stream.send(DeleteFile("/a", "alice"), alice)
    scheduler.advance_by(20.0)
    by_user = {s.key: (s.events, s.reads, s.writes, s.deletes) for s in sessions}
    assert by_user == {"alice": (2, 1, 0, 1), "bob": (1, 0, 1, 0)}


def test_adaptive_backpressure_and_its_rate_rule() -> None:
    assert FileBackpressure.AdaptiveBackpressure is AdaptiveBackpressure
    rate = AdaptiveBackpressure.calculate_adaptive_rate
    assert rate(1000.0, 100) == pytest.approx(880.0)  # room: 0.8 * 1000 * 1.1
    assert rate(1000.0, 9000) == pytest.approx(720.0)  # over 80 % full: 0.8 * 1000 * 0.9
    assert rate(10.0, 0) == pytest.approx(110.0)  # never under the minimum rate
    scheduler = TestScheduler()
    stream = pfrx.Stream(AdaptiveBackpressure(buffer_size=4), scheduler=scheduler)
    for i in range(10):
        stream.send(i, ADMIN)
    assert stream.metrics().backpressure_events == 6
    scheduler.start()
    snap = stream.metrics()
    assert snap.received == snap.emitted + snap.dropped == 10


def test_transformer_adds_metadata_and_limits_content() -> None:
    scheduler = TestScheduler()
    scheduler.advance_to(7.0)
    transformer = FileEventTransformer(scheduler=scheduler)
    read = transformer.transform_event(ReadFile("/a", "u"), ADMIN)
    assert dict(read.metadata) == {"operation": "read", "timestamp": 7.0}
    big = WriteFile("/a", b"x" * (1024 * 1024 + 1), "u")
    assert transformer.transform_event(big, ADMIN) == pfrx.Reject("content_too_large")
    ok = transformer.transform_event(WriteFile("/a", b"x" * 1024 * 1024, "u"), ADMIN)
    assert ok.metadata["operation"] == "write"
    dropped: list[pfrx.Dropped] = []
    out = (
        pfrx.envelopes([big, DeleteFile("/a", "u"), 42], ADMIN)
        .pipe(pf.transform(transformer.transform_event, on_drop=dropped.append), ops.to_list())
        .run()
    )
    assert [e.event.metadata["operation"] for e in out] == ["delete"]
    assert [d.reason for d in dropped] == ["content_too_large", "unknown_intent"]


def test_filter_allows_reads_under_allowed_and_protects_system() -> None:
    f = FileEventFilter()
    assert f.filter_event(ReadFile("/allowed/a", "u"), ADMIN) == ReadFile("/allowed/a", "u")
    for path in ("/etc/passwd", "/allowed/../etc/passwd", "/allowedx/a"):
        assert f.filter_event(ReadFile(path, "u"), ADMIN) == pfrx.Reject("access_denied")
    assert f.filter_event(WriteFile("/system/k", "x", "u"), ADMIN) == pfrx.Reject(
        "system_directory_protected"
    )
    assert f.filter_event(WriteFile("/home/../system/k", "x", "u"), ADMIN) == pfrx.Reject(
        "system_directory_protected"
    )
    assert f.filter_event(WriteFile("/systemd/k", "x", "u"), ADMIN).path == "/systemd/k"
    assert f.filter_event(DeleteFile("/system", "u"), ADMIN) == pfrx.Reject(
        "system_directory_protected"
    )
    stream = pfrx.Stream(FileEventFilter(), FileEventTransformer())
    events = [ReadFile("/allowed/x", "u"), ReadFile("/x", "u")]
    seen: list[Any] = []
    lost: list[pfrx.Dropped] = []
    stream.results.subscribe(seen.append)
    stream.dropped.subscribe(lost.append)
    for event in events:
        stream.send(event, ADMIN)
    assert [e.event.path for e in seen] == ["/allowed/x"]
    assert [(d.reason, d.operator) for d in lost] == [("access_denied", "file_event_filter")]


def test_file_processing_pipeline_as_one_stream(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("a")
    scheduler = TestScheduler()
    pipeline = FileProcessingPipeline(tmp_path, span=5.0, buffer_size=100, scheduler=scheduler)
    stream = pipeline.start()
    summaries: list[Any] = []
    stream.results.subscribe(summaries.append)
    stream.send(ReadFile("/a.txt", "root"), ADMIN)
    stream.send(WriteFile("/b.txt", "b", "root"), ADMIN)
    stream.send(ReadFile("/missing", "root"), ADMIN)
    scheduler.advance_by(5.0)
    assert summaries == [
        (FileActivitySummary("/a.txt", 1, 0, 0, 5.0), FileActivitySummary("/b.txt", 0, 1, 0, 5.0))
    ]
    snap = stream.metrics()
    assert dict(snap.drops_by_reason) == {"not_found": 1}
    assert {s.name for s in snap.operators} >= {"backpressure", "process", "window_time"}


def test_file_processing_pipeline_as_connected_streams(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("a")
    scheduler = TestScheduler()
    first, middle, last = FileProcessingPipeline(
        tmp_path, span=5.0, scheduler=scheduler
    ).start_connected()
    summaries: list[Any] = []
    ends: list[str] = []
    last.results.subscribe(summaries.append, None, lambda: ends.append("done"))
    first.send(ReadFile("/a.txt", "root"), ADMIN)
    first.close()
    scheduler.start()
    # completion closes the open window; its summary carries the window's end bound
    assert summaries == [(FileActivitySummary("/a.txt", 1, 0, 0, 5.0),)]
    assert ends == ["done"]
    assert first.done and middle.done and last.done


def test_a_stage_error_in_the_pipeline_names_the_stage(tmp_path: Path) -> None:
    def explode(source: reactivex.Observable[Any]) -> reactivex.Observable[Any]:
        return source.pipe(ops.map(lambda env: env.event.missing_attribute))

    stream = pfrx.Stream(
        pfrx.stage("file_stream", pf.process(FileStream(tmp_path))),
        pfrx.stage("summaries", explode),
    )
    (tmp_path / "a").write_text("a")
    stream.send(ReadFile("/a", "root"), ADMIN)
    assert isinstance(stream.error, pfrx.StageError) and stream.error.stage == "summaries"
