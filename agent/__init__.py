"""The collector agent: presence, device leases, collectors and the telemetry publisher."""
