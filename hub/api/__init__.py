"""REST handlers of the hub, one module per resource; ``ROUTES`` is what ``create_app`` mounts."""

from __future__ import annotations

from . import dashboards
from .configs import config_diff, config_get, config_list
from .deadletters import deadletter_list, deadletter_payload
from .facts import device_facts
from .health import health, metrics
from .inventory import agent_list, device_get, device_list, lease_list
from .panel import panel
from .series import query, series_list

ROUTES = [health, metrics, device_list, device_get, agent_list, lease_list, series_list, query,
          device_facts, config_list, config_get, config_diff, panel, deadletter_list, deadletter_payload,
          *dashboards.ROUTES]
