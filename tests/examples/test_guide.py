"""The guide's "Testing Your Stream Components", ported as faithfully as Python allows.

``PacketFlow.Stream.start_link(FileSystem.FileStream)`` is :func:`start_file_stream`;
``send_event`` is :meth:`pfrx.Stream.send` (``{:ok, _}`` is ``SendResult.ok``);
``get_metrics`` is :meth:`pfrx.Stream.metrics`. The FileStream does real I/O, so the files
the guide reads exist in the sandbox first. For the backpressure test the stream runs on a
``TestScheduler``: the "rapid" sends all happen before the consumer gets a turn, as the
guide intends, without depending on thread timing.
"""

from __future__ import annotations

from pathlib import Path

from reactivex.testing import TestScheduler

from pfrx.examples.filesystem import FileCap, FileContext, ReadFile, WriteFile, start_file_stream


def test_stream_processes_events_correctly(tmp_path: Path) -> None:
    (tmp_path / "test1.txt").write_text("one")
    (tmp_path / "test3.txt").write_text("three")
    # Start test stream
    stream = start_file_stream(tmp_path)

    # Send test events
    events = [
        ReadFile.new("/test1.txt", "user123"),
        WriteFile.new("/test2.txt", "content", "user123"),
        ReadFile.new("/test3.txt", "user123"),
    ]
    context = FileContext.new("user123", "session456", [FileCap.read("/"), FileCap.write("/")])

    # Process events
    results = [stream.send(event, context) for event in events]

    # Verify results
    assert all(result.ok for result in results)

    # ...and, beyond the guide: the I/O really happened, nothing was lost.
    stream.close()
    assert stream.join(timeout=10.0)
    assert (tmp_path / "test2.txt").read_text() == "content"
    snap = stream.metrics()
    assert (snap.received, snap.emitted, snap.dropped) == (3, 3, 0)


def test_stream_handles_backpressure_correctly(tmp_path: Path) -> None:
    for i in range(1, 11):
        (tmp_path / f"test{i}.txt").write_text(str(i))
    # Start test stream with small buffer
    stream = start_file_stream(tmp_path, buffer_size=5, scheduler=TestScheduler())

    # Send more events than buffer can handle
    events = [ReadFile.new(f"/test{i}.txt", "user123") for i in range(1, 11)]
    context = FileContext.new("user123", "session456", [FileCap.read("/")])

    # Send events rapidly
    for event in events:
        stream.send(event, context)

    # Verify backpressure was handled
    metrics = stream.metrics()
    assert metrics.backpressure_events > 0

    # ...and, beyond the guide: drop_oldest kept the newest five, every loss has a reason.
    assert metrics.backpressure_events == 5
    assert dict(metrics.drops_by_reason) == {"overflow": 5}
