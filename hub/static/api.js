// The hub's REST API. Only this file knows URLs and response shapes.

import { toLogin } from "./live.js";

async function getJSON(url) {
  const r = await fetch(url, { headers: { accept: "application/json" } });
  if (r.status === 401) toLogin();  // session expired: sign in again, then come back
  if (!r.ok) throw new Error(await failure(r, url));
  return r.json();
}

// The API's one-line error (`detail`) when it gave one.
async function failure(r, url) {
  try { const body = await r.json(); if (body && body.detail) return body.detail; } catch { /* not JSON */ }
  return `${url}: HTTP ${r.status}`;
}

export const device = (name) => getJSON(`/api/devices/${encodeURIComponent(name)}`);
export const facts = (name) => getJSON(`/api/devices/${encodeURIComponent(name)}/facts`);
export const series = (name) => getJSON(`/api/series?device=${encodeURIComponent(name)}`);

// History of one series as [[ms, y], ...]. The query API's exact response shape is adapted here and only
// here (toPoints): it accepts {points: [...]} or a bare array, each point {t|time|ts, v|value} or [t, v],
// with t in ms, ns or ISO text.
export async function history(seriesId, fromMs, toMs, fn) {
  const step = niceStep((toMs - fromMs) / 1000 / 300);  // about 300 points per chart
  const url = `/api/query?series=${encodeURIComponent(seriesId)}&start=${new Date(fromMs).toISOString()}`
    + `&end=${new Date(toMs).toISOString()}&step=${step}s&fn=${fn}`;
  return toPoints(await getJSON(url));
}

// Steps that divide a minute or an hour: buckets line up with collection intervals (no aliasing of a 10 s
// or 60 s counter into alternating 1- and 2-sample buckets) and with the 1 m / 1 h continuous aggregates.
const STEPS = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21600, 43200, 86400];
export function niceStep(seconds) {
  return STEPS.find((s) => s >= seconds) || Math.ceil(seconds / 86400) * 86400;
}

export function toPoints(body) {
  // /api/query answers {start, end, results: [{series, points: [[unix s, v], ...]}, ...]}; one series here
  if (body && Array.isArray(body.results)) body = body.results[0] || [];
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

// Config backups (hub/api/configs.py).
export const configVersions = (name) => getJSON(`/api/devices/${encodeURIComponent(name)}/configs`);
export const configVersion = (name, n) => getJSON(`/api/devices/${encodeURIComponent(name)}/configs/${n}`);
export const configDiff = (name, a, b) =>
  getJSON(`/api/devices/${encodeURIComponent(name)}/config-diff?a=${encodeURIComponent(a)}&b=${encodeURIComponent(b)}`);

// Alerts (hub/alerts/routes.py).
export const alerts = (all = false) => getJSON(`/api/alerts${all ? "?all=true" : ""}`);
export const alertHistory = (alertId = null) =>
  getJSON(`/api/alerts/history${alertId === null ? "" : `?alert_id=${encodeURIComponent(alertId)}`}`);

// Writes go with the session cookie, so they carry the CSRF token (double submit: the `csrftoken` cookie's
// value in X-CSRFToken, docs/AUTH.md); GET /api/csrf returns it and sets the cookie.
async function send(method, url, body) {
  const { csrf_token: token, header = "X-CSRFToken" } = await getJSON("/api/csrf");
  const r = await fetch(url, { method, headers: { "content-type": "application/json", accept: "application/json",
    [header]: token }, body: JSON.stringify(body ?? {}) });
  if (r.status === 401) toLogin();
  if (!r.ok) throw new Error(await failure(r, url));
  return r.status === 204 ? null : r.json();
}

export async function ackAlert(id) {
  return send("POST", `/api/alerts/${encodeURIComponent(id)}/ack`, {});  // the hub records the signed-in user
}

// Who is signed in (hub/auth): {name, role}. null when the hub has no authentication.
export const me = () => getJSON("/api/me").catch(() => null);
export const devices = () => getJSON("/api/devices");

// User dashboards (hub/api/dashboards.py) and widget data (hub/api/panel.py).
export const dashboards = () => getJSON("/api/dashboards");
export const dashboard = (id) => getJSON(`/api/dashboards/${encodeURIComponent(id)}`);
export const createDashboard = (body) => send("POST", "/api/dashboards", body);
export const updateDashboard = (id, body) => send("PUT", `/api/dashboards/${encodeURIComponent(id)}`, body);
export const cloneDashboard = (id) => send("POST", `/api/dashboards/${encodeURIComponent(id)}/clone`, {});
export const deleteDashboard = (id) => send("DELETE", `/api/dashboards/${encodeURIComponent(id)}`);
export const exportDashboard = (id) => getJSON(`/api/dashboards/${encodeURIComponent(id)}/export`);
export const importDashboard = (doc, shared = true) => send("POST", `/api/dashboards/import?shared=${shared}`, doc);
export const panel = (params) => getJSON(`/api/panel?${new URLSearchParams(params)}`);

// Outputs (hub/outputs/routes.py): definitions (no secrets) with state, lag and counts.
export const outputs = () => getJSON("/api/outputs");
