"""The FileSystem sandbox under attack: hostile paths, links in every position, a real swap race.

Alice holds every file capability on ``/public`` and nothing else. The tree holds links out
of ``/public`` (to ``/private`` and to a directory outside the sandbox), dangling links,
a loop, a FIFO, a socket, a device, a hard link to an outside file and names too long
for the host. Each intent must end as the expected ``Ok`` or ``Err`` reason, no exception
may leave ``process_event``, no reason or log line may hold a host path, and nothing
outside ``/public`` may change.
"""

from __future__ import annotations

import errno
import os
import socket
import stat
import subprocess
import sys
import textwrap
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from loguru import logger

import pfrx
from pfrx import operators as pf
from pfrx.examples.filesystem import (
    DeleteFile,
    FileCap,
    FileStream,
    ReadFile,
    Sandbox,
    SandboxError,
    WriteFile,
    file_context,
)

ALICE = file_context("alice", "s", [FileCap.admin("/public")])
ROOT_USER = file_context("root", "s", [FileCap.admin("/")])
CANARY = b"CANARY: outside the sandbox"
SECRET = b"private to the sandbox"
DEEP = "/public/" + "/".join(["d" * 200] * 30) + "/deep.txt"  # 6,000+ characters


def _make_device(path: Path) -> None:
    """A character device (null) when allowed (root), else a FIFO: not a regular file."""
    try:
        os.mknod(path, 0o600 | stat.S_IFCHR, os.makedev(1, 3))
    except (PermissionError, OSError):
        os.mkfifo(path)


@pytest.fixture
def tree(tmp_path: Path) -> Iterator[dict[str, Path]]:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "canary.txt").write_bytes(CANARY)
    root = tmp_path / "root"
    public, private = root / "public", root / "private"
    public.mkdir(parents=True)
    private.mkdir()
    (private / "secret.txt").write_bytes(SECRET)
    (public / "file.txt").write_bytes(b"public")
    (public / "sub").mkdir()
    (public / "sub" / "f.txt").write_bytes(b"sub")
    links = {
        "in_link": "../private/secret.txt",
        "in_dir": "../private",
        "out_link": str(outside / "canary.txt"),
        "out_dir": str(outside),
        "dangling": "../nowhere.txt",
        "dangling_dir": "../nowhere_dir",
        "loop": "loop",
        "sub_link": "sub",
        "self_link": "file.txt",
    }
    for name, target in links.items():
        os.symlink(target, public / name)
    os.symlink(outside, root / "top")  # a link at the sandbox's top level
    os.mkfifo(public / "fifo")
    _make_device(public / "device")
    os.link(outside / "canary.txt", public / "hard")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(public)  # a relative name: socket paths are limited to ~100 bytes
        server.bind("socket")
    try:
        yield {"root": root, "outside": outside, "private": private, "public": public}
    finally:
        server.close()


def _bypassed_write(path: str, content: Any) -> WriteFile:
    """A WriteFile whose validation was bypassed (as a hostile producer could)."""
    intent = WriteFile(path, "", "alice")
    object.__setattr__(intent, "content", content)
    return intent


# (intent, context, expected reason or "ok")
HOSTILE: list[tuple[str, Any, pfrx.Context, str]] = [
    # a link as the last component: to a file inside, outside, to itself, dangling, a loop
    ("final link to /private", ReadFile("/public/in_link", "a"), ALICE, "symlink_refused"),
    ("final link to /private", WriteFile("/public/in_link", "x", "a"), ALICE, "symlink_refused"),
    ("final link to /private", DeleteFile("/public/in_link", "a"), ALICE, "symlink_refused"),
    ("final link outside", ReadFile("/public/out_link", "a"), ALICE, "symlink_refused"),
    ("final link outside", WriteFile("/public/out_link", "x", "a"), ALICE, "symlink_refused"),
    ("final link outside", DeleteFile("/public/out_link", "a"), ALICE, "symlink_refused"),
    ("link inside /public", ReadFile("/public/self_link", "a"), ALICE, "symlink_refused"),
    ("dangling link", ReadFile("/public/dangling", "a"), ALICE, "symlink_refused"),
    ("dangling link", WriteFile("/public/dangling", "x", "a"), ALICE, "symlink_refused"),
    ("link loop", ReadFile("/public/loop", "a"), ALICE, "symlink_refused"),
    # a link in the middle: to a directory inside, outside, dangling, inside /public
    ("middle link to /private", ReadFile("/public/in_dir/secret.txt", "a"), ALICE,
     "symlink_refused"),
    ("middle link to /private", WriteFile("/public/in_dir/planted.txt", "x", "a"), ALICE,
     "symlink_refused"),
    ("middle link to /private", DeleteFile("/public/in_dir/secret.txt", "a"), ALICE,
     "symlink_refused"),
    ("middle link outside", ReadFile("/public/out_dir/canary.txt", "a"), ALICE,
     "symlink_refused"),
    ("middle link outside", WriteFile("/public/out_dir/canary.txt", "x", "a"), ALICE,
     "symlink_refused"),
    ("middle link outside", DeleteFile("/public/out_dir/canary.txt", "a"), ALICE,
     "symlink_refused"),
    ("middle dangling link", WriteFile("/public/dangling_dir/x.txt", "x", "a"), ALICE,
     "symlink_refused"),
    ("middle link inside /public", ReadFile("/public/sub_link/f.txt", "a"), ALICE,
     "symlink_refused"),
    ("top-level link", ReadFile("/top/canary.txt", "r"), ROOT_USER, "symlink_refused"),
    ("top-level link", WriteFile("/top/planted.txt", "x", "r"), ROOT_USER, "symlink_refused"),
    # what is not a regular file, or has another name
    ("fifo", ReadFile("/public/fifo", "a"), ALICE, "not_a_regular_file"),
    ("fifo", WriteFile("/public/fifo", "x", "a"), ALICE, "not_a_regular_file"),
    ("unix socket", ReadFile("/public/socket", "a"), ALICE, "not_a_regular_file"),
    ("device", ReadFile("/public/device", "a"), ALICE, "not_a_regular_file"),
    ("device", WriteFile("/public/device", "x", "a"), ALICE, "not_a_regular_file"),
    ("hard link to outside", ReadFile("/public/hard", "a"), ALICE, "hard_link_refused"),
    ("hard link to outside", WriteFile("/public/hard", "x", "a"), ALICE, "hard_link_refused"),
    ("directory", ReadFile("/public/sub", "a"), ALICE, "is_a_directory"),
    ("directory", DeleteFile("/public/sub", "a"), ALICE, "is_a_directory"),
    ("file as a directory", WriteFile("/public/file.txt/x", "x", "a"), ALICE,
     "not_a_directory"),
    # names and paths the host cannot take, or the capability does not cover
    ("long name", ReadFile("/public/" + "n" * 300, "a"), ALICE, "name_too_long"),
    ("long name", WriteFile("/public/" + "n" * 300, "x", "a"), ALICE, "name_too_long"),
    ("path over PATH_MAX", WriteFile(DEEP, "deep", "a"), ALICE, "ok"),
    ("path over PATH_MAX", ReadFile(DEEP, "a"), ALICE, "ok"),
    ("NUL byte", ReadFile("/public/a\x00b", "a"), ALICE, "insufficient_capabilities"),
    ("lone surrogate", ReadFile("/public/\ud800", "a"), ALICE, "invalid_path"),
    ("dot-dot out of /public", ReadFile("/public/../private/secret.txt", "a"), ALICE,
     "insufficient_capabilities"),
    ("dot-dot above /", ReadFile("/../../../public/file.txt", "a"), ALICE, "ok"),
    ("missing", ReadFile("/public/missing.txt", "a"), ALICE, "not_found"),
    ("bad content", _bypassed_write("/public/n.txt", 12345), ALICE, "invalid_content"),
    ("bad content", _bypassed_write("/public/n.txt", bytearray(b"x")), ALICE,
     "invalid_content"),
]  # fmt: skip


def _outcome(result: Any) -> str:
    return "ok" if isinstance(result, pfrx.Ok) else result.reason


def _untouched(tree: dict[str, Path]) -> None:
    """Nothing outside /public changed, and every hostile link is still in place."""
    outside, private, root = tree["outside"], tree["private"], tree["root"]
    assert sorted(os.listdir(outside)) == ["canary.txt"]
    assert (outside / "canary.txt").read_bytes() == CANARY
    assert sorted(os.listdir(private)) == ["secret.txt"]
    assert (private / "secret.txt").read_bytes() == SECRET
    assert sorted(os.listdir(root)) == ["private", "public", "top"]
    for name in ("in_link", "in_dir", "out_link", "out_dir", "dangling", "dangling_dir"):
        assert (tree["public"] / name).is_symlink()


@pytest.mark.timeout(30)
@pytest.mark.parametrize(("case", "intent", "context", "expected"), HOSTILE)
def test_hostile_intents_end_as_expected(
    tree: dict[str, Path], case: str, intent: Any, context: pfrx.Context, expected: str
) -> None:
    stream = FileStream(tree["root"])
    state = stream.initial_state()
    if isinstance(intent, ReadFile) and intent.path == DEEP:
        stream.process_event(WriteFile(DEEP, "deep", "a"), context, state)
    result = stream.process_event(intent, context, state)
    assert _outcome(result) == expected, case
    if expected == "ok":
        assert result.state.errors == 0
    else:
        assert result.state.errors == 1
        assert str(tree["root"].parent) not in result.reason
    if isinstance(intent, ReadFile) and expected == "ok":
        assert result.effects[0].content in (b"deep", b"public")
    _untouched(tree)


def test_hostile_intents_through_a_stream_log_no_host_path(tree: dict[str, Path]) -> None:
    lines: list[str] = []
    logger.enable("pfrx")
    sink = logger.add(lambda message: lines.append(str(message)), level="TRACE")
    try:
        dropped: list[pfrx.Dropped] = []
        with pfrx.Stream(pf.process(FileStream(tree["root"]), on_drop=dropped.append)) as stream:
            for _case, intent, context, _expected in HOSTILE:
                assert stream.send(intent, context).ok
    finally:
        logger.remove(sink)
        logger.disable("pfrx")
    host = str(tree["root"].parent)
    expected = Counter(reason for *_, reason in HOSTILE if reason != "ok")
    assert Counter(d.reason for d in dropped) == expected
    assert all(host not in d.reason for d in dropped)
    assert all(host not in line for line in lines)
    _untouched(tree)


def test_write_content_is_str_or_bytes() -> None:
    for bad in (12345, None, bytearray(b"x"), ["x"], 1.5):
        with pytest.raises(TypeError, match="content must be str or bytes"):
            WriteFile("/a", bad, "u")
        with pytest.raises(TypeError, match="content must be str or bytes"):
            WriteFile.new("/a", bad, "u")
    assert WriteFile("/a", b"\x00", "u").data == b"\x00"
    assert WriteFile("/a", "é", "u").data == "é".encode()
    with pytest.raises(TypeError):
        _bypassed_write("/a", 12345).data  # noqa: B018


def test_an_os_error_becomes_an_err_without_the_host_path(
    tree: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    host = str(tree["root"] / "public" / "file.txt")

    def failing_read(fd: int, size: int) -> bytes:
        raise OSError(errno.EIO, "Input/output error", host)

    def failing_fstat(fd: int) -> os.stat_result:
        raise PermissionError(errno.EACCES, "Permission denied", host)

    stream = FileStream(tree["root"])
    state = stream.initial_state()
    # patched only around the call: pytest itself reads and stats files
    with monkeypatch.context() as patch:
        patch.setattr(os, "read", failing_read)
        failed = stream.process_event(ReadFile("/public/file.txt", "a"), ALICE, state)
    assert isinstance(failed, pfrx.Err) and failed.reason == "io_error: Input/output error"
    with monkeypatch.context() as patch:
        patch.setattr(os, "fstat", failing_fstat)
        denied = stream.process_event(WriteFile("/public/new.txt", "x", "a"), ALICE, failed.state)
    assert isinstance(denied, pfrx.Err) and denied.reason == "permission_denied"
    assert denied.state.errors == 2


def test_the_sandbox_refuses_bad_paths_and_closes(tree: dict[str, Path]) -> None:
    sandbox = Sandbox(tree["root"])
    for bad in ("relative.txt", "", "/a\x00b", "*", "/public/\ud800"):
        with pytest.raises(SandboxError) as refused:
            sandbox.read(bad)
        assert refused.value.reason == "invalid_path"
    assert sandbox.list("/public/sub") == ["f.txt"]
    assert sandbox.resolve("/public/../x") == str(tree["root"] / "x")
    sandbox.close()
    with pytest.raises(SandboxError) as closed:
        sandbox.read("/public/file.txt")
    assert closed.value.reason == "sandbox_closed"
    sandbox.close()  # idempotent


# -- the swap race ----------------------------------------------------------------------------

# A second process flips /p between a real directory and a link to the outside directory,
# as fast as it can, until the stop file appears (or its own deadline passes).
FLIPPER = textwrap.dedent(
    """
    import os, shutil, sys, time
    root, stop, deadline = sys.argv[1], sys.argv[2], time.monotonic() + float(sys.argv[3])
    p, hold_dir, hold_link = (os.path.join(root, n) for n in ("p", "hold_dir", "hold_link"))

    def put(source, target):
        while True:
            try:
                return os.rename(source, target)
            except OSError:  # the sandbox made /p as a directory while it was missing
                shutil.rmtree(target, ignore_errors=True)

    print("ready", flush=True)
    flips = 0
    while time.monotonic() < deadline and not (flips % 64 == 0 and os.path.exists(stop)):
        put(p, hold_dir)
        put(hold_link, p)  # /p is now a link out of the sandbox
        put(p, hold_link)
        put(hold_dir, p)  # /p is a directory again
        flips += 1
    print(flips, flush=True)
    """
)


@pytest.mark.timeout(60)
def test_a_parent_swapped_for_a_link_never_lets_anything_out(tmp_path: Path) -> None:
    root, outside = tmp_path / "root", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    canary = outside / "secret.txt"
    canary.write_bytes(CANARY)
    (root / "p").mkdir()
    (root / "p" / "secret.txt").write_bytes(b"inside")
    os.symlink(outside, root / "hold_link")
    stop = tmp_path / "stop"
    flipper = subprocess.Popen(
        [sys.executable, "-c", FLIPPER, str(root), str(stop), "20"],
        stdout=subprocess.PIPE,
        text=True,
    )
    stream = FileStream(root)
    state = stream.initial_state()
    outcomes: Counter[str] = Counter()
    leaked = 0
    try:
        assert flipper.stdout is not None and flipper.stdout.readline().strip() == "ready"
        deadline = time.monotonic() + 2.5
        while time.monotonic() < deadline:
            for intent in (
                WriteFile("/p/secret.txt", "inside", "root"),
                ReadFile("/p/secret.txt", "root"),
                DeleteFile("/p/secret.txt", "root"),
            ):
                try:
                    result = stream.process_event(intent, ROOT_USER, state)
                except Exception as error:  # counted, so that the run goes on and shows all
                    outcomes[f"{intent.operation} raised {type(error).__name__}"] += 1
                    continue
                outcomes[f"{intent.operation} {_outcome(result)}"] += 1
                if isinstance(result, pfrx.Ok) and isinstance(intent, ReadFile):
                    leaked += result.effects[0].content == CANARY
    finally:
        stop.touch()
        out, _ = flipper.communicate(timeout=20)
    flips = int(out.split()[-1])
    assert flips > 100, (flips, outcomes)
    # the race was live: both states of /p were met
    refused = sum(n for outcome, n in outcomes.items() if not outcome.endswith(" ok"))
    assert outcomes["read ok"] > 0 and refused > 0, outcomes
    assert leaked == 0, outcomes
    assert canary.read_bytes() == CANARY, outcomes
    assert sorted(os.listdir(outside)) == ["secret.txt"], outcomes
    assert not [outcome for outcome in outcomes if " raised " in outcome], outcomes


@pytest.mark.timeout(30)
@pytest.mark.parametrize(
    ("intent", "expected"),
    [
        (ReadFile("/public/fifo", "a"), "not_a_regular_file"),
        (WriteFile("/public/device", "x", "a"), "not_a_regular_file"),
        (ReadFile("/public/out_link", "a"), "symlink_refused"),
        (WriteFile("/public/out_link", "x", "a"), "symlink_refused"),
        (WriteFile("/public/in_link", "x", "a"), "symlink_refused"),
    ],
)
def test_a_name_swapped_between_the_look_and_the_open_is_still_refused(
    tree: dict[str, Path], monkeypatch: pytest.MonkeyPatch, intent: Any, expected: str
) -> None:
    # The sandbox looks at the last component before opening it; here every look sees a
    # regular file (as if the name were swapped right after), so the open decides alone.
    real_stat = os.stat

    def regular_look(name: Any, *args: Any, **kwargs: Any) -> os.stat_result:
        if kwargs.get("dir_fd") is not None and name == intent.path.rsplit("/", 1)[-1]:
            return real_stat(tree["public"] / "file.txt")
        return real_stat(name, *args, **kwargs)

    stream = FileStream(tree["root"])
    with monkeypatch.context() as patch:
        patch.setattr(os, "stat", regular_look)
        result = stream.process_event(intent, ALICE, stream.initial_state())
    assert _outcome(result) == expected
    _untouched(tree)
