"""Third-party warnings users cannot act on stay out of their logs; everything else still shows."""

from __future__ import annotations

import subprocess
import sys
import warnings

from swtel.shared import third_party_warnings


def test_collectors_import_without_warnings_even_when_warnings_are_errors() -> None:
    # A fresh interpreter with every warning an error, as an operator's PYTHONWARNINGS could make it:
    # importing the SSH/NETCONF collectors (asyncssh, which imports DSA support from cryptography) and the
    # simulator must print nothing and fail on nothing.
    code = "import swtel.agent.collectors.ssh, swtel.agent.collectors.netconf, swtel.agent.sim.ssh_server"
    r = subprocess.run([sys.executable, "-W", "error", "-c", code], capture_output=True, text=True, timeout=60)
    assert (r.returncode, r.stderr) == (0, "")


def test_the_filters_are_narrow_by_module() -> None:
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        third_party_warnings.quiet()
        warnings.warn_explicit("DSA is deprecated and will go", UserWarning, "x.py", 1, module="swtel.agent.x")
        warnings.warn_explicit("DSA is deprecated and will go", UserWarning, "m.py", 1, module="asyncssh.crypto.misc")
    assert [str(w.message) for w in seen] == ["DSA is deprecated and will go"]
    assert all(why for _msg, _mod, why in third_party_warnings.KNOWN)
