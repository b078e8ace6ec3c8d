"""The roles a fresh child process plays, one per process: ``inflight`` (peak RSS with
messages queued), ``flat`` (RSS over millions produced and acknowledged), ``path`` (the
per-message path, for profilers) and ``host`` (the MockCluster host).

Each role prints one JSON line for its parent (:func:`.processes.run_child`). A child runs
one client in a process of its own, so its memory is that client's alone; see
:mod:`.processes` for how it starts without importing waterdrop.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from typing import Any

from .clients import confluent_producer, warm_up, waterdrop_producer
from .memory import malloc_in_use_kib, rss_kib, rss_split_kib
from .processes import host_main
from .settings import PAYLOAD, QUEUED, TOPIC


def _child_inflight(args: argparse.Namespace) -> dict[str, Any]:
    """Enqueue N messages that stay queued (linger.ms 120 s), measure RSS, then deliver all."""
    n = args.messages
    payload = PAYLOAD
    topic = args.topic
    if args.client == "waterdrop":
        producer = waterdrop_producer(args.bootstrap, **QUEUED)
        warm_up(producer, None, topic)
        baseline, _ = rss_kib()
        produce = producer.produce_async
        t0 = time.perf_counter()
        handles = [produce(topic=topic, payload=payload) for _ in range(n)]
        produce_s = time.perf_counter() - t0
        queued = producer.queue_size
        inflight, _ = rss_kib()
        producer.client.flush(300_000)  # sends now, whatever linger.ms says
        for handle in handles:
            handle.wait()
        delivered = sum(1 for h in handles if h.report().error is None)
        del handles
        producer.close()
    else:
        producer = confluent_producer(args.bootstrap, **QUEUED)
        warm_up(None, producer, topic)
        baseline, _ = rss_kib()
        delivered = 0

        def on_delivery(err: Any, msg: Any) -> None:
            nonlocal delivered
            if err is None:
                delivered += 1

        produce = producer.produce
        poll = producer.poll
        t0 = time.perf_counter()
        for _ in range(n):
            produce(topic, payload, on_delivery=on_delivery)
            poll(0)
        produce_s = time.perf_counter() - t0
        queued = len(producer)
        inflight, _ = rss_kib()
        producer.flush(300)
    _, hwm = rss_kib()
    if delivered != n:
        raise RuntimeError(f"{args.client}: {delivered} of {n} delivered")
    return {"client": args.client, "messages": n, "queued": queued,
            "baseline_mib": baseline / 1024, "inflight_mib": inflight / 1024,
            "peak_mib": hwm / 1024, "produce_seconds": produce_s}


def _child_flat(args: argparse.Namespace) -> dict[str, Any]:
    """Produce-and-acknowledge ``units`` x ``unit`` messages; VmRSS after each unit.

    waterdrop: each chunk of 10,000 is 5,000 produce_async + one produce_many_async of 5,000,
    every handle waited (both hot paths in the loop). confluent-kafka: produce() +
    on_delivery + poll(0) per message, flush() per chunk.
    """
    chunk = 10_000
    unit, units, topic = args.unit, args.units, args.topic
    if unit % chunk:
        raise SystemExit(f"--unit must be a multiple of {chunk}")
    samples: list[int] = []
    split: list[tuple[int, int] | None] = []
    failed = 0
    snapshots: list[Any] = []
    if args.tracemalloc:
        import tracemalloc

        tracemalloc.start(8)

    heap: list[int | None] = []

    def sample() -> None:
        samples.append(rss_kib()[0])
        heap.append(malloc_in_use_kib())
        split.append(rss_split_kib())
        if args.tracemalloc and len(samples) in (1, units):
            snapshots.append(tracemalloc.take_snapshot())

    t0 = time.perf_counter()
    if args.client == "waterdrop":
        producer = waterdrop_producer(args.bootstrap)
        warm_up(producer, None, topic)
        produce = producer.produce_async
        produce_many = producer.produce_many_async
        half = chunk // 2
        batch = [{"topic": topic, "payload": PAYLOAD} for _ in range(half)]
        for _ in range(units):
            for _ in range(unit // chunk):
                handles = [produce(topic=topic, payload=PAYLOAD) for _ in range(half)]
                handles += produce_many(batch)
                for handle in handles:
                    if handle.wait(raise_response_error=False).error is not None:
                        failed += 1
                del handles
            sample()
        producer.close()
    else:
        producer = confluent_producer(args.bootstrap)
        warm_up(None, producer, topic)
        errors = 0

        def on_delivery(err: Any, msg: Any) -> None:
            nonlocal errors
            if err is not None:
                errors += 1

        p, poll = producer.produce, producer.poll
        for _ in range(units):
            for _ in range(unit // chunk):
                for _ in range(chunk):
                    p(topic, PAYLOAD, on_delivery=on_delivery)
                    poll(0)
                producer.flush()
            sample()
        failed = errors
    elapsed = time.perf_counter() - t0
    growth: list[str] = []
    if len(snapshots) == 2:
        stats = snapshots[1].compare_to(snapshots[0], "traceback")
        for stat in stats[:10]:
            growth.append(f"{stat.size_diff:+,} B in {stat.count_diff:+,} blocks: "
                          + " <- ".join(f"{f.filename}:{f.lineno}" for f in stat.traceback))
    # the bar's reading: from the sample after the 2nd unit (2,000,000 messages produced) to
    # the last; the change from the 1st unit on is reported beside it
    first = samples[0]
    start = samples[1] if len(samples) > 2 else samples[0]
    end = samples[-1]
    return {"client": args.client, "unit": unit, "units": units, "failed": failed,
            "samples_mib": [round(s / 1024, 2) for s in samples],
            "malloc_in_use_mib": [None if h is None else round(h / 1024, 2) for h in heap],
            "thread_arenas_mib": [None if x is None else round(x[0] / 1024, 2) for x in split],
            "other_rss_mib": [None if x is None else round(x[1] / 1024, 2) for x in split],
            "start_mib": start / 1024, "end_mib": end / 1024, "first_mib": first / 1024,
            "change_pct": (end - start) / start * 100.0,
            "change_pct_from_1st": (end - first) / first * 100.0,
            "max_mib": max(samples) / 1024, "seconds": round(elapsed, 2),
            "msgs_per_s": round(unit * units / elapsed),
            **({"tracemalloc_growth": growth} if args.tracemalloc else {})}


def _child_path(args: argparse.Namespace) -> dict[str, Any]:
    """The per-message path for profilers (perf, callgrind): N produces of one kind.

    ``--linger`` large (default 120,000 ms) keeps the brokers idle: only the enqueue path runs;
    the process then leaves with os._exit before any flush, so nothing after the loop is
    counted. With ``--deliver`` every message is also delivered and waited for (the full path).
    Instructions per message: run with two N and divide the difference (bench/profile.py).
    """
    n, topic = args.messages, args.topic
    overrides: dict[str, Any] = QUEUED if not args.deliver else {}
    if args.api in ("produce_sync", "produce_flush"):
        overrides = {"linger.ms": 0}
    if args.linger is not None:
        overrides = {**overrides, "linger.ms": args.linger}
    t0 = time.perf_counter()
    if args.client == "waterdrop":
        producer = waterdrop_producer(args.bootstrap, **overrides)
        warm_up(producer, None, topic)
        t0 = time.perf_counter()
        if args.api == "produce_async":
            produce = producer.produce_async
            handles = [produce(topic=topic, payload=PAYLOAD) for _ in range(n)]
        elif args.api == "produce_sync":  # linger.ms 0 (see the sync scenario)
            produce_sync = producer.produce_sync
            handles = [produce_sync(topic=topic, payload=PAYLOAD) for _ in range(n)]
        elif args.api == "produce_many_async":
            batch = [{"topic": topic, "payload": PAYLOAD} for _ in range(args.batch)]
            handles = []
            for start in range(0, n, args.batch):
                handles.extend(producer.produce_many_async(batch[:min(args.batch, n - start)]))
        else:
            raise SystemExit(f"waterdrop has no api {args.api!r} here")
        if args.deliver:
            for handle in handles:
                handle.wait()
    elif args.client == "confluent":
        producer = confluent_producer(args.bootstrap, **overrides)
        warm_up(None, producer, topic)
        count = 0

        def on_delivery(err: Any, msg: Any) -> None:
            nonlocal count
            count += 1

        t0 = time.perf_counter()
        if args.api in ("produce", "produce_async"):
            produce, poll = producer.produce, producer.poll
            for _ in range(n):
                produce(topic, PAYLOAD, on_delivery=on_delivery)
                poll(0)
        elif args.api in ("produce_flush", "produce_sync"):  # linger.ms 0
            produce, flush = producer.produce, producer.flush
            for _ in range(n):
                produce(topic, PAYLOAD, on_delivery=on_delivery)
                flush()
        elif args.api in ("produce_batch", "produce_many_async"):
            template = [{"value": PAYLOAD} for _ in range(args.batch)]
            for start in range(0, n, args.batch):
                size = min(args.batch, n - start)
                producer.produce_batch(topic, template if size == args.batch
                                       else template[:size], on_delivery=on_delivery)
                producer.poll(0)
        else:
            raise SystemExit(f"confluent has no api {args.api!r} here")
        if args.deliver:
            producer.flush()
    else:
        raise SystemExit(f"unknown client {args.client!r}")
    elapsed = time.perf_counter() - t0
    print(json.dumps({"client": args.client, "api": args.api, "messages": n,
                      "deliver": args.deliver, "seconds": elapsed, "msgs_per_s": n / elapsed}),
          flush=True)
    os._exit(0)


def child_main(argv: list[str]) -> int:
    if argv and argv[0] == "host":
        return host_main(argv[1:])
    parser = argparse.ArgumentParser(prog="waterdrop._bench")
    sub = parser.add_subparsers(dest="role", required=True)
    for role in ("inflight", "flat", "path"):
        p = sub.add_parser(role)
        p.add_argument("--client", choices=("waterdrop", "confluent"), required=True)
        p.add_argument("--bootstrap", required=True)
        p.add_argument("--topic", default=TOPIC)
        if role == "inflight":
            p.add_argument("--messages", type=int, default=1_000_000)
        elif role == "flat":
            p.add_argument("--unit", type=int, default=1_000_000)
            p.add_argument("--units", type=int, default=10)
            p.add_argument("--tracemalloc", action="store_true",
                           help="report the Python allocations that grew (slow)")
        else:
            p.add_argument("--messages", type=int, default=100_000)
            p.add_argument("--api", default="produce_async")
            p.add_argument("--batch", type=int, default=10_000)
            p.add_argument("--linger", type=int, default=None)
            p.add_argument("--deliver", action="store_true")
    args = parser.parse_args(argv)
    handler = {"inflight": _child_inflight, "flat": _child_flat, "path": _child_path}[args.role]
    print(json.dumps(handler(args)), flush=True)
    return 0

