"""The one wording of a listener whose optional dependency (a pip extra) is missing."""

from __future__ import annotations


def missing_extra(module: str, package: str, extra: str) -> ImportError:
    """``module`` cannot work without ``package``: the ImportError that says how to install it."""
    return ImportError(f"{module} needs {package}: pip install 'waterdrop[{extra}]'")
