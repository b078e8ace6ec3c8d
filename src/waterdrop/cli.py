"""The ``waterdrop`` command: ``waterdrop bench`` measures the producer end to end.

``waterdrop bench --compare`` runs the side-by-side comparison of the performance issue
(waterdrop vs confluent-kafka vs librdkafka's C loop) on an embedded MockCluster hosted in a
separate process; the scenarios live in ``waterdrop._benchmarks``, shared with bench/compare.py.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any

from waterdrop import Producer, librdkafka_version
from waterdrop.testing import MockCluster


def _percentile(sorted_values: list[float], fraction: float) -> float:
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, int(round(fraction * (len(sorted_values) - 1))))
    return sorted_values[index]


def bench(args: argparse.Namespace) -> dict[str, Any]:
    """Produce ``args.messages`` messages with produce_many_async and wait for every one."""
    cluster = None
    bootstrap = args.bootstrap_servers or os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if not bootstrap:
        cluster = MockCluster(brokers=3)
        cluster.create_topic(args.topic, partitions=args.partitions, replication_factor=3)
        bootstrap = cluster.bootstrap_servers
    kafka: dict[str, Any] = {
        "bootstrap.servers": bootstrap,
        "linger.ms": 5,
        "queue.buffering.max.messages": 2_000_000,
        "queue.buffering.max.kbytes": 4_000_000,
    }
    for item in args.X or []:
        key, _, value = item.partition("=")
        kafka[key] = value
    payload = os.urandom(args.size // 2 + 1).hex()[: args.size].encode()
    batch = [{"topic": args.topic, "payload": payload}] * args.batch
    try:
        with Producer(kafka=kafka, max_wait_timeout=300_000) as producer:
            producer.produce_sync(topic=args.topic, payload=b"warm-up")
            handles: list[Any] = []
            started = time.perf_counter()
            remaining = args.messages
            while remaining > 0:
                chunk = batch if remaining >= len(batch) else batch[:remaining]
                handles.extend(producer.produce_many_async(chunk))
                remaining -= len(chunk)
            failed = 0
            for handle in handles:
                if handle.wait(raise_response_error=False).error is not None:
                    failed += 1
            elapsed = time.perf_counter() - started
            latencies = sorted(h.report().latency_ms for h in handles)
    finally:
        if cluster is not None:
            cluster.close()
    return {
        "messages": args.messages,
        "size": args.size,
        "failed": failed,
        "seconds": round(elapsed, 3),
        "messages_per_second": round(args.messages / elapsed),
        "mb_per_second": round(args.messages * args.size / elapsed / 1e6, 1),
        "latency_p50_ms": round(_percentile(latencies, 0.50), 2),
        "latency_p99_ms": round(_percentile(latencies, 0.99), 2),
        "cluster": "mock" if cluster is not None else bootstrap,
        "librdkafka": librdkafka_version(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="waterdrop", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("bench", help="produce N messages end to end and report the rate")
    b.add_argument("--messages", type=int, default=None,
                   help="messages (default 1,000,000; with --compare: per round, 100,000)")
    b.add_argument("--size", type=int, default=100, help="payload bytes")
    b.add_argument("--batch", type=int, default=10_000, help="messages per produce_many_async")
    b.add_argument("--topic", default="waterdrop-bench")
    b.add_argument("--partitions", type=int, default=3)
    b.add_argument("--bootstrap-servers", help="a real cluster (default: an embedded mock)")
    b.add_argument("-X", action="append", metavar="KEY=VALUE", help="any librdkafka setting")
    b.add_argument("--json", action="store_true", help="print one JSON object")
    b.add_argument("--compare", action="store_true",
                   help="compare with confluent-kafka and librdkafka's C loop, side by side, on "
                   "an embedded MockCluster in a separate process (and on --bootstrap-servers "
                   "when given); needs confluent-kafka")
    compare = b.add_argument_group("--compare options")
    from waterdrop import _benchmarks

    _benchmarks.add_compare_arguments(compare, messages_flag=False)
    args = parser.parse_args(argv)
    if args.compare:
        return _compare(parser, args, sys.argv[1:] if argv is None else argv)
    if args.messages is None:
        args.messages = 1_000_000
    if args.messages < 1 or args.size < 0 or args.batch < 1:
        parser.error("--messages and --batch must be >= 1, --size >= 0")
    result = bench(args)
    if args.json:
        print(json.dumps(result))
    else:
        where = "embedded MockCluster (3 brokers)" if result["cluster"] == "mock" else result["cluster"]
        print(f"waterdrop bench: {result['messages']:,} x {result['size']} B, "
              f"produce_many_async, librdkafka {result['librdkafka']}, {where}")
        print(f"  throughput   {result['messages_per_second']:>12,} msg/s  "
              f"({result['mb_per_second']} MB/s, {result['seconds']} s)")
        print(f"  latency p50  {result['latency_p50_ms']:>12} ms")
        print(f"  latency p99  {result['latency_p99_ms']:>12} ms")
        print(f"  failed       {result['failed']:>12,}")
    return 1 if result["failed"] else 0


def _compare(parser: argparse.ArgumentParser, args: argparse.Namespace, argv: list[str]) -> int:
    from waterdrop import _benchmarks

    if args.X or args.size != 100 or args.topic != "waterdrop-bench" or args.partitions != 3:
        parser.error("--compare uses fixed settings (100 B payloads, 3-partition topics, the "
                     "same librdkafka settings on both sides): drop -X, --size, --topic and "
                     "--partitions")
    try:
        import confluent_kafka  # noqa: F401
    except ImportError:
        parser.error("--compare needs confluent-kafka: pip install confluent-kafka")
    opts = _benchmarks.options_from_args(args)
    opts["batch"] = args.batch
    if _benchmarks.find_c_program(args.c_program) is None:
        _benchmarks.log("note: the C baseline (bench/c/produce_bench from a source checkout, or "
                        "--c-program PATH) was not found: its row is skipped")
    report = _benchmarks.run_comparison(opts, mock=True, real=args.bootstrap_servers)
    report["meta"]["command"] = " ".join(["waterdrop", *argv])
    if args.json:
        print(json.dumps(report))
    else:
        print(_benchmarks.format_report(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
