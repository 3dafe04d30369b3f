"""The ``swtel`` command line (typer)."""
