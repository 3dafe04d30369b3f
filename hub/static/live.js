// The WebSocket to /ws/live: reconnects with backoff and re-sends what the page asked for.
// Frames are JSON objects; see docs/DASHBOARD.md for the protocol.

export class Live {
  constructor(onFrame) {
    this.onFrame = onFrame;
    this.requests = [];          // replayed after every reconnect
    this.offsetMs = 0;           // local clock minus server clock, from each frame's now_ms
    this.backoff = 500;
    this.closed = false;
    this.connect();
  }

  connect() {
    this.retry = null;
    if (this.closed) return;  // a reconnect timer set before the page was left
    const proto = location.protocol === "https:" ? "wss:" : "ws:";
    this.ws = new WebSocket(`${proto}//${location.host}/ws/live`);
    this.ws.onopen = () => {
      this.backoff = 500;
      if (this.closed) return;
      this.paths = [];           // the server numbers paths per connection
      setLink(true);
      for (const r of this.requests) this.ws.send(JSON.stringify(r));
    };
    this.ws.onmessage = (m) => {
      if (this.closed) return;   // a frame already queued when the page was left: not for the next page
      const frame = this.expand(JSON.parse(m.data));
      this.offsetMs = Date.now() - frame.now_ms;
      for (const e of frame.errors || []) console.warn("live:", e);
      this.onFrame(frame);
    };
    this.ws.onclose = (e) => {
      if (this.closed) return;   // the next page's connection owns the indicator now
      setLink(false);
      if (e.code === 4401) { toLogin(); return; }  // the hub's auth middleware: no session
      this.retry = setTimeout(() => this.connect(), this.backoff);
      this.backoff = Math.min(this.backoff * 2, 10000);
    };
  }

  // Frames name each series by a number; its path text comes once, in `paths`. Pages get path keys back:
  // devices: {dev: {path: [ts_ms, value, rate]}}, snapshots: {dev: {series: {path: …}, history: {path: …}}}.
  expand(frame) {
    if (frame.paths_reset) this.paths = [];
    for (const [id, path] of frame.paths || []) this.paths[id] = path;
    const byPath = (rows) => {
      const out = {};
      for (const [id, ...rest] of rows) out[this.paths[id]] = rest;
      return out;
    };
    if (frame.devices) {
      for (const d of Object.keys(frame.devices)) frame.devices[d] = byPath(frame.devices[d]);
    }
    for (const snap of Object.values(frame.snapshots || {})) {
      snap.series = byPath(snap.series);
      const history = {};
      for (const [id, points] of snap.history) history[this.paths[id]] = points;
      snap.history = history;
    }
    return frame;
  }

  request(r) {
    this.requests.push(r);
    if (this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(r));
  }

  serverNow() { return Date.now() - this.offsetMs; }

  close() { this.closed = true; clearTimeout(this.retry); this.ws.close(); }
}

export function toLogin() {
  location.href = `/login?next=${encodeURIComponent(location.pathname + location.hash)}`;
}

function setLink(up) {
  const el = document.getElementById("link");
  if (!el) return;
  el.className = `link ${up ? "up" : "down"}`;
  el.textContent = up ? "live" : "offline";
}
