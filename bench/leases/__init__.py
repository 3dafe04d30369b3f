"""Lease protocol benchmark: ``python -m bench.leases`` (see docs/LEASES.md)."""
