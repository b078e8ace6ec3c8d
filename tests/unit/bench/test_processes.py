"""How the harness starts its children (``waterdrop._bench.processes``): a child loads the
harness by path under another name and never imports the waterdrop package, so that a
confluent-kafka child's RSS holds no second librdkafka."""

from __future__ import annotations

import os
import pkgutil
import subprocess
import sys

import pytest

from waterdrop._bench import processes

pytestmark = pytest.mark.timeout(120)


def _modules() -> list[str]:
    return sorted(m.name for m in pkgutil.iter_modules([processes.PACKAGE_DIR])
                  if m.name != "__main__")


def test_every_module_loads_by_path_without_waterdrop():
    names = _modules()
    assert {"children", "clients", "processes", "scenarios", "report", "stats"} <= set(names)
    init = os.path.join(processes.PACKAGE_DIR, "__init__.py")
    code = (
        "import importlib, importlib.util as u, sys\n"
        f"s = u.spec_from_file_location({processes.CHILD_PACKAGE!r}, {init!r}, "
        f"submodule_search_locations=[{processes.PACKAGE_DIR!r}])\n"
        "m = u.module_from_spec(s); sys.modules[s.name] = m; s.loader.exec_module(m)\n"
        f"for name in {names!r}:\n"
        f"    importlib.import_module({processes.CHILD_PACKAGE!r} + '.' + name)\n"
        "print(sorted(n for n in sys.modules if n == 'waterdrop' or n.startswith('waterdrop.')))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_a_child_command_reaches_the_roles():
    command = processes.child_command("inflight", ["--help"])
    assert command[0] == sys.executable and command[-2:] == ["inflight", "--help"]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "--client" in proc.stdout and "--messages" in proc.stdout


def test_the_package_runs_a_role_by_hand():
    proc = subprocess.run([sys.executable, "-m", "waterdrop._bench", "flat", "--help"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "--units" in proc.stdout and "--tracemalloc" in proc.stdout
