"""The one wording of a listener whose optional dependency (a pip extra) is missing."""

from __future__ import annotations


def missing_extra(module: str, package: str, extra: str) -> ImportError:
    """``module`` cannot work without ``package``: the ImportError that says how to install it
    (the package itself: no index serves waterdrop yet, so ``waterdrop[extra]`` would fail)."""
    return ImportError(
        f"{module} needs {package}: pip install {package} (or, in a checkout of waterdrop, "
        f"pip install '.[{extra}]')"
    )
