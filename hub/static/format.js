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

// A stable colour per name (agents on the lease map and charts).
export function colour(name) {
  let h = 0;
  for (const c of String(name)) h = (h * 31 + c.charCodeAt(0)) >>> 0;
  return `hsl(${h % 360}, 65%, 58%)`;
}
