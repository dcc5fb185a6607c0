"""File I/O confined to one directory, walked one component at a time (the openat discipline).

Checking a path and then opening it is a race: between the two, any directory on the way
can be swapped for a symbolic link to somewhere else, and the open follows it. So the
sandbox never opens a path by name from the host's root. It holds a descriptor of its root
directory and opens every component *relative to the descriptor of its parent*, with
``O_NOFOLLOW`` (and ``O_DIRECTORY`` for directories): a symbolic link in any position,
present from the start or swapped in at any instant, makes that one open fail, and the
operation is refused. Creating and removing happen relative to the parent's descriptor
too (``mkdirat``, ``unlinkat``), so they act on the directory that was checked, whatever
its name has become since.

Because no link is ever followed, the lexically normalised path *is* the object touched:
a capability checked on it is the capability for what is read, written or deleted.

Reasons (`SandboxError.reason`, the drop reason downstream) never hold a host path.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from typing import TypeVar

from ... import normalize_resource

__all__ = ["Sandbox", "SandboxError"]

_T = TypeVar("_T")

_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_DIRECTORY = getattr(os, "O_DIRECTORY", 0)
# O_NONBLOCK so that opening a FIFO never waits for a peer; it changes nothing for a
# regular file, and anything that is not a regular file is refused right after the open.
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)

_DIR_FLAGS = os.O_RDONLY | _DIRECTORY | _NOFOLLOW | _CLOEXEC
_READ_FLAGS = os.O_RDONLY | _NOFOLLOW | _NONBLOCK | _CLOEXEC
# No O_TRUNC here: a file is truncated only once it is known to be a regular file.
_WRITE_FLAGS = os.O_WRONLY | os.O_CREAT | _NOFOLLOW | _NONBLOCK | _CLOEXEC

#: The most bytes one read returns; a bigger file is refused (``file_too_large``).
MAX_READ_BYTES = 64 * 1024 * 1024

_OS_REASONS = {
    errno.ENOENT: "not_found",
    errno.EISDIR: "is_a_directory",
    errno.ENOTDIR: "not_a_directory",
    errno.EACCES: "permission_denied",
    errno.EPERM: "permission_denied",
    errno.ELOOP: "symlink_refused",
    errno.EMLINK: "symlink_refused",  # FreeBSD's answer to O_NOFOLLOW on a link
    errno.ENOTEMPTY: "directory_not_empty",
    errno.ENAMETOOLONG: "name_too_long",
    errno.ENXIO: "not_a_regular_file",  # a socket, or a FIFO with no reader
    errno.EEXIST: "already_exists",
    errno.ENOSPC: "no_space",
    errno.EROFS: "read_only_filesystem",
}


def os_reason(error: OSError) -> str:
    """A drop reason for an OS error: a fixed word, or ``io_error: <strerror>``.

    Never the error's ``str()``, which holds the file name.
    """
    return _OS_REASONS.get(error.errno or 0) or f"io_error: {error.strerror or 'unknown'}"


class SandboxError(Exception):
    """A path the sandbox refuses, or an I/O failure; ``reason`` is the drop reason.

    ``path`` is the path as asked, inside the sandbox (never a host path).
    """

    def __init__(self, reason: str, path: str = "") -> None:
        super().__init__(f"{reason}: {path!r}" if path else reason)
        self.reason = reason
        self.path = path


def _components(path: object) -> tuple[str, ...]:
    """The normalised path's segments (``()`` for the root itself)."""
    normalized = normalize_resource(path) if isinstance(path, str) else None
    if normalized is None or normalized == "*":
        raise SandboxError("invalid_path")
    return tuple(part for part in normalized.split("/") if part)


class Sandbox:
    """File I/O confined to ``root``: no path, ``..`` or symbolic link leads outside it.

    A path is normalised as a resource (``//``, ``.``, ``..`` resolved, never above ``/``),
    then walked from the root's descriptor one component at a time, each opened with
    ``O_NOFOLLOW``. Every symbolic link inside the root is refused (``symlink_refused``),
    whether it points inside or outside, dangles, or was swapped in after a check. Only
    regular files are read or written (a FIFO, socket or device is ``not_a_regular_file``),
    and a regular file with more than one hard link is refused (``hard_link_refused``): its
    other name may lie outside the root. The root itself is trusted: it is resolved once,
    when the sandbox is made, and held open until `close`.

    Args:
        root: an existing directory.
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        real = os.path.realpath(os.fspath(root))
        try:
            self._root_fd: int | None = os.open(real, _DIR_FLAGS)
        except OSError:
            raise ValueError(f"sandbox root must be an existing directory: {root!r}") from None
        self.root = real

    # -- lifetime --------------------------------------------------------------------------

    def close(self) -> None:
        """Release the root's descriptor; later operations raise ``sandbox_closed``."""
        fd, self._root_fd = self._root_fd, None
        if fd is not None:
            os.close(fd)

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __del__(self) -> None:
        fd = getattr(self, "_root_fd", None)
        if fd is not None:
            os.close(fd)

    def __repr__(self) -> str:
        return f"Sandbox({self.root!r})"

    # -- the walk --------------------------------------------------------------------------

    def _root(self) -> int:
        if self._root_fd is None:
            raise SandboxError("sandbox_closed")
        return self._root_fd

    @staticmethod
    def _open_dir(name: str, parent: int, create: bool) -> int:
        try:
            return os.open(name, _DIR_FLAGS, dir_fd=parent)
        except FileNotFoundError:
            if not create:
                raise
        # mkdirat never follows a link at ``name``; if someone made it meanwhile, the open
        # below decides what it is.
        with suppress(FileExistsError):
            os.mkdir(name, 0o755, dir_fd=parent)
        return os.open(name, _DIR_FLAGS, dir_fd=parent)

    @staticmethod
    def _refusal(error: OSError, name: str, parent: int) -> SandboxError:
        """The reason for a failed open of ``name``: a link is named as such."""
        if error.errno in (errno.ELOOP, errno.EMLINK):  # O_NOFOLLOW met a link
            return SandboxError("symlink_refused")
        if error.errno == errno.ENOTDIR:
            # O_DIRECTORY | O_NOFOLLOW on a link fails with ENOTDIR; so does a file used as
            # a directory. A name that is a link, or a directory by now (a link swapped back
            # since), was a link when opened.
            try:
                mode = os.stat(name, dir_fd=parent, follow_symlinks=False).st_mode
            except OSError:
                return SandboxError("not_a_directory")
            if stat.S_ISLNK(mode) or stat.S_ISDIR(mode):
                return SandboxError("symlink_refused")
        return SandboxError(os_reason(error))

    @contextmanager
    def _parent(self, parts: tuple[str, ...], create: bool = False) -> Iterator[int]:
        """A descriptor of the directory holding ``parts[-1]``, walked without following."""
        root = self._root()
        fd = root
        try:
            for name in parts[:-1]:
                try:
                    child = self._open_dir(name, fd, create)
                except OSError as error:
                    raise self._refusal(error, name, fd) from None
                if fd != root:
                    os.close(fd)
                fd = child
            yield fd
        finally:
            if fd != root:
                os.close(fd)

    def _guarded(self, path: str, action: Callable[[], _T]) -> _T:
        """Run ``action``; any OS error becomes a `SandboxError` without host paths."""
        try:
            return action()
        except SandboxError as error:
            raise SandboxError(error.reason, path) from None
        except OSError as error:
            raise SandboxError(os_reason(error), path) from None
        except ValueError:  # a name the file system cannot encode (a lone surrogate)
            raise SandboxError("invalid_path", path) from None

    @staticmethod
    def _check_regular(fd: int) -> os.stat_result:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise SandboxError("is_a_directory")
        if not stat.S_ISREG(info.st_mode):
            raise SandboxError("not_a_regular_file")
        if info.st_nlink > 1:
            raise SandboxError("hard_link_refused")
        return info

    def _open_last(self, parent: int, name: str, flags: int) -> int:
        # Look before opening, so that a device or FIFO is not even opened (opening some
        # devices has effects); the open and the fstat after it still decide, since the
        # name can change in between.
        try:
            mode = os.stat(name, dir_fd=parent, follow_symlinks=False).st_mode
        except FileNotFoundError:
            mode = None
        if mode is not None and not stat.S_ISREG(mode):
            if stat.S_ISLNK(mode):
                raise SandboxError("symlink_refused")
            raise SandboxError("is_a_directory" if stat.S_ISDIR(mode) else "not_a_regular_file")
        try:
            return os.open(name, flags, 0o644, dir_fd=parent)
        except OSError as error:
            raise self._refusal(error, name, parent) from None

    # -- operations ------------------------------------------------------------------------

    def read(self, path: str) -> bytes:
        """The content of the regular file at ``path``."""

        def action() -> bytes:
            parts = _components(path)
            if not parts:
                raise SandboxError("is_a_directory")
            with self._parent(parts) as parent:
                fd = self._open_last(parent, parts[-1], _READ_FLAGS)
            try:
                if self._check_regular(fd).st_size > MAX_READ_BYTES:
                    raise SandboxError("file_too_large")
                chunks = []
                size = 0
                while chunk := os.read(fd, 1 << 16):
                    size += len(chunk)
                    if size > MAX_READ_BYTES:
                        raise SandboxError("file_too_large")
                    chunks.append(chunk)
                return b"".join(chunks)
            finally:
                os.close(fd)

        return self._guarded(path, action)

    def write(self, path: str, data: bytes) -> int:
        """Write ``data`` to ``path`` (missing parents made inside the root); bytes written."""
        if not isinstance(data, bytes):
            raise TypeError(f"data must be bytes, not {type(data).__name__}")

        def action() -> int:
            parts = _components(path)
            if not parts:
                raise SandboxError("is_a_directory")
            with self._parent(parts, create=True) as parent:
                fd = self._open_last(parent, parts[-1], _WRITE_FLAGS)
            try:
                self._check_regular(fd)
                os.ftruncate(fd, 0)
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
                return len(data)
            finally:
                os.close(fd)

        return self._guarded(path, action)

    def delete(self, path: str) -> None:
        """Remove the file named ``path`` (a directory or a symbolic link is refused)."""

        def action() -> None:
            parts = _components(path)
            if not parts:
                raise SandboxError("is_a_directory")
            with self._parent(parts) as parent:
                name = parts[-1]
                mode = os.stat(name, dir_fd=parent, follow_symlinks=False).st_mode
                if stat.S_ISLNK(mode):
                    raise SandboxError("symlink_refused")
                if stat.S_ISDIR(mode):
                    raise SandboxError("is_a_directory")
                # unlinkat removes the name in the directory checked above; if the name was
                # swapped meanwhile, what goes is the new name, still inside the root.
                os.unlink(name, dir_fd=parent)

        self._guarded(path, action)

    def list(self, path: str = "/") -> list[str]:
        """The names in the directory at ``path``, sorted."""

        def action() -> list[str]:
            parts = _components(path)
            if not parts:
                return sorted(os.listdir(self._root()))
            with self._parent(parts) as parent:
                try:
                    fd = os.open(parts[-1], _DIR_FLAGS, dir_fd=parent)
                except OSError as error:
                    raise self._refusal(error, parts[-1], parent) from None
            try:
                return sorted(os.listdir(fd))
            finally:
                os.close(fd)

        return self._guarded(path, action)

    def resolve(self, path: str) -> str:
        """The host path ``path`` names under the root (for display; never opened by name).

        Raises:
            SandboxError: ``invalid_path``.
        """
        return os.path.join(self.root, *_components(path))
