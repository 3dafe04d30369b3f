"""Device work beside collection, run by the agent that holds a device's lease (discovery, config backup).

Each module listed in :data:`JOB_MODULES` has ``def jobs_for(device, settings) -> list[Job]``; a job is an
``async`` function of the slot's :class:`~swtel.agent.collectors.base.CollectorContext` that runs until it
is cancelled. The slot starts the jobs with the collector and cancels them with it, so device work runs
exactly where (and while) the lease says, and never twice. Jobs follow the collector rules: they never raise
because of the device, every wait is bounded, failures are retried with backoff.
"""

from __future__ import annotations

import importlib
from collections.abc import Awaitable, Callable

from swtel.agent.collectors.base import CollectorContext
from swtel.shared import wire
from swtel.shared.settings import Settings

Job = Callable[[CollectorContext], Awaitable[None]]

JOB_MODULES: tuple[str, ...] = ("swtel.agent.jobs.discovery", "swtel.agent.jobs.backup")


def jobs_for(device: wire.Device, settings: Settings) -> list[Job]:
    jobs: list[Job] = []
    for name in JOB_MODULES:
        jobs += importlib.import_module(name).jobs_for(device, settings)
    return jobs
