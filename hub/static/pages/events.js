// Events: session and lease events as they happen, newest first (the last 500 kept).

import { esc } from "../format.js";

const KEEP = 500;
const CLASS = { session_up: "collecting", session_down: "unreachable", timeout: "unreachable", error: "unreachable",
  auth_failed: "auth failed", lease_acquired: "waiting", lease_released: "unassigned",
  device_down: "down", device_up: "collecting" };

export function mount(root, live) {
  root.innerHTML = `
    <h1>Events</h1>
    <div class="toolbar"><input type="search" id="q" placeholder="filter device, agent, kind">
      <span class="muted" id="shown"></span></div>
    <table><thead><tr><th style="width:12%">time</th><th style="width:14%">kind</th><th style="width:22%">device</th>
      <th style="width:14%">agent</th><th>detail</th></tr></thead><tbody id="events"></tbody></table>`;
  const events = [];
  const q = root.querySelector("#q");

  function render() {
    const text = q.value.trim().toLowerCase();
    const shown = text ? events.filter((e) => `${e.device} ${e.agent} ${e.kind}`.toLowerCase().includes(text)) : events;
    root.querySelector("#shown").textContent = `${shown.length} events`;
    root.querySelector("#events").innerHTML = shown.map((e) => `<tr data-kind="${esc(e.kind)}">
      <td>${new Date(e.ts_ms).toLocaleTimeString()}</td>
      <td><span class="badge s-${(CLASS[e.kind] || "waiting").replace(" ", "-")}">${esc(e.kind)}</span></td>
      <td><a href="#/device/${encodeURIComponent(e.device)}">${esc(e.device)}</a></td><td>${esc(e.agent)}</td>
      <td class="muted">${esc(e.detail)}</td></tr>`).join("") || `<tr><td colspan="5" class="muted">no events yet</td></tr>`;
  }
  q.addEventListener("input", render);
  render();
  live.request({ op: "events", on: true });
  return {
    frame(frame) {
      if (frame.events_reset) events.length = 0;  // the server replays its recent events after a (re)connect
      if (!frame.events) { if (frame.events_reset) render(); return; }
      events.unshift(...frame.events.slice().reverse());
      events.length = Math.min(events.length, KEEP);
      render();
    },
  };
}
