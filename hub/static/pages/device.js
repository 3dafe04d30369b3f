// Device: live interface table (bit and packet rates, errors, discards, oper status), CPU, memory and
// temperature, and the "device" dashboard template (dash/templates.js) with $device set to this device and
// $interface to the clicked row: stored history from /api/panel, continued live.

import * as api from "../api.js";
import { Board, rangePicker } from "../dash/board.js";
import { TEMPLATES } from "../dash/templates.js";
import { age, esc, si } from "../format.js";

const IF_RE = /^\/interfaces\/interface\[name=([^\]]+)\]\/state\/(?:counters\/)?(.+)$/;

export function mount(root, live, [name]) {
  root.innerHTML = `
    <h1><a href="#/fleet">Fleet</a> / ${esc(name)} <a class="sub" href="#/config/${encodeURIComponent(name)}">config backups</a></h1>
    <div class="muted" id="info">…</div>
    <div class="muted facts" id="facts"></div>
    <div class="muted" id="collection"></div>
    <div class="grid" style="margin-top:12px">
      <div class="card"><div class="label">CPU</div><div class="value" id="cpu">–</div><div class="bar"><span id="cpubar" style="width:0"></span></div></div>
      <div class="card"><div class="label">memory</div><div class="value" id="mem">–</div><div class="bar"><span id="membar" style="width:0"></span></div></div>
      <div class="card"><div class="label">temperature</div><div class="value" id="temp">–</div></div>
      <div class="card"><div class="label">last update</div><div class="value" id="last">–</div></div>
    </div>
    <div class="toolbar"><h2 style="margin:0">Charts</h2><span id="picker"></span>
      <span class="muted" id="chartfor"></span><span class="spacer"></span>
      <a href="#/dashboard/template/device/${encodeURIComponent(name)}" title="these charts as a dashboard you can change and save">open as dashboard</a></div>
    <div class="muted" id="hint" hidden></div>
    <div id="charts"></div>
    <h2>Interfaces</h2>
    <table><thead><tr><th>interface</th><th>oper</th><th class="num">in bit/s</th><th class="num">out bit/s</th>
      <th class="num">in pkt/s</th><th class="num">out pkt/s</th><th class="num">in errors</th><th class="num">out errors</th>
      <th class="num">in discards</th><th class="num">out discards</th></tr></thead><tbody id="ifs"></tbody></table>`;

  const series = new Map();   // path → [ts_ms, value, rate]
  const ifaces = new Map();   // ifname → {leaf → [ts, value, rate]}
  let selected = null, lastMs = 0;
  const board = new Board(root.querySelector("#charts"), { spec: TEMPLATES.device.spec, vars: { device: name, interface: "" },
                                                        range: { rel: "15m" } });
  rangePicker(root.querySelector("#picker"), board.range, (range) => board.setRange(range));
  board.load();  // again with $interface once the first interface shows up (select)

  api.device(name).then((d) => {
    root.querySelector("#info").innerHTML = `${esc(d.address)}:${d.port} · ${esc(d.protocol)} · ${esc(d.platform)}`
      + ` · agent <b>${esc(d.agent || "none")}</b>` + (d.pinned ? ` · pinned to ${esc(d.pinned)}` : "");
    // the holder's own view: each subscription's status, and its last error when it fails
    const c = d.collection;
    root.querySelector("#collection").innerHTML = !c ? "" : `collection <b>${esc(c.status)}</b>`
      + Object.entries(c.subscriptions || {}).map(([n, s]) => ` · <span data-subscription="${esc(n)}">${esc(n)} `
        + (s.status === "collecting" ? esc(s.status)
          : `<span class="error" title="${esc(s.last_error)}">${esc(s.status)}: ${esc(s.last_error)}</span>`)
        + "</span>").join("");
  }).catch((e) => { root.querySelector("#info").innerHTML = `<span class="error">${esc(e.message)}</span>`; });
  // Discovery facts: a small panel; a device never discovered (or no database) just says so.
  api.facts(name).then((f) => {
    const up = f.uptime_s == null ? "" : ` · up ${age(f.uptime_s * 1000)}`;
    const down = f.status && f.status.down ? ` · <span class="error">down since ${esc(f.status.since)}</span>` : "";
    const caps = f.gnmi_version ? ` · gNMI ${esc(f.gnmi_version)} (${esc(f.encodings.join(", "))})` : "";
    root.querySelector("#facts").innerHTML = `<b>${esc(f.vendor || "?")} ${esc(f.model || "")}</b>`
      + ` · OS ${esc(f.os_version || "?")} · serial ${esc(f.serial || "?")} · host ${esc(f.hostname || "?")}${up}`
      + `${caps} · ${(f.interfaces || []).length} interfaces · ${(f.models || []).length} models`
      + ` · discovered ${esc(new Date(f.discovered_at).toLocaleString())} by ${esc(f.agent)}${down}`
      + ((f.errors || []).length ? ` · <span class="error">${esc(f.errors.join("; "))}</span>` : "");
  }).catch(() => { root.querySelector("#facts").textContent = "not discovered yet"; });
  // A device never collected has no stored series: say why the charts are empty.
  api.series(name).then((s) => {
    if (!s.length) showHint();
  }).catch(() => showHint());
  function showHint() {
    const hint = root.querySelector("#hint");
    hint.hidden = false;
    hint.innerHTML = "Nothing stored for this device yet: it has never been collected. Check that an agent holds its lease"
      + " (Agents page), that its address and credentials are right (<code>swtel device show</code>), and the Events page for"
      + " session or authentication failures.";
  }

  const cpuPath = () => [...series.keys()].filter((p) => /\/cpus?\/cpu.*\/total\/instant$/.test(p));
  const cpuNow = () => { const ps = cpuPath(); return ps.length ? ps.reduce((a, p) => a + +series.get(p)[1], 0) / ps.length : null; };

  function ingest(path, entry) {
    series.set(path, entry);
    const m = IF_RE.exec(path);
    if (m) {
      if (!ifaces.has(m[1])) ifaces.set(m[1], {});
      ifaces.get(m[1])[m[2]] = entry;
      if (selected === null) select(m[1]);
    }
    lastMs = Math.max(lastMs, entry[0]);
  }

  function select(ifname) {
    selected = ifname;
    root.querySelector("#chartfor").textContent = `interface ${ifname}`;
    board.setVars({ interface: ifname });
  }

  function renderTable() {
    const rows = [...ifaces.entries()].sort((a, b) => a[0].localeCompare(b[0], undefined, { numeric: true }));
    const rate = (c, leaf, k = 1) => (c[leaf] && c[leaf][2] !== null ? si(c[leaf][2] * k) : "–");
    const pps = (c, dir) => {
      const parts = ["unicast", "multicast", "broadcast"].map((t) => c[`${dir}-${t}-pkts`]).filter(Boolean);
      return parts.length && parts.every((p) => p[2] !== null) ? si(parts.reduce((a, p) => a + p[2], 0)) : "–";
    };
    const total = (c, leaf) => (c[leaf] ? `<span class="${c[leaf][2] > 0 ? "error" : ""}">${si(c[leaf][1])}</span>` : "–");
    root.querySelector("#ifs").innerHTML = rows.map(([ifname, c]) => {
      const oper = c["oper-status"] ? String(c["oper-status"][1]) : "–";
      const octets = c["in-octets"] ? c["in-octets"][1] : "";
      return `<tr class="clickable ${ifname === selected ? "selected" : ""}" data-if="${esc(ifname)}" data-in-octets="${octets}">
        <td>${esc(ifname)}</td><td class="s-${oper.toLowerCase()}">${esc(oper)}</td>
        <td class="num">${rate(c, "in-octets", 8)}</td><td class="num">${rate(c, "out-octets", 8)}</td>
        <td class="num">${pps(c, "in")}</td><td class="num">${pps(c, "out")}</td>
        <td class="num">${total(c, "in-errors")}</td><td class="num">${total(c, "out-errors")}</td>
        <td class="num">${total(c, "in-discards")}</td><td class="num">${total(c, "out-discards")}</td></tr>`;
    }).join("");
  }

  function renderCards() {
    const cpu = cpuNow();
    if (cpu !== null) {
      root.querySelector("#cpu").textContent = `${cpu.toFixed(0)} %`;
      root.querySelector("#cpubar").style.width = `${Math.min(100, cpu)}%`;
    }
    const find = (re) => [...series.entries()].filter(([p]) => re.test(p)).map(([, e]) => +e[1]);
    const [used] = find(/\/memory\/state\/utilized$/), [phys] = find(/\/memory\/state\/physical$/);
    if (used !== undefined) {
      root.querySelector("#mem").textContent = phys ? `${(100 * used / phys).toFixed(0)} %` : si(used, "B");
      if (phys) root.querySelector("#membar").style.width = `${(100 * used / phys).toFixed(0)}%`;
    }
    const temps = find(/\/temperature\/instant$/);
    if (temps.length) root.querySelector("#temp").textContent = `${Math.max(...temps).toFixed(1)} °C`;
  }

  root.querySelector("#ifs").addEventListener("click", (e) => {
    const tr = e.target.closest("tr[data-if]");
    if (tr) { select(tr.dataset.if); renderTable(); }
  });
  const timer = setInterval(() => {
    root.querySelector("#last").textContent = lastMs ? age(Math.max(0, live.serverNow() - lastMs)) : "never";
  }, 500);

  live.request({ op: "watch", devices: [name] });

  return {
    frame(frame) {
      const snap = frame.snapshots && frame.snapshots[name];
      if (snap) for (const [path, entry] of Object.entries(snap.series)) ingest(path, entry);
      const upd = frame.devices && frame.devices[name];
      if (upd) for (const [path, entry] of Object.entries(upd)) ingest(path, entry);
      board.frame(frame);
      if (snap || upd) {
        renderTable();
        renderCards();
      }
    },
    unmount() { clearInterval(timer); board.destroy(); },
  };
}
