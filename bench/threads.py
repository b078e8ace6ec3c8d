#!/usr/bin/env python3
"""produce_async with every handle waited, across interpreters and thread counts, side by side.

    python bench/threads.py                                   # this interpreter, 1 and 2 threads
    python bench/threads.py --run 3.11=/work/venvs/x/bin/python:1 \\
        --run 3.13=~/.cache/waterdrop/venvs/3.13/bin/python:1 \\
        --run 3.13t=~/.cache/waterdrop/venvs/3.13t/bin/python:1,2 \\
        --confluent 3.13=~/.cache/waterdrop/venvs/3.13/bin/python --rounds 9

Each ``--run LABEL=PYTHON:THREADS[,THREADS...]`` is one worker process per thread count: that
interpreter (with waterdrop installed) keeps one warm, connected Producer, and each round its
THREADS threads share it. A round is ``--messages`` in all (split evenly between the threads):
each thread calls ``produce_async(topic=, payload=)`` for its share, keeping every handle, then
``wait()`` on each, as bench/compare.py's async scenario does on one thread. The clock runs
from the moment every thread is released until the last one has waited its last handle; CPU is
the worker process's (every thread, librdkafka's too). A free-threaded interpreter runs with
``PYTHON_GIL=0`` unless the caller set PYTHON_GIL; the worker reports whether the GIL is on.

``--confluent LABEL=PYTHON`` adds a confluent-kafka worker on that interpreter (one thread:
``produce`` with ``on_delivery`` and ``poll(0)`` per message, ``flush()`` at the end).

All workers produce to one MockCluster (3 brokers, a 3-partition topic, replication factor 3)
hosted by a process of its own (bench/mockcluster_host.py, on this interpreter), with
bench/compare.py's settings. Rounds alternate between the workers, the order rotating each
round, so a burst of load from elsewhere on the machine falls on all of them alike. The table
gives each worker's median rate and CPU per message, and ratios as the median of the per-round
ratios (each from two rounds run back to back) beside the ratio of the medians.

``--gc-off`` runs the workers with the cyclic garbage collector disabled (for diagnosis);
each worker reports how many collections ran per round.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def _settings() -> Any:
    """bench/compare.py's shared settings, loaded by path (a confluent worker never imports
    the waterdrop package)."""
    import importlib.util

    path = os.path.join(ROOT, "src", "waterdrop", "_bench", "settings.py")
    spec = importlib.util.spec_from_file_location("_wd_bench_settings", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ---------------------------------------------------------------------------------------------
# the worker: one interpreter, one client, THREADS threads per round


def _gil_enabled() -> bool:
    probe = getattr(sys, "_is_gil_enabled", None)
    return True if probe is None else bool(probe())


def _worker(args: argparse.Namespace) -> int:
    import gc

    settings = _settings()
    common = settings.COMMON
    payload = settings.PAYLOAD
    topic = args.topic
    threads = args.threads
    if args.gc_off:
        gc.disable()
    producer: Any
    if args.client == "waterdrop":
        import waterdrop

        producer = waterdrop.Producer(kafka={"bootstrap.servers": args.bootstrap, **common},
                                      max_wait_timeout=300_000)
        producer.produce_async(topic=topic, payload=b"warm-up").wait()
        version = waterdrop.__version__

        def share(n: int) -> None:
            produce = producer.produce_async
            handles = [produce(topic=topic, payload=payload) for _ in range(n)]
            for handle in handles:
                handle.wait()
    else:
        import confluent_kafka

        producer = confluent_kafka.Producer({"bootstrap.servers": args.bootstrap, **common})
        version = confluent_kafka.version()[0]
        failed: list[Any] = []

        def on_delivery(err: Any, msg: Any) -> None:
            if err is not None:
                failed.append(err)

        def share(n: int) -> None:
            produce, poll = producer.produce, producer.poll
            for _ in range(n):
                produce(topic, payload, on_delivery=on_delivery)
                poll(0)
            producer.flush()

        share(1)
        if failed:
            raise SystemExit(f"confluent-kafka warm-up failed: {failed}")
    print(json.dumps({"ready": True, "python": sys.version.split()[0],
                      "free_threaded": bool(__import__("sysconfig").get_config_var(
                          "Py_GIL_DISABLED")),
                      "gil": _gil_enabled(), "client": args.client, "version": version}),
          flush=True)
    for line in sys.stdin:
        words = line.split()
        if not words:
            continue
        if words[0] != "round":
            print(json.dumps({"error": f"unknown command {line.strip()!r}"}), flush=True)
            continue
        total = int(words[1])
        shares = [total // threads + (1 if i < total % threads else 0) for i in range(threads)]
        barrier = threading.Barrier(threads + 1)
        errors: list[BaseException] = []

        def body(n: int) -> None:
            try:
                barrier.wait()
                share(n)
            except BaseException as error:  # reported to the parent
                errors.append(error)

        workers = [threading.Thread(target=body, args=(n,)) for n in shares]
        for thread in workers:
            thread.start()
        collections = sum(s["collections"] for s in gc.get_stats())
        cpu = time.process_time()
        barrier.wait()
        started = time.perf_counter()
        for thread in workers:
            thread.join()
        seconds = time.perf_counter() - started
        cpu = time.process_time() - cpu
        collections = sum(s["collections"] for s in gc.get_stats()) - collections
        if errors:
            print(json.dumps({"error": repr(errors[0])}), flush=True)
            continue
        print(json.dumps({"messages": total, "seconds": seconds, "cpu_seconds": cpu,
                          "gc_collections": collections}), flush=True)
    if args.client == "waterdrop":
        producer.close()
    else:
        producer.flush(30)
    return 0


# ---------------------------------------------------------------------------------------------
# the parent: the cluster, the workers, alternating rounds, the table


class Worker:
    def __init__(self, label: str, python: str, threads: int, client: str, bootstrap: str,
                 topic: str, gc_off: bool) -> None:
        self.label = label
        self.python = python
        self.threads = threads
        self.client = client
        self.name = (f"{label} x{threads}" if client == "waterdrop"
                     else f"{label} confluent")
        env = dict(os.environ)
        env.pop("PYTHON_GIL", None) if not _free_threaded(python) else env.setdefault(
            "PYTHON_GIL", "0")  # a GIL build refuses PYTHON_GIL=0 at start-up
        command = [python, os.path.abspath(__file__), "--worker", "--client", client,
                   "--threads", str(threads), "--bootstrap", bootstrap, "--topic", topic]
        if gc_off:
            command.append("--gc-off")
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        text=True, bufsize=1, env=env)
        self.info = self._read()
        if not self.info.get("ready"):
            raise RuntimeError(f"{self.name}: {self.info}")
        self.rounds: list[dict[str, Any]] = []

    def _read(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        while True:
            line = self.process.stdout.readline()
            if not line:
                raise RuntimeError(f"{self.name}: worker exited ({self.process.wait()})")
            if line.startswith("{"):
                return json.loads(line)

    def round(self, messages: int) -> dict[str, Any]:
        assert self.process.stdin is not None
        self.process.stdin.write(f"round {messages}\n")
        self.process.stdin.flush()
        record = self._read()
        if "error" in record:
            raise RuntimeError(f"{self.name}: {record['error']}")
        return record

    def close(self) -> None:
        try:
            assert self.process.stdin is not None
            self.process.stdin.close()
            self.process.wait(60)
        except (OSError, subprocess.TimeoutExpired):
            self.process.kill()
            self.process.wait()


def _free_threaded(python: str) -> bool:
    probe = "import sysconfig; print(bool(sysconfig.get_config_var('Py_GIL_DISABLED')))"
    return subprocess.run([python, "-c", probe], stdout=subprocess.PIPE, text=True,
                          check=True, env={**os.environ, "PYTHON_GIL": ""}).stdout.strip() == "True"


def _parse_run(text: str) -> tuple[str, str, list[int]]:
    label, _, rest = text.partition("=")
    if not rest:
        raise argparse.ArgumentTypeError(f"expected LABEL=PYTHON[:THREADS,...], got {text!r}")
    python, _, counts = rest.rpartition(":") if ":" in rest else (rest, "", "1")
    return label, os.path.expanduser(python), [int(c) for c in counts.split(",") if c]


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/threads.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--client", default="waterdrop", help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--bootstrap", help=argparse.SUPPRESS)
    parser.add_argument("--run", action="append", default=[], metavar="LABEL=PYTHON:THREADS",
                        help="a waterdrop worker per thread count on that interpreter "
                        "(repeatable; default: this interpreter with 1 and 2 threads)")
    parser.add_argument("--confluent", action="append", default=[], metavar="LABEL=PYTHON",
                        help="a confluent-kafka worker (one thread) on that interpreter")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--messages", type=int, default=200_000,
                        help="messages per round, split between the threads (default 200,000)")
    parser.add_argument("--warm-up", type=int, default=50_000,
                        help="messages of an unmeasured first round per worker")
    parser.add_argument("--topic", default="waterdrop-threads")
    parser.add_argument("--gc-off", action="store_true", help="gc.disable() in the workers")
    parser.add_argument("--ratio", action="append", default=[], metavar="A/B",
                        help="also this ratio, by worker names as in the table "
                        "('3.13t x2/3.13 x1')")
    parser.add_argument("--json", metavar="PATH", help="also write every round here")
    args = parser.parse_args(argv)
    if args.worker:
        return _worker(args)

    settings = _settings()
    ratios: list[str] = args.ratio
    runs = [_parse_run(r) for r in args.run] or [("this", sys.executable, [1, 2])]
    confluents = [_parse_run(c)[:2] for c in args.confluent]
    from waterdrop._bench.processes import HostedMockCluster

    cluster = HostedMockCluster([args.topic], script=os.path.join(HERE, "mockcluster_host.py"))
    workers: list[Worker] = []
    try:
        for label, python, counts in runs:
            for threads in counts:
                workers.append(Worker(label, python, threads, "waterdrop",
                                      cluster.bootstrap_servers, args.topic, args.gc_off))
        for label, python in confluents:
            workers.append(Worker(label, python, 1, "confluent", cluster.bootstrap_servers,
                                  args.topic, args.gc_off))
        for w in workers:
            settings.log(f"{w.name}: Python {w.info['python']}"
                         f"{' free-threaded' if w.info['free_threaded'] else ''}, GIL "
                         f"{'on' if w.info['gil'] else 'off'}, {w.client} {w.info['version']}")
            if args.warm_up:
                w.round(args.warm_up)
        for r in range(args.rounds):
            shift = r % len(workers)
            for w in workers[shift:] + workers[:shift]:
                record = w.round(args.messages)
                record["round"] = r
                w.rounds.append(record)
                settings.log(f"  round {r + 1}/{args.rounds} {w.name:<18} "
                             f"{record['messages'] / record['seconds']:>10,.0f} msg/s  "
                             f"{record['cpu_seconds'] / record['messages'] * 1e6:6.2f} us/msg "
                             f"cpu  gc {record['gc_collections']}")
    finally:
        for w in workers:
            w.close()
        cluster.close()

    def rates(w: Worker) -> list[float]:
        return [x["messages"] / x["seconds"] for x in w.rounds]

    print(f"produce_async, every handle waited: {args.messages:,} messages per round "
          f"(split between the threads), {settings.PAYLOAD_SIZE} B, medians of {args.rounds} "
          f"alternating rounds; MockCluster 3 brokers, 3 partitions, RF 3; "
          f"{os.cpu_count()} CPUs{'; gc disabled' if args.gc_off else ''}")
    print(f"{'worker':<20} {'python':<22} {'msg/s':>12} {'CPU us/msg':>11} {'gc/round':>9}")
    for w in workers:
        py = w.info["python"] + ("t" if w.info["free_threaded"] else "") + (
            " GIL on" if w.info["free_threaded"] and w.info["gil"] else "")
        print(f"{w.name:<20} {py:<22} {_median(rates(w)):>12,.0f} "
              f"{_median([x['cpu_seconds'] / x['messages'] * 1e6 for x in w.rounds]):>11.2f} "
              f"{_median([x['gc_collections'] for x in w.rounds]):>9.0f}")

    # ratios: every worker against the first; each thread count against one thread on the
    # same interpreter; waterdrop against confluent-kafka on the same interpreter
    pairs: list[tuple[Worker, Worker]] = []
    first = workers[0]
    for w in workers[1:]:
        if w.client == "waterdrop":
            pairs.append((w, first))
    for w in workers:
        one = next((o for o in workers if o.label == w.label and o.client == "waterdrop"
                    and o.threads == 1), None)
        if w.client == "waterdrop" and w.threads > 1 and one is not None \
                and (w, one) not in pairs:
            pairs.append((w, one))
    for w in workers:
        # a free-threaded build against the GIL build of the same version, one thread each
        gil = next((o for o in workers if o.client == "waterdrop" and o.threads == 1
                    and not o.info["free_threaded"] and o.info["python"] == w.info["python"]),
                   None)
        if w.client == "waterdrop" and w.threads == 1 and w.info["free_threaded"] \
                and gil is not None and (w, gil) not in pairs:
            pairs.append((w, gil))
    for spec in ratios:
        a_name, _, b_name = spec.partition("/")
        by_name = {w.name: w for w in workers}
        if a_name.strip() in by_name and b_name.strip() in by_name:
            pair = (by_name[a_name.strip()], by_name[b_name.strip()])
            if pair not in pairs:
                pairs.append(pair)
        else:
            settings.log(f"--ratio {spec!r}: no such workers ({', '.join(by_name)})")
    for c in workers:
        if c.client != "confluent":
            continue
        for w in workers:
            if w.client == "waterdrop" and w.label == c.label and w.threads == 1:
                pairs.append((w, c))
    if pairs:
        print(f"\n{'ratio (msg/s)':<40} {'median of per-round':>20} {'of medians':>11}")
        for a, b in pairs:
            per_round = [ra / rb for ra, rb in zip(rates(a), rates(b))]
            print(f"{a.name + ' / ' + b.name:<40} {_median(per_round):>19.2f}x "
                  f"{_median(rates(a)) / _median(rates(b)):>10.2f}x   "
                  f"(rounds {min(per_round):.2f}-{max(per_round):.2f})")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"messages": args.messages, "rounds": args.rounds, "gc_off": args.gc_off,
                       "workers": [{"name": w.name, "info": w.info, "rounds": w.rounds}
                                   for w in workers]}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
