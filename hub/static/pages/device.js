// Device: live interface table (bit and packet rates, errors, discards, oper status), CPU, memory and
// temperature, and charts over a chosen range: history from the query API, continued live.

import * as api from "../api.js";
import { LineChart } from "../chart.js";
import { age, esc, si } from "../format.js";

const IF_RE = /^\/interfaces\/interface\[name=([^\]]+)\]\/state\/(?:counters\/)?(.+)$/;
const RANGES = { "5m": 5, "15m": 15, "1h": 60, "6h": 360, "24h": 1440 };

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
    <div class="toolbar"><h2 style="margin:0">Charts</h2>
      <select id="range">${Object.keys(RANGES).map((r) => `<option ${r === "5m" ? "selected" : ""}>${r}</option>`).join("")}</select>
      <span class="muted" id="chartfor"></span></div>
    <div class="charts" id="charts"></div>
    <h2>Interfaces</h2>
    <table><thead><tr><th>interface</th><th>oper</th><th class="num">in bit/s</th><th class="num">out bit/s</th>
      <th class="num">in pkt/s</th><th class="num">out pkt/s</th><th class="num">in errors</th><th class="num">out errors</th>
      <th class="num">in discards</th><th class="num">out discards</th></tr></thead><tbody id="ifs"></tbody></table>`;

  const series = new Map();   // path → [ts_ms, value, rate]
  const ifaces = new Map();   // ifname → {leaf → [ts, value, rate]}
  let selected = null, lastMs = 0, seriesIds = null;
  const charts = root.querySelector("#charts");
  const traffic = new LineChart(charts, { title: "traffic", unit: "bit/s",
    lines: [{ name: "in", color: "#58a6ff" }, { name: "out", color: "#3fb950" }] });
  const system = new LineChart(charts, { title: "CPU", unit: "%", lines: [{ name: "cpu", color: "#d29922" }] });
  const rangeSel = root.querySelector("#range");
  const windowMs = () => RANGES[rangeSel.value] * 60000;

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
  api.series(name).then((s) => { seriesIds = s; loadHistory(); }).catch(() => { seriesIds = []; });

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

  function chartLive(path, entry) {
    const m = IF_RE.exec(path);
    if (m && m[1] === selected && entry[2] !== null) {
      if (m[2] === "in-octets") traffic.append(0, [entry[0], entry[2] * 8]);
      if (m[2] === "out-octets") traffic.append(1, [entry[0], entry[2] * 8]);
    }
  }

  function select(ifname) {
    selected = ifname;
    root.querySelector("#chartfor").textContent = `traffic of ${ifname}`;
    traffic.set(0, []); traffic.set(1, []);
    loadHistory();
  }

  // History: the query API's stored points for the range, then the live cache's recent points (from the
  // snapshot) and live frames on top. Without stored history (no database) the charts start from the cache.
  async function loadHistory() {
    if (!seriesIds || selected === null) return;
    const to = Date.now(), from = to - windowMs();
    const want = [[`/interfaces/interface[name=${selected}]/state/counters/in-octets`, traffic, 0, "rate", 8],
                  [`/interfaces/interface[name=${selected}]/state/counters/out-octets`, traffic, 1, "rate", 8]];
    const cpu = cpuPath()[0];
    if (cpu) want.push([cpu, system, 0, "avg", 1]);
    for (const [path, chart, i, fn, k] of want) {
      const s = seriesIds.find((x) => x.path === path);
      if (!s) continue;
      try {
        const pts = (await api.history(s.id, from, to, fn)).map(([t, v]) => [t, v * k]);
        const liveTail = chart.lines[i].points.filter((p) => !pts.length || p[0] > pts[pts.length - 1][0]);
        chart.set(i, pts.concat(liveTail));
      } catch (e) { console.warn("history:", e); }
    }
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
  rangeSel.addEventListener("change", () => { traffic.setWindow(windowMs()); system.setWindow(windowMs()); loadHistory(); });
  const timer = setInterval(() => {
    root.querySelector("#last").textContent = lastMs ? age(Math.max(0, live.serverNow() - lastMs)) : "never";
  }, 500);

  // recent history (from the hub's live cache) only for what the charts show
  live.request({ op: "watch", devices: [name], history: ["/counters/in-octets", "/counters/out-octets", "/total/instant"] });

  return {
    frame(frame) {
      const snap = frame.snapshots && frame.snapshots[name];
      if (snap) {
        for (const [path, entry] of Object.entries(snap.series)) ingest(path, entry);
        for (const [path, pts] of Object.entries(snap.history)) {
          const m = IF_RE.exec(path);
          if (m && m[1] === selected && (m[2] === "in-octets" || m[2] === "out-octets")) {
            const i = m[2] === "in-octets" ? 0 : 1;
            for (const p of pts) traffic.append(i, [p[0], p[1] * 8]);
          } else if (/\/total\/instant$/.test(path) && path === cpuPath()[0]) {
            for (const p of pts) system.append(0, p);
          }
        }
      }
      const upd = frame.devices && frame.devices[name];
      if (upd) for (const [path, entry] of Object.entries(upd)) { ingest(path, entry); chartLive(path, entry); }
      if (snap || upd) {
        const cpu = cpuPath()[0];
        if (cpu && upd && upd[cpu]) system.append(0, [upd[cpu][0], +upd[cpu][1]]);
        renderTable();
        renderCards();
      }
    },
    unmount() { clearInterval(timer); },
  };
}
