// Fleet: every device with status, holding agent, last update age and samples/s. Counts at the top,
// filter by status, search. The table is virtualised: only the rows in view exist in the DOM, so 5,000+
// devices scroll smoothly.

import { age, badge, esc, si } from "../format.js";

const ROW = 28, OVERSCAN = 10;
const STATUSES = ["collecting", "down", "auth failed", "unreachable", "waiting", "unassigned"];

export function mount(root, live) {
  root.innerHTML = `
    <h1>Fleet</h1>
    <div class="counts" id="counts"></div>
    <div class="toolbar">
      <input type="search" id="q" placeholder="search name, address, agent, tag" autocomplete="off">
      <select id="status"><option value="">every status</option>
        ${STATUSES.map((s) => `<option>${s}</option>`).join("")}</select>
      <span class="muted" id="shown"></span>
    </div>
    <div class="vscroll" id="scroll"><table>
      <colgroup><col style="width:22%"><col style="width:11%"><col style="width:13%"><col style="width:13%">
        <col style="width:10%"><col style="width:9%"><col style="width:9%"><col></colgroup>
      <thead><tr><th>device</th><th>status</th><th>agent</th><th>address</th><th>protocol</th>
        <th class="num">last update</th><th class="num">samples/s</th><th>tags</th></tr></thead>
      <tbody id="rows"></tbody></table></div>`;
  const rowsEl = root.querySelector("#rows"), scroll = root.querySelector("#scroll");
  const q = root.querySelector("#q"), statusSel = root.querySelector("#status");
  const devices = new Map();
  let counts = {}, visible = [], dirty = true;

  function matches(d) {
    if (statusSel.value && d.status !== statusSel.value) return false;
    const text = q.value.trim().toLowerCase();
    if (!text) return true;
    const tags = Object.entries(d.tags || {}).map(([k, v]) => `${k}=${v}`).join(" ");
    return `${d.name} ${d.address} ${d.agent || ""} ${d.platform} ${tags}`.toLowerCase().includes(text);
  }

  function refilter() {
    visible = [...devices.values()].filter(matches).sort((a, b) => a.name.localeCompare(b.name));
    root.querySelector("#shown").textContent = `${visible.length} of ${devices.size} devices`;
    dirty = false;
    render();
  }

  function render() {
    const first = Math.max(0, Math.floor(scroll.scrollTop / ROW) - OVERSCAN);
    const last = Math.min(visible.length, first + Math.ceil(scroll.clientHeight / ROW) + 2 * OVERSCAN);
    const now = live.serverNow();
    const html = [`<tr style="height:${first * ROW}px"></tr>`];
    for (let i = first; i < last; i++) {
      const d = visible[i];
      const tags = Object.entries(d.tags || {}).map(([k, v]) => `${k}=${v}`).join(", ");
      html.push(`<tr class="clickable" data-name="${esc(d.name)}">
        <td><a href="#/device/${encodeURIComponent(d.name)}">${esc(d.name)}</a></td><td>${badge(d.status)}</td>
        <td>${esc(d.agent || "–")}</td><td>${esc(d.address)}</td><td>${esc(d.protocol)} / ${esc(d.platform)}</td>
        <td class="num">${d.last_ms ? age(Math.max(0, now - d.last_ms)) : "never"}</td><td class="num">${si(d.sps)}</td>
        <td>${esc(tags)}</td></tr>`);
    }
    html.push(`<tr style="height:${(visible.length - last) * ROW}px"></tr>`);
    rowsEl.innerHTML = html.join("");
  }

  function renderCounts() {
    const total = counts.total ?? devices.size;
    root.querySelector("#counts").innerHTML =
      `<div class="count" data-s=""><span class="muted">devices</span><b>${total}</b></div>` +
      STATUSES.map((s) => `<div class="count ${statusSel.value === s ? "selected" : ""}" data-s="${s}">
        <span class="muted">${s}</span><b>${counts[s] ?? 0}</b></div>`).join("");
  }

  root.querySelector("#counts").addEventListener("click", (e) => {
    const box = e.target.closest(".count");
    if (!box) return;
    statusSel.value = box.dataset.s;
    renderCounts();
    refilter();
  });
  rowsEl.addEventListener("click", (e) => {
    const tr = e.target.closest("tr[data-name]");
    if (tr && !e.target.closest("a")) location.hash = `#/device/${encodeURIComponent(tr.dataset.name)}`;
  });
  q.addEventListener("input", refilter);
  statusSel.addEventListener("change", () => { renderCounts(); refilter(); });
  scroll.addEventListener("scroll", () => requestAnimationFrame(render));
  // ages move even without frames
  const timer = setInterval(() => (dirty ? refilter() : render()), 1000);

  live.request({ op: "fleet", on: true });

  return {
    frame(frame) {
      const f = frame.fleet;
      if (!f) return;
      if (f.full) devices.clear();
      let changedMembership = f.full || f.removed.length > 0;
      for (const row of f.rows) {
        const old = devices.get(row.name);
        if (!old || old.status !== row.status || old.agent !== row.agent) changedMembership = true;
        if (old) Object.assign(old, row); else devices.set(row.name, row);  // rows in view stay the same objects
      }
      for (const name of f.removed) devices.delete(name);
      counts = f.counts;
      renderCounts();
      // A status or agent change can move a row in or out of the filter: refilter now only if few rows
      // changed, else on the next tick (keeps a 5,000-row snapshot from blocking the page).
      if (changedMembership) { if (devices.size < 2000 || f.full) refilter(); else dirty = true; }
      else render();
    },
    unmount() { clearInterval(timer); },
  };
}
