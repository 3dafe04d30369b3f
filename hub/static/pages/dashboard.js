// One dashboard: variables and the time range at the top, the grid of widgets below, continued live.
// #/dashboard/ID, #/dashboard/new, #/dashboard/template/NAME[/DEVICE]. Operators edit: title, visibility,
// variables, and widgets (add, edit, remove; move and resize by dragging, dash/layout.js), then Save. Export gives the JSON file Import takes.

import * as api from "../api.js";
import { Board, WIDGET_TYPES, download, rangePicker } from "../dash/board.js";
import { TEMPLATES } from "../dash/templates.js";
import { esc } from "../format.js";

const VARIABLES = ["device", "interface", "site"];
const FNS = ["avg", "max", "min", "last", "rate"];
const BLANK = { type: "line", title: "", unit: "", w: 6, h: 1, top: 10,
  queries: [{ device: "$device", tag: "", path: "", fn: "rate", step: "", scale: 1, legend: "" }] };

export function mount(root, live, args) {
  const [first, second, third] = args;
  root.innerHTML = `
    <h1><a href="#/dashboards">Dashboards</a> / <span id="title">…</span> <span class="muted sub" id="vis"></span></h1>
    <div class="toolbar dashbar">
      <span id="vars"></span><span id="picker"></span><span class="spacer"></span>
      <button id="export" title="download this dashboard as JSON">Export</button>
      <button id="edit" hidden>Edit</button><button id="save" hidden>Save</button><button id="cancel" hidden>Cancel</button>
    </div>
    <div class="error" id="msg"></div>
    <div id="settings" class="editor" hidden></div>
    <div id="board"></div>
    <div id="wform" class="editor" hidden></div>`;
  const $ = (sel) => root.querySelector(sel);
  const msg = (text) => { if (!gone) $("#msg").textContent = text || ""; };
  let dash = null;          // {id?, title, shared, version?, spec}
  let saved = null;         // the spec as stored, to cancel edits
  let board = null, operator = false, editing = false, devices = [], gone = false;
  const vars = {};

  async function start() {
    // the three requests at once: the dashboard need not wait for who is asking
    const stored = first === "new" || first === "template" ? null : api.dashboard(first);
    stored?.catch(() => {});  // awaited below; no unhandled rejection meanwhile
    const [who, devs] = await Promise.all([api.me(), api.devices().catch(() => [])]);
    if (gone) return;
    operator = !who || who.role !== "viewer";
    devices = devs;
    try {
      if (first === "new") dash = { title: "New dashboard", shared: true, spec: { range: "1h", variables: [{ name: "device", default: "" }], widgets: [] } };
      else if (first === "template") {
        const t = TEMPLATES[second] || TEMPLATES.device;
        dash = { title: third ? `${t.title}: ${third}` : t.title, shared: true, spec: structuredClone(t.spec) };
        if (third) vars.device = third;
      } else dash = await stored;
    } catch (e) { if (!gone) { msg(e.message); $("#title").textContent = "not found"; } return; }
    if (gone) return;
    saved = structuredClone(dash);
    for (const v of dash.spec.variables) if (vars[v.name] === undefined) vars[v.name] = v.default || "";
    $("#title").textContent = dash.title;
    $("#vis").textContent = dash.id ? (dash.shared ? "shared" : "personal") : "not saved";
    board = new Board($("#board"), { spec: dash.spec, vars, editable: false, onEdit: widgetAction });
    rangePicker($("#picker"), board.range, (range) => { board.setRange(range).then(watch); });
    await renderVars();
    if (gone) return;
    $("#edit").hidden = !operator;
    if (operator && !dash.id) setEditing(true); else board.load().then(watch);
  }

  // Variables: device (inventory), interface (the chosen device's stored interfaces), site (inventory tags).
  async function renderVars() {
    const parts = [];
    for (const v of dash.spec.variables) {
      let options = [];
      if (v.name === "device") options = devices.map((d) => d.name);
      if (v.name === "site") options = [...new Set(devices.map((d) => (d.tags || {}).site).filter(Boolean))];
      if (v.name === "interface" && vars.device) {
        const series = await api.series(vars.device).catch(() => []);
        options = [...new Set(series.filter((s) => s.name.startsWith("/interfaces/") && s.keys.name).map((s) => s.keys.name))]
          .sort((a, b) => a.localeCompare(b, undefined, { numeric: true }));
        if (!vars.interface && options.length) vars.interface = options[0];
      }
      if (vars[v.name] && !options.includes(vars[v.name])) options.unshift(vars[v.name]);
      if (gone) return;
      parts.push(`<label>$${v.name} <select data-var="${v.name}"><option value="">–</option>${options.map((o) =>
        `<option ${o === vars[v.name] ? "selected" : ""}>${esc(o)}</option>`).join("")}</select></label>`);
    }
    $("#vars").innerHTML = parts.join(" ");
  }

  $("#vars").addEventListener("change", async (e) => {
    const name = e.target.dataset.var;
    vars[name] = e.target.value;
    if (name === "device") { vars.interface = ""; await renderVars(); }
    await board.setVars(vars);
    watch();
  });

  // Live continuation: follow the devices the widgets read (again when widgets below the fold are drawn).
  $("#board").addEventListener("board-loaded", () => { if (board) watch(); });
  function watch() {
    const want = board.devices().slice(0, 64);
    const old = board.watched || [];
    const gone = old.filter((d) => !want.includes(d));
    if (gone.length) live.request({ op: "unwatch", devices: gone });
    if (want.length) live.request({ op: "watch", devices: want });
    board.watched = want;
  }

  function setEditing(on) {
    editing = on;
    $("#edit").hidden = on || !operator;
    $("#save").hidden = $("#cancel").hidden = !on;
    $("#settings").hidden = !on;
    if (on) renderSettings(); else $("#wform").hidden = true;
    board.setEditable(on).then(watch);
  }

  function renderSettings() {
    const used = new Set(dash.spec.variables.map((v) => v.name));
    $("#settings").innerHTML = `
      <label>title <input id="dtitle" value="${esc(dash.title)}" maxlength="200" size="32"></label>
      <label><input type="checkbox" id="dshared" ${dash.shared ? "checked" : ""}> shared with every user</label>
      <span>variables: ${VARIABLES.map((n) => `<label><input type="checkbox" data-usevar="${n}" ${used.has(n) ? "checked" : ""}> $${n}</label>`).join(" ")}</span>
      <button id="add">Add widget</button>`;
  }

  $("#settings").addEventListener("change", async (e) => {
    if (e.target.id === "dtitle") dash.title = e.target.value;
    if (e.target.id === "dshared") dash.shared = e.target.checked;
    if (e.target.dataset.usevar) {
      const n = e.target.dataset.usevar;
      dash.spec.variables = VARIABLES.filter((v) => (v === n ? e.target.checked : dash.spec.variables.some((x) => x.name === v)))
        .map((v) => dash.spec.variables.find((x) => x.name === v) || { name: v, default: "" });
      await renderVars();
    }
  });
  $("#settings").addEventListener("click", (e) => { if (e.target.id === "add") widgetForm(null); });

  function widgetAction(act, index) {
    const ws = dash.spec.widgets;
    if (act === "layout") return;  // dragged: the board moved or resized it in place, in dash.spec
    if (act === "edit") return widgetForm(index);
    if (act === "remove") ws.splice(index, 1);
    if (act === "left" && index > 0) [ws[index - 1], ws[index]] = [ws[index], ws[index - 1]];
    if (act === "right" && index < ws.length - 1) [ws[index + 1], ws[index]] = [ws[index], ws[index + 1]];
    board.setSpec(dash.spec).then(watch);
  }

  // The widget form: type, title, size, unit, and its queries (device or pattern, tag, path pattern, fn, step, scale, legend).
  async function widgetForm(index) {
    const w = structuredClone(index === null ? BLANK : dash.spec.widgets[index]);
    const names = vars.device ? (await api.series(vars.device).catch(() => [])).map((s) => s.name) : [];
    const patterns = [...new Set(names.flatMap((n) => [n, n.replace(/\[(\w+)=[^\]]*\]/g, "[$1=*]")]))].sort();
    const form = $("#wform");
    form.hidden = false;
    form.innerHTML = `<h2>${index === null ? "New widget" : "Edit widget"}</h2>
      <div class="fields">
        <label>type <select name="type">${WIDGET_TYPES.map((t) => `<option ${t === w.type ? "selected" : ""}>${t}</option>`).join("")}</select></label>
        <label>title <input name="title" value="${esc(w.title)}" size="28"></label>
        <label>unit <input name="unit" value="${esc(w.unit)}" size="6" placeholder="bit/s"></label>
        <label>width <input name="w" type="number" min="1" max="12" value="${w.w}"></label>
        <label>height <input name="h" type="number" min="1" max="4" value="${w.h}"></label>
        <label>top N <input name="top" type="number" min="1" max="100" value="${w.top || 10}"></label>
        <label>gauge max <input name="max" type="number" value="${w.max ?? ""}"></label>
      </div>
      <datalist id="paths">${patterns.map((p) => `<option value="${esc(p)}">`).join("")}</datalist>
      <div id="queries">${w.queries.map(queryRow).join("")}</div>
      <button id="addq">Add query</button> <button id="wok">${index === null ? "Add" : "Apply"}</button> <button id="wcancel">Cancel</button>
      <span class="muted">device: a name, a pattern (leaf-*) or $device; path: a series name with * wildcards, e.g.
        /interfaces/interface[name=*]/state/counters/in-octets; legend: {device}, {name}, {index}, {path}</span>`;
    form.onclick = (e) => {
      if (e.target.id === "addq") form.querySelector("#queries").insertAdjacentHTML("beforeend", queryRow(BLANK.queries[0]));
      if (e.target.dataset.dropq !== undefined && form.querySelectorAll(".query").length > 1) e.target.closest(".query").remove();
      if (e.target.id === "wcancel") form.hidden = true;
      if (e.target.id === "wok") {
        const get = (n) => form.querySelector(`[name="${n}"]`).value;
        const out = { type: get("type"), title: get("title"), unit: get("unit"), w: +get("w") || 6, h: +get("h") || 1,
          top: +get("top") || 10, max: get("max") === "" ? null : +get("max"), queries: [] };
        for (const q of form.querySelectorAll(".query")) {
          const v = (n) => q.querySelector(`[name="${n}"]`).value.trim();
          out.queries.push({ device: v("device") || "*", tag: v("tag"), path: v("path"), fn: v("fn"), step: v("step"),
            scale: Number(v("scale")) || 1, legend: v("legend") });
        }
        if (out.queries.some((q) => !q.path)) { msg("every query needs a path"); return; }
        msg("");
        if (index === null) dash.spec.widgets.push(out); else dash.spec.widgets[index] = out;
        form.hidden = true;
        board.setSpec(dash.spec).then(watch);
      }
    };
    form.scrollIntoView({ block: "nearest" });
  }

  function queryRow(q) {
    return `<div class="query fields">
      <label>device <input name="device" value="${esc(q.device)}" size="14"></label>
      <label>tag <input name="tag" value="${esc(q.tag || "")}" size="10" placeholder="site=$site"></label>
      <label class="grow">path <input name="path" list="paths" value="${esc(q.path)}" placeholder="/interfaces/interface[name=*]/state/counters/in-octets"></label>
      <label>fn <select name="fn">${FNS.map((f) => `<option ${f === q.fn ? "selected" : ""}>${f}</option>`).join("")}</select></label>
      <label>step <input name="step" value="${esc(q.step || "")}" size="4" placeholder="auto"></label>
      <label>scale <input name="scale" value="${q.scale ?? 1}" size="3"></label>
      <label>legend <input name="legend" value="${esc(q.legend || "")}" size="12" placeholder="{device} {name}"></label>
      <button data-dropq title="remove query">✕</button></div>`;
  }

  $("#edit").addEventListener("click", () => setEditing(true));
  $("#cancel").addEventListener("click", () => {
    if (!dash.id) { location.hash = "#/dashboards"; return; }
    dash = structuredClone(saved);
    board.spec = dash.spec;
    setEditing(false);
  });
  $("#save").addEventListener("click", async () => {
    // the variables' current values become the defaults a reload (or another user) starts from
    dash.spec.variables = dash.spec.variables.map((v) => ({ name: v.name, default: vars[v.name] || "" }));
    const body = { title: dash.title.trim(), shared: dash.shared, spec: dash.spec };
    try {
      const out = dash.id ? await api.updateDashboard(dash.id, { ...body, version: dash.version }) : await api.createDashboard(body);
      msg("");
      if (!dash.id) { location.hash = `#/dashboard/${out.id}`; return; }
      dash = out; saved = structuredClone(out); board.spec = dash.spec;
      $("#title").textContent = dash.title;
      $("#vis").textContent = dash.shared ? "shared" : "personal";
      setEditing(false);
    } catch (e) { msg(e.message); }
  });
  $("#export").addEventListener("click", async () => {
    const doc = dash.id ? await api.exportDashboard(dash.id) : { swtel_dashboard: 1, title: dash.title, spec: dash.spec };
    download(`${dash.title.toLowerCase().replace(/[^a-z0-9]+/g, "-")}.json`, JSON.stringify(doc, null, 2) + "\n", "application/json");
  });

  start().catch((e) => msg(e.message));
  return {
    frame(frame) { if (board) board.frame(frame); },
    unmount() { gone = true; if (board) board.destroy(); },
  };
}
