"""The ``waterdrop`` command: ``waterdrop bench`` measures the producer end to end."""

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
    b.add_argument("--messages", type=int, default=1_000_000)
    b.add_argument("--size", type=int, default=100, help="payload bytes")
    b.add_argument("--batch", type=int, default=10_000, help="messages per produce_many_async")
    b.add_argument("--topic", default="waterdrop-bench")
    b.add_argument("--partitions", type=int, default=3)
    b.add_argument("--bootstrap-servers", help="a real cluster (default: an embedded mock)")
    b.add_argument("-X", action="append", metavar="KEY=VALUE", help="any librdkafka setting")
    b.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
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


if __name__ == "__main__":
    sys.exit(main())
