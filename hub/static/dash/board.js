// A dashboard's grid of widgets: each widget runs its queries through GET /api/panel (stored history,
// bucketed by the hub) and is continued by live frames (the live view's newest readings). Used by the
// dashboard page and by the device page (a built-in template, dash/templates.js).

import * as api from "../api.js";
import { TimeChart, clock, colourAt, shift, zoneLabel } from "../chart.js";
import { esc, si } from "../format.js";
import { MAX_H, MAX_W, enableLayout } from "./layout.js";

export const RANGES = { "5m": 5, "15m": 15, "1h": 60, "6h": 360, "24h": 1440, "7d": 10080 };
export const CHART_TYPES = new Set(["line", "area", "bar", "points"]);
export const WIDGET_TYPES = ["line", "area", "bar", "points", "stat", "gauge", "table", "topn"];

// `$device`, `$interface`, `$site` in a query or title, from the chosen variables.
export function substitute(text, vars) {
  return String(text ?? "").replace(/\$(device|interface|site)\b/g, (m, name) => vars[name] || m);
}

const unresolved = (text) => /\$(device|interface|site)\b/.exec(text);

function globRe(glob) {
  return new RegExp("^" + glob.split("").map((c) => (c === "*" ? ".*" : c === "?" ? "." : c.replace(/[.+^${}()|[\]\\]/g, "\\$&"))).join("") + "$");
}

// Legend: "{device} {name}" with the device, a key of the path ({name}, {index}) or {path} (the full name).
export function legendOf(template, s) {
  if (!template) {
    const keys = Object.values(s.keys || {});
    return keys.length ? `${s.device} ${keys.join(" ")}` : `${s.device} ${s.name.split("/").pop()}`;
  }
  return template.replace(/\{(\w+)\}/g, (m, k) => (k === "device" ? s.device : k === "path" ? s.name : (s.keys || {})[k] ?? m));
}

export function download(filename, text, type = "text/plain") {
  const a = document.createElement("a");
  a.href = URL.createObjectURL(new Blob([text], { type }));
  a.download = filename;
  document.body.appendChild(a);
  a.click();
  setTimeout(() => { URL.revokeObjectURL(a.href); a.remove(); }, 0);
}

// Pixels of a chart's width per bucket it asks for: lines draw one path per series; bars and points one
// element per value, which costs more to draw and needs more room to read.
const PX_PER_BUCKET = { line: 3, area: 3, bar: 12, points: 12 };

// A widget's plot height for its grid rows (one row: 240 px less the header).
const heightOf = (h) => 200 + 240 * ((h || 1) - 1);

// After the next frame (charts draw in animation frames), or 100 ms in a hidden tab, which gets none.
const drawn = () => new Promise((ok) => { requestAnimationFrame(() => ok()); setTimeout(ok, 100); });

const slug = (text) => String(text).toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(/^-|-$/g, "") || "widget";

export class Board {
  // spec: {widgets, variables, range}; vars: {device, interface, site}; range: {rel: "6h"} or {from, to} (ms)
  constructor(container, { spec, vars = {}, range = { rel: spec.range || "1h" }, editable = false, onEdit = null }) {
    this.el = document.createElement("div");
    this.el.className = "board";
    container.appendChild(this.el);
    this.spec = spec; this.vars = vars; this.range = range; this.editable = editable; this.onEdit = onEdit;
    this.widgets = [];
    this.generation = 0;
    this.el.addEventListener("click", (e) => this.click(e));
    enableLayout(this);  // drag to move and resize, in edit mode
  }

  windowMs() { return this.range.rel ? (RANGES[this.range.rel] || 60) * 60000 : this.range.to - this.range.from; }
  bounds() { if (this.range.rel) { const to = Date.now(); return [to - this.windowMs(), to]; } return [this.range.from, this.range.to]; }
  isLive() { return Boolean(this.range.rel); }

  setSpec(spec) { this.spec = spec; return this.load(); }
  setVars(vars) { this.vars = { ...this.vars, ...vars }; return this.load(); }
  setRange(range) { this.range = range; return this.load(); }
  setEditable(on) { this.editable = on; return this.load(); }

  // Devices the widgets read (for the live view's watch request).
  devices() {
    const out = new Set();
    for (const w of this.widgets) for (const s of w.series.values()) out.add(s.device);
    return [...out];
  }

  // Widgets on screen are asked for and drawn first (the board is marked data-shown), then the others one
  // at a time, or at once when they scroll into view (the board is marked data-loaded when all are drawn).
  // Resolves when those on screen are drawn.
  async load() {
    const gen = ++this.generation;
    this.observer?.disconnect();
    for (const w of this.widgets) w.chart?.destroy();
    this.el.innerHTML = "";
    delete this.el.dataset.shown;
    delete this.el.dataset.loaded;
    const [from, to] = this.bounds();
    this.widgets = this.spec.widgets.map((spec, index) => this.mountWidget(spec, index));
    this.plan(from, to);
    const fillOnce = (w) => (w.job ??= this.fill(w).catch((e) => {
      w.body.insertAdjacentHTML("afterbegin", `<div class="error">${esc(e.message)}</div>`);
    }).then(drawn));
    const first = await this.onScreen();
    if (gen !== this.generation) return;
    await Promise.all(first.map(fillOnce));
    if (gen !== this.generation) return;
    this.el.dataset.shown = String(Date.now());
    // the rest: whichever scrolls into view now, else in order, one after the other
    const rest = this.widgets.filter((w) => !w.job);
    this.observer = new IntersectionObserver((entries) => {
      for (const e of entries) if (e.isIntersecting) fillOnce(this.widgets[+e.target.dataset.widget]);
    }, { rootMargin: "0px 0px 50% 0px" });
    for (const w of rest) this.observer.observe(w.el);
    (async () => {
      for (const w of rest) { await fillOnce(w); if (gen !== this.generation) return; }
      this.observer.disconnect();
      this.el.dataset.loaded = String(Date.now());  // tests and the bench wait for this
      this.el.dispatchEvent(new CustomEvent("board-loaded", { bubbles: true }));
    })();
  }

  // The widgets on screen now (an IntersectionObserver reports every target once when it starts).
  onScreen() {
    return new Promise((done) => {
      const io = new IntersectionObserver((entries) => {
        io.disconnect();
        done(entries.filter((e) => e.isIntersecting).map((e) => this.widgets[+e.target.dataset.widget]));
      });
      for (const w of this.widgets) io.observe(w.el);
      if (!this.widgets.length) { io.disconnect(); done([]); }
    });
  }

  // What every widget will ask /api/panel, decided before any is asked, so that each distinct query is asked
  // once: identical queries share an answer, and a stat, gauge, table or top-N of the same query as a chart
  // reads the chart's answer (a top-N ranks it here). A chart asks about one bucket per PX_PER_BUCKET pixels
  // of its width (steps that divide a minute or an hour); stats, gauges and top-Ns of their own need only the last buckets of the range.
  plan(from, to) {
    this.asked = new Map();   // key → {params, answer: a promise once asked}
    const charts = new Map(); // the query without its step → a chart's key
    const ordered = [...this.widgets].sort((a, b) => Number(!a.chart) - Number(!b.chart));
    for (const w of ordered) {
      const { spec } = w;
      w.asks = [];
      const plotPx = Math.max(100, w.el.clientWidth - 70);
      const buckets = w.chart ? plotPx / PX_PER_BUCKET[spec.type] : 300;
      const step = api.niceStep((to - from) / 1000 / buckets);
      for (const q of spec.queries) {
        const device = substitute(q.device || "*", this.vars), path = substitute(q.path, this.vars);
        const tag = substitute(q.tag || "", this.vars);
        const missing = unresolved(device) || unresolved(path) || unresolved(tag);
        if (missing) { w.missing = missing[1]; break; }
        const scale = Number(q.scale) || 1;
        // matchers first: live readings continue the widget even when its stored history cannot be read
        w.matchers.push({ device: globRe(device), path: globRe(path), q, scale });
        const base = { device, path, fn: q.fn || "avg", ...(tag ? { tag } : {}) };
        const baseKey = new URLSearchParams(base).toString();
        let key = !w.chart && !q.step ? charts.get(baseKey) : undefined;
        if (key === undefined) {
          const lastOnly = spec.type === "stat" || spec.type === "gauge" || spec.type === "topn";
          const params = { ...base, start: new Date(lastOnly ? Math.max(from, to - 3000 * step) : from).toISOString(),
                           end: new Date(to).toISOString(), step: q.step || `${step}s` };
          if (spec.type === "topn") Object.assign(params, { top: spec.top || 10, rank: "last" });
          key = new URLSearchParams(params).toString();
          if (!this.asked.has(key)) this.asked.set(key, { params, answer: null });
          if (w.chart && !q.step && !charts.has(baseKey)) charts.set(baseKey, key);
        }
        w.asks.push({ q, scale, ask: this.asked.get(key) });
      }
    }
  }

  mountWidget(spec, index) {
    const el = document.createElement("section");
    el.className = `widget w-${spec.type}`;
    this.place(el, spec);
    el.dataset.widget = String(index);
    if (this.editable) el.classList.add("editable");
    const title = substitute(spec.title, this.vars);
    const plotted = CHART_TYPES.has(spec.type) || spec.type === "gauge" || spec.type === "topn";
    el.innerHTML = `<header><span class="wtitle">${esc(title)}</span><span class="wtools">
        <button data-act="csv" title="download CSV">CSV</button>
        ${plotted ? '<button data-act="png" title="download PNG">PNG</button>' : ""}
        ${this.editable ? `<button data-act="left" title="move left">◀</button><button data-act="right" title="move right">▶</button>
          <button data-act="edit" title="edit widget">edit</button><button data-act="remove" title="remove widget">✕</button>` : ""}
      </span></header><div class="wbody"></div>${this.editable ? '<div class="resize" title="drag to resize"></div>' : ""}`;
    this.el.appendChild(el);
    const w = { spec, index, el, title, body: el.querySelector(".wbody"), series: new Map(), chart: null, values: new Map(),
                matchers: [] };
    if (CHART_TYPES.has(spec.type)) {
      w.chart = new TimeChart(w.body, { title, unit: spec.unit, kind: spec.type, height: heightOf(spec.h) });
      if (this.range.rel) w.chart.windowMs = this.windowMs(); else w.chart.range = this.bounds();
    }
    return w;
  }

  async fill(w) {
    const { spec } = w;
    if (w.missing) { w.body.innerHTML = `<div class="muted">choose $${esc(w.missing)} above</div>`; return; }
    const asks = w.asks.map(({ q, scale, ask }) => {
      ask.answer ??= api.panel(ask.params);  // the first widget to need an answer asks for it
      return { q, scale, answer: ask.answer, shared: !ask.params.top };
    });
    const lines = [];
    const errors = [];
    // all answers awaited at once: a second query that fails while the first is still out is handled, not an
    // unhandled rejection (awaiting them one by one left it without a handler until the first came back)
    const settled = await Promise.allSettled(asks.map((a) => a.answer));
    for (const [i, { q, scale, shared }] of asks.entries()) {
      if (settled[i].status === "rejected") { errors.push(settled[i].reason.message); continue; }
      const body = settled[i].value;
      let found = body.series;
      // a top-N reading a chart's answer ranks it as the hub would (by the last value)
      if (spec.type === "topn" && shared) {
        const last = (s) => (s.points.length ? s.points[s.points.length - 1][1] : -Infinity);
        found = found.slice().sort((a, b) => last(b) - last(a)).slice(0, spec.top || 10);
      }
      for (const s of found) {
        const line = { key: `${s.device}\u0000${s.name}`, device: s.device, name: s.name, q, scale,
                       label: legendOf(q.legend, s), points: s.points.map(([t, v]) => [t * 1000, v * scale]) };
        lines.push(line);
      }
    }
    // only now, with every answer in: a live frame between two answers must find w.series and w.lines in step
    for (const line of lines) w.series.set(line.key, line);
    if (errors.length) w.el.querySelector("header").insertAdjacentHTML("afterend", `<div class="error">${esc(errors[0])}</div>`);
    const byLabel = new Intl.Collator(undefined, { numeric: true });  // Ethernet2 before Ethernet10
    if (spec.type !== "topn") lines.sort((a, b) => byLabel.compare(a.label, b.label));
    this.render(w, lines);
  }

  render(w, lines) {
    const { spec } = w;
    w.lines = lines;
    if (w.chart) {
      w.chart.setLines(lines.map((l, i) => ({ name: l.label, color: colourAt(i), points: l.points })));
      if (!lines.length) w.body.insertAdjacentHTML("beforeend", '<div class="muted empty">no matching series in this range</div>');
      return;
    }
    const last = (l) => (l.points.length ? l.points[l.points.length - 1][1] : null);
    if (spec.type === "stat") {
      const v = lines.reduce((a, l) => a + (last(l) ?? 0), 0);
      w.body.innerHTML = `<div class="stat" data-value="${lines.length ? v : ""}">${lines.length ? esc(si(v, spec.unit)) : "–"}</div>
        <div class="muted">${lines.length === 1 ? esc(lines[0].label) : `sum of ${lines.length} series`}</div>`;
    } else if (spec.type === "table") {
      const rows = lines.map((l) => {
        const ys = l.points.map((p) => p[1]);
        const avg = ys.length ? ys.reduce((a, b) => a + b, 0) / ys.length : null;
        return `<tr><td>${esc(l.label)}</td><td class="num">${esc(si(last(l), spec.unit))}</td>
          <td class="num">${ys.length ? esc(si(Math.min(...ys), spec.unit)) : "–"}</td><td class="num">${esc(si(avg, spec.unit))}</td>
          <td class="num">${ys.length ? esc(si(Math.max(...ys), spec.unit)) : "–"}</td></tr>`;
      }).join("");
      w.body.innerHTML = `<div class="wtable"><table><thead><tr><th>series</th><th class="num">last</th><th class="num">min</th>
        <th class="num">avg</th><th class="num">max</th></tr></thead><tbody>${rows || '<tr><td colspan="5" class="muted">no matching series</td></tr>'}</tbody></table></div>`;
    } else if (spec.type === "gauge" || spec.type === "topn") {
      this.plotOther(w, lines);
    }
  }

  plotOther(w, lines) {
    const { spec } = w;
    const Plotly = window.Plotly;
    if (!Plotly) return;
    if (!w.plot) { w.body.innerHTML = '<div class="plot"></div>'; w.plot = w.body.querySelector(".plot"); }
    const muted = getComputedStyle(document.documentElement).getPropertyValue("--muted").trim() || "#8795a5";
    const layout = { height: heightOf(spec.h), margin: { l: 8, r: spec.type === "gauge" ? 32 : 16, t: 10, b: 8 }, autosize: true,
      paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "rgba(0,0,0,0)", font: { color: muted, size: 11 } };
    const last = (l) => (l.points.length ? l.points[l.points.length - 1][1] : 0);
    let data;
    if (spec.type === "gauge") {
      const v = lines.reduce((a, l) => a + last(l), 0);
      data = [{ type: "indicator", mode: "gauge+number", value: v,
        number: { valueformat: ".3~s", suffix: spec.unit ? ` ${spec.unit}` : "" },
        gauge: { axis: { range: [0, spec.max || 100], tickformat: "~s" }, bar: { color: "#58a6ff" } } }];
      w.plot.dataset.value = String(v);
    } else {
      const sorted = lines.slice().sort((a, b) => last(a) - last(b));  // biggest on top
      data = [{ type: "bar", orientation: "h", x: sorted.map(last), y: sorted.map((l) => l.label),
        marker: { color: "#58a6ff" }, hovertemplate: `%{y}: %{x:.4~s}${spec.unit ? " " + spec.unit : ""}<extra></extra>` }];
      Object.assign(layout, { xaxis: { tickformat: "~s", ticksuffix: spec.unit ? ` ${spec.unit}` : "", automargin: true,
        gridcolor: "#26313d", rangemode: "tozero" }, yaxis: { automargin: true, type: "category" } });
      w.plot.dataset.rows = String(sorted.length);
    }
    const t0 = performance.now();
    Plotly.react(w.plot, data, layout, { displaylogo: false, responsive: true, displayModeBar: false });
    performance.measure(`draw ${w.title}`, { start: t0 });  // the bench reports these
  }

  // Live frames: {devices: {dev: {path: [ts_ms, value, rate]}}}. Counter queries (fn=rate) take the rate.
  frame(frame) {
    if (!this.isLive() || !frame.devices) return;
    const dirty = new Set();
    for (const [device, upd] of Object.entries(frame.devices)) {
      for (const [path, entry] of Object.entries(upd)) {
        for (const w of this.widgets) {
          for (const m of w.matchers) {
            if (!m.device.test(device) || !m.path.test(path)) continue;
            const raw = m.q.fn === "rate" ? entry[2] : entry[1];
            if (raw === null || raw === undefined || !Number.isFinite(+raw)) continue;
            const point = [entry[0], +raw * m.scale];
            const key = `${device}\u0000${path}`;
            let line = w.series.get(key);
            if (!line) {
              if (w.spec.type === "topn") continue;  // top-N re-ranks on reload only
              line = { key, device, name: path, q: m.q, scale: m.scale, points: [],
                       label: legendOf(m.q.legend, { device, name: path, keys: keysOf(path) }) };
              w.series.set(key, line);
              (w.lines = w.lines || []).push(line);
              if (w.chart) w.chart.setLines(w.lines.map((l, i) => ({ name: l.label, color: colourAt(i), points: l.points })));
            }
            // a reload still awaiting its answers has put the line in w.series but not yet drawn it
            const i = w.lines ? w.lines.indexOf(line) : -1;
            if (i < 0) continue;
            if (w.chart) {
              const body = w.body.querySelector(".empty");
              if (body) body.remove();
              w.chart.append(i, point);
            } else {
              const pts = line.points;
              if (!pts.length || point[0] > pts[pts.length - 1][0]) { pts.push(point); dirty.add(w); }
            }
          }
        }
      }
    }
    const now = Date.now();
    for (const w of dirty) {
      if (now - (w.drawnAt || 0) < 1000) continue;  // tables, stats and gauges: at most once a second
      w.drawnAt = now;
      this.render(w, w.lines);
    }
  }

  place(el, spec) {
    el.style.gridColumn = `span ${Math.min(MAX_W, Math.max(1, spec.w || 6))}`;
    el.style.gridRow = `span ${Math.min(MAX_H, Math.max(1, spec.h || 1))}`;
  }

  // Layout edits (dash/layout.js): a new order of the widgets, moved in place (no reload of their data).
  reorder(order) {
    const widgets = order.map((i) => this.widgets[i]);
    const specs = order.map((i) => this.spec.widgets[i]);
    this.spec.widgets.splice(0, specs.length, ...specs);  // in place: the page holds the same spec
    this.widgets = widgets;
    widgets.forEach((w, i) => { w.index = i; w.el.dataset.widget = String(i); this.el.appendChild(w.el); });
    this.onEdit?.("layout", null);
  }

  // A new size in grid cells (null: back to the spec's size, a cancelled drag); the plot is redrawn to fit.
  resize(index, width, height) {
    const w = this.widgets[index];
    if (width !== null) Object.assign(w.spec, { w: width, h: height });
    this.place(w.el, w.spec);
    if (width === null) return;
    if (w.chart) w.chart.resize(heightOf(w.spec.h));
    else if (w.plot) { this.plotOther(w, w.lines || []); window.Plotly.Plots.resize(w.plot); }
    this.onEdit?.("layout", index);
  }

  click(e) {
    const btn = e.target.closest("button[data-act]");
    if (!btn) return;
    const el = btn.closest("section.widget");
    const w = this.widgets[+el.dataset.widget];
    const act = btn.dataset.act;
    if (act === "csv") download(`${slug(w.title)}.csv`, this.csv(w), "text/csv");
    else if (act === "png") {
      if (w.chart) w.chart.png(slug(w.title));
      else if (w.plot) window.Plotly.downloadImage(w.plot, { format: "png", filename: slug(w.title) });
    } else if (this.onEdit) this.onEdit(act, w.index);
  }

  csv(w) {
    const rows = ["time,series,device,path,value"];
    for (const l of w.lines || []) {
      for (const [t, y] of l.points) rows.push([new Date(t).toISOString(), q(l.label), q(l.device), q(l.name), y].join(","));
    }
    return rows.join("\n") + "\n";
  }

  destroy() { this.generation++; this.observer?.disconnect(); for (const w of this.widgets) w.chart?.destroy(); this.el.remove(); }
}

const q = (text) => `"${String(text).replace(/"/g, '""')}"`;

function keysOf(name) {
  const out = {};
  for (const m of name.matchAll(/\[([^=\]]+)=([^\]]*)\]/g)) out[m[1]] = m[2];
  return out;
}

// The time-range picker shared by every widget: relative ranges, or an absolute one (local time or UTC).
export function rangePicker(container, initial, onChange) {
  const el = document.createElement("div");
  el.className = "rangepicker";
  const toInput = (ms) => new Date(shift(ms)).toISOString().slice(0, 16);
  const fromInput = (text) => { const ms = Date.parse(text + "Z"); return clock.utc ? ms : ms + new Date(ms).getTimezoneOffset() * 60000; };
  el.innerHTML = `<select id="range" title="time range">${Object.keys(RANGES).map((r) => `<option ${initial.rel === r ? "selected" : ""}>${r}</option>`).join("")}
      <option value="abs" ${initial.rel ? "" : "selected"}>absolute…</option></select>
    <span class="abs" hidden><input type="datetime-local" id="from"> – <input type="datetime-local" id="to"> <button id="apply">apply</button></span>
    <label title="show and enter times in UTC"><input type="checkbox" id="utc" ${clock.utc ? "checked" : ""}> UTC</label>
    <span class="muted" id="zone">times in ${esc(zoneLabel())}, 24 h</span>`;
  container.appendChild(el);
  const sel = el.querySelector("#range"), abs = el.querySelector(".abs");
  const showAbs = (from, to) => { abs.hidden = false; el.querySelector("#from").value = toInput(from); el.querySelector("#to").value = toInput(to); };
  if (!initial.rel) showAbs(initial.from, initial.to);
  sel.addEventListener("change", () => {
    if (sel.value === "abs") { const to = Date.now(); showAbs(to - 3600000, to); return; }
    abs.hidden = true;
    onChange({ rel: sel.value });
  });
  el.querySelector("#apply").addEventListener("click", () => {
    const from = fromInput(el.querySelector("#from").value), to = fromInput(el.querySelector("#to").value);
    if (Number.isFinite(from) && Number.isFinite(to) && from < to) onChange({ from, to });
  });
  el.querySelector("#utc").addEventListener("change", (e) => {
    const absolute = sel.value === "abs";
    const from = absolute && fromInput(el.querySelector("#from").value), to = absolute && fromInput(el.querySelector("#to").value);
    clock.utc = e.target.checked;
    el.querySelector("#zone").textContent = `times in ${zoneLabel()}, 24 h`;
    if (absolute) { showAbs(from, to); onChange({ from, to }); } else onChange({ rel: sel.value });
  });
  return el;
}
