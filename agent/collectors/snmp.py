"""SNMP collector: v2c or v3 (USM, SHA-2/AES) over UDP with gufo-snmp, GETBULK column walks mapped to the
normalised OpenConfig paths by :mod:`.snmp_mibs`.

The loop, statuses, events, hysteresis and backoff are the polling collectors' (:mod:`.polling`): a
"session" is one client socket whose opening is a GET of sysUpTime, so a wrong community (the agent stays
silent: ``timeout``) or an unknown v3 user / wrong auth key (a USM report: ``auth_failed``) fails the
attempt and the backoff grows; nothing is sent again before the backoff has passed.

Per-device knobs are inventory tags (defaults in brackets): ``snmp_max_repetitions`` [25] for GETBULK,
``snmp_timeout`` [2s] per request, ``snmp_retries`` [1] per walk, ``snmp_max_rps`` [25] requests per
second at most to this device (the pacing that keeps one agent from flooding a control plane). Requests
to one device run one at a time. Device without a credential or with one that has neither a community
nor a v3 user: ``auth_failed`` with a one-line reason.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from gufo.snmp import (Aes128Key, Aes192Key, Aes256Key, DesKey, Md5Key, NoSuchInstance, Sha1Key, Sha224Key,
                       Sha256Key, Sha384Key, Sha512Key, SnmpAuthError, SnmpError, User)
from gufo.snmp.aio import SnmpSession

from swtel.shared import inventory, wire

from . import polling
from . import snmp_mibs as mib
from .base import CollectorContext, Credential

AUTH_KEYS = {"md5": Md5Key, "sha": Sha1Key, "sha1": Sha1Key, "sha224": Sha224Key, "sha256": Sha256Key,
             "sha384": Sha384Key, "sha512": Sha512Key}
USM_REFRESH_S = 120.0
PRIV_KEYS = {"des": DesKey, "aes": Aes128Key, "aes128": Aes128Key, "aes192": Aes192Key, "aes256": Aes256Key}


def honour_cancel() -> None:
    """Re-raise a cancellation the library swallowed. On Python 3.11, ``asyncio.wait_for`` (which gufo-snmp
    awaits every answer with) returns the answer and drops a cancellation that arrives in the same loop
    iteration (CPython gh-86296, fixed in 3.12); the cancelled task would then poll on for ever, and a
    released lease would leave its collector running. ``cancelling()`` still counts the request."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


@dataclass(frozen=True)
class SnmpOptions:
    max_repetitions: int = 25
    timeout_s: float = 2.0
    retries: int = 1
    max_rps: float = 25.0  # 0: unpaced

    @classmethod
    def for_device(cls, device: wire.Device) -> SnmpOptions:
        """Defaults overridden by the device's ``snmp_*`` tags; a bad tag is an error naming it."""
        t = device.tags
        try:
            return cls(
                max_repetitions=int(t.get("snmp_max_repetitions", cls.max_repetitions)),
                timeout_s=inventory.parse_duration(t["snmp_timeout"], "snmp_timeout") if "snmp_timeout" in t
                else cls.timeout_s,
                retries=int(t.get("snmp_retries", cls.retries)),
                max_rps=float(t.get("snmp_max_rps", cls.max_rps)),
            ).checked()
        except ValueError as e:
            raise polling.DeviceError(f"bad snmp_* tag: {e}") from None

    def checked(self) -> SnmpOptions:
        if not 1 <= self.max_repetitions <= 200:
            raise ValueError("snmp_max_repetitions must be from 1 to 200")
        if not 0 <= self.retries <= 5:
            raise ValueError("snmp_retries must be from 0 to 5")
        if self.max_rps < 0:
            raise ValueError("snmp_max_rps must be 0 (unpaced) or more")
        return self


class AuthFailed(polling.AuthFailed):
    """The device refused the credential (a USM report), or there is no usable SNMP credential."""


def security(cred: Credential | None) -> dict[str, Any]:
    """SnmpSession keyword arguments for a credential: ``community`` (v2c) or ``user`` (v3)."""
    if cred is None:
        raise AuthFailed("an SNMP device needs a credential reference (a community or a v3 user)")
    if cred.auth_password or (cred.username and not cred.community):
        if not cred.username:
            raise AuthFailed("SNMPv3 credential has no username")
        auth = priv = None
        if cred.auth_password:
            auth = AUTH_KEYS[cred.auth_protocol or "sha"](cred.auth_password.encode())
        if cred.priv_password:
            priv = PRIV_KEYS[cred.priv_protocol or "aes"](cred.priv_password.encode())
        return {"user": User(cred.username, auth_key=auth, priv_key=priv)}
    if cred.community:
        return {"community": cred.community}
    raise AuthFailed("credential has neither an SNMP community nor an SNMPv3 user")


def describe(cred: Credential | None) -> str:
    """How the session authenticates, without secrets (for ``session_up``)."""
    if cred is not None and (cred.auth_password or (cred.username and not cred.community)):
        level = "authPriv" if cred.priv_password else "authNoPriv" if cred.auth_password else "noAuthNoPriv"
        return f"v3 {level} user {cred.username}"
    return "v2c"


@dataclass
class DeviceState:
    """What one device's polls remember: its uptime (to see restarts), the 32-bit unwrapping state and
    which table answered each reading (so a poll does not probe absent MIBs again)."""

    uptime_cs: int | None = None
    unwrap: mib.Unwrapper = field(default_factory=mib.Unwrapper)
    hc: bool | None = None
    cpu_source: str | None = None
    mem_source: str | None = None
    has_sensors: bool | None = None


class SnmpPoller:
    """One device's client socket, walks and state; ``poll(groups)`` is the polling loop's poll."""

    def __init__(self, session: SnmpSession, opts: SnmpOptions, state: DeviceState | None = None,
                 v3: bool = False, wants: set[str] | frozenset[str] = frozenset({"description", "speed"})) -> None:
        self.s = session
        self.v3 = v3
        self.wants = wants  # optional interface leaves some subscription asks for (fewer walks otherwise)
        self.opts = opts
        self.state = state or DeviceState()
        self._lock = asyncio.Lock()  # one request at a time to one device
        self._last_request = 0.0  # monotonic

    async def refresh(self) -> None:
        """SNMPv3: (re)learn the engine id, boots and time (a no-op for v2c). USM accepts a request only
        within 150 s of the engine time the client last learnt, so a poll after a longer pause refreshes."""
        try:
            async with self._lock:
                await self.s.refresh()
                honour_cancel()
        except TimeoutError:
            raise TimeoutError(f"no answer to SNMPv3 engine discovery in {self.opts.timeout_s:g} s") from None
        except SnmpAuthError:
            raise AuthFailed("the device refused the SNMPv3 user or its authentication key") from None
        except SnmpError as e:
            raise polling.DeviceError(f"SNMPv3 engine discovery: {e}") from None
        self._last_request = time.monotonic()

    # ---- requests (each bounded, retried ``retries`` times on timeout) ---------------------------------

    async def _call(self, fn: Any, *args: Any) -> Any:
        for attempt in range(self.opts.retries + 1):
            try:
                async with self._lock:
                    result = await fn(*args)
                    honour_cancel()
                    self._last_request = time.monotonic()
                    return result
            except TimeoutError:
                if attempt == self.opts.retries:
                    raise TimeoutError(self.timeout_detail()) from None
            except SnmpAuthError:
                raise AuthFailed("the device refused the SNMPv3 user or its authentication key") from None
        raise AssertionError("unreachable")

    def timeout_detail(self) -> str:
        tries = self.opts.retries + 1
        why = ("" if self.v3 else "; a wrong community gets no answer either")
        return f"no answer in {self.opts.timeout_s:g} s ({tries} {'try' if tries == 1 else 'tries'}){why}"

    async def walk(self, col: str) -> dict[str, object]:
        async def go() -> list[tuple[str, object]]:
            return [r async for r in self.s.getbulk(col, self.opts.max_repetitions)]
        try:
            return mib.column(await self._call(go), col)
        except SnmpError as e:
            raise polling.DeviceError(f"walk {col}: {e}") from None

    async def get_many(self, oids: list[str]) -> dict[str, object]:
        try:
            return dict(await self._call(self.s.get_many, oids))
        except NoSuchInstance:
            return {}
        except SnmpError as e:
            raise polling.DeviceError(f"get {oids[0]}…: {e}") from None

    async def uptime(self) -> int:
        """sysUpTime (centiseconds); also the reachability and credential check of a new session."""
        v = (await self.get_many([mib.SYS_UPTIME])).get(mib.SYS_UPTIME)
        if not isinstance(v, int):
            raise polling.DeviceError("the device has no sysUpTime")
        return v

    # ---- a poll -------------------------------------------------------------------------------------

    async def poll(self, groups: set[str]) -> list[wire.Sample]:
        st = self.state
        if time.monotonic() - self._last_request > USM_REFRESH_S:
            await self.refresh()
        up = await self.uptime()
        if st.uptime_cs is not None and up < st.uptime_cs:  # rebooted (or 497 days of uptime wrapped)
            st.unwrap.restart()
            st.hc = st.cpu_source = st.mem_source = st.has_sensors = None  # new software may answer otherwise
        st.uptime_cs = up
        ts = time.time_ns()
        samples: list[wire.Sample] = []
        if "interfaces" in groups:
            samples += await self.interfaces(up, ts)
        if "system" in groups:
            samples += await self.system(ts)
        return samples

    async def interfaces(self, uptime_cs: int, ts: int) -> list[wire.Sample]:
        st = self.state
        cols: dict[str, dict[str, object]] = {}
        if st.hc is None:
            cols[mib.HC_PROBE] = await self.walk(mib.HC_PROBE)
            st.hc = bool(cols[mib.HC_PROBE])
        for col in mib.interface_columns(st.hc, self.wants):
            if col not in cols:
                cols[col] = await self.walk(col)
        if len(cols[mib.IF_NAME]) < len(cols[mib.IF_OPER_STATUS]):  # an agent without ifName (or not for all)
            cols[mib.IF_DESCR] = await self.walk(mib.IF_DESCR)
        return mib.interface_samples(cols, st.hc, st.unwrap, uptime_cs, ts)

    async def system(self, ts: int) -> list[wire.Sample]:
        return mib.system_samples(await self.cpu(), await self.memory(), await self.temperatures(), ts)

    async def cpu(self) -> int | None:
        st = self.state
        for source in ([st.cpu_source] if st.cpu_source else ["hr", "cisco", "ucd"]):
            if source == "hr":
                v = mib.mean_percent(await self.walk(mib.HR_PROCESSOR_LOAD))
            elif source == "cisco":
                v = mib.mean_percent(await self.walk(mib.CISCO_CPU_1MIN))
            else:
                idle = mib.num((await self.get_many([mib.UCD_CPU_IDLE])).get(mib.UCD_CPU_IDLE))
                v = None if idle is None else 100 - idle
            if v is not None:
                st.cpu_source = source
                return v
        return None

    async def memory(self) -> tuple[int, int] | None:
        st = self.state
        for source in ([st.mem_source] if st.mem_source else ["hr", "cisco", "ucd"]):
            v: tuple[int, int] | None = None
            if source == "hr":
                types = await self.walk(mib.HR_STORAGE_TYPE)
                if any(str(t).lstrip(".") == mib.HR_STORAGE_RAM for t in types.values()):
                    v = mib.hr_memory(types, await self.walk(mib.HR_STORAGE_UNITS),
                                      await self.walk(mib.HR_STORAGE_SIZE), await self.walk(mib.HR_STORAGE_USED))
            elif source == "cisco":
                used, free = await self.walk(mib.CISCO_MEM_USED), await self.walk(mib.CISCO_MEM_FREE)
                u = sum(x for x in used.values() if isinstance(x, int))
                f = sum(x for x in free.values() if isinstance(x, int))
                v = ((u + f) * 1024, u * 1024) if used else None
            else:
                got = await self.get_many([mib.UCD_MEM_TOTAL, mib.UCD_MEM_AVAIL])
                total, avail = mib.num(got.get(mib.UCD_MEM_TOTAL)), mib.num(got.get(mib.UCD_MEM_AVAIL))
                v = None if total is None or avail is None else (total * 1024, (total - avail) * 1024)
            if v is not None:
                st.mem_source = source
                return v
        return None

    async def temperatures(self) -> list[tuple[str, float]]:
        st = self.state
        if st.has_sensors is False:
            return []
        types = await self.walk(mib.ENT_SENSOR_TYPE)
        st.has_sensors = bool(types)
        celsius = [i for i, t in types.items() if t == mib.SENSOR_CELSIUS]
        if not celsius:
            return []
        scales, precisions, values = (await self.walk(mib.ENT_SENSOR_SCALE), await self.walk(mib.ENT_SENSOR_PRECISION),
                                      await self.walk(mib.ENT_SENSOR_VALUE))
        names = await self.get_many([f"{mib.ENT_PHYSICAL_NAME}.{i}" for i in celsius])
        by_index = {oid.rsplit(".", 1)[1]: v for oid, v in names.items()}
        return mib.temperatures({i: types[i] for i in celsius}, scales, precisions, values, by_index)


def open_session(device: wire.Device, cred: Credential | None, opts: SnmpOptions) -> SnmpSession:
    return SnmpSession(addr=device.address, port=device.port, timeout=opts.timeout_s,
                       max_repetitions=opts.max_repetitions, limit_rps=opts.max_rps or None, **security(cred))


async def connect(device: wire.Device, cred: Credential | None, opts: SnmpOptions,
                  state: DeviceState | None = None) -> SnmpPoller:
    """A poller whose device answered sysUpTime with this credential (v3: after engine discovery)."""
    wants = mib.optional_leaves([p for sub in polling.subscriptions(device) for p in sub.paths])
    poller = SnmpPoller(open_session(device, cred, opts), opts, state, v3=describe(cred).startswith("v3"), wants=wants)
    await poller.refresh()
    await poller.uptime()
    return poller


@asynccontextmanager
async def _session(ctx: CollectorContext, state: DeviceState) -> AsyncIterator[polling.Poll]:
    poller = await connect(ctx.device, ctx.credential, SnmpOptions.for_device(ctx.device), state)
    yield poller.poll


async def run(ctx: CollectorContext) -> None:
    """Collect ``ctx.device`` until cancelled (the collector contract of ``base.py``)."""
    state = DeviceState()  # outlives sessions: a lost packet must not reset the 32-bit unwrapping
    what = f"snmp {describe(ctx.credential)} {ctx.device.address}:{ctx.device.port}"
    await polling.supervise(ctx, lambda: _session(ctx, state), what)
