"""The options of a comparison run, shared by ``bench/compare.py`` (argparse) and
``waterdrop bench --compare`` (which passes its click options through
:func:`options_from_args`): one set of names, defaults and checks for both.
"""

from __future__ import annotations

import argparse
from typing import Any

from .processes import find_c_program
from .settings import DEFAULTS, QUICK, SCENARIOS


def add_compare_arguments(parser: argparse.ArgumentParser | argparse._ArgumentGroup, *,
                          messages_flag: bool = True) -> None:
    """Options shared by bench/compare.py and ``waterdrop bench --compare``."""
    parser.add_argument("--rounds", type=int, help=f"alternating rounds (default "
                        f"{DEFAULTS['rounds']}, --quick {QUICK['rounds']})")
    if messages_flag:
        parser.add_argument("--messages", type=int, help="messages per throughput round "
                            f"(default {DEFAULTS['messages']:,})")
    parser.add_argument("--quick", action="store_true",
                        help="a small run to smoke-test the harness (not a measurement)")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS),
                        help=f"comma-separated subset of {','.join(SCENARIOS)}")
    parser.add_argument("--sync-messages", type=int, help="produce_sync calls per round "
                        f"(default {DEFAULTS['sync_messages']:,})")
    parser.add_argument("--inflight", type=int, help="messages in flight for the peak-RSS "
                        f"scenario (default {DEFAULTS['inflight']:,})")
    parser.add_argument("--memory-rounds", type=int, help="subprocess pairs for peak RSS "
                        f"(default {DEFAULTS['memory_rounds']})")
    parser.add_argument("--flat-unit", type=int, help="messages per RSS sample in the "
                        f"flatness loop (default {DEFAULTS['flat_unit']:,}, a multiple of 10,000)")
    parser.add_argument("--flat-units", "--flat-millions", dest="flat_units", type=int,
                        help="samples (units) in the flatness loop; the bar compares the end of "
                        "the 2nd with the end of the last, the change from the 1st is shown too "
                        f"(default {DEFAULTS['flat_units']})")
    parser.add_argument("--broker-warm-up", type=int, metavar="N",
                        help="messages sent to a real broker before its first measured round, "
                        "so that its JIT is warm "
                        f"(default {DEFAULTS['broker_warm_up']:,}; 0: none)")
    parser.add_argument("--c-program", help="bench/c/produce_bench (default: that path under "
                        "the current directory, or $WATERDROP_BENCH_C_PROGRAM)")


def options_from_args(args: argparse.Namespace) -> dict[str, Any]:
    base = dict(QUICK if args.quick else DEFAULTS)
    for key in ("rounds", "messages", "sync_messages", "inflight", "memory_rounds",
                "flat_unit", "flat_units", "broker_warm_up"):
        value = getattr(args, key, None)
        if value is not None:
            base[key] = value
    scenarios = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    unknown = [s for s in scenarios if s not in SCENARIOS]
    if unknown:
        raise SystemExit(f"unknown scenario(s): {', '.join(unknown)}; choose from "
                         f"{', '.join(SCENARIOS)}")
    base["scenarios"] = scenarios
    if base["flat_unit"] % 10_000:
        raise SystemExit("--flat-unit must be a multiple of 10,000")
    if base["rounds"] < 1 or base["messages"] < 1:
        raise SystemExit("--rounds and --messages must be >= 1")
    base["c_program"] = find_c_program(getattr(args, "c_program", None))
    return base

