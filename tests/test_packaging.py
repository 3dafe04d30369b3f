"""The installed distribution: one `swtel` package, no bare `cli`/`shared`, and `import nats` is nats-py."""

import importlib.util
import subprocess
import sys
import tomllib
from pathlib import Path

import swtel.shared

ROOT = Path(__file__).resolve().parents[1]


def test_no_bare_project_modules_and_nats_is_nats_py() -> None:
    code = (
        "import importlib.util as u, nats, nats.js;"
        "assert u.find_spec('cli') is None and u.find_spec('shared') is None, 'bare module';"
        "assert hasattr(nats, 'connect') and hasattr(nats.js, 'JetStreamContext'), nats.__file__;"
        "import swtel.cli.main, swtel.agent, swtel.hub, swtel.shared.wire"
    )
    # From a neutral directory: the repository root must not be what makes imports work.
    subprocess.run([sys.executable, "-c", code], check=True, cwd="/")


def test_every_package_folder_is_listed_in_pyproject() -> None:
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = set()
    for top in ("agent", "hub", "shared", "cli"):
        for init in (ROOT / top).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT).parts
            found.add(".".join(("swtel", *rel)))
    assert found == listed, found ^ listed


def test_console_script_runs() -> None:
    out = subprocess.run([str(Path(sys.executable).parent / "swtel"), "--help"], capture_output=True, text=True, check=True, cwd="/")
    assert "device" in out.stdout and "nats" in out.stdout
    assert importlib.util.find_spec("swtel.shared") is not None and swtel.shared.__file__
