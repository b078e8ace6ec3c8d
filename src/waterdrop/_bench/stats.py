"""The figures the harness and ``waterdrop bench`` compute from timings: percentiles of sorted
latencies, and medians of rounds (one run's, or several runs' pooled).

Kept apart, small and free of imports beyond the standard library, so that ``waterdrop bench``
(without ``--compare``) can use :func:`percentile` without loading the rest of the harness.
"""

from __future__ import annotations

import statistics
from typing import Any


def percentile(sorted_values: list[float], fraction: float) -> float | None:
    """The value at ``fraction`` (0.0 to 1.0) of ``sorted_values`` (ascending), by the nearest
    rank: index ``round(fraction * (len - 1))``, so 0.0 is the least and 1.0 the greatest.

    ``None`` when there are no values: no message was acknowledged, so there is no latency
    (``waterdrop bench`` shows ``-`` and JSON ``null``).
    """
    if not sorted_values:
        return None
    index = min(len(sorted_values) - 1, int(round(fraction * (len(sorted_values) - 1))))
    return sorted_values[index]


def rate_summary(timings: list[tuple[float, float]], n: int) -> dict[str, Any]:
    """Rounds of (wall seconds, process CPU seconds): msgs/s (wall) and CPU µs per message
    (every thread of the client's process; steadier than wall time on a loaded machine)."""
    rates = [n / wall for wall, _ in timings]
    cpu_us = [cpu * 1e6 / n for _, cpu in timings]
    return {"msgs_per_s": statistics.median(rates), "rounds_msgs_per_s": [round(r) for r in rates],
            "rounds_seconds": [round(wall, 4) for wall, _ in timings],
            "cpu_us_per_msg": statistics.median(cpu_us),
            "rounds_cpu_us_per_msg": [round(c, 3) for c in cpu_us]}


def pool_rates(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """Several runs' :func:`rate_summary` results as one: every round pooled, their median."""
    rates = [x for p in parts for x in p["rounds_msgs_per_s"]]
    out: dict[str, Any] = {"msgs_per_s": statistics.median(rates), "rounds_msgs_per_s": rates}
    cpu = [x for p in parts for x in p.get("rounds_cpu_us_per_msg", [])]
    if cpu:
        out["cpu_us_per_msg"] = statistics.median(cpu)
        out["rounds_cpu_us_per_msg"] = cpu
    return out
