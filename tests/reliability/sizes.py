"""CI sizes by default, soak sizes with WATERDROP_SOAK=1 (shared by tests/reliability and
tests/properties)."""

from __future__ import annotations

import os

#: WATERDROP_SOAK=1: the long mode (hundreds of thousands of messages, 100,000 examples...).
SOAK = os.environ.get("WATERDROP_SOAK", "").strip().lower() in ("1", "true", "yes", "on")


def sized(ci: int, soak: int) -> int:
    """``ci`` in a normal run, ``soak`` with WATERDROP_SOAK=1."""
    return soak if SOAK else ci
