"""State of one simulated switch, shared by its gNMI, SSH and NETCONF faces.

Values are functions of time (monotonic clock since the device started) and a per-device seed, so every
protocol reports the same numbers and thousands of devices cost no background work: counters only grow
at per-interface rates, oper-status flaps now and then, CPU, memory and temperature wander.
"""

from __future__ import annotations

import hashlib
import math
import random
import time
from dataclasses import dataclass, field

COUNTERS = (
    "in-octets", "out-octets", "in-unicast-pkts", "out-unicast-pkts", "in-multicast-pkts",
    "out-multicast-pkts", "in-errors", "out-errors", "in-discards", "out-discards",
)

_IFNAMES = {
    "eos": lambda i: f"Ethernet{i + 1}",
    "nxos": lambda i: f"Ethernet1/{i + 1}",
    "junos": lambda i: f"ge-0/0/{i}",
    "iosxr": lambda i: f"GigabitEthernet0/0/0/{i}",
    "ios": lambda i: f"GigabitEthernet1/0/{i + 1}",
    "iosxe": lambda i: f"GigabitEthernet1/0/{i + 1}",
    "srl": lambda i: f"ethernet-1/{i + 1}",
    "generic": lambda i: f"eth{i}",
}

FACTS = {
    "eos": ("Arista", "DCS-7050SX3-48YC8", "4.30.1F"),
    "nxos": ("Cisco", "N9K-C93180YC-FX", "10.3(2)"),
    "junos": ("Juniper", "QFX5120-48Y", "22.4R1.10"),
    "iosxr": ("Cisco", "NCS-5501", "7.9.1"),
    "ios": ("Cisco", "C9300-48P", "17.9.4"),
    "iosxe": ("Cisco", "C9300-48P", "17.9.4"),
    "srl": ("Nokia", "7220 IXR-D2L", "23.10.1"),
    "generic": ("Simulated", "SIM-48", "1.0"),
}


@dataclass
class Faults:
    """Misbehaviour to inject, per device."""

    wrong_password: bool = False  # reject every login
    delay_s: float = 0.0  # answer this much later
    hang: bool = False  # accept, then never answer
    drop_stream_after_s: float | None = None  # gNMI: end a Subscribe stream with an error after this long
    garbage: bool = False  # answer with bytes that parse as nothing
    no_exec: bool = False  # SSH: refuse exec requests (shell only, as many devices and fakenos)
    counter_reset_at_s: float | None = None  # counters restart from 0 at this age (a reboot, a clear)
    # gNMI quirks of real targets (issue 14), so demos and benches meet them too:
    no_heartbeat: bool = False  # ON_CHANGE: ignore heartbeat_interval, send changes only
    poll_sync_once: bool = False  # POLL: sync_response after the first round only, not after each Poll
    encodings: tuple[str, ...] = ()  # Capabilities offers (and Subscribe accepts) only these; () = all
    ignore_paths: bool = False  # Subscribe answers with every leaf it has, whatever the requested paths
    refuse_subscribe: bool = False  # every Subscribe fails (UNIMPLEMENTED); Capabilities and Get work
    empty_unknown: bool = False  # paths it does not serve get empty notifications, not NOT_FOUND


@dataclass
class SimDevice:
    name: str
    platform: str = "generic"
    interfaces: int = 48
    username: str = "admin"
    password: str = "admin"
    seed: int | None = None
    faults: Faults = field(default_factory=Faults)
    started: float = field(default_factory=time.monotonic)
    started_wall: float = field(default_factory=time.time)
    config_text: str = ""
    # SSH CLI: with a secret, shells of platforms with privilege levels (ios, eos, generic) start at
    # "name>" and `enable` asks for it; `show running-config` needs the privileged "name#"
    enable_secret: str | None = None
    cli_json: bool = True  # False: EOS and NX-OS refuse "| json" and answer the text commands (an old image)

    def __post_init__(self) -> None:
        if self.seed is None:
            self.seed = int.from_bytes(hashlib.blake2b(self.name.encode(), digest_size=4).digest(), "big")
        rnd = random.Random(self.seed)
        self.ifnames = [_IFNAMES.get(self.platform, _IFNAMES["generic"])(i) for i in range(self.interfaces)]
        # bytes/s per interface: from idle links to a busy 10G link
        self._rates = [rnd.choice((1e3, 1e5, 1e6, 1e7, 1e8)) * rnd.uniform(0.5, 1.5) for _ in self.ifnames]
        self._flap_period = [rnd.uniform(120, 900) for _ in self.ifnames]
        self._phase = rnd.uniform(0, 1000)
        self.serial = f"SIM{self.seed:08X}"
        if not self.config_text:
            self.config_text = self.default_config()

    # ---- time -----------------------------------------------------------------------------------------

    def age(self, now: float | None = None) -> float:
        return (time.monotonic() if now is None else now) - self.started

    def timestamp_ns(self) -> int:
        return time.time_ns()

    # ---- readings -------------------------------------------------------------------------------------

    def counters(self, index: int, now: float | None = None) -> dict[str, int]:
        """The ten counters of interface ``index``; they only grow (unless a reset fault is due)."""
        t = self.age(now)
        reset = self.faults.counter_reset_at_s
        if reset is not None and t >= reset:
            t -= reset
        octets = self._rates[index] * t
        pkts = octets / 800
        return {
            "in-octets": int(octets),
            "out-octets": int(octets * 0.7),
            "in-unicast-pkts": int(pkts),
            "out-unicast-pkts": int(pkts * 0.7),
            "in-multicast-pkts": int(pkts * 0.01),
            "out-multicast-pkts": int(pkts * 0.005),
            "in-errors": int(pkts * 1e-6),
            "out-errors": int(pkts * 5e-7),
            "in-discards": int(pkts * 1e-5),
            "out-discards": int(pkts * 2e-5),
        }

    def oper_status(self, index: int, now: float | None = None) -> str:
        """UP most of the time; each interface is DOWN for 5 s once per its flap period."""
        t = self.age(now) + self._phase
        return "DOWN" if (t % self._flap_period[index]) < 5.0 and index % 7 == 3 else "UP"

    def cpu_percent(self, now: float | None = None) -> int:
        t = self.age(now) + self._phase
        return int(20 + 15 * math.sin(t / 60) + 5 * math.sin(t / 7))

    def memory(self, now: float | None = None) -> tuple[int, int]:
        """(physical, utilized) in bytes."""
        t = self.age(now) + self._phase
        total = 16 * 1024**3
        return total, int(total * (0.45 + 0.05 * math.sin(t / 300)))

    def temperature(self, now: float | None = None) -> float:
        t = self.age(now) + self._phase
        return round(42.0 + 3 * math.sin(t / 120), 1)

    def uptime_s(self) -> int:
        return int(self.age()) + 86400

    @property
    def facts(self) -> dict[str, str]:
        vendor, model, version = FACTS.get(self.platform, FACTS["generic"])
        return {"vendor": vendor, "model": model, "os_version": version, "serial": self.serial,
                "hostname": self.name}

    def interface_config(self) -> dict[str, tuple[str, bool]]:
        """Each interface's (description, enabled) as the running config says: the NETCONF ``<get-config>``
        answer is built from it, so a test that edits ``config_text`` changes every face's configuration."""
        out = {name: ("", True) for name in self.ifnames}
        current = None
        for line in self.config_text.splitlines():
            words = line.split(None, 1)
            if not line[:1].isspace():
                current = words[1].strip() if len(words) == 2 and words[0] == "interface" else None
            elif current in out and words:
                desc, enabled = out[current]
                if words[0] == "description":
                    out[current] = (words[1].strip() if len(words) == 2 else "", enabled)
                elif line.strip() in ("shutdown", "no shutdown"):
                    out[current] = (desc, line.strip() == "no shutdown")
        return out

    def set_description(self, ifname: str, text: str) -> None:
        """Edit the running config: the description of one interface (a config change for backup tests)."""
        lines = self.config_text.splitlines()
        try:
            at = lines.index(f"interface {ifname}") + 1
        except ValueError:
            raise KeyError(f"no interface {ifname} in the running config") from None
        end = at
        while end < len(lines) and lines[end][:1].isspace():
            end += 1
        block = [ln for ln in lines[at:end] if ln.split()[:1] != ["description"]]
        lines[at:end] = [f"   description {text}", *block]
        self.config_text = "\n".join(lines) + "\n"

    def default_config(self) -> str:
        lines = [f"hostname {self.name}", "!"]
        for ifname in self.ifnames:
            lines += [f"interface {ifname}", "   no shutdown", "!"]
        return "\n".join(lines) + "\n"
