// A small SVG time-series chart: a few lines over a time window, y axis from 0 (or the data's minimum).
// Points are [ms, y]; each line keeps only what falls inside the window. Rendering is batched per frame.

import { si, esc } from "./format.js";

const NS = "http://www.w3.org/2000/svg";
const W = 600, H = 180, L = 56, R = 8, T = 8, B = 20;

export class LineChart {
  constructor(container, { title, lines, unit = "", windowMs = 5 * 60 * 1000 }) {
    this.lines = lines.map((l) => ({ ...l, points: [] }));
    this.unit = unit;
    this.windowMs = windowMs;
    this.el = document.createElement("div");
    this.el.className = "chart";
    this.el.innerHTML = `<div class="title">${esc(title)}</div>`;
    this.svg = document.createElementNS(NS, "svg");
    this.svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
    this.svg.setAttribute("preserveAspectRatio", "none");
    this.el.appendChild(this.svg);
    const legend = document.createElement("div");
    legend.className = "legend";
    legend.innerHTML = this.lines.map((l) => `<span style="color:${l.color}">━ ${esc(l.name)}</span>`).join("");
    this.el.appendChild(legend);
    container.appendChild(this.el);
    this.pending = false;
  }

  setWindow(ms) { this.windowMs = ms; this.draw(); }

  set(i, points) { this.lines[i].points = points.slice(); this.draw(); }

  // Live points arrive in time order; a point older than the last one is ignored.
  append(i, point) {
    const pts = this.lines[i].points;
    if (pts.length && point[0] <= pts[pts.length - 1][0]) return;
    pts.push(point);
    this.draw();
  }

  draw() {
    if (this.pending) return;
    this.pending = true;
    requestAnimationFrame(() => { this.pending = false; this.render(); });
  }

  render() {
    const now = Date.now(), t0 = now - this.windowMs;
    for (const l of this.lines) {
      let k = 0;
      while (k < l.points.length && l.points[k][0] < t0) k++;
      if (k) l.points.splice(0, k);
    }
    let lo = 0, hi = 0;
    for (const l of this.lines) for (const [, y] of l.points) { if (y > hi) hi = y; if (y < lo) lo = y; }
    if (hi === lo) hi = lo + 1;
    hi *= 1.1;
    const x = (t) => L + ((t - t0) / this.windowMs) * (W - L - R);
    const y = (v) => T + (1 - (v - lo) / (hi - lo)) * (H - T - B);
    const parts = [
      `<line class="axis" x1="${L}" y1="${T}" x2="${L}" y2="${H - B}"/>`,
      `<line class="axis" x1="${L}" y1="${H - B}" x2="${W - R}" y2="${H - B}"/>`,
    ];
    for (const f of [0, 0.5, 1]) {
      const v = lo + f * (hi - lo);
      parts.push(`<text x="${L - 4}" y="${y(v) + 3}" text-anchor="end">${esc(si(v, this.unit))}</text>`);
      if (f) parts.push(`<line class="axis" stroke-dasharray="2 4" x1="${L}" y1="${y(v)}" x2="${W - R}" y2="${y(v)}"/>`);
    }
    for (const f of [0, 0.25, 0.5, 0.75, 1]) {
      const t = t0 + f * this.windowMs;
      const label = new Date(t).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: this.windowMs <= 600000 ? "2-digit" : undefined });
      parts.push(`<text x="${x(t)}" y="${H - 6}" text-anchor="${f === 0 ? "start" : f === 1 ? "end" : "middle"}">${label}</text>`);
    }
    for (const l of this.lines) {
      if (!l.points.length) continue;
      const d = l.points.map(([t, v], i) => `${i ? "L" : "M"}${x(t).toFixed(1)},${y(v).toFixed(1)}`).join("");
      parts.push(`<path d="${d}" fill="none" stroke="${l.color}" stroke-width="1.5" vector-effect="non-scaling-stroke"/>`);
    }
    this.svg.innerHTML = parts.join("");
    // what the chart holds, for tests and for people inspecting the page
    const firsts = this.lines.filter((l) => l.points.length).map((l) => l.points[0][0]);
    this.el.dataset.firstMs = firsts.length ? String(Math.min(...firsts)) : "";
    this.el.dataset.points = String(this.lines.reduce((n, l) => n + l.points.length, 0));
  }
}
