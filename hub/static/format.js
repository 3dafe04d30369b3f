// Small formatting helpers shared by the pages.

const SI = ["", "k", "M", "G", "T", "P"];

export function si(value, unit = "") {
  if (value === null || value === undefined || Number.isNaN(value)) return "–";
  let v = Math.abs(value), i = 0;
  while (v >= 1000 && i < SI.length - 1) { v /= 1000; i++; }
  const digits = v >= 100 || i === 0 && Number.isInteger(value) ? 0 : v >= 10 ? 1 : 2;
  return `${value < 0 ? "-" : ""}${v.toFixed(digits)} ${SI[i]}${unit}`.trim();
}

export function age(ms) {
  if (ms === null || ms === undefined || ms < 0) return "–";
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(s < 10 ? 1 : 0)} s`;
  if (s < 3600) return `${Math.floor(s / 60)} m ${Math.floor(s % 60)} s`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} m`;
}

export function esc(text) {
  return String(text ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}

export function statusClass(status) {
  return `s-${String(status || "").toLowerCase().replace(/\s+/g, "-")}`;
}

export function badge(status) {
  return `<span class="badge ${statusClass(status)}">${esc(status)}</span>`;
}

// Agent colours: distinct by construction, not a hash. Agents get palette entries in the order the page
// first sees them (so a colour never changes while the page is open); no entry is red or near it, since
// red means "holder gone". Past the palette, the cycle repeats at another lightness.
export const GONE = "#f85149";
const AGENT_PALETTE = ["#58a6ff", "#3fb950", "#d29922", "#a371f7", "#39c5cf", "#f778ba", "#e3b341", "#7ee787",
  "#79c0ff", "#d2a8ff", "#56d4dd", "#bf8700"];
const assigned = new Map();

export function colour(name) {
  if (!assigned.has(name)) {
    const i = assigned.size, base = AGENT_PALETTE[i % AGENT_PALETTE.length];
    const round = Math.floor(i / AGENT_PALETTE.length);
    assigned.set(name, round ? lighter(base, Math.min(0.6, 0.25 * round)) : base);
  }
  return assigned.get(name);
}

function lighter(hex, f) {  // mix with white (a plain hex colour: the lease map's canvas takes it too)
  const c = [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16));
  return "#" + c.map((v) => Math.round(v + (255 - v) * f).toString(16).padStart(2, "0")).join("");
}

// Give colours in sorted order first, so the same fleet gets the same colours on every load.
export function colourAll(names) { for (const n of [...names].sort()) colour(n); }
