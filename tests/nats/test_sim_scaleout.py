"""The scale-out simulation keeps its books and its failovers follow the lease arithmetic."""

from __future__ import annotations

from benchmarks.sim_scaleout import Params, simulate


def test_messages_are_conserved_and_failover_follows_the_lease_rule() -> None:
    params = Params(partitions=16, workers=32, mtbf=300, duration=1200, lease_ttl=2, ack_wait=1)
    result = simulate(params)
    assert result.failures > 10
    assert abs(result.arrived - result.processed - result.backlog) < 1e-6 * result.arrived
    assert all(2.0 <= f <= 2.5 for f in result.failovers)  # max(2, 1 + 1) + a tick
    assert result.throughput > 0.99 * params.load  # spare workers absorb the failures


def test_throughput_is_bounded_by_partitions_not_workers() -> None:
    few = simulate(Params(partitions=8, workers=64, mtbf=1e9, duration=60))
    many = simulate(Params(partitions=8, workers=1000, mtbf=1e9, duration=60))
    assert abs(few.throughput - many.throughput) < 1e-6 * few.throughput
    assert few.throughput <= 8 * Params.rate


def test_a_loaded_cluster_without_spares_builds_backlog_on_failure() -> None:
    tight = simulate(Params(partitions=16, workers=16, mtbf=600, duration=1800, utilisation=0.8))
    spare = simulate(Params(partitions=16, workers=48, mtbf=600, duration=1800, utilisation=0.8))
    assert tight.worst_backlog_s > spare.worst_backlog_s
