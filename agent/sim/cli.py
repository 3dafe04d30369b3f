"""What a simulated switch prints for each CLI command, per platform.

EOS and NX-OS answer ``… | json`` with the JSON documents the real platforms give (same keys and
nesting, fewer fields); a device with ``cli_json=False`` refuses ``| json`` (an old image) and answers the
text commands instead. IOS/IOS-XE, Junos, IOS-XR and the generic platform print text in the real layout.
With an ``enable_secret``, the platforms with privilege levels (ios, eos, generic) refuse
``show running-config`` until ``enable`` (see ``ssh_server``). The collector's parsers are tested on these
outputs, on recorded ones (``tests/fixtures/cli/``) and on real captures (fakenos).
"""

from __future__ import annotations

import json

from .model import SimDevice

# The temperature sensor each platform reports; the NETCONF face uses the same component name.
SENSOR = {"eos": "TempSensor1", "nxos": "FRONT", "junos": "Routing Engine", "iosxr": "0/RP0/CPU0/Inlet",
          "srl": "sensor0", "generic": "sensor0", "ios": "Switch 1 Inlet", "iosxe": "Switch 1 Inlet"}
# the sensor's name in the text layout, where it differs (EOS text: "<card>/<description>")
TEXT_SENSOR = {"eos": "Supervisor 1/Cpu temp sensor"}

PAGING_OFF = {"terminal length 0", "terminal width 511", "terminal width 512", "set cli screen-length 0",
              "set cli screen-width 0", "set cli screen-width 511"}
PRIVILEGED = {"show running-config"}  # refused at an unprivileged "name>" prompt
ENABLE_PLATFORMS = {"ios", "iosxe", "eos", "generic"}


class CommandError(Exception):
    """An unknown or invalid command; the message is what the platform prints."""


def sensor_name(platform: str) -> str:
    return SENSOR.get(platform, SENSOR["generic"])


def prompt(dev: SimDevice, privileged: bool = True) -> str:
    return {
        "junos": f"{dev.username}@{dev.name}> ",
        "iosxr": f"RP/0/RP0/CPU0:{dev.name}#",
        "srl": f"A:{dev.name}# ",
    }.get(dev.platform, f"{dev.name}{'#' if privileged else '>'}")


def starts_unprivileged(dev: SimDevice) -> bool:
    return dev.enable_secret is not None and dev.platform in ENABLE_PLATFORMS


def invalid(dev: SimDevice, command: str) -> str:
    return {
        "eos": "% Invalid input",
        "nxos": "% Invalid command at '^' marker.",
        "junos": f"error: syntax error: {command.split()[0] if command.split() else command}",
        "iosxr": "% Invalid input detected at '^' marker.",
        "ios": "% Invalid input detected at '^' marker.",
        "iosxe": "% Invalid input detected at '^' marker.",
    }.get(dev.platform, f"% Unknown command: {command}")


def run(dev: SimDevice, command: str, privileged: bool = True) -> str:
    """The output of ``command`` (without a trailing prompt); raises :class:`CommandError`."""
    cmd = " ".join(command.split())
    if cmd in PAGING_OFF or not cmd:
        return ""
    table = _COMMANDS.get(dev.platform, _COMMANDS["generic"]) | _TEXT.get(dev.platform, {})
    if not dev.cli_json:
        table = {k: v for k, v in table.items() if "| json" not in k}
    fn = table.get(cmd)
    if fn is None or (cmd in PRIVILEGED and not privileged):
        raise CommandError(invalid(dev, cmd))
    return fn(dev)


def _json(doc: object) -> str:
    return json.dumps(doc, indent=2) + "\n"


def _running_config(dev: SimDevice) -> str:
    return dev.config_text


# ---- Arista EOS ---------------------------------------------------------------------------------------


def _eos_counters(dev: SimDevice, i: int) -> dict[str, int]:
    c = dev.counters(i)
    return {"inOctets": c["in-octets"], "inUcastPkts": c["in-unicast-pkts"],
            "inMulticastPkts": c["in-multicast-pkts"], "inBroadcastPkts": 0,
            "outOctets": c["out-octets"], "outUcastPkts": c["out-unicast-pkts"],
            "outMulticastPkts": c["out-multicast-pkts"], "outBroadcastPkts": 0,
            "inDiscards": c["in-discards"], "outDiscards": c["out-discards"],
            "totalInErrors": c["in-errors"], "totalOutErrors": c["out-errors"]}


def eos_show_interfaces(dev: SimDevice) -> str:
    out = {}
    for i, name in enumerate(dev.ifnames):
        up = dev.oper_status(i) == "UP"
        out[name] = {"name": name, "interfaceStatus": "connected" if up else "notconnect",
                     "lineProtocolStatus": "up" if up else "down", "mtu": 9214, "bandwidth": 10_000_000_000,
                     "description": "", "interfaceCounters": {**_eos_counters(dev, i), "linkStatusChanges": 1}}
    return _json({"interfaces": out})


def eos_show_interfaces_counters(dev: SimDevice) -> str:
    out = {}
    for i, name in enumerate(dev.ifnames):
        c = _eos_counters(dev, i)
        del c["totalInErrors"], c["totalOutErrors"]  # EOS prints errors under "counters errors"
        out[name] = c
    return _json({"interfaces": out})


def eos_show_interfaces_status(dev: SimDevice) -> str:
    return _json({"interfaceStatuses": {
        name: {"linkStatus": "connected" if dev.oper_status(i) == "UP" else "notconnect",
               "bandwidth": 10_000_000_000, "interfaceType": "10GBASE-SR", "description": "",
               "duplex": "duplexFull", "vlanInformation": {"interfaceMode": "routed"}}
        for i, name in enumerate(dev.ifnames)}})


def eos_show_version(dev: SimDevice) -> str:
    total, used = dev.memory()
    return _json({"mfgName": "Arista", "modelName": dev.facts["model"], "version": dev.facts["os_version"],
                  "serialNumber": dev.serial, "uptime": float(dev.uptime_s()),
                  "memTotal": total // 1024, "memFree": (total - used) // 1024, "architecture": "x86_64"})


def eos_show_processes_top(dev: SimDevice) -> str:
    cpu = dev.cpu_percent()
    return _json({"cpuInfo": {"%Cpu(s)": {"idle": float(100 - cpu), "user": float(cpu), "system": 0.0,
                                          "nice": 0.0, "ioWait": 0.0, "hwIrq": 0.0, "swIrq": 0.0,
                                          "stolen": 0.0}}, "processes": {}})


def eos_show_temperature(dev: SimDevice) -> str:
    return _json({"systemStatus": "temperatureOk", "tempSensors": [
        {"name": sensor_name("eos"), "description": "Cpu temp sensor", "currentTemperature": dev.temperature(),
         "overheatThreshold": 95.0, "criticalThreshold": 105.0, "hwStatus": "ok", "inAlertState": False}]})


# ---- Cisco NX-OS --------------------------------------------------------------------------------------


def nxos_show_interface(dev: SimDevice) -> str:
    rows = []
    for i, name in enumerate(dev.ifnames):
        c = dev.counters(i)
        rows.append({"interface": name, "state": dev.oper_status(i).lower(), "admin_state": "up",
                     "eth_mtu": "9216", "eth_inbytes": c["in-octets"], "eth_outbytes": c["out-octets"],
                     "eth_inucast": c["in-unicast-pkts"], "eth_outucast": c["out-unicast-pkts"],
                     "eth_inmcast": c["in-multicast-pkts"], "eth_outmcast": c["out-multicast-pkts"],
                     "eth_inbcast": 0, "eth_outbcast": 0, "eth_inerr": c["in-errors"],
                     "eth_outerr": c["out-errors"], "eth_indiscard": c["in-discards"],
                     "eth_outdiscard": c["out-discards"]})
    # NX-OS prints a single row as an object, not a one-element list
    return _json({"TABLE_interface": {"ROW_interface": rows[0] if len(rows) == 1 else rows}})


def nxos_show_system_resources(dev: SimDevice) -> str:
    total, used = dev.memory()
    cpu = dev.cpu_percent()
    return _json({"load_avg_1min": "0.50", "cpu_state_user": f"{cpu:.2f}", "cpu_state_kernel": "0.00",
                  "cpu_state_idle": f"{100 - cpu:.2f}", "memory_usage_total": total // 1024,
                  "memory_usage_used": used // 1024, "memory_usage_free": (total - used) // 1024,
                  "current_memory_status": "OK"})


def nxos_show_environment_temperature(dev: SimDevice) -> str:
    return _json({"TABLE_tempinfo": {"ROW_tempinfo": [
        {"tempmod": "1", "sensor": sensor_name("nxos"), "majthres": "80", "minthres": "70",
         "curtemp": str(round(dev.temperature())), "alarmstatus": "Normal"}]}})


def nxos_show_version(dev: SimDevice) -> str:
    up = dev.uptime_s()
    return _json({"chassis_id": f"Nexus9000 {dev.facts['model']} chassis", "nxos_ver_str": dev.facts["os_version"],
                  "host_name": dev.name, "proc_board_id": dev.serial, "kern_uptm_days": up // 86400,
                  "kern_uptm_hrs": up // 3600 % 24, "kern_uptm_mins": up // 60 % 60, "kern_uptm_secs": up % 60})


# ---- Juniper Junos (text) -----------------------------------------------------------------------------


def junos_show_interfaces_extensive(dev: SimDevice) -> str:
    out = []
    for i, name in enumerate(dev.ifnames):
        c = dev.counters(i)
        up = dev.oper_status(i) == "UP"
        in_pkts = c["in-unicast-pkts"] + c["in-multicast-pkts"]
        out_pkts = c["out-unicast-pkts"] + c["out-multicast-pkts"]
        out.append(
            f"Physical interface: {name}, Enabled, Physical link is {'Up' if up else 'Down'}\n"
            f"  Interface index: {148 + i}, SNMP ifIndex: {526 + i}, Generation: {151 + i}\n"
            f"  Link-level type: Ethernet, MTU: 1514, LAN-PHY mode, Speed: 10Gbps, Duplex: Full-Duplex\n"
            f"  Traffic statistics:\n"
            f"   Input  bytes  : {c['in-octets']:>20}                    0 bps\n"
            f"   Output bytes  : {c['out-octets']:>20}                    0 bps\n"
            f"   Input  packets: {in_pkts:>20}                    0 pps\n"
            f"   Output packets: {out_pkts:>20}                    0 pps\n"
            f"  Input errors:\n"
            f"    Errors: {c['in-errors']}, Drops: {c['in-discards']}, Framing errors: 0, Runts: 0, "
            f"Policed discards: 0, L3 incompletes: 0, L2 channel errors: 0, L2 mismatch timeouts: 0, "
            f"FIFO errors: 0, Resource errors: 0\n"
            f"  Output errors:\n"
            f"    Carrier transitions: 1, Errors: {c['out-errors']}, Drops: {c['out-discards']}, "
            f"Collisions: 0, Aged packets: 0, FIFO errors: 0, HS link CRC errors: 0, MTU errors: 0, "
            f"Resource errors: 0\n"
            f"  MAC statistics:                      Receive         Transmit\n"
            f"    Total octets               {c['in-octets']:>15}  {c['out-octets']:>15}\n"
            f"    Total packets              {in_pkts:>15}  {out_pkts:>15}\n"
            f"    Unicast packets            {c['in-unicast-pkts']:>15}  {c['out-unicast-pkts']:>15}\n"
            f"    Broadcast packets          {0:>15}  {0:>15}\n"
            f"    Multicast packets          {c['in-multicast-pkts']:>15}  {c['out-multicast-pkts']:>15}\n"
        )
    return "\n".join(out)


def junos_show_chassis_routing_engine(dev: SimDevice) -> str:
    total, used = dev.memory()
    cpu = dev.cpu_percent()
    temp = round(dev.temperature())
    return (
        "Routing Engine status:\n"
        f"    Temperature                 {temp} degrees C / {round(temp * 9 / 5 + 32)} degrees F\n"
        f"    CPU temperature             {temp + 6} degrees C / {round((temp + 6) * 9 / 5 + 32)} degrees F\n"
        f"    DRAM                      {total // 1024**2} MB ({total // 1024**2} MB installed)\n"
        f"    Memory utilization          {round(100 * used / total)} percent\n"
        "    5 sec CPU utilization:\n"
        f"      User                      {cpu} percent\n"
        "      Background                 0 percent\n"
        "      Kernel                     0 percent\n"
        "      Interrupt                  0 percent\n"
        f"      Idle                      {100 - cpu} percent\n"
        "    Model                          RE-QFX5120\n"
        f"    Uptime                         {dev.uptime_s()} seconds\n"
    )


def junos_show_version(dev: SimDevice) -> str:
    return (f"Hostname: {dev.name}\nModel: {dev.facts['model'].lower()}\n"
            f"Junos: {dev.facts['os_version']}\n")


# ---- Cisco IOS-XR (text) ------------------------------------------------------------------------------


def iosxr_show_interfaces(dev: SimDevice) -> str:
    out = []
    for i, name in enumerate(dev.ifnames):
        c = dev.counters(i)
        up = dev.oper_status(i) == "UP"
        in_pkts = c["in-unicast-pkts"] + c["in-multicast-pkts"]
        out_pkts = c["out-unicast-pkts"] + c["out-multicast-pkts"]
        state = "up" if up else "down"
        out.append(
            f"{name} is {state}, line protocol is {state}\n"
            f"  Interface state transitions: 1\n"
            f"  Hardware is GigabitEthernet, address is 0011.2233.{i:04x} (bia 0011.2233.{i:04x})\n"
            f"  MTU 1514 bytes, BW 1000000 Kbit (Max: 1000000 Kbit)\n"
            f"  Last clearing of \"show interface\" counters never\n"
            f"  5 minute input rate 0 bits/sec, 0 packets/sec\n"
            f"  5 minute output rate 0 bits/sec, 0 packets/sec\n"
            f"     {in_pkts} packets input, {c['in-octets']} bytes, {c['in-discards']} total input drops\n"
            f"     0 drops for unrecognized upper-level protocol\n"
            f"     Received 0 broadcast packets, {c['in-multicast-pkts']} multicast packets\n"
            f"              0 runts, 0 giants, 0 throttles, 0 parity\n"
            f"     {c['in-errors']} input errors, 0 CRC, 0 frame, 0 overrun, 0 ignored, 0 abort\n"
            f"     {out_pkts} packets output, {c['out-octets']} bytes, {c['out-discards']} total output drops\n"
            f"     Output 0 broadcast packets, {c['out-multicast-pkts']} multicast packets\n"
            f"     {c['out-errors']} output errors, 0 underruns, 0 applique, 0 resets\n"
            f"     0 output buffer failures, 0 output buffers swapped out\n"
            f"     1 carrier transitions\n"
        )
    return "\n".join(out)


def iosxr_show_processes_cpu(dev: SimDevice) -> str:
    cpu = dev.cpu_percent()
    return (f"CPU utilization for one minute: {cpu}%; five minutes: {cpu}%; fifteen minutes: {cpu}%\n\n"
            "PID    1Min    5Min    15Min Process\n"
            "1        0%      0%       0% init\n")


def iosxr_show_memory_summary(dev: SimDevice) -> str:
    total, used = dev.memory()
    mb = 1024**2
    return ("node:      node0_RP0_CPU0\n" + "-" * 66 + "\n"
            f"Physical Memory: {total // mb}M total ({(total - used) // mb}M available)\n"
            f" Application Memory : {total // mb - 128}M ({(total - used) // mb}M available)\n"
            " Image: 4M (bootram: 0M)\n Reserved: 128M, IOMem: 0, flashfsys: 0\n Total shared window: 0\n")


def iosxr_show_environment_temperature(dev: SimDevice) -> str:
    return ("Location  TEMPERATURE                 Value   Crit Major Minor Minor Major  Crit\n"
            "          Sensor                     (deg C)  (Lo) (Lo)  (Lo)  (Hi)  (Hi)   (Hi)\n"
            + "-" * 82 + "\n0/RP0/CPU0\n"
            f"          Inlet                       {round(dev.temperature()):>3}      -10    -5     0    55    65    75\n")


# ---- generic (and SR Linux over SSH): a plain text table ----------------------------------------------


def generic_show_interfaces_counters(dev: SimDevice) -> str:
    cols = ("in-octets", "out-octets", "in-unicast-pkts", "out-unicast-pkts", "in-multicast-pkts",
            "out-multicast-pkts", "in-errors", "out-errors", "in-discards", "out-discards")
    lines = ["Interface          State " + " ".join(f"{c:>20}" for c in cols)]
    for i, name in enumerate(dev.ifnames):
        c = dev.counters(i)
        lines.append(f"{name:<18} {dev.oper_status(i).lower():<5} " + " ".join(f"{c[k]:>20}" for k in cols))
    return "\n".join(lines) + "\n"


def generic_show_system_resources(dev: SimDevice) -> str:
    total, used = dev.memory()
    return (f"cpu-percent: {dev.cpu_percent()}\nmemory-total: {total}\nmemory-used: {used}\n"
            f"temperature {sensor_name('generic')}: {dev.temperature()}\n")


def generic_show_version(dev: SimDevice) -> str:
    f = dev.facts
    return (f"{f['vendor']} {f['model']} version {f['os_version']} serial {f['serial']}\n"
            f"hostname: {dev.name}\nuptime: {dev.uptime_s()} seconds\n")


def eos_show_hostname(dev: SimDevice) -> str:
    return _json({"hostname": dev.name, "fqdn": dev.name})


def iosxr_show_version(dev: SimDevice) -> str:
    up = dev.uptime_s()
    return (f"Cisco IOS XR Software, Version {dev.facts['os_version']}\n"
            "Copyright (c) 2013-2023 by Cisco Systems, Inc.\n\n"
            f"{dev.name} uptime is {up // 86400} days, {up // 3600 % 24} hours, {up // 60 % 60} minutes\n"
            f"cisco {dev.facts['model']} () processor with 32G bytes of memory.\n"
            f"Processor board ID {dev.serial}\n")


# ---- Cisco IOS / IOS-XE (text only) ------------------------------------------------------------------


def ios_show_interfaces(dev: SimDevice) -> str:
    out = []
    for i, name in enumerate(dev.ifnames):
        c = dev.counters(i)
        state = "up" if dev.oper_status(i) == "UP" else "down"
        conn = "connected" if state == "up" else "notconnect"
        in_pkts = c["in-unicast-pkts"] + c["in-multicast-pkts"]
        out_pkts = c["out-unicast-pkts"] + c["out-multicast-pkts"]
        out.append(
            f"{name} is {state}, line protocol is {state} ({conn}) \n"
            f"  Hardware is Gigabit Ethernet, address is 0011.2233.{i:04x} (bia 0011.2233.{i:04x})\n"
            "  MTU 1500 bytes, BW 1000000 Kbit/sec, DLY 10 usec, \n"
            "     reliability 255/255, txload 1/255, rxload 1/255\n"
            "  Encapsulation ARPA, loopback not set\n"
            "  Keepalive set (10 sec)\n"
            "  Full-duplex, 1000Mb/s, media type is 10/100/1000BaseTX\n"
            "  Last input never, output 00:00:01, output hang never\n"
            '  Last clearing of "show interface" counters never\n'
            f"  Input queue: 0/2000/{c['in-discards']}/0 (size/max/drops/flushes); "
            f"Total output drops: {c['out-discards']}\n"
            "  Queueing strategy: fifo\n"
            "  Output queue: 0/40 (size/max)\n"
            "  5 minute input rate 0 bits/sec, 0 packets/sec\n"
            "  5 minute output rate 0 bits/sec, 0 packets/sec\n"
            f"     {in_pkts} packets input, {c['in-octets']} bytes, 0 no buffer\n"
            # IOS counts multicasts among "broadcasts"
            f"     Received {c['in-multicast-pkts']} broadcasts ({c['in-multicast-pkts']} multicasts)\n"
            "     0 runts, 0 giants, 0 throttles \n"
            f"     {c['in-errors']} input errors, 0 CRC, 0 frame, 0 overrun, 0 ignored\n"
            "     0 watchdog, 0 multicast, 0 pause input\n"
            "     0 input packets with dribble condition detected\n"
            f"     {out_pkts} packets output, {c['out-octets']} bytes, 0 underruns\n"
            f"     {c['out-errors']} output errors, 0 collisions, 1 interface resets\n"
            "     0 unknown protocol drops\n"
            "     0 babbles, 0 late collision, 0 deferred\n"
            "     0 lost carrier, 0 no carrier, 0 pause output\n"
            "     0 output buffer failures, 0 output buffers swapped out\n"
        )
    return "".join(out)


def ios_show_processes_cpu(dev: SimDevice) -> str:
    cpu = dev.cpu_percent()
    return (f"CPU utilization for five seconds: {cpu}%/0%; one minute: {cpu}%; five minutes: {cpu}%\n"
            " PID Runtime(ms)     Invoked      uSecs   5Sec   1Min   5Min TTY Process \n"
            "   1           0          22          0  0.00%  0.00%  0.00%   0 Chunk Manager    \n"
            "   2          81      275153          0  0.00%  0.00%  0.00%   0 Load Meter       \n")


def ios_show_processes_memory_sorted(dev: SimDevice) -> str:
    total, used = dev.memory()
    return (f"Processor Pool Total: {total:>10} Used: {used:>10} Free: {total - used:>10}\n"
            " lsmpi_io Pool Total:    6295128 Used:    6294296 Free:        832\n\n"
            " PID TTY  Allocated      Freed    Holding    Getbufs    Retbufs Process\n"
            "   0   0  209299480   13474544  178205704          0          0 *Init*          \n")


def ios_show_environment_temperature(dev: SimDevice) -> str:
    return ("Switch 1: SYSTEM TEMPERATURE is OK\n"
            f"Inlet Temperature Value: {round(dev.temperature())} Degree Celsius\n"
            "Temperature State: GREEN\nYellow Threshold : 46 Degree Celsius\nRed Threshold    : 56 Degree Celsius\n")


def ios_show_version(dev: SimDevice) -> str:
    up = dev.uptime_s()
    f = dev.facts
    return (f"Cisco IOS XE Software, Version {f['os_version']}\n"
            f"Cisco IOS Software [Cupertino], Catalyst L3 Switch Software (CAT9K_IOSXE), Version {f['os_version']}, "
            "RELEASE SOFTWARE (fc5)\n"
            "Technical Support: http://www.cisco.com/techsupport\n"
            "Copyright (c) 1986-2023 by Cisco Systems, Inc.\n\n\n"
            "ROM: IOS-XE ROMMON\n"
            f"BOOTLDR: System Bootstrap, Version {f['os_version']}, RELEASE SOFTWARE (P)\n\n"
            f"{dev.name} uptime is {up // 86400} days, {up // 3600 % 24} hours, {up // 60 % 60} minutes\n"
            "Uptime for this control processor is 1 day, 2 hours, 3 minutes\n"
            "System returned to ROM by Reload Command\n"
            'System image file is "flash:packages.conf"\n'
            "Last reload reason: Reload Command\n\n"
            f"cisco {f['model']} (X86) processor with 1338934K/6147K bytes of memory.\n"
            f"Processor board ID {dev.serial}\n"
            "Configuration register is 0x102\n\n")


# ---- EOS and NX-OS as text (cli_json=False: an image or proxy that refuses "| json") ------------------


def eos_text_show_interfaces(dev: SimDevice) -> str:
    out = []
    for i, name in enumerate(dev.ifnames):
        c = dev.counters(i)
        state = "up" if dev.oper_status(i) == "UP" else "down"
        in_pkts = c["in-unicast-pkts"] + c["in-multicast-pkts"]
        out_pkts = c["out-unicast-pkts"] + c["out-multicast-pkts"]
        out.append(
            f"{name} is {state}, line protocol is {state} ({'connected' if state == 'up' else 'notconnect'})\n"
            f"  Hardware is Ethernet, address is 0011.2233.{i:04x} (bia 0011.2233.{i:04x})\n"
            "  Ethernet MTU 9214 bytes, BW 10000000 kbit\n"
            "  Full-duplex, 10Gb/s, auto negotiation: off, uni-link: n/a\n"
            '  Last clearing of "show interface" counters never\n'
            "  5 minutes input rate 0 bps (0.0% with framing overhead), 0 packets/sec\n"
            "  5 minutes output rate 0 bps (0.0% with framing overhead), 0 packets/sec\n"
            f"     {in_pkts} packets input, {c['in-octets']} bytes\n"
            f"     Received 0 broadcasts, {c['in-multicast-pkts']} multicast\n"
            "     0 runts, 0 giants\n"
            f"     {c['in-errors']} input errors, 0 CRC, 0 alignment, 0 symbol, {c['in-discards']} input discards\n"
            "     0 PAUSE input\n"
            f"     {out_pkts} packets output, {c['out-octets']} bytes\n"
            f"     Sent 0 broadcasts, {c['out-multicast-pkts']} multicast\n"
            f"     {c['out-errors']} output errors, 0 collisions\n"
            f"     0 late collision, 0 deferred, {c['out-discards']} output discards\n"
            "     0 PAUSE output\n")
    return "".join(out)


def eos_text_show_processes_top(dev: SimDevice) -> str:
    cpu = dev.cpu_percent()
    total, used = dev.memory()
    return ("top - 18:53:50 up 3 days,  1:06,  2 users,  load average: 0.15, 0.08, 0.09\n"
            "Tasks: 202 total,   1 running, 201 sleeping,   0 stopped,   0 zombie\n"
            f"%Cpu(s): {cpu:4.1f} us,  0.0 sy,  0.0 ni, {100 - cpu:4.1f} id,  0.0 wa,  0.0 hi,  0.0 si,  0.0 st\n"
            f"KiB Mem:  {total // 1024} total,  {used // 1024} used,  {(total - used) // 1024} free,"
            "   171340 buffers\n\n"
            "  PID USER      PR  NI  VIRT  RES  SHR S  %CPU %MEM    TIME+  COMMAND\n")


def eos_text_show_version(dev: SimDevice) -> str:
    total, used = dev.memory()
    f = dev.facts
    return (f"Arista {f['model']}\nHardware version: 11.00\nSerial number: {dev.serial}\n"
            "System MAC address: 0011.2233.4455\n\n"
            f"Software image version: {f['os_version']}\nArchitecture: x86_64\n\n"
            f"Uptime: {dev.uptime_s() // 86400} days, {dev.uptime_s() // 3600 % 24} hours and "
            f"{dev.uptime_s() // 60 % 60} minutes\n"
            f"Total memory: {total // 1024} kB\nFree memory: {(total - used) // 1024} kB\n\n")


def eos_text_show_environment_temperature(dev: SimDevice) -> str:
    return ("System temperature status is: Ok\n\nSupervisor 1:\n"
            "                                                                 Alert  Critical\n"
            "                                               Temp    Setpoint  Limit     Limit\n"
            "Sensor  Description                             (C)         (C)    (C)       (C)\n"
            "------- ----------------------------------- ------- ----------- ------ ---------\n"
            f"1       Cpu temp sensor                       {dev.temperature():5.1f}   (85) 83.8     95       105\n")


def nxos_text_show_interface(dev: SimDevice) -> str:
    out = []
    for i, name in enumerate(dev.ifnames):
        c = dev.counters(i)
        up = dev.oper_status(i) == "UP"
        in_pkts = c["in-unicast-pkts"] + c["in-multicast-pkts"]
        out_pkts = c["out-unicast-pkts"] + c["out-multicast-pkts"]
        out.append(
            f"{name} is {'up' if up else 'down'}{'' if up else ' (Link not connected)'}\n"
            "admin state is up, Dedicated Interface\n"
            f"  Hardware: 100/1000/10000/25000 Ethernet, address: 0011.2233.{i:04x} (bia 0011.2233.{i:04x})\n"
            "  MTU 9216 bytes, BW 10000000 Kbit, DLY 10 usec\n"
            "  reliability 255/255, txload 1/255, rxload 1/255\n"
            "  Encapsulation ARPA, medium is broadcast\n"
            '  Last clearing of "show interface" counters never\n'
            "  RX\n"
            f"    {c['in-unicast-pkts']} unicast packets  {c['in-multicast-pkts']} multicast packets  0 broadcast packets\n"
            f"    {in_pkts} input packets  {c['in-octets']} bytes\n"
            "    0 jumbo packets  0 storm suppression bytes\n"
            "    0 runts  0 giants  0 CRC  0 no buffer\n"
            f"    {c['in-errors']} input error  0 short frame  0 overrun   0 underrun  0 ignored\n"
            "    0 watchdog  0 bad etype drop  0 bad proto drop  0 if down drop\n"
            f"    0 input with dribble  {c['in-discards']} input discard\n"
            "    0 Rx pause\n"
            "  TX\n"
            f"    {c['out-unicast-pkts']} unicast packets  {c['out-multicast-pkts']} multicast packets  0 broadcast packets\n"
            f"    {out_pkts} output packets  {c['out-octets']} bytes\n"
            "    0 jumbo packets\n"
            f"    {c['out-errors']} output error  0 collision  0 deferred  0 late collision\n"
            f"    0 lost carrier  0 no carrier  0 babble {c['out-discards']} output discard\n"
            "    0 Tx pause\n\n")
    return "".join(out)


def nxos_text_show_processes_cpu(dev: SimDevice) -> str:
    cpu = dev.cpu_percent()
    return (f"CPU utilization for five seconds: {cpu}%/1%; one minute: {cpu}%; five minutes: {cpu}%\n"
            "PID    Runtime(ms)  Invoked   uSecs  5Sec    1Min    5Min    TTY  Process\n"
            "-----  -----------  --------  -----  ------  ------  ------  ---  -----------\n"
            "    1         6170      1011      6   0.00%   0.00%  0.00%   -    init\n")


def nxos_text_show_environment_temperature(dev: SimDevice) -> str:
    return ("Temperature\n" + "-" * 73 + "\n"
            "Module  Sensor             MajorThresh   MinorThres   CurTemp     Status\n"
            "                            (Celsius)     (Celsius)   (Celsius)         \n" + "-" * 73 + "\n"
            f"1       {sensor_name('nxos'):<19}80            70           {round(dev.temperature()):<12}ok\n")


def nxos_text_show_version(dev: SimDevice) -> str:
    up, f = dev.uptime_s(), dev.facts
    return ("Cisco Nexus Operating System (NX-OS) Software\n\nSoftware\n  BIOS: version 05.47\n"
            f"  NXOS: version {f['os_version']}\n  NXOS image file is: bootflash:///nxos64.bin\n\n"
            f"Hardware\n  cisco Nexus9000 {f['model']} Chassis\n"
            "  Intel(R) Xeon(R) CPU D-1528 @ 1.90GHz with 24571424 kB of memory.\n"
            f"  Processor Board ID {dev.serial}\n\n  Device name: {dev.name}\n  bootflash:   53298520 kB\n\n"
            f"Kernel uptime is {up // 86400} day(s), {up // 3600 % 24} hour(s), {up // 60 % 60} minute(s), "
            f"{up % 60} second(s)\n\nLast reset\n  Reason: Unknown\n  System version: \n  Service: \n\n"
            "plugin\n  Core Plugin, Ethernet Plugin\n")


_COMMANDS = {
    "eos": {
        "show interfaces | json": eos_show_interfaces,
        "show interfaces counters | json": eos_show_interfaces_counters,
        "show interfaces status | json": eos_show_interfaces_status,
        "show version | json": eos_show_version,
        "show hostname | json": eos_show_hostname,
        "show processes top once | json": eos_show_processes_top,
        "show system environment temperature | json": eos_show_temperature,
        "show running-config": _running_config,
    },
    "nxos": {
        "show interface | json": nxos_show_interface,
        "show system resources | json": nxos_show_system_resources,
        "show environment temperature | json": nxos_show_environment_temperature,
        "show version | json": nxos_show_version,
        "show running-config": _running_config,
    },
    "junos": {
        "show interfaces extensive": junos_show_interfaces_extensive,
        "show chassis routing-engine": junos_show_chassis_routing_engine,
        "show version": junos_show_version,
        "show configuration": _running_config,
    },
    "iosxr": {
        "show interfaces": iosxr_show_interfaces,
        "show processes cpu": iosxr_show_processes_cpu,
        "show memory summary": iosxr_show_memory_summary,
        "show environment temperature": iosxr_show_environment_temperature,
        "show version": iosxr_show_version,
        "show running-config": _running_config,
    },
    "generic": {
        "show interfaces counters": generic_show_interfaces_counters,
        "show system resources": generic_show_system_resources,
        "show version": generic_show_version,
        "show running-config": _running_config,
    },
}
_COMMANDS["ios"] = {
    "show interfaces": ios_show_interfaces,
    "show processes cpu": ios_show_processes_cpu,
    "show processes memory sorted": ios_show_processes_memory_sorted,
    "show environment temperature": ios_show_environment_temperature,
    "show version": ios_show_version,
    "show running-config": _running_config,
}
_COMMANDS["iosxe"] = _COMMANDS["ios"]
# EOS and NX-OS also answer text (as the real ones do): what a device with cli_json=False is left with
_TEXT = {
    "eos": {
        "show interfaces": eos_text_show_interfaces,
        "show processes top once": eos_text_show_processes_top,
        "show version": eos_text_show_version,
        "show environment temperature": eos_text_show_environment_temperature,
    },
    "nxos": {"show version": nxos_text_show_version, "show interface": nxos_text_show_interface,
             "show processes cpu": nxos_text_show_processes_cpu,
             "show environment temperature": nxos_text_show_environment_temperature},
}
# SR Linux prints its configuration with `info` (from the top of the tree); its show commands are the generic ones
_COMMANDS["srl"] = {**_COMMANDS["generic"], "info": _running_config}
