"""Collectors: one per held device, started and stopped by the lease (see ``base.py`` for the contract)."""
