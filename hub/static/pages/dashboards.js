// Dashboards: the shared ones and the user's personal ones; operators create, clone, delete and import.

import * as api from "../api.js";
import { esc } from "../format.js";
import { clock, shift } from "../chart.js";
import { TEMPLATES } from "../dash/templates.js";

// 2026-12-06 11:39 in the zone the charts use (local or UTC), 24-hour
const stamp = (iso) => `${new Date(shift(Date.parse(iso))).toISOString().slice(0, 16).replace("T", " ")}${clock.utc ? " UTC" : ""}`;

export function mount(root) {
  root.innerHTML = `
    <h1>Dashboards</h1>
    <div class="toolbar" id="tools" hidden>
      <a class="button" id="new" href="#/dashboard/new">New dashboard</a>
      <label class="button" title="a file from Export">Import… <input type="file" id="import" accept=".json,application/json" hidden></label>
      <span class="error" id="msg"></span>
    </div>
    <table><thead><tr><th>title</th><th>visibility</th><th class="num">widgets</th><th>updated</th><th></th></tr></thead>
      <tbody id="list"><tr><td colspan="5" class="muted">loading…</td></tr></tbody></table>
    <h2>Templates</h2>
    <table><tbody>${Object.entries(TEMPLATES).map(([k, t]) => `<tr><td><a href="#/dashboard/template/${k}">${esc(t.title)}</a></td>
      <td class="muted">${t.spec.widgets.length} widgets · variables ${t.spec.variables.map((v) => "$" + v.name).join(", ")} · open, then Save to keep a copy</td></tr>`).join("")}</tbody></table>`;
  let operator = false, gone = false;  // gone: the router left this page while a request was out
  const msg = (text) => { root.querySelector("#msg").textContent = text || ""; };

  async function load() {
    try {
      const list = await api.dashboards();
      if (gone) return;
      root.querySelector("#list").innerHTML = list.map((d) => `<tr data-dashboard="${d.id}">
        <td><a href="#/dashboard/${d.id}">${esc(d.title)}</a></td>
        <td>${d.shared ? "shared" : `personal (${esc(d.owner)})`}</td><td class="num">${d.spec.widgets.length}</td>
        <td class="muted">${esc(stamp(d.updated_at))} by ${esc(d.updated_by || "?")}</td>
        <td>${operator ? `<button data-clone="${d.id}">clone</button> <button data-delete="${d.id}">delete</button>` : ""}</td></tr>`).join("")
        || '<tr><td colspan="5" class="muted">no dashboards yet: start from a template below, or New dashboard</td></tr>';
    } catch (e) { if (!gone) root.querySelector("#list").innerHTML = `<tr><td colspan="5" class="error">${esc(e.message)}</td></tr>`; }
  }

  root.addEventListener("click", async (e) => {
    const clone = e.target.closest("[data-clone]"), del = e.target.closest("[data-delete]");
    try {
      if (clone) { const d = await api.cloneDashboard(clone.dataset.clone); location.hash = `#/dashboard/${d.id}`; }
      if (del) {
        const title = del.closest("tr").querySelector("a").textContent;
        if (confirm(`Delete the dashboard "${title}"?`)) { await api.deleteDashboard(del.dataset.delete); await load(); }
      }
    } catch (err) { msg(err.message); }
  });
  root.querySelector("#import").addEventListener("change", async (e) => {
    const file = e.target.files[0];
    if (!file) return;
    try {
      const d = await api.importDashboard(JSON.parse(await file.text()));
      location.hash = `#/dashboard/${d.id}`;
    } catch (err) { msg(`import: ${err.message}`); }
  });

  api.me().then((who) => {
    if (gone) return;
    operator = !who || who.role !== "viewer";
    root.querySelector("#tools").hidden = !operator;
    load();
  });
  return { frame() {}, unmount() { gone = true; } };
}
