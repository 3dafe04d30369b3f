// Config: a device's stored configuration versions (a new one only when it changed), the text of one, and
// a unified diff between any two. Opens on the diff of the previous version against the latest.

import * as api from "../api.js";
import { esc } from "../format.js";

export function mount(root, _live, [name]) {
  const dev = encodeURIComponent(name);
  root.innerHTML = `
    <h1><a href="#/fleet">Fleet</a> / <a href="#/device/${dev}">${esc(name)}</a> / config</h1>
    <div class="toolbar">
      <label>from <select id="a"></select></label> <label>to <select id="b"></select></label>
      <button id="diff" type="button">Diff</button> <span class="muted" id="status">loading…</span></div>
    <div class="split">
      <div><table><thead><tr><th>version</th><th>time</th><th>agent</th><th class="num">size</th><th>sha256</th></tr></thead>
        <tbody id="versions"></tbody></table></div>
      <div><h2 id="title" style="margin-top:0"></h2><pre class="config" id="out"></pre></div>
    </div>`;
  const $ = (sel) => root.querySelector(sel);
  const status = (html) => { $("#status").innerHTML = html; };
  let versions = [];

  function rows() {
    $("#versions").innerHTML = versions.slice().reverse().map((v) => `<tr class="clickable" data-version="${v.version}">
      <td>${v.version}</td><td>${new Date(v.time * 1000).toLocaleString()}</td><td>${esc(v.agent)}</td>
      <td class="num">${v.size}</td><td class="muted">${esc(v.sha256.slice(0, 12))}</td></tr>`).join("")
      || `<tr><td colspan="5" class="muted">no backups stored yet</td></tr>`;
    const opts = versions.map((v) => `<option value="${v.version}">${v.version}</option>`).join("");
    $("#a").innerHTML = opts; $("#b").innerHTML = opts;
  }

  function selectRow(n) {
    for (const tr of root.querySelectorAll("#versions tr")) tr.classList.toggle("selected", tr.dataset.version === String(n));
  }

  async function show(n) {
    selectRow(n);
    try {
      const v = await api.configVersion(name, n);
      $("#title").textContent = `version ${v.version} · ${v.format} · ${new Date(v.time * 1000).toLocaleString()}`;
      $("#out").className = "config";
      $("#out").textContent = v.text;
    } catch (e) { status(`<span class="error">${esc(e.message)}</span>`); }
  }

  async function diff(a, b) {
    selectRow(null);
    try {
      const d = await api.configDiff(name, a, b);
      $("#title").textContent = `diff of version ${d.a} → ${d.b}`;
      $("#out").className = "config diff";
      $("#out").innerHTML = d.diff ? d.diff.split("\n").map((line) => {
        const cls = line.startsWith("+++") || line.startsWith("---") ? "d-file" : line.startsWith("@@") ? "d-hunk"
          : line.startsWith("+") ? "d-add" : line.startsWith("-") ? "d-del" : "";
        return `<span class="${cls}">${esc(line)}</span>`;
      }).join("\n") : `<span class="muted">versions ${d.a} and ${d.b} are the same</span>`;
    } catch (e) { status(`<span class="error">${esc(e.message)}</span>`); }
  }

  $("#versions").addEventListener("click", (ev) => {
    const tr = ev.target.closest("tr[data-version]");
    if (tr) show(+tr.dataset.version);
  });
  $("#diff").addEventListener("click", () => diff($("#a").value, $("#b").value));

  api.configVersions(name).then((vs) => {
    versions = vs;
    rows();
    status(`${vs.length} version${vs.length === 1 ? "" : "s"} (a new one is stored only when the config changed)`);
    if (vs.length >= 2) {
      $("#a").value = vs[vs.length - 2].version; $("#b").value = vs[vs.length - 1].version;
      diff(vs[vs.length - 2].version, vs[vs.length - 1].version);
    } else if (vs.length === 1) show(1);
  }).catch(async (e) => {
    rows();
    // gNMI devices get no backup job (docs/CONFIG-BACKUP.md): say so rather than "no backups yet"
    const d = await api.device(name).catch(() => null);
    if (d && d.protocol === "gnmi") {
      $("#versions").innerHTML = `<tr><td colspan="5" class="muted">not backed up</td></tr>`;
      status(`<span class="muted" id="gnmi-note">${esc(name)} is collected over gNMI, and gNMI devices are not backed up:`
        + " configuration backup runs over SSH and NETCONF. Add the device a second time under another name with"
        + " protocol ssh or netconf to back up its configuration.</span>");
    } else status(`<span class="error">${esc(e.message)}</span>`);
  });

  return { frame() {} };
}
