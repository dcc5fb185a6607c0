"""Command line: ``pfrx`` (or ``python -m pfrx``) with subcommands.

- ``demo``: the FileSystem substrate end to end (`pfrx.demo`); ``--serve PORT`` with
  the live dashboard (extra ``web``), ``--distributed`` runs ``demo-cluster`` instead;
- ``worker``: one NATS JetStream worker (`pfrx.nats.worker`, extra ``nats``);
- ``demo-cluster``: the demo on NATS workers (`pfrx.nats.cluster_demo`, extra
  ``nats``).

``worker`` and ``demo-cluster`` hand every argument after their name to their module's
``main(argv) -> int``; the optional modules are imported only when their command runs,
and a missing extra is one line on stderr (exit status 2), never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from types import ModuleType

from . import __version__

#: Commands run by another module's ``main(argv)``: (module, extra, help).
DELEGATED = {
    "worker": ("pfrx.nats.worker", "nats", "run one NATS JetStream worker (pfrx[nats])"),
    "demo-cluster": (
        "pfrx.nats.cluster_demo",
        "nats",
        "run the demo on NATS JetStream workers (pfrx[nats])",
    ),
}


class MissingExtra(Exception):
    """An optional module could not be imported; ``str()`` is the line to show."""


def import_extra(module: str, extra: str, command: str) -> ModuleType:
    """Import ``module`` of the optional ``extra``.

    Raises:
        MissingExtra: it cannot be imported (the message says what to install).
    """
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise MissingExtra(
            f"pfrx {command}: needs the '{extra}' extra: pip install 'pfrx[{extra}]' "
            f"({type(error).__name__}: {error})"
        ) from None


def _delegate(command: str, argv: Sequence[str]) -> int:
    module, extra, _help = DELEGATED[command]
    try:
        entry = import_extra(module, extra, command)
    except MissingExtra as missing:
        print(missing, file=sys.stderr)
        return 2
    code: int = entry.main(list(argv))
    return code


def _demo(args: argparse.Namespace) -> int:
    if args.distributed:
        return _delegate("demo-cluster", [])
    from .demo import run_demo

    return run_demo(args)


class _Formatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Defaults in ``--help``, descriptions as written."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pfrx",
        description="pfrx: PacketFlow's Stream Substrate on RxPY.",
        epilog="`pfrx COMMAND --help` shows a command's options.",
        formatter_class=_Formatter,
    )
    parser.add_argument("--version", action="version", version=f"pfrx {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    demo = commands.add_parser(
        "demo",
        help="run the FileSystem substrate end to end on a temporary directory",
        description="Run the guide's FileSystem substrate end to end on a temporary "
        "directory: who may do what (part 1), then a deliberate overload (part 2).",
        formatter_class=_Formatter,
    )
    from .demo.options import add_arguments

    add_arguments(demo)
    demo.set_defaults(run=_demo)
    for name, (_module, _extra, text) in DELEGATED.items():
        # Listed for --help; their arguments are parsed by their own module (see main).
        commands.add_parser(name, help=text, add_help=False)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; the exit status (a usage error exits 2 through argparse)."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments and arguments[0] in DELEGATED:
        return _delegate(arguments[0], arguments[1:])
    parser = build_parser()
    if not arguments:
        parser.print_help()
        return 0
    args = parser.parse_args(arguments)
    code: int = args.run(args)
    return code
