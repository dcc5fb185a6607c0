"""Checkpoints: the state of a pipeline's stateful operators as plain data, and back.

The protocol, in three parts:

- A *member* is one subscription of a stateful operator (a time window, a session window,
  ...). It has ``snapshot() -> state`` (plain Python data: dicts, lists, tuples, numbers,
  strings and the held items themselves, nothing that refers to a scheduler, a lock or an
  observer) and ``restore(state)``.
- A `CheckpointScope` is opened around the subscription of a pipeline
  (`checkpointing`). Every stateful operator subscribed inside it registers its member
  with `CheckpointScope.register`, in subscription order — which is deterministic for
  a given pipeline, as the reporting scope of `pfrx.operators._shared` is.
  `CheckpointScope.snapshot` asks every member, in that order, and returns a
  `Checkpoint`.
- To restore, subscribe the same pipeline inside ``checkpointing(restore=checkpoint)``: the
  scope hands each registering member the state recorded at its position, checking that the
  operator's name matches; a restored member re-arms its own timers on its new scheduler.

What a [`Stream`][pfrx.Stream] does to offer ``checkpoint()`` (and any other owner of a
pipeline must do the same):

1. Subscribe its pipeline inside ``with checkpointing(restore=...) as scope:`` and keep
   ``scope``.
2. ``checkpoint()`` takes ``scope.snapshot()`` while *no item is in flight*: hold the lock
   that serialises sends, and, with a buffer between producer and pipeline, drain it first
   (or include the buffer's own member, which registers like any other). Each member takes
   its own lock while it copies its state, so a timer firing concurrently is serialised
   with the snapshot; an item half-way through the pipeline is not, which is why the
   stream must hold its sends.
3. Anything the stream adds (e.g. how many inputs it had accepted) goes in
   `Checkpoint.meta`. Outputs emitted before the snapshot belong to the past: a
   restored stream emits only what comes after, so a consumer that records its ledger
   next to the checkpoint (as ``meta``) resumes without duplicates or gaps.

`save` and `load` store a checkpoint in a file with `pickle` (written to a
temporary file and renamed, so a crash never leaves half a checkpoint). Only load files you
wrote: unpickling runs code.
"""

from __future__ import annotations

import copyreg
import gc
import io
import os
import pickle
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from types import MappingProxyType
from typing import Any, Protocol

import attrs

FORMAT = 1


class Checkpointable(Protocol):
    """One stateful operator subscription that can be checkpointed."""

    def snapshot(self) -> Any:
        """The member's state as plain data."""

    def restore(self, state: Any) -> None:
        """Take over ``state`` (from `snapshot` of the same operator)."""


class CheckpointMismatch(ValueError):
    """A checkpoint does not fit the pipeline it is restored into."""


def _as_tuple(states: Iterable[tuple[str, Any]]) -> tuple[tuple[str, Any], ...]:
    return tuple(states)


@attrs.frozen(slots=True)
class Checkpoint:
    """The states of a pipeline's stateful operators, in registration order.

    Attributes:
        states: ``(operator name, state)`` per member.
        meta: whatever the owner of the scope records beside them (plain data).
        format: the layout version.
    """

    states: tuple[tuple[str, Any], ...] = attrs.field(converter=_as_tuple)
    meta: Mapping[str, Any] = attrs.field(factory=dict)
    format: int = FORMAT


class CheckpointScope:
    """Collects the members subscribed inside `checkpointing`."""

    def __init__(self, restore: Checkpoint | None = None) -> None:
        if restore is not None and restore.format != FORMAT:
            raise CheckpointMismatch(f"checkpoint format {restore.format}, expected {FORMAT}")
        self._restore = restore
        self._members: list[tuple[str, Checkpointable]] = []

    def register(self, name: str, member: Checkpointable) -> None:
        """Add ``member``; when restoring, hand it the state recorded at its position.

        Raises:
            CheckpointMismatch: the checkpoint has no state at this position, or one
                recorded by an operator of another name.
        """
        position = len(self._members)
        self._members.append((name, member))
        if self._restore is None:
            return
        states = self._restore.states
        if position >= len(states):
            raise CheckpointMismatch(
                f"{name} is stateful member {position} but the checkpoint holds {len(states)}"
            )
        recorded, state = states[position]
        if recorded != name:
            raise CheckpointMismatch(f"member {position} is {name}; the checkpoint has {recorded}")
        with paused_gc():
            member.restore(state)

    @property
    def names(self) -> tuple[str, ...]:
        """The registered members' names, in order."""
        return tuple(name for name, _ in self._members)

    def snapshot(self, meta: Mapping[str, Any] | None = None) -> Checkpoint:
        """Every member's state, in registration order (call it while no item is in flight)."""
        with paused_gc():
            states = tuple((name, member.snapshot()) for name, member in self._members)
        return Checkpoint(states, dict(meta or {}))


@contextmanager
def paused_gc() -> Iterator[None]:
    """Cyclic garbage collection paused for a bulk copy.

    Copying a state builds many objects while many are alive: each collection the copy
    triggers scans all of them again, which can cost more than the copy itself.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


_scope: ContextVar[CheckpointScope | None] = ContextVar("pfrx_checkpoint_scope", default=None)


@contextmanager
def checkpointing(restore: Checkpoint | None = None) -> Iterator[CheckpointScope]:
    """Stateful operators subscribed inside this block register into the yielded scope
    (and take their state from ``restore`` when it is given)."""
    scope = CheckpointScope(restore)
    token = _scope.set(scope)
    try:
        yield scope
    finally:
        _scope.reset(token)


def current_scope() -> CheckpointScope | None:
    """The checkpoint scope active now, if any (operators call this at subscribe time)."""
    return _scope.get()


def _mapping_proxy(content: dict[Any, Any]) -> MappingProxyType[Any, Any]:
    return MappingProxyType(content)


def _reduce_mapping_proxy(proxy: MappingProxyType[Any, Any]) -> tuple[Any, ...]:
    return _mapping_proxy, (dict(proxy),)


class _Pickler(pickle.Pickler):
    def __init__(self, file: io.BytesIO) -> None:
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        # Contexts keep their metadata in read-only mapping proxies, which pickle refuses:
        # store them as the dicts they wrap, only in checkpoints (no global registration).
        self.dispatch_table = {**copyreg.dispatch_table, MappingProxyType: _reduce_mapping_proxy}


def dumps(checkpoint: Checkpoint) -> bytes:
    """``checkpoint`` as bytes (pickle; envelopes and contexts included)."""
    buffer = io.BytesIO()
    with paused_gc():
        _Pickler(buffer).dump(checkpoint)
    return buffer.getvalue()


def loads(data: bytes) -> Checkpoint:
    """The checkpoint `dumps` gave (only from bytes you trust: unpickling runs code).

    Raises:
        CheckpointMismatch: the bytes do not hold a checkpoint.
    """
    with paused_gc():
        checkpoint = pickle.loads(data)  # the caller's own checkpoint: see above
    if not isinstance(checkpoint, Checkpoint):
        raise CheckpointMismatch("these bytes do not hold a pfrx checkpoint")
    return checkpoint


def save(checkpoint: Checkpoint, path: str | os.PathLike[str]) -> None:
    """Write ``checkpoint`` to ``path`` atomically (a temporary file, fsync, rename)."""
    target = Path(path)
    data = dumps(checkpoint)
    fd, temporary = tempfile.mkstemp(dir=target.parent, prefix=target.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def load(path: str | os.PathLike[str]) -> Checkpoint:
    """Read a checkpoint written by `save` (only from a file you trust).

    Raises:
        CheckpointMismatch: the file does not hold a checkpoint.
    """
    with open(path, "rb") as file:
        checkpoint = pickle.load(file)
    if not isinstance(checkpoint, Checkpoint):
        raise CheckpointMismatch(f"{path} does not hold a pfrx checkpoint")
    return checkpoint
