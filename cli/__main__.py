"""``python -m swtel.cli`` is ``swtel``."""

from .main import run

run()
