// Hash router: #/fleet, #/device/NAME, #/config/NAME, #/agents, #/events, #/alerts, #/dashboards, #/dashboard/ID, #/outputs. Each page gets its own live connection.

import { Live } from "./live.js";
import * as fleet from "./pages/fleet.js";
import * as device from "./pages/device.js";
import * as agents from "./pages/agents.js";
import * as events from "./pages/events.js";
import * as config from "./pages/config.js";
import * as alerts from "./pages/alerts.js";
import * as dashboards from "./pages/dashboards.js";
import * as dashboard from "./pages/dashboard.js";
import * as outputs from "./pages/outputs.js";
import { me } from "./api.js";

const pages = { fleet, device, agents, events, config, alerts, dashboards, dashboard, outputs };
let current = null;

function route() {
  const [name = "fleet", ...rest] = location.hash.replace(/^#\/?/, "").split("/");
  const page = pages[name] || fleet;
  if (current) { current.live.close(); current.view.unmount?.(); }
  const root = document.getElementById("page");
  root.innerHTML = "";
  for (const a of document.querySelectorAll("nav a")) a.classList.toggle("active", a.dataset.page === (name === "dashboard" ? "dashboards" : name));
  let view = null;
  const live = new Live((frame) => view && view.frame(frame));
  view = page.mount(root, live, rest.map(decodeURIComponent));
  current = { live, view };
}

window.addEventListener("hashchange", route);
route();

// Who is signed in, and a way out.
me().then((who) => {
  if (!who) return;
  document.getElementById("who").textContent = `${who.name} (${who.role})`;
  document.getElementById("logout").hidden = who.via !== "session";
});
document.getElementById("logout").addEventListener("click", async () => {
  const { csrf_token: token, header = "X-CSRFToken" } = await (await fetch("/api/csrf")).json();
  await fetch("/api/logout", { method: "POST", headers: { [header]: token } });
  location.href = "/login";
});
