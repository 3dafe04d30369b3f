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
  for (const a of document.querySelectorAll("nav a")) a.classList.toggle("active", a.dataset.page === (name === "dashboard" ? "dashboards" : name));
  // Each page gets a container of its own: an answer or timer that outlives the page (a fetch still out
  // when the user moved on) writes into its own detached elements, never into the next page's (where
  // root.querySelector would find nothing: "Cannot set properties of null").
  const root = document.createElement("div");
  document.getElementById("page").replaceChildren(root);
  let view = null;
  const live = new Live((frame) => { if (view && current && current.live === live) view.frame(frame); });
  view = page.mount(root, live, rest.map(decodeURIComponent));
  current = { live, view };
}

window.addEventListener("hashchange", route);
route();

// Who is signed in, and a way out.
me().then((who) => {
  const name = document.getElementById("who"), logout = document.getElementById("logout");
  if (!who || !name || !logout) return;
  name.textContent = `${who.name} (${who.role})`;
  logout.hidden = who.via !== "session";
});
document.getElementById("logout").addEventListener("click", async () => {
  const { csrf_token: token, header = "X-CSRFToken" } = await (await fetch("/api/csrf")).json();
  await fetch("/api/logout", { method: "POST", headers: { [header]: token } });
  location.href = "/login";
});
