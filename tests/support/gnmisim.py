"""Simulated gNMI switches served by the project's simulator, and a plain gNMI client for tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import grpc
from gnmi_pb import gnmi_pb2, gnmi_pb2_grpc

from swtel.agent.collectors import gnmi_paths
from swtel.agent.sim.gnmi_target import GnmiFleet, serve_gnmi
from swtel.agent.sim.model import SimDevice

LOGIN = (("username", "admin"), ("password", "admin"))


@asynccontextmanager
async def gnmi_fleet(*devices: SimDevice, **kw: Any) -> AsyncIterator[GnmiFleet]:
    """Serve the devices on free loopback ports; ``fleet.ports[i]`` serves ``devices[i]``."""
    fleet = await serve_gnmi(list(devices), "127.0.0.1", [0] * len(devices), **kw)
    try:
        yield fleet
    finally:
        await fleet.close(0)


@asynccontextmanager
async def gnmi_client(port: int, creds: grpc.ChannelCredentials | None = None,
                      options: list[tuple[str, Any]] | None = None) -> AsyncIterator[gnmi_pb2_grpc.gNMIStub]:
    target = f"127.0.0.1:{port}"
    channel = (grpc.aio.secure_channel(target, creds, options=options) if creds
               else grpc.aio.insecure_channel(target, options=options))
    try:
        yield gnmi_pb2_grpc.gNMIStub(channel)
    finally:
        await channel.close(grace=None)


def subscribe_request(*paths: str, mode: int = gnmi_pb2.SubscriptionList.STREAM, sub_mode: int = gnmi_pb2.SAMPLE,
                      sample_s: float = 0.0, heartbeat_s: float = 0.0, encoding: int = gnmi_pb2.PROTO,
                      updates_only: bool = False, suppress_redundant: bool = False) -> gnmi_pb2.SubscribeRequest:
    subs = [gnmi_pb2.Subscription(path=gnmi_paths.to_proto(p), mode=sub_mode, sample_interval=int(sample_s * 1e9),
                                  heartbeat_interval=int(heartbeat_s * 1e9), suppress_redundant=suppress_redundant)
            for p in paths]
    return gnmi_pb2.SubscribeRequest(subscribe=gnmi_pb2.SubscriptionList(
        subscription=subs, mode=mode, encoding=encoding, updates_only=updates_only))


def leaves(notification: gnmi_pb2.Notification) -> dict[str, Any]:
    """path string → decoded value of every update in a notification."""
    prefix = gnmi_paths.elems_of(notification.prefix)
    return {gnmi_paths.path_string(prefix, u.path): gnmi_paths.decode_value(u.val) for u in notification.update}
