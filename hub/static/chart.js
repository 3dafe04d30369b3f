// Time-series charts on plotly.js (served by the hub from the `plotly` wheel at /vendor/plotly.min.js;
// docs/ARCHITECTURE.md says why). Zoom (drag), pan (shift-drag or the mode bar), double-click to reset,
// hover tooltips with every series, click a legend entry to hide/show it, SI units on the y axis, 24-hour
// timestamps in local time or UTC. Points are [ms, y]; live points are appended in time order, batched
// per animation frame, and the x range follows "now" until the user zooms.

import { esc } from "./format.js";

const FOLLOW = "follow";
const MAX_LEGEND = 12;          // x range = [now - window, now], moved as time passes
const PALETTE = ["#58a6ff", "#3fb950", "#d29922", "#f778ba", "#a371f7", "#39c5cf", "#ff7b72", "#e3b341",
  "#7ee787", "#79c0ff", "#ffa657", "#d2a8ff"];

// Shared display preference: UTC or the browser's local time (persisted per browser).
export const clock = {
  get utc() { return localStorage.getItem("swtel.utc") === "1"; },
  set utc(on) { localStorage.setItem("swtel.utc", on ? "1" : "0"); },
};

export const colourAt = (i) => PALETTE[i % PALETTE.length];

// Plotly draws numeric x values as UTC wall-clock time: shift by the local offset to show local time.
export function shift(ms, utc = clock.utc) {
  return utc ? ms : ms - new Date(ms).getTimezoneOffset() * 60000;
}

export function zoneLabel(utc = clock.utc) {
  if (utc) return "UTC";
  try { return Intl.DateTimeFormat().resolvedOptions().timeZone || "local"; } catch { return "local"; }
}

// Margins are set here rather than by Plotly's axis automargin, which draws a chart two or three times (to
// measure its tick labels, then to fit them): 2-3x the cost of a chart of many series. The widest y tick
// label "~s" makes is three digits, a decimal, an SI prefix and the unit ("888.5M bit/s"), measured once per
// unit, so labels are never clipped and live points never change the margin; x labels take two lines.
const FONT = { size: 11, family: "system-ui, sans-serif" };
const labelWidths = new Map();
function yLabelWidth(suffix, negative) {
  const text = `${negative ? "-" : ""}888.5M${suffix}`;
  if (!labelWidths.has(text)) {
    const ctx = document.createElement("canvas").getContext("2d");
    ctx.font = `${FONT.size}px ${FONT.family}`;
    labelWidths.set(text, Math.ceil(ctx.measureText(text).width));
  }
  return labelWidths.get(text);
}

function baseLayout({ unit, utc, height, legend, negative = false }) {
  const css = getComputedStyle(document.documentElement);
  const muted = css.getPropertyValue("--muted").trim() || "#8795a5";
  const line = css.getPropertyValue("--line").trim() || "#26313d";
  const suffix = unit ? ` ${unit}` : "";
  return {
    height, margin: { l: yLabelWidth(suffix, negative) + 10, r: 12, t: legend ? 24 : 8, b: 36 }, autosize: true,
    paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "rgba(0,0,0,0)",
    font: { color: muted, ...FONT },
    showlegend: legend, legend: { orientation: "h", y: 1.0, yanchor: "bottom", x: 1, xanchor: "right", font: { size: 11 }, bgcolor: "rgba(0,0,0,0)" },
    hovermode: "x unified", dragmode: "zoom",
    xaxis: {
      type: "date", automargin: false, gridcolor: line, linecolor: line, zeroline: false,
      hoverformat: "%Y-%m-%d %H:%M:%S",
      // 24-hour clock at every zoom level; the date appears once a day
      tickformatstops: [
        { dtickrange: [null, 60000], value: "%H:%M:%S" },
        { dtickrange: [60000, 86400000], value: "%H:%M\n%b %d" },
        { dtickrange: [86400000, null], value: "%b %d" },
      ],
    },
    yaxis: {
      automargin: false, gridcolor: line, linecolor: line, zeroline: false, rangemode: "tozero",
      tickformat: "~s", ticksuffix: suffix, hoverformat: ".4~s",
    },
  };
}

const CONFIG = { displaylogo: false, responsive: true, scrollZoom: false,
  modeBarButtonsToRemove: ["select2d", "lasso2d", "autoScale2d"] };

// One chart: lines (or areas, bars, points) over time.
export class TimeChart {
  constructor(container, { title = "", unit = "", kind = "line", windowMs = 5 * 60 * 1000, height = 220,
    legend = true, lines = [] } = {}) {
    this.title = title; this.unit = unit; this.kind = kind; this.windowMs = windowMs; this.height = height; this.legend = legend;
    this.range = FOLLOW;          // or [fromMs, toMs] for an absolute range, or the user's zoom
    this.lines = lines.map((l, i) => ({ name: l.name, color: l.color || colourAt(i), points: [] }));
    this.el = document.createElement("div");
    this.el.className = "chart";
    if (title) this.el.innerHTML = `<div class="title">${esc(title)}</div>`;
    this.plot = document.createElement("div");
    this.plot.className = "plot";
    this.el.appendChild(this.plot);
    container.appendChild(this.el);
    this.pending = null;          // points waiting for the next animation frame: line index → [[ms, y]]
    this.zoomed = false;
    this.drawn = false;
    this.loaded = false;  // nothing is drawn before the first data: an empty Plotly chart costs as much as a full one
  }

  // Replace every line: [{name, color?, points}].
  setLines(lines) {
    this.lines = lines.map((l, i) => ({ name: l.name, color: l.color || colourAt(i), points: l.points.slice() }));
    this.pending = null;
    this.loaded = true;
    this.draw();
  }

  // Compatible with the device page's first chart API.
  set(i, points) { this.lines[i].points = points.slice(); this.loaded = true; this.draw(); }

  setWindow(ms) { this.windowMs = ms; this.range = FOLLOW; this.zoomed = false; this.draw(); }

  // A new plot height, and the container's width (a widget resized on its grid).
  resize(height) {
    this.height = height;
    if (!this.drawn || this.destroyed) { this.draw(); return; }
    window.Plotly.relayout(this.plot, { height }).then(() => !this.destroyed && window.Plotly.Plots.resize(this.plot));
  }

  setRange(fromMs, toMs) { this.range = [fromMs, toMs]; this.zoomed = false; this.draw(); }

  // A live point; one older than the line's last point is ignored (live frames can repeat a reading).
  append(i, point) {
    const l = this.lines[i];
    if (!l) return;
    const last = this.pendingLast(i) ?? (l.points.length ? l.points[l.points.length - 1][0] : -Infinity);
    if (point[0] <= last) return;
    if (!this.pending) {
      this.pending = new Map();
      requestAnimationFrame(() => this.flush());
    }
    if (!this.pending.has(i)) this.pending.set(i, []);
    this.pending.get(i).push(point);
  }

  pendingLast(i) {
    const p = this.pending && this.pending.get(i);
    return p && p.length ? p[p.length - 1][0] : null;
  }

  // Live appends: extendTraces adds only the new points (no full redraw of thousands of points).
  flush() {
    const pending = this.pending;
    this.pending = null;
    if (this.destroyed) return;
    if (!pending || !this.drawn || !Array.isArray(this.plot.data)) {
      if (pending) this.mergePending(pending);
      this.loaded = true;
      this.draw();
      return;
    }
    this.mergePending(pending);
    const idx = [...pending.keys()];
    const utc = clock.utc;
    window.Plotly.extendTraces(this.plot, {
      x: idx.map((i) => pending.get(i).map((p) => shift(p[0], utc))),
      y: idx.map((i) => pending.get(i).map((p) => p[1])),
    }, idx);
    this.follow();
    this.mark();
  }

  mergePending(pending) {
    for (const [i, pts] of pending) this.lines[i].points.push(...pts);
  }

  xRange() {
    if (this.range === FOLLOW) { const now = Date.now(); return [now - this.windowMs, now]; }
    return this.range;
  }

  follow() {
    if (this.destroyed || this.zoomed || this.range !== FOLLOW) return;
    const [a, b] = this.xRange();
    window.Plotly.relayout(this.plot, { "xaxis.range": [shift(a), shift(b)] });
  }

  traces() {
    const utc = clock.utc;
    const [t0] = this.xRange();
    return this.lines.map((l) => {
      // drop what scrolled out of a following window (keeps memory bounded on a page left open)
      if (this.range === FOLLOW) {
        let k = 0;
        while (k < l.points.length && l.points[k][0] < t0 - this.windowMs) k++;
        if (k) l.points.splice(0, k);
      }
      const t = {
        name: l.name, x: l.points.map((p) => shift(p[0], utc)), y: l.points.map((p) => p[1]),
        hovertemplate: `%{y:.4~s}${this.unit ? " " + this.unit : ""}<extra>${esc(l.name)}</extra>`,
        marker: { color: l.color }, line: { color: l.color, width: 1.5 },
      };
      if (this.kind === "bar") return { ...t, type: "bar" };
      if (this.kind === "points") return { ...t, type: "scatter", mode: "markers", marker: { color: l.color, size: 4 } };
      if (this.kind === "area") return { ...t, type: "scatter", mode: "lines", fill: "tonexty", stackgroup: "a" };
      return { ...t, type: "scatter", mode: "lines" };
    });
  }

  draw() {
    if (this.drawPending || !this.loaded) return;
    this.drawPending = true;
    requestAnimationFrame(() => { this.drawPending = false; this.render(); });
  }

  render() {
    if (this.destroyed) return;
    if (!window.Plotly) { this.plot.textContent = "chart library missing (/vendor/plotly.min.js)"; return; }
    const utc = clock.utc;
    // a legend of dozens of entries would crowd out the plot (and cost more to draw than the lines): past
    // MAX_LEGEND series the names are in the hover tooltip and the CSV
    const layout = baseLayout({ unit: this.unit, utc, height: this.height,
      legend: this.legend && this.lines.length > 0 && this.lines.length <= MAX_LEGEND,
      negative: this.lines.some((l) => l.points.some((p) => p[1] < 0)) });
    const [a, b] = this.xRange();
    if (!this.zoomed) layout.xaxis.range = [shift(a, utc), shift(b, utc)];
    else if (this.plot.layout) layout.xaxis.range = this.plot.layout.xaxis.range;
    if (this.kind === "bar") layout.barmode = "group";
    const t0 = performance.now();
    window.Plotly.react(this.plot, this.traces(), layout, CONFIG);
    performance.measure(`draw ${this.title}`, { start: t0 });  // the bench reports these
    if (!this.drawn) {
      this.drawn = true;
      // a user zoom stops the x range from following now; double-click (autorange) resumes it
      this.plot.on("plotly_relayout", (e) => {
        // our own moves set "xaxis.range"; a user's zoom or pan sets "xaxis.range[0]"
        if (e["xaxis.autorange"]) { this.zoomed = false; this.draw(); } else if (e["xaxis.range[0]"] !== undefined) this.zoomed = true;
      });
    }
    this.mark();
  }

  // What the chart holds, for tests and for people inspecting the page.
  mark() {
    const firsts = this.lines.filter((l) => l.points.length).map((l) => l.points[0][0]);
    this.el.dataset.firstMs = firsts.length ? String(Math.min(...firsts)) : "";
    this.el.dataset.points = String(this.lines.reduce((n, l) => n + l.points.length, 0));
  }

  csv() {
    const rows = ["time,series,value"];
    for (const l of this.lines) for (const [t, y] of l.points) rows.push(`${new Date(t).toISOString()},"${l.name.replace(/"/g, '""')}",${y}`);
    return rows.join("\n") + "\n";
  }

  png(filename) {
    return window.Plotly.downloadImage(this.plot, { format: "png", filename, width: this.plot.clientWidth || 800, height: this.height });
  }

  destroy() { this.destroyed = true; if (window.Plotly) window.Plotly.purge(this.plot); this.el.remove(); }
}

// Back-compat name for pages written against the first chart.
export { TimeChart as LineChart };
