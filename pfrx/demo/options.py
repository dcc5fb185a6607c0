"""The demo's options, checked when parsed: a bad value is a one-line usage error."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable

STRATEGIES = ("drop_oldest", "drop_newest", "latest", "block", "adaptive")


def _integer(minimum: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text.replace("_", ""))
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        return value

    parse.__name__ = "integer"  # argparse names the type in its messages
    return parse


def _seconds(*, zero: bool) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if not math.isfinite(value) or value < 0 or (value == 0 and not zero):
            wanted = "a finite number >= 0" if zero else "a finite number > 0"
            raise argparse.ArgumentTypeError(f"must be {wanted}, got {text}")
        return value

    parse.__name__ = "number"
    return parse


positive_int = _integer(1)
non_negative_int = _integer(0)
positive_seconds = _seconds(zero=False)
non_negative_number = _seconds(zero=True)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The demo's options (``pfrx demo --help``); the parser should show defaults."""
    parser.add_argument(
        "--intents", type=positive_int, default=200_000, help="how many intents to send"
    )
    parser.add_argument("--users", type=positive_int, default=500, help="how many distinct users")
    parser.add_argument(
        "--strategy", choices=STRATEGIES, default="drop_oldest", help="backpressure strategy"
    )
    parser.add_argument(
        "--buffer-size", type=positive_int, default=10_000, help="backpressure buffer, items"
    )
    parser.add_argument(
        "--rate",
        type=non_negative_number,
        default=0.0,
        help="producer rate limit, intents/s (0: flat out, the deliberate overload)",
    )
    parser.add_argument("--producers", type=positive_int, default=2, help="producer threads")
    parser.add_argument(
        "--window", type=positive_seconds, default=1.0, help="time window span, seconds"
    )
    parser.add_argument(
        "--session-gap", type=positive_seconds, default=0.5, help="session window gap, seconds"
    )
    parser.add_argument("--seed", type=int, default=7, help="workload random seed")
    parser.add_argument(
        "--progress-every",
        type=positive_seconds,
        default=1.0,
        help="seconds between progress lines when stdout is not a terminal",
    )
    parser.add_argument("--keep-files", action="store_true", help="keep the sandbox files")
    parser.add_argument(
        "--dir", default=None, help="work directory (default: a new temporary directory)"
    )
    parser.add_argument(
        "--serve",
        type=non_negative_int,
        default=None,
        metavar="PORT",
        help="serve the live dashboard on 127.0.0.1:PORT while the demo runs "
        "(0: a free port; needs pfrx[web])",
    )
    parser.add_argument(
        "--distributed",
        action="store_true",
        help="run `pfrx demo-cluster` with its defaults instead (JetStream workers, one "
        "killed midway; needs pfrx[nats]); the options above do not apply to it",
    )
