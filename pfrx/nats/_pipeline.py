"""The pipeline side of a worker: a `pfrx.Stream` on its own thread, and the lineage
that tells which inputs each result or drop came from.

Lineage rides on the context: each input gets a fresh `Context` from its
verified token, pfrx operators carry an input's context to everything made from it (a
transformed event, a processor's effects, a window's items), so the context of an output
names its inputs. When the pipeline lets go of an input's context (it was emitted, dropped,
or absorbed by design), a weak-reference finalizer reports the input *released*. An input
is acknowledged once it is released and every output naming it is published.
"""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

import attrs

from .._model import Context, Dropped, Envelope, Window
from ..operators import Operator
from ..stream import Stream
from ._wire import MalformedBody, decode_input, encode_result, output_msg_id
from .sink import Output, drop_output
from .tokens import CONTEXT_HEADER, InvalidToken, verify_context


class Delivery:
    """One fetched input as the pipeline thread sees it."""

    __slots__ = ("data", "delivered", "headers", "sid")

    def __init__(self, sid: str, data: bytes, headers: dict[str, str], delivered: int) -> None:
        self.sid = sid
        self.data = data
        self.headers = headers
        self.delivered = delivered


class PipelineRunner:
    """Runs ``factory()``'s operators as a stream; reports outputs and releases.

    Args:
        factory: returns the operators of the pipeline (called again after a failure).
        keys: verification keys.
        output / dropped: subjects.
        emit: called with each `Output` (from whatever thread the pipeline emits on).
        release: called with an input's id once the pipeline holds nothing of it.
        failed: called with the ids of inputs held by a stream that failed (to redeliver).
        max_deliver: the delivery at which an input is dropped unprocessed.
    """

    def __init__(
        self,
        factory: Callable[[], Sequence[Operator]],
        keys: Sequence[bytes],
        *,
        output: str,
        dropped: str,
        emit: Callable[[Output], None],
        release: Callable[[str], None],
        failed: Callable[[list[str]], None],
        max_deliver: int,
        name: str = "worker",
        on_new_stream: Callable[[Stream], None] | None = None,
    ) -> None:
        self.factory = factory
        self.keys = list(keys)
        self.output = output
        self.dropped = dropped
        self.emit = emit
        self.release = release
        self.failed = failed
        self.max_deliver = max_deliver
        self.name = name
        self._lock = threading.Lock()
        self._by_context: dict[int, str] = {}
        self._ordinals: OrderedDict[tuple[str, ...], int] = OrderedDict()
        self._current: str | None = None
        self._generation = 0
        self._held: dict[int, set[str]] = {}
        self._reported: dict[int, set[str]] = {}
        self._deferred: list[tuple[str, int]] = []
        self._deferring = False
        self._pipeline_thread = 0
        self._verified: dict[str, Context] = {}
        self.on_new_stream = on_new_stream
        self.stream = self._start()

    # -- stream lifecycle ------------------------------------------------------------------
    def _start(self) -> Stream:
        self._generation += 1
        generation = self._generation
        self._held[generation] = set()
        self._reported[generation] = set()
        operators = self.factory()
        if callable(operators):  # a factory may return one operator rather than a list
            operators = [operators]
        stream = Stream(*operators, name=self.name)
        stream.results.subscribe(
            self._on_result, lambda error: self._on_failure(generation, error), lambda: None
        )
        stream.dropped.subscribe(self._on_drop)
        if generation > 1 and self.on_new_stream is not None:
            self.on_new_stream(stream)
        return stream

    def _on_failure(self, generation: int, error: Exception) -> None:
        # What the failed stream held: an input it already reported (a window's items
        # come out as upstream_error drops before the error) ends with that report; the
        # others are handed back for redelivery. The culprit is _process_one's to drop.
        with self._lock:
            held = self._held.pop(generation, set())
            reported = self._reported.pop(generation, set())
        culprit = self._current
        # Inputs the failing stream let go of while the error travelled (an operator
        # clearing its buffer) are held back by _released: settle them here too.
        with self._lock:
            let_go = [sid for sid, gen in self._deferred if gen == generation]
            self._deferred = [(sid, gen) for sid, gen in self._deferred if gen != generation]
        back = []
        for sid in sorted(held.union(let_go)):
            if sid == culprit:
                continue
            if sid in reported:
                self.release(sid)
            else:
                back.append(sid)
        if back:
            self.failed(back)

    # -- lineage ---------------------------------------------------------------------------
    def _track(self, context: Context, sid: str) -> None:
        key = id(context)
        generation = self._generation
        with self._lock:
            self._by_context[key] = sid
            self._held[generation].add(sid)
        weakref.finalize(context, self._released, key, sid, generation)

    def _released(self, key: int, sid: str, generation: int) -> None:
        with self._lock:
            if self._by_context.get(key) == sid:
                del self._by_context[key]
            held = self._held.get(generation)
            if held is None:
                return  # its stream failed: _on_failure settled the input
            held.discard(sid)
            if self._deferring and threading.get_ident() == self._pipeline_thread:
                # Let go during a send: if that send fails the stream, the operator may
                # have dropped it silently; decided once the send returns.
                self._deferred.append((sid, generation))
                return
            self._reported.get(generation, set()).discard(sid)
        self.release(sid)

    def _sources(self, item: Any) -> tuple[str, ...]:
        contexts: list[Any] = []
        if isinstance(item, Envelope):
            contexts = [item.context]
        elif isinstance(item, Window):
            contexts = [getattr(envelope, "context", None) for envelope in item.items]
        ids: list[str] = []
        seen: set[str] = set()
        for context in contexts:
            sid = self._by_context.get(id(context))
            if sid is not None and sid not in seen:
                seen.add(sid)
                ids.append(sid)
        current = self._current
        if not ids and current is not None and threading.get_ident() == self._pipeline_thread:
            ids.append(current)  # emitted synchronously while this input was in
        return tuple(ids)

    def _ordinal(self, sources: tuple[str, ...], kind: str) -> int:
        key = (*sources, kind)
        with self._lock:
            n = self._ordinals.get(key, 0)
            self._ordinals[key] = n + 1
            self._ordinals.move_to_end(key)
            if len(self._ordinals) > 100_000:
                self._ordinals.popitem(last=False)
        return n

    def _mark_reported(self, sources: Sequence[str]) -> None:
        with self._lock:  # only held inputs matter (and are forgotten when released)
            held = self._held.get(self._generation, ())
            reported = self._reported.get(self._generation)
            if reported is not None:
                reported.update(sid for sid in sources if sid in held)

    def _drop(self, sources: Sequence[str], reason: str, operator: str) -> None:
        sources = tuple(sources)
        self._mark_reported(sources)
        msg_id = output_msg_id(sources, "d", self._ordinal(sources, "d"))
        self.emit(drop_output(self.dropped, msg_id, sources, reason, operator))

    # -- what the pipeline emits -----------------------------------------------------------
    def _on_result(self, value: Any) -> None:
        sources = self._sources(value)
        try:
            data = encode_result(value)
        except (TypeError, ValueError) as error:
            self._drop(sources, f"unserializable_result: {error}", "nats_sink")
            return
        self._mark_reported(sources)
        msg_id = output_msg_id(sources, "r", self._ordinal(sources, "r"))
        self.emit(Output(self.output, data, msg_id, sources, "result"))

    def _on_drop(self, record: Dropped) -> None:
        sources = self._sources(record.item)
        current = self._current
        if record.operator == "stream" and current is not None and sources == (current,):
            return  # the input that broke the pipeline: _process_one drops it, with the error
        self._drop(sources, record.reason, record.operator)

    # -- input -----------------------------------------------------------------------------
    def _verify(self, token: Any) -> Context:
        """A fresh context for each input (lineage needs one object per input), from a
        bounded cache of verified tokens: a session's inputs share one token."""
        if isinstance(token, str):
            known = self._verified.get(token)
            if known is not None:
                return attrs.evolve(known)
        context = verify_context(token, self.keys)
        if isinstance(token, str):
            if len(self._verified) >= 4096:
                self._verified.clear()
            self._verified[token] = context
        return attrs.evolve(context)

    def process(self, deliveries: Sequence[Delivery]) -> None:
        """Push a fetched batch through the pipeline (on the pipeline thread)."""
        for delivery in deliveries:
            self._process_one(delivery)

    def _process_one(self, delivery: Delivery) -> None:
        sid = delivery.sid
        with self._lock:
            for kind in ("r", "d"):
                self._ordinals.pop((sid, kind), None)  # a redelivery numbers its outputs anew
        if delivery.delivered >= self.max_deliver:
            self._drop((sid,), "max_deliver_exceeded", "worker")
            self.release(sid)
            return
        try:
            event = decode_input(delivery.data)
        except MalformedBody as error:
            self._drop((sid,), f"malformed_body: {error}", "decode")
            self.release(sid)
            return
        try:
            context = self._verify(delivery.headers.get(CONTEXT_HEADER))
        except InvalidToken:
            self._drop((sid,), "unauthenticated", "verify_context")
            self.release(sid)
            return
        if self.stream.done:
            self.stream = self._start()
        self._track(context, sid)
        self._current = sid
        self._pipeline_thread = threading.get_ident()
        self._deferring = True
        try:
            result = self.stream.send(event, context)
        finally:
            self._current = None
            del context
            self._deferring = False
            with self._lock:
                deferred, self._deferred = self._deferred, []
                for let_go, generation in deferred:
                    self._reported.get(generation, set()).discard(let_go)
            for let_go, _generation in deferred:
                self.release(let_go)
        if not result.ok:
            # Refused by a pipeline that had already failed: not this input's fault.
            with self._lock:
                self._held.get(self._generation, set()).discard(sid)
            self.failed([sid])
            self.stream = self._start()
        elif self.stream.error is not None:
            # This input broke the pipeline: it is dropped (not redelivered into a loop),
            # the others the failed stream held come back, and a fresh pipeline goes on.
            failure = self.stream.error
            reason = f"pipeline_failed: {type(failure).__name__}: {failure}"
            self._drop((sid,), reason, "pipeline")
            self.release(sid)
            self.stream = self._start()

    def close(self, timeout: float) -> None:
        self.stream.close()
        self.stream.join(timeout)
