// The hub's REST API. Only this file knows URLs and response shapes.

import { toLogin } from "./live.js";

async function getJSON(url) {
  const r = await fetch(url, { headers: { accept: "application/json" } });
  if (r.status === 401) toLogin();  // session expired: sign in again, then come back
  if (!r.ok) throw new Error(`${url}: HTTP ${r.status}`);
  return r.json();
}

export const device = (name) => getJSON(`/api/devices/${encodeURIComponent(name)}`);
export const facts = (name) => getJSON(`/api/devices/${encodeURIComponent(name)}/facts`);
export const series = (name) => getJSON(`/api/series?device=${encodeURIComponent(name)}`);

// History of one series as [[ms, y], ...]. The query API's exact response shape is adapted here and only
// here (toPoints): it accepts {points: [...]} or a bare array, each point {t|time|ts, v|value} or [t, v],
// with t in ms, ns or ISO text.
export async function history(seriesId, fromMs, toMs, fn) {
  const step = Math.max(1, Math.round((toMs - fromMs) / 1000 / 300));  // about 300 points per chart
  const url = `/api/query?series=${encodeURIComponent(seriesId)}&start=${new Date(fromMs).toISOString()}`
    + `&end=${new Date(toMs).toISOString()}&step=${step}s&fn=${fn}`;
  return toPoints(await getJSON(url));
}

export function toPoints(body) {
  const raw = Array.isArray(body) ? body : (body.points || body.data || []);
  const out = [];
  for (const p of raw) {
    let t, v;
    if (Array.isArray(p)) [t, v] = p; else { t = p.t ?? p.time ?? p.ts; v = p.v ?? p.value ?? p.y; }
    if (typeof t === "string") t = Date.parse(t);
    else if (t > 1e15) t = t / 1e6;        // ns → ms
    else if (t < 1e11) t = t * 1000;       // s → ms
    if (v !== null && v !== undefined && Number.isFinite(+v)) out.push([t, +v]);
  }
  return out.sort((a, b) => a[0] - b[0]);
}
