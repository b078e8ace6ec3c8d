"""The core declares free-threading support: on a free-threaded CPython (3.13t+) importing
waterdrop leaves the GIL off (a module without the declaration turns it back on, with a
RuntimeWarning). The audit behind the declaration: docs/free-threading.md."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig

import pytest

FREE_THREADED = bool(sysconfig.get_config_var("Py_GIL_DISABLED"))


@pytest.mark.skipif(
    not FREE_THREADED,
    reason=f"needs a free-threaded CPython (3.13t+); this is {sys.version.split()[0]} with the GIL",
)
def test_importing_waterdrop_leaves_the_gil_disabled() -> None:
    env = {k: v for k, v in os.environ.items() if k != "PYTHON_GIL"}   # the build's default
    code = (
        "import sys, waterdrop, waterdrop.aio, waterdrop.testing\n"
        "assert not sys._is_gil_enabled(), 'the GIL was enabled by an import'\n"
        "print('gil off')\n"
    )
    result = subprocess.run(
        [sys.executable, "-W", "error::RuntimeWarning", "-c", code],
        env=env, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "gil off"
