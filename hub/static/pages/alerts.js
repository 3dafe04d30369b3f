// Alerts: the current (pending and firing, optionally resolved) alerts with an acknowledge button, and the
// history of transitions (all alerts, or the one clicked). Refreshed every 10 s; alerts are not on the
// live WebSocket.

import * as api from "../api.js";
import { esc } from "../format.js";

const REFRESH_MS = 10000;
const SEVERITY = { critical: "auth-failed", warning: "unreachable", info: "waiting" };
const STATE = { firing: "auth-failed", pending: "unreachable", resolved: "collecting", ok: "collecting",
  acknowledged: "waiting" };

const when = (iso) => (iso ? new Date(iso).toLocaleString() : "–");
const badge = (text, map) => `<span class="badge s-${map[text] || "waiting"}">${esc(text)}</span>`;

export function mount(root) {
  root.innerHTML = `
    <h1>Alerts</h1>
    <div class="toolbar"><label><input type="checkbox" id="all"> include resolved</label>
      <span class="muted" id="status"></span></div>
    <table><thead><tr><th>severity</th><th>rule</th><th>device</th><th>path</th><th>state</th><th>since</th>
      <th class="num">value</th><th>condition</th><th>acknowledged</th></tr></thead><tbody id="alerts"></tbody></table>
    <h2>History <span class="muted" id="histfor"></span></h2>
    <table><thead><tr><th>time</th><th>rule</th><th>device</th><th>path</th><th>transition</th><th class="num">value</th>
      <th>detail</th></tr></thead><tbody id="history"></tbody></table>`;
  const $ = (sel) => root.querySelector(sel);
  let historyFor = null;  // an alert id, or null for every alert

  async function refresh() {
    try {
      const [current, hist] = await Promise.all([api.alerts($("#all").checked), api.alertHistory(historyFor)]);
      $("#alerts").innerHTML = current.map((a) => `<tr class="clickable${a.id === historyFor ? " selected" : ""}" data-alert="${a.id}">
        <td>${badge(a.severity, SEVERITY)}</td><td>${esc(a.rule)}</td>
        <td><a href="#/device/${encodeURIComponent(a.device)}">${esc(a.device)}</a></td><td title="${esc(a.path)}">${esc(a.path)}</td>
        <td>${badge(a.state, STATE)}</td><td>${when(a.since)}</td><td class="num">${a.value ?? "–"}</td>
        <td class="muted">${esc(a.condition)}</td>
        <td>${a.acknowledged ? `by ${esc(a.acked_by || "?")}` : a.state === "firing"
          ? `<button type="button" class="ack" data-ack="${a.id}">Acknowledge</button>` : "–"}</td></tr>`).join("")
        || `<tr><td colspan="9" class="muted">no alerts</td></tr>`;
      $("#history").innerHTML = hist.map((h) => `<tr data-alert="${h.alert_id}"><td>${when(h.at)}</td><td>${esc(h.rule)}</td>
        <td>${esc(h.device)}</td><td title="${esc(h.path)}">${esc(h.path)}</td>
        <td>${esc(h.from_state)} → ${badge(h.to_state, STATE)}</td><td class="num">${h.value ?? "–"}</td>
        <td class="muted">${esc(h.detail)}</td></tr>`).join("") || `<tr><td colspan="7" class="muted">no history</td></tr>`;
      $("#histfor").textContent = historyFor === null ? "(every alert)" : `(alert ${historyFor}; click it again for every alert)`;
      $("#status").textContent = `${current.length} alert${current.length === 1 ? "" : "s"} · updated ${new Date().toLocaleTimeString()}`;
    } catch (e) { $("#status").innerHTML = `<span class="error">${esc(e.message)}</span>`; }
  }

  $("#all").addEventListener("change", refresh);
  $("#alerts").addEventListener("click", async (ev) => {
    const button = ev.target.closest("button[data-ack]");
    if (button) {
      button.disabled = true;
      try { await api.ackAlert(+button.dataset.ack); } catch (e) {
        $("#status").innerHTML = `<span class="error">acknowledge failed: ${esc(e.message)}</span>`;
        button.disabled = false;
        return;
      }
      refresh();
      return;
    }
    const tr = ev.target.closest("tr[data-alert]");
    if (tr && !ev.target.closest("a")) {
      historyFor = historyFor === +tr.dataset.alert ? null : +tr.dataset.alert;
      refresh();
    }
  });
  refresh();
  const timer = setInterval(refresh, REFRESH_MS);
  return { frame() {}, unmount() { clearInterval(timer); } };
}
