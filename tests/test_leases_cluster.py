"""A 3-node NATS cluster (buckets with 3 replicas) losing one node: the fleet keeps collecting everything,
and failover still works afterwards."""

from __future__ import annotations

import pytest

from support.agents import Fleet
from support.natsserver import NatsCluster

N = 90


@pytest.mark.cluster
@pytest.mark.slow
@pytest.mark.asyncio
async def test_losing_one_node_of_three(nats_cluster: NatsCluster) -> None:
    fleet = await Fleet(nats_cluster).open(replicas=3)
    try:
        devices = await fleet.add_devices(N)
        # Each agent is told about every node; a1 and a2 start on different first choices.
        urls = [n.url for n in nats_cluster.nodes]
        fleet.start("a1", url=",".join(urls))
        fleet.start("a2", url=",".join(reversed(urls)))
        fleet.start("a3", url=",".join(urls[1:] + urls[:1]))
        want = fleet.expected(devices, ["a1", "a2", "a3"])
        await fleet.converge(want, timeout=30, what="cold start on the cluster")
        nats_cluster.nodes[0].kill()
        # Leaders move to the survivors; agents on the lost node reconnect and may fence meanwhile.
        await fleet.converge(want, timeout=40, what="the fleet to settle after losing a node")
        fleet.agents["a2"].kill()
        await fleet.converge(fleet.expected(devices, ["a1", "a3"]), timeout=20, what="failover on two nodes")
        fleet.assert_no_overlap()
    finally:
        await fleet.close()
