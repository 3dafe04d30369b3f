// Hash router: #/fleet, #/device/NAME, #/config/NAME, #/agents, #/events, #/alerts. Each page gets its own live connection.

import { Live } from "./live.js";
import * as fleet from "./pages/fleet.js";
import * as device from "./pages/device.js";
import * as agents from "./pages/agents.js";
import * as events from "./pages/events.js";
import * as config from "./pages/config.js";
import * as alerts from "./pages/alerts.js";

const pages = { fleet, device, agents, events, config, alerts };
let current = null;

function route() {
  const [name = "fleet", ...rest] = location.hash.replace(/^#\/?/, "").split("/");
  const page = pages[name] || fleet;
  if (current) { current.live.close(); current.view.unmount?.(); }
  const root = document.getElementById("page");
  root.innerHTML = "";
  for (const a of document.querySelectorAll("nav a")) a.classList.toggle("active", a.dataset.page === name);
  let view = null;
  const live = new Live((frame) => view && view.frame(frame));
  view = page.mount(root, live, rest.map(decodeURIComponent));
  current = { live, view };
}

window.addEventListener("hashchange", route);
route();
