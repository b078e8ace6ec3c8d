"""Figures of a run, for people and for docs/reliability.md.

``record(section, figures)`` prints the figures and, when WATERDROP_RELIABILITY_REPORT names
a file, merges them into that JSON file under ``section`` (other sections are kept, so one
file collects a whole run of the suites).
"""

from __future__ import annotations

import datetime
import fcntl
import json
import os
import platform
from typing import Any

from tests.reliability.sizes import SOAK

ENV = "WATERDROP_RELIABILITY_REPORT"


def record(section: str, figures: dict[str, Any]) -> None:
    figures = {"mode": "soak" if SOAK else "ci", **figures}
    print(f"\n[{section}] " + " ".join(f"{k}={v}" for k, v in figures.items()))
    path = os.environ.get(ENV, "").strip()
    if not path:
        return
    figures["recorded_at"] = datetime.datetime.now(datetime.timezone.utc).isoformat(
        timespec="seconds")
    with open(path + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            with open(path) as f:
                data = json.load(f)
        except (OSError, ValueError):
            data = {}
        data.setdefault("machine", {"python": platform.python_version(),
                                    "cpus": os.cpu_count()})
        data[section] = figures
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(data, f, indent=2, sort_keys=True, default=str)
            f.write("\n")
        os.replace(tmp, path)
