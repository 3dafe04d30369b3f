"""Warnings of third-party libraries that users cannot act on, silenced where they arise.

Each filter names the module that triggers the warning and the message, so a new warning from the same
library (or any warning from this project's own code) still shows. The test suite carries the same
filters in ``pyproject.toml`` (``[tool.pytest.ini_options] filterwarnings``), where warnings are errors.
"""

from __future__ import annotations

import warnings

# (message regex, module regex, why)
KNOWN: tuple[tuple[str, str, str], ...] = (
    # cryptography 47+ deprecates DSA; asyncssh still imports its DSA support at import time, and no
    # swtel path offers or accepts DSA keys.
    ("DSA is deprecated", r"asyncssh(\.|$)", "asyncssh imports DSA support; swtel never uses DSA"),
)


def quiet() -> None:
    """Install the filters (idempotent; call before the library is imported)."""
    for message, module, _why in KNOWN:
        warnings.filterwarnings("ignore", message=message, module=module)
