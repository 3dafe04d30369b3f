"""The collector agent: presence, device leases, collectors and the telemetry publisher."""

from swtel.shared import third_party_warnings as _third_party_warnings

_third_party_warnings.quiet()  # before any collector imports asyncssh
