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
    const proto = location.protocol === "https:" ? "wss:" : "ws:";
    this.ws = new WebSocket(`${proto}//${location.host}/ws/live`);
    this.ws.onopen = () => {
      this.backoff = 500;
      setLink(true);
      for (const r of this.requests) this.ws.send(JSON.stringify(r));
    };
    this.ws.onmessage = (m) => {
      const frame = JSON.parse(m.data);
      this.offsetMs = Date.now() - frame.now_ms;
      for (const e of frame.errors || []) console.warn("live:", e);
      this.onFrame(frame);
    };
    this.ws.onclose = () => {
      setLink(false);
      if (this.closed) return;
      setTimeout(() => this.connect(), this.backoff);
      this.backoff = Math.min(this.backoff * 2, 10000);
    };
  }

  request(r) {
    this.requests.push(r);
    if (this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(r));
  }

  serverNow() { return Date.now() - this.offsetMs; }

  close() { this.closed = true; this.ws.close(); }
}

function setLink(up) {
  const el = document.getElementById("link");
  el.className = `link ${up ? "up" : "down"}`;
  el.textContent = up ? "live" : "offline";
}
