// Outputs (hub/outputs, GET /api/outputs): each output's kind, destination, state, last error, lag and
// counts, as this hub sees them; read every 2 s. Push outputs run on one hub (the one doing fleet work);
// the others show them as standby, with the consumer's lag. Definitions hold no secret (a credential is a
// reference), and only the destination's URL, database and credential name are shown.

import { outputs } from "../api.js";
import { age, badge, esc, si } from "../format.js";

const EVERY_MS = 2000;

// running / paused / error, as the issue asks, from the hub's finer status (docs/OUTPUTS.md)
export function stateOf(o) {
  if (o.paused) return "paused";
  if (o.status === "retrying" || o.status === "error") return "error";
  if (o.running) return "running";
  return o.status;  // standby (another hub runs it), stopped
}

function destination(o) {
  const d = o.definition || {};
  if (o.kind === "scrape") return `GET /metrics/devices/${d.name}`;
  let text = d.url || "";
  if (o.kind === "influx") text += ` · ${d.influx_version === 2 ? `org ${d.org} bucket` : "db"} ${d.database}`;
  if (d.auth && d.auth !== "none") text += ` · ${d.auth} (credential ${d.credential})`;
  return text;
}

function row(o) {
  const since = o.error_since ? ` <span class="muted">for ${age(Date.now() - o.error_since * 1000)}</span>` : "";
  const missed = o.missed ? `<b class="s-down">${o.missed}</b>` : "0";
  return `<tr data-output="${esc(o.name)}">
    <td>${esc(o.name)}</td><td>${esc(o.kind)}</td><td class="dest">${esc(destination(o))}</td>
    <td data-col="state">${badge(stateOf(o))} <span class="muted">${esc(o.status)}</span></td>
    <td data-col="error">${o.error ? `${esc(o.error)}${since}` : '<span class="muted">–</span>'}</td>
    <td class="num" data-col="lag-messages">${o.lag_messages}</td>
    <td class="num" data-col="lag-seconds">${o.lag_seconds.toFixed(1)} s</td>
    <td class="num" data-col="delivered" title="${o.samples} samples">${si(o.samples)}</td>
    <td class="num" data-col="retries">${o.retries}</td>
    <td class="num" data-col="missed">${missed}</td>
    <td class="num" data-col="rejected">${o.rejected}</td></tr>`;
}

export function mount(root) {
  root.innerHTML = `
    <h1>Outputs</h1>
    <p class="muted">Prometheus remote-write, scrape and InfluxDB outputs of the telemetry stream, as this hub
      sees them (docs/OUTPUTS.md). Lag: messages not yet delivered, and the age of the oldest.
      Missed: messages the stream dropped before the output read them.</p>
    <table><thead><tr><th>output</th><th>kind</th><th>destination</th><th>state</th><th>last error</th>
      <th class="num">lag (messages)</th><th class="num">lag</th><th class="num">delivered</th>
      <th class="num">retries</th><th class="num">missed</th><th class="num">rejected</th></tr></thead>
      <tbody id="outputs"><tr><td colspan="11" class="muted">Loading…</td></tr></tbody></table>
    <p id="status" class="muted"></p>`;
  const body = root.querySelector("#outputs");
  const status = root.querySelector("#status");
  let timer = null, gone = false;

  async function load() {
    try {
      const list = await outputs();
      body.innerHTML = list.length ? list.map(row).join("")
        : `<tr><td colspan="11" class="muted">no outputs: add one with <code>swtel output add</code></td></tr>`;
      status.textContent = `updated ${new Date().toLocaleTimeString()}`;
      status.classList.remove("error");
    } catch (e) {
      status.textContent = `cannot read the outputs: ${e.message}`;
      status.classList.add("error");
    }
    if (!gone) timer = setTimeout(load, EVERY_MS);
  }

  load();
  return {
    frame() {},
    unmount() { gone = true; clearTimeout(timer); },
  };
}
