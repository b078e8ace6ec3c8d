#!/usr/bin/env python3
"""waterdrop vs confluent-kafka vs librdkafka's C loop: every scenario of the performance issue,
side by side, in one run, against one cluster that neither client owns.

    python bench/compare.py                      # MockCluster (+ the real broker at
                                                 #   $KAFKA_BOOTSTRAP_SERVERS when set)
    python bench/compare.py --quick              # a smoke test of the harness
    python bench/compare.py --bootstrap-servers localhost:9092   # + that real broker
    python bench/compare.py --no-mock --bootstrap-servers localhost:9092
    python bench/compare.py --rounds 9 --json > results.json
    python bench/compare.py --scenarios async,many --rounds 7

The MockCluster (3 brokers, 3-partition topics, replication factor 3) lives in a process of its
own, bench/mockcluster_host.py. The C baseline is bench/c/produce_bench (build it with
bench/c/build.sh; without it the produce_many_async-vs-C row is skipped with a note). Progress
goes to stderr; the table (or with --json one JSON object) to stdout. The scenario code is
shared with ``waterdrop bench --compare``: the package src/waterdrop/_bench/.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))

from waterdrop._bench import options, scenarios  # noqa: E402
from waterdrop._bench.report import combine_reports, format_report  # noqa: E402
from waterdrop._bench.settings import log  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/compare.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    options.add_compare_arguments(parser)
    parser.add_argument("--bootstrap-servers", help="also run on this real broker "
                        "(default: $KAFKA_BOOTSTRAP_SERVERS if set)")
    parser.add_argument("--no-mock", action="store_true", help="skip the MockCluster")
    parser.add_argument("--no-real", action="store_true",
                        help="ignore $KAFKA_BOOTSTRAP_SERVERS (MockCluster only)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--output", help="also write the JSON report to this file")
    parser.add_argument("--combine", nargs="+", metavar="REPORT.json",
                        help="run nothing: pool the rounds of earlier --output reports and "
                        "print their table (medians over every round of every run)")
    args = parser.parse_args(argv)
    if args.combine:
        reports = []
        for path in args.combine:
            with open(path) as f:
                reports.append(json.load(f))
        report = combine_reports(reports)
        print(json.dumps(report) if args.json else format_report(report))
        return 0
    if args.c_program is None:
        args.c_program = os.path.join(HERE, "c", "produce_bench")
    opts = options.options_from_args(args)
    real = args.bootstrap_servers or (None if args.no_real
                                      else os.environ.get("KAFKA_BOOTSTRAP_SERVERS") or None)
    if args.no_mock and not real:
        parser.error("--no-mock needs a real broker (--bootstrap-servers)")
    if opts["c_program"] is None:
        log("note: bench/c/produce_bench is not built (bench/c/build.sh): the C row is skipped")
    report = scenarios.run_comparison(opts, mock=not args.no_mock, real=real,
                              host_script=os.path.join(HERE, "mockcluster_host.py"))
    report["meta"]["command"] = " ".join(["python", "bench/compare.py", *(argv or sys.argv[1:])])
    if args.output:
        with open(args.output, "w") as out:
            json.dump(report, out, indent=1)
    if args.json:
        print(json.dumps(report))
    else:
        print(format_report(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
