"""A discrete-event simulation of keyed pfrx workers on JetStream, past this machine.

``python -m benchmarks.sim_scaleout [--rate R] [--hours H] [--seed S]``

The model (each parameter is a flag; the defaults are the figures measured by
``benchmarks/bench_nats.py`` on this machine or the worker's defaults):

- ``P`` partitions, each a key range with its own durable consumer and one owner at a time
  (a KV lease). Inputs arrive at ``load`` msg/s spread evenly over partitions.
- ``W`` workers, each serving ``rate`` msg/s (the measured one-worker figure), shared evenly
  by the partitions it owns. A worker owns at most ``ceil(P / live workers)`` partitions;
  workers beyond ``P`` stand by.
- The JetStream side: ``nodes`` stream leaders, each able to take ``server_rate`` msg/s
  (measured: the server's CPU per input), so the cluster caps the total at
  ``min(P, nodes) * server_rate``, shared max-min fairly among partitions.
- Failures: each worker fails after an exponential time (mean ``mtbf`` s) and comes back
  ``restart`` s later. Its partitions are unowned until their lease lapses (``lease_ttl``)
  and the dead owner's held inputs fall due (at most ``ack_wait + lease_ttl / 2`` after its
  death, owners fencing themselves at half a lease), and the next renewal tick notices
  (uniform in ``[0, lease_ttl / 4]``): failover = max(lease_ttl, ack_wait + lease_ttl / 2)
  + tick, the worker's rule (``pfrx/nats/_lease.py``). The partition
  goes to the live worker owning the fewest (a standby first).

Between events every rate is constant, so backlogs and counts advance exactly (a fluid
model of each partition's queue); events are failures, restarts and takeovers. The output
is throughput (processed/s over the run), the offered load, failover times (p50/p99) and
the worst backlog, for a grid of partitions x workers. Everything here is *extrapolated*
from the per-worker and per-server figures measured on one 2-core machine.
"""

from __future__ import annotations

import argparse
import heapq
import math
import random
import statistics
import sys
from dataclasses import dataclass, field


@dataclass
class Params:
    partitions: int = 64
    workers: int = 1000
    rate: float = 5000.0  # msg/s one worker (bench_nats "one worker", 5,000-6,900 here)
    server_rate: float = 25_000.0  # msg/s one stream leader (1 / server CPU per input)
    nodes: int = 16
    utilisation: float = 0.8  # offered load / keyed capacity
    mtbf: float = 3600.0  # s, per worker
    restart: float = 30.0
    lease_ttl: float = 3.0
    ack_wait: float = 3.0
    duration: float = 3600.0
    seed: int = 1

    @property
    def capacity(self) -> float:
        keyed = min(self.partitions, self.workers) * self.rate
        return min(keyed, min(self.partitions, self.nodes) * self.server_rate)

    @property
    def load(self) -> float:
        return self.utilisation * self.capacity


@dataclass
class Result:
    params: Params
    processed: float
    arrived: float
    backlog: float
    failures: int
    failovers: list[float] = field(default_factory=list)
    worst_backlog_s: float = 0.0

    @property
    def throughput(self) -> float:
        return self.processed / self.params.duration


def simulate(p: Params) -> Result:
    rng = random.Random(p.seed)
    owner: list[int | None] = [None] * p.partitions
    owned: dict[int, set[int]] = {w: set() for w in range(p.workers)}
    live = set(range(p.workers))
    for part in range(p.partitions):  # initial spread
        w = part % p.workers
        owner[part] = w
        owned[w].add(part)
    backlog = [0.0] * p.partitions
    lam = p.load / p.partitions
    cap_total = min(p.partitions, p.nodes) * p.server_rate
    events: list[tuple[float, int, str, int]] = []
    seq = 0

    def push(t: float, kind: str, who: int) -> None:
        nonlocal seq
        seq += 1
        heapq.heappush(events, (t, seq, kind, who))

    for w in range(p.workers):
        push(rng.expovariate(1 / p.mtbf), "fail", w)
    unowned_since: dict[int, float] = {}
    result = Result(p, 0.0, 0.0, 0.0, 0)
    now = 0.0

    def rates() -> list[float]:
        mu = [0.0] * p.partitions
        for part, w in enumerate(owner):
            if w is not None:
                mu[part] = p.rate / len(owned[w])
        if sum(mu) > cap_total:
            # The cluster is the bound: max-min fair shares (the fastest slow down first).
            ordered = sorted(mu)
            left, level = cap_total, 0.0
            for i, m in enumerate(ordered):
                share = left / (len(ordered) - i)
                if m >= share:
                    level = share
                    break
                left -= m
            mu = [min(m, level) for m in mu]
        return mu

    def advance(until: float) -> None:
        nonlocal now
        dt = until - now
        if dt <= 0:
            return
        mu = rates()
        for part in range(p.partitions):
            b = backlog[part]
            m = mu[part]
            if m >= lam:
                drained = min(b, (m - lam) * dt)
                backlog[part] = b - drained
                done = lam * dt + drained
            else:
                backlog[part] = b + (lam - m) * dt
                done = m * dt
            result.processed += done
            if backlog[part] > 0 and lam > 0:
                result.worst_backlog_s = max(result.worst_backlog_s, backlog[part] / lam)
        result.arrived += lam * dt * p.partitions
        now = until

    def assign(part: int) -> None:
        candidates = [w for w in live]
        if not candidates:
            return
        fewest = min(len(owned[w]) for w in candidates)
        choice = rng.choice([w for w in candidates if len(owned[w]) == fewest])
        owner[part] = choice
        owned[choice].add(part)

    while events:
        t, _, kind, who = heapq.heappop(events)
        if t > p.duration:
            break
        advance(t)
        if kind == "fail" and who in live:
            result.failures += 1
            live.discard(who)
            for part in owned[who]:
                owner[part] = None
                unowned_since[part] = t
                delay = max(p.lease_ttl, p.ack_wait + p.lease_ttl / 2) + rng.uniform(
                    0, p.lease_ttl / 4
                )
                push(t + delay, "take", part)
            owned[who] = set()
            push(t + p.restart, "restart", who)
        elif kind == "restart":
            live.add(who)
            push(t + rng.expovariate(1 / p.mtbf), "fail", who)
            # rebalancing: the newcomer takes a partition from the busiest owner, if any
            # owns more than its fair share (after a short hand-back pause, ignored here)
            fair = math.ceil(p.partitions / len(live))
            busiest = max(live, key=lambda w: len(owned[w]))
            if len(owned[busiest]) > fair:
                part = next(iter(owned[busiest]))
                owned[busiest].discard(part)
                owner[part] = who
                owned[who].add(part)
        elif kind == "take" and owner[who] is None:
            if live:
                assign(who)
                result.failovers.append(t - unowned_since.pop(who))
            else:
                push(t + 1.0, "take", who)
    advance(p.duration)
    result.backlog = sum(backlog)
    return result


def _quantile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def table(base: Params, grid: list[tuple[int, int]]) -> list[str]:
    lines = [
        "| partitions | workers | offered msg/s | throughput msg/s | failures | "
        "failover p50 / p99 s | worst backlog s |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for partitions, workers in grid:
        params = Params(**{**base.__dict__, "partitions": partitions, "workers": workers})
        r = simulate(params)
        assert abs(r.arrived - r.processed - r.backlog) < 1e-6 * max(1.0, r.arrived)
        p50 = statistics.median(r.failovers) if r.failovers else float("nan")
        lines.append(
            f"| {partitions} | {workers} | {params.load:,.0f} | {r.throughput:,.0f} | "
            f"{r.failures} | {p50:.1f} / {_quantile(r.failovers, 0.99):.1f} | "
            f"{r.worst_backlog_s:.1f} |"
        )
    return lines


GRID = [(8, 8), (16, 16), (64, 8), (64, 64), (64, 256), (64, 1000), (256, 1000), (1024, 1000)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.sim_scaleout")
    parser.add_argument("--rate", type=float, default=Params.rate, help="msg/s per worker")
    parser.add_argument("--server-rate", type=float, default=Params.server_rate)
    parser.add_argument("--nodes", type=int, default=Params.nodes)
    parser.add_argument("--mtbf", type=float, default=Params.mtbf, help="s per worker")
    parser.add_argument("--lease-ttl", type=float, default=Params.lease_ttl)
    parser.add_argument("--ack-wait", type=float, default=Params.ack_wait)
    parser.add_argument("--hours", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    base = Params(
        rate=args.rate,
        server_rate=args.server_rate,
        nodes=args.nodes,
        mtbf=args.mtbf,
        lease_ttl=args.lease_ttl,
        ack_wait=args.ack_wait,
        duration=args.hours * 3600,
        seed=args.seed,
    )
    print(
        f"simulated {args.hours:g} h; worker {base.rate:,.0f} msg/s, stream leader "
        f"{base.server_rate:,.0f} msg/s x {base.nodes} nodes, worker MTBF {base.mtbf:,.0f} s, "
        f"lease {base.lease_ttl:g} s + ack_wait {base.ack_wait:g} s; load = "
        f"{base.utilisation:.0%} of capacity"
    )
    print("\n".join(table(base, GRID)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
