// Agents: each agent's devices, heartbeat age, draining state and load; the lease map (every leased
// device as a cell coloured by its holder; red cells are held by an agent whose presence is gone).

import { GONE, age, colour, colourAll, esc } from "../format.js";

export function mount(root, live) {
  root.innerHTML = `
    <h1>Agents</h1>
    <table><thead><tr><th>agent</th><th>host</th><th>state</th><th class="num">devices</th>
      <th class="num">capacity</th><th style="width:18%">load</th><th class="num">heartbeat</th><th>version</th>
      <th>tags</th></tr></thead><tbody id="agents"></tbody></table>
    <h2>Lease map</h2>
    <div class="legend-row" id="legend"></div>
    <canvas class="leasemap" id="map" height="120"></canvas>
    <h2>Devices per agent</h2>
    <table><thead><tr><th style="width:16%">agent</th><th>devices</th></tr></thead><tbody id="held"></tbody></table>`;
  let agents = [], leases = {};
  const canvas = root.querySelector("#map");

  function renderAgents() {
    root.querySelector("#agents").innerHTML = agents.length ? agents.map((a) => `<tr>
      <td><span class="swatch" style="background:${colour(a.id)}"></span>${esc(a.id)}</td><td>${esc(a.host)}</td>
      <td>${a.draining ? '<span class="badge s-draining">draining</span>' : '<span class="badge s-collecting">active</span>'}</td>
      <td class="num" data-agent-devices="${esc(a.id)}">${a.devices}</td><td class="num">${a.capacity}</td>
      <td><div class="bar"><span style="width:${Math.min(100, 100 * a.load).toFixed(1)}%"></span></div></td>
      <td class="num">${age(a.heartbeat_age_s * 1000)}</td><td>${esc(a.version)}</td>
      <td>${esc(Object.entries(a.tags).map(([k, v]) => `${k}=${v}`).join(", "))}</td></tr>`).join("")
      : `<tr><td colspan="9" class="muted">no live agents</td></tr>`;
  }

  function renderLeases() {
    const liveIds = new Set(agents.map((a) => a.id));
    const ids = Object.keys(leases).sort();
    root.querySelector("#held").innerHTML = ids.map((id) => `<tr data-agent="${esc(id)}">
      <td><span class="swatch" style="background:${liveIds.has(id) ? colour(id) : GONE}"></span>${esc(id)}
        ${liveIds.has(id) ? "" : '<span class="badge s-auth-failed">gone</span>'}</td>
      <td class="devlist">${leases[id].length} · ${esc(leases[id].slice(0, 60).join(", "))}${leases[id].length > 60 ? " …" : ""}</td></tr>`).join("")
      || `<tr><td colspan="2" class="muted">no leases</td></tr>`;
    root.querySelector("#legend").innerHTML = ids.map((id) =>
      `<span><span class="swatch" style="background:${liveIds.has(id) ? colour(id) : GONE}"></span>${esc(id)} (${leases[id].length})</span>`).join("");
    // one cell per device, grouped by agent, sized to fit the width
    const cells = ids.flatMap((id) => leases[id].map(() => (liveIds.has(id) ? colour(id) : GONE)));
    const width = canvas.clientWidth || 800;
    const size = Math.max(3, Math.min(14, Math.floor(Math.sqrt((width * 200) / Math.max(1, cells.length)))));
    const perRow = Math.max(1, Math.floor(width / size));
    canvas.width = width;
    canvas.height = Math.max(size, Math.ceil(cells.length / perRow) * size);
    const ctx = canvas.getContext("2d");
    cells.forEach((c, i) => {
      ctx.fillStyle = c;
      ctx.fillRect((i % perRow) * size, Math.floor(i / perRow) * size, size - 1, size - 1);
    });
  }

  live.request({ op: "agents", on: true });
  return {
    frame(frame) {
      if (!frame.agents) return;
      agents = frame.agents.agents;
      colourAll(agents.map((a) => a.id));
      renderAgents();
      if (frame.agents.leases) { leases = frame.agents.leases; colourAll(Object.keys(leases)); }
      renderLeases();
    },
  };
}
