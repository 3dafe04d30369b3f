"""SSH CLI and NETCONF polling benchmark: N simulated devices polled every 10 s by the real collectors.

    .venv/bin/python bench/agent/ssh.py                      # 200 devices, exec, shell and netconf
    .venv/bin/python bench/agent/ssh.py --devices 500 --modes exec --repeats 5
    .venv/bin/python bench/agent/ssh.py --modes shell --server openssh   # shell devices served by OpenSSH sshd

The simulator runs in its own process (so its CPU and memory are not counted); each (mode, repeat)
runs the collectors in a fresh child process that reports:

- samples/s over a steady window (a whole number of poll intervals) after every device has been polled
  once (connecting and logging in are start-up work, outside the window),
- CPU seconds of the collector process per million samples, and that figure as a ratio to a baseline
  measured in the same process: parsing the same outputs with no network (the CLI parser for exec and
  shell; XML parse and mapping of the simulator's ``<rpc-reply>`` for NETCONF), so the ratio is what
  SSH, framing and asyncio cost on top of parsing, and is comparable between noisy machines (parse-only
  is measured before connecting and again after the window, and the two are averaged),
- RSS per device: growth of the collector process from before connecting to after every device is
  collecting, divided by N,
- and, from the simulator process, how long N SSH + N NETCONF listeners took to open, their file
  descriptors and memory.

``--server openssh`` serves the exec and shell devices from a real OpenSSH ``sshd`` instead (an independent
SSH implementation: the asyncssh simulator sends an SSH_MSG_IGNORE before each data packet, OpenSSH does
not): a private sshd on a free loopback port (``tests/support/sshd.py``, as the NETCONF peer tests use;
key login for the current user; ``MaxStartups`` raised for N simultaneous logins) whose ``ForceCommand`` is
``cli_emulator.py`` in a PTY: prompt, read a line, print that command's output, prompt again; the terminal
echoes commands as a real CLI's does. The outputs are the simulator's, rendered once for one device
(``SimDevice("bench")``) before sshd starts, so every session answers the commands and layout the
parse-only baseline parses (its own simulated device's outputs differ only in the counters' digits); all N
devices share the one port. The collector, the baseline and the windows are the same.

Medians of ``--repeats`` runs. Not run in CI. On a shared 2-core machine the figures are noisy (the
simulator and the collectors compete for the same cores); compare ratios, not absolutes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from swtel.agent.collectors import netconf, parsers, ssh
from swtel.agent.collect import tune_gc
from swtel.agent.collectors.base import CollectorContext, Credential
from swtel.agent.collectors.sshconn import SshOptions
from swtel.shared import inventory, wire

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


# ---- the simulator process ----------------------------------------------------------------------------


async def serve(devices: int, interfaces: int, platform: str) -> None:
    from swtel.agent.sim.model import SimDevice
    from swtel.agent.sim.netconf_server import serve_netconf
    from swtel.agent.sim.ssh_server import serve_ssh

    sims = [SimDevice(f"bench{i}", platform=platform, interfaces=interfaces) for i in range(devices)]
    rss0, fds0, t0 = rss_bytes(), len(os.listdir("/proc/self/fd")), time.perf_counter()
    s = await serve_ssh(sims, "127.0.0.1", [0] * devices)  # port 0: the kernel picks free ports
    n = await serve_netconf(sims, "127.0.0.1", [0] * devices)
    info = {"ssh": s.ports, "netconf": n.ports, "listen_s": time.perf_counter() - t0,
            "fds": len(os.listdir("/proc/self/fd")) - fds0, "listener_rss": rss_bytes() - rss0}
    print(json.dumps(info), flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)  # until the parent closes stdin
    await s.close()
    await n.close()


# ---- a collector process ------------------------------------------------------------------------------


class Counter:
    """Publish that only counts (the publisher's own cost is measured by the gNMI benchmark)."""

    def __init__(self) -> None:
        self.samples = 0
        self.polled: set[int] = set()
        self.events: dict[str, int] = {}

    def bind(self, i: int) -> Bound:
        return Bound(self, i)


class Bound:
    def __init__(self, c: Counter, i: int) -> None:
        self.c, self.i = c, i

    async def batch(self, subscription: str, samples: list[wire.Sample]) -> None:
        self.c.samples += len(samples)
        self.c.polled.add(self.i)

    async def event(self, kind: str, detail: str = "") -> None:
        self.c.events[kind] = self.c.events.get(kind, 0) + 1


def baseline_cpu_per_msample(platform: str, interfaces: int) -> float:
    """CPU seconds per million samples to parse the simulator's outputs, no network."""
    from swtel.agent.sim import cli
    from swtel.agent.sim.model import SimDevice

    dev = SimDevice("baseline", platform=platform, interfaces=interfaces)
    mod = parsers.platform(platform)
    outputs = [(c.variants[0].command, cli.run(dev, c.variants[0].command)) for cmds in mod.COMMANDS.values()
               for c in cmds]
    n, t0 = 0, time.process_time()
    while time.process_time() - t0 < 1.0:
        for cmd, text in outputs:
            n += len(mod.parse(cmd, text, 0))
    return (time.process_time() - t0) / n * 1e6


def netconf_baseline_cpu_per_msample(platform: str, interfaces: int) -> float:
    """CPU seconds per million samples to parse the simulator's NETCONF replies (XML parse of the whole
    ``<rpc-reply>`` and mapping to samples, as the collector does), no network, no framing, no SSH."""
    import xml.etree.ElementTree as ET

    from swtel.agent.sim import netconf_data
    from swtel.agent.sim.model import SimDevice

    dev = SimDevice("baseline", platform=platform, interfaces=interfaces)
    builders = netconf_data.operational(("ietf", "openconfig"))  # what serve_netconf offers by default
    replies = []
    for key, mapper in (("ietf", netconf.ietf_interfaces), ("system", netconf.system)):
        flt = ET.fromstring(f'<filter xmlns="{netconf.NS_BASE}" type="subtree">{netconf.FILTERS[key]}</filter>')
        body = "".join(netconf_data.to_xml(e) for e in netconf_data.select(builders, dev, flt))
        replies.append((f'<rpc-reply xmlns="{netconf.NS_BASE}" message-id="1"><data>{body}</data></rpc-reply>'
                        .encode(), mapper))
    data_tag = f"{{{netconf.NS_BASE}}}data"
    n, t0 = 0, time.process_time()
    while time.process_time() - t0 < 1.0:
        for reply, mapper in replies:
            n += len(mapper(ET.fromstring(reply).find(data_tag), 0))
    return (time.process_time() - t0) / n * 1e6


async def collect(mode: str, ports: list[int], interval: float, duration: float, platform: str,
                  credential: Credential) -> dict:
    opts = SshOptions(host_key_policy="off", timeout_s=30)
    col = netconf.collector(opts) if mode == "netconf" else ssh.collector(opts)
    subs = [wire.Subscription(n, p, interval_s=interval) for n, p in inventory.DEFAULT_PATHS.items()]
    counter = Counter()
    rss0 = rss_bytes()
    tasks = []
    for i, port in enumerate(ports):
        dev = wire.Device(name=f"bench{i}", address="127.0.0.1", port=port, protocol="netconf" if mode == "netconf"
                          else "ssh", platform=platform, tags={"ssh_mode": mode}, subscriptions=subs)  # type: ignore[arg-type]
        ctx = CollectorContext(device=dev, token=1, publish=counter.bind(i), credential=credential)
        tasks.append(asyncio.create_task(col(ctx)))
        await asyncio.sleep(random.uniform(0, 0.002))  # connect at a realistic pace, not all in one tick
    deadline = time.monotonic() + 2 * interval + 60
    while len(counter.polled) < len(ports) and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
    warm = len(counter.polled)
    warm_s = time.monotonic() - (deadline - 2 * interval - 60)
    rss1 = rss_bytes()
    s0, c0, t0 = counter.samples, time.process_time(), time.monotonic()
    await asyncio.sleep(duration)
    s1, c1, t1 = counter.samples, time.process_time(), time.monotonic()
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    samples = max(1, s1 - s0)
    return {"warm": warm, "warm_s": warm_s, "samples_per_s": samples / (t1 - t0), "cpu_per_msample": (c1 - c0) / samples * 1e6,
            "rss_per_device": (rss1 - rss0) / len(ports), "events": counter.events}


# ---- the OpenSSH server (--server openssh) ------------------------------------------------------------


def render_cli(tmp: str, platform: str, interfaces: int) -> None:
    """The simulator's output for every command the collector may send, into ``tmp/cli.json`` for
    ``cli_emulator.py`` (rendered once, so the emulator imports nothing of ours)."""
    from swtel.agent.sim import cli
    from swtel.agent.sim.model import SimDevice

    dev = SimDevice("bench", platform=platform, interfaces=interfaces)
    mod = parsers.platform(platform)
    cmds = {v.command for cs in mod.COMMANDS.values() for c in cs for v in c.variants}
    cmds |= set(getattr(mod, "FACTS_COMMANDS", [])) | set(getattr(mod, "PAGING_OFF", []))
    outputs = {}
    for cmd in sorted(cmds):
        try:
            text = cli.run(dev, cmd, True)
        except cli.CommandError:
            continue  # the emulator answers it as an invalid command
        outputs[cmd] = text if not text or text.endswith("\n") else text + "\n"
    spec = {"prompt": cli.prompt(dev, True), "invalid": cli.invalid(dev, ""), "outputs": outputs}
    with open(os.path.join(tmp, "cli.json"), "w") as f:
        json.dump(spec, f)


def start_openssh(devices: int, platform: str, interfaces: int) -> tuple[subprocess.Popen, str, dict]:
    """A private sshd whose sessions run ``cli_emulator.py``; returns it, its directory and what the
    collector needs (port, user, key)."""
    import tempfile

    sys.path.insert(0, os.path.join(ROOT, "tests"))
    from support.ports import free_port, wait_port
    from support.sshd import write_sshd

    tmp = tempfile.mkdtemp(prefix="swtel-sshbench-", dir="/tmp")
    render_cli(tmp, platform, interfaces)
    emulator = os.path.join(os.path.dirname(os.path.abspath(__file__)), "cli_emulator.py")
    port = free_port()
    # N logins at once: MaxStartups bounds unauthenticated connections (default 10:30:100 drops some).
    # sshd runs ForceCommand with the user's shell; bash run by sshd sources ~/.bashrc (which may start
    # heavy tools, e.g. `pyenv init`) unless it is not the top-level shell: SHLVL=1 makes it level 2.
    files = write_sshd(Path(tmp), port, f"ForceCommand exec {sys.executable} -I -S {emulator} {tmp}\n"
                       f"SetEnv SHLVL=1\nMaxStartups {devices + 100}\nPrintMotd no\nPrintLastLog no\n"
                       "PermitTTY yes\n")
    with open(os.path.join(tmp, "sshd.log"), "w") as log:  # sshd keeps its own copy of the descriptor
        proc = subprocess.Popen(files.command(), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log)
    try:
        wait_port("127.0.0.1", port, timeout=15)
    except TimeoutError:
        proc.kill()
        raise SystemExit(f"sshd did not start: {open(os.path.join(tmp, 'sshd.log')).read()[-2000:]}") from None
    version = subprocess.run([files.command()[0], "-V"], capture_output=True, text=True).stderr.split(",")[0]
    return proc, tmp, {"port": port, "user": files.username, "key": files.key_file,
                       "known_hosts": files.known_hosts, "version": version}


# ---- the driver ---------------------------------------------------------------------------------------


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--devices", type=int, default=200)
    ap.add_argument("--interfaces", type=int, default=48)
    ap.add_argument("--interval", type=float, default=10.0)
    ap.add_argument("--duration", type=float, default=10.0, help="steady window per run, seconds")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--modes", default="exec,shell,netconf")
    ap.add_argument("--platform", default="eos")
    ap.add_argument("--server", choices=("sim", "openssh"), default="sim",
                    help="who serves the exec and shell devices: the asyncssh simulator or OpenSSH sshd")
    ap.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--collect", default="", help=argparse.SUPPRESS)
    args = ap.parse_args()
    # a whole number of poll intervals: each device polls the same number of times in every window
    args.duration = max(1, round(args.duration / args.interval)) * args.interval

    if args.serve:
        asyncio.run(serve(args.devices, args.interfaces, args.platform))
        return
    if args.collect:
        peer = json.loads(sys.stdin.readline())
        cred = (Credential(peer["user"], "", ssh_key=peer["key"]) if peer.get("key")
                else Credential("admin", "admin"))
        baseline = netconf_baseline_cpu_per_msample if args.collect == "netconf" else baseline_cpu_per_msample
        tune_gc()  # as the agent process does once started (start-up frozen, a larger gen0 threshold)
        # parse-only is measured before connecting and after the window, and averaged: a 2-core VM's speed
        # drifts by a third between minutes, and one measurement at one end swung the ratio as much
        before = baseline(args.platform, args.interfaces)
        out = asyncio.run(collect(args.collect, peer["ports"], args.interval, args.duration, args.platform, cred))
        after = baseline(args.platform, args.interfaces)
        out["baseline"], out["baselines"] = (before + after) / 2, [before, after]
        print(json.dumps(out), flush=True)
        return

    me = [sys.executable, os.path.abspath(__file__), "--devices", str(args.devices), "--interfaces",
          str(args.interfaces), "--interval", str(args.interval), "--duration", str(args.duration),
          "--platform", args.platform]
    modes = args.modes.split(",")
    if args.server == "openssh" and "netconf" in modes:
        ap.error("--server openssh serves exec and shell only (netconf: the simulator, or tests/support/netconfd.py)")
    sim = sshd = None
    server = "simulator (asyncssh, agent/sim/ssh_server.py)"
    try:
        if args.server == "sim":
            sim = subprocess.Popen([*me, "--serve"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            assert sim.stdout is not None and sim.stdin is not None
            info = json.loads(sim.stdout.readline())
            print(f"simulator: {args.devices} SSH + {args.devices} NETCONF listeners opened in {info['listen_s']:.2f} s, "
                  f"{info['fds']} fds, {info['listener_rss'] / 2 / args.devices / 1024:.1f} KiB per listener")
            peers = {m: {"ports": info["netconf" if m == "netconf" else "ssh"]} for m in modes}
        else:
            sshd, tmp, peer = start_openssh(args.devices, args.platform, args.interfaces)
            server = f"{peer['version']} sshd, ForceCommand bench/agent/cli_emulator.py in a PTY"
            print(f"server: {server}, 127.0.0.1:{peer['port']} for all {args.devices} devices "
                  f"(outputs rendered from the simulator in {tmp})")
            peers = {m: {"ports": [peer["port"]] * args.devices, "user": peer["user"], "key": peer["key"]}
                     for m in modes}
        rows = []
        for mode in modes:
            runs = []
            for _ in range(args.repeats):
                p = subprocess.run([*me, "--collect", mode], input=json.dumps(peers[mode]) + "\n",
                                   capture_output=True, text=True, timeout=2 * args.interval + args.duration + 300,
                                   check=True)
                runs.append(json.loads(p.stdout.strip().splitlines()[-1]))
            for r in runs:
                r["ratio"] = r["cpu_per_msample"] / r["baseline"]
            med = {k: statistics.median(r[k] for r in runs) for k in
                   ("samples_per_s", "cpu_per_msample", "rss_per_device", "baseline", "ratio", "warm", "warm_s")}
            rows.append((mode, med, runs[-1]["events"], [r["ratio"] for r in runs]))
            print(f"{mode}: parse-only before / after each run: "
                  + ", ".join(" / ".join(f"{b:.2f}" for b in r["baselines"]) for r in runs), flush=True)
    finally:
        if sim is not None:
            if sim.stdin:
                sim.stdin.close()
            sim.wait(timeout=30)
        if sshd is not None:
            from support.procs import stop_process  # tests/ is on the path since start_openssh

            stop_process(sshd, 30)
            shutil.rmtree(tmp, ignore_errors=True)

    print(f"\n{args.devices} devices x {args.interfaces} interfaces ({args.platform}), every {args.interval:g} s; "
          f"median of {args.repeats} runs, {args.duration:g} s steady window each; server: {server}\n")
    head = ("mode", "devices ok", "after", "samples/s", "CPU s per 1M", "parse-only CPU s per 1M", "× parse-only",
            "each run", "RSS/device", "events")
    print(" | ".join(head))
    print(" | ".join("---" for _ in head))
    for mode, m, events, ratios in rows:
        print(" | ".join([mode, str(int(m["warm"])), f"{m['warm_s']:.0f} s", f"{m['samples_per_s']:,.0f}",
                          f"{m['cpu_per_msample']:.2f}", f"{m['baseline']:.2f}", f"{m['ratio']:.1f}",
                          ", ".join(f"{r:.1f}" for r in ratios),
                          f"{m['rss_per_device'] / 1024:.0f} KiB", str(events)]))
    print("\nparse-only = the same process parses the simulator's outputs with no network: the CLI parser for "
          "exec and shell, XML parse of the <rpc-reply> and mapping for netconf. × parse-only is the median of "
          "the per-run ratios.")


if __name__ == "__main__":
    main()
