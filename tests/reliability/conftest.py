"""Reliability suites: CI sizes by default, soak sizes with WATERDROP_SOAK=1
(see tests/reliability/sizes.py)."""
