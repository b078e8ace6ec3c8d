"""Nothing lost, nothing duplicated, order kept, while brokers crash.

A 3-broker KRaft cluster of its own (replication factor 3, min.insync.replicas 2) runs for
this module only. With acks=all and enable.idempotence=true, uniquely numbered messages are
produced at a steady pace while the broker that leads partition 0 is killed with SIGKILL
(no controlled shutdown) and restarted, twice. Everything is then read back with
confluent-kafka's Consumer and reconciled by message number:

- every message whose handle reported success is in the topic exactly once, at the
  partition and offset its report gave;
- every message that is absent was reported as failed, with its label, on its handle and
  in an ``error.occurred`` event;
- no number appears twice, and each partition holds its numbers in increasing order.

A second case freezes the leader (SIGSTOP) with produce requests in its socket until they
time out, and checks that the broker's idempotence check keeps the retries from being written
twice: the mock cluster cannot check that (see the test's docstring).

Sizes: 300,000 messages in CI, 1,000,000 with WATERDROP_SOAK=1. The counts are printed and,
with WATERDROP_RELIABILITY_REPORT=<file>, written to that JSON file (tests/reliability/report.py).
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from typing import Any

import pytest

from tests.helpers import close_within
from tests.reliability.kafka_cluster import (
    KafkaCluster,
    create_topic,
    partition_leaders,
    read_all,
    wait_for,
)
from tests.reliability.reconcile import reconcile
from tests.reliability.report import record
from tests.reliability.sizes import sized
from waterdrop import Producer, WaitTimeoutError

TOTAL = sized(300_000, 1_000_000)
RATE = 10_000                       # messages per second: production spans both crashes
WINDOW = 20_000                     # at most this many unresolved at once (an application's cap)
PARTITIONS = 3
KILLS = 2
RECOVERY_DEADLINE_S = 180.0         # a restarted broker back in every ISR
DELIVERY_DEADLINE_MS = 240_000      # > message.timeout.ms: every handle has a verdict by then

pytestmark = pytest.mark.timeout(sized(600, 3_600))


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    cluster = KafkaCluster(
        str(tmp_path_factory.mktemp("kafka3") / "state"),
        brokers=3,
        config={
            "min.insync.replicas": "2",
            "unclean.leader.election.enable": "false",
            # a crashed broker is fenced after 4 s instead of 9 s: shorter test, same failure
            "broker.session.timeout.ms": "4000",
            "broker.heartbeat.interval.ms": "500",
        },
    )
    started = time.monotonic()
    cluster.start()
    cluster.start_seconds = time.monotonic() - started
    try:
        yield cluster
    finally:
        cluster.stop()


class Run:
    """Produces TOTAL numbered messages at RATE, never beyond the gate the orchestrator
    opens nor more than WINDOW unresolved; counts resolutions as they happen."""

    def __init__(self, producer: Producer, topic: str) -> None:
        self.producer = producer
        self.topic = topic
        self.cond = threading.Condition()
        self.produced = 0
        self.resolved = 0
        self.gate = 0
        self.handles: list[Any] = [None] * TOTAL
        self.failure: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="produce", daemon=True)

    def _resolved(self, _handle: Any) -> None:
        with self.cond:
            self.resolved += 1
            self.cond.notify_all()

    def open_gate(self, upto: int) -> None:
        with self.cond:
            self.gate = min(TOTAL, upto)
            self.cond.notify_all()

    def wait_produced(self, count: int, deadline_s: float = 600.0) -> None:
        end = time.monotonic() + deadline_s
        with self.cond:
            while self.produced < count and self.failure is None:
                if not self.cond.wait(max(0.0, min(1.0, end - time.monotonic()))):
                    if time.monotonic() > end:
                        raise AssertionError(f"only {self.produced} of {count} produced")
        if self.failure is not None:
            raise self.failure

    def _run(self) -> None:
        try:
            start = time.monotonic()
            base = 0
            produce = self.producer.produce_async
            for i in range(TOTAL):
                with self.cond:
                    while i >= self.gate or i - self.resolved >= WINDOW:
                        self.cond.wait(1.0)
                # steady pace; after a stall (gate or window) the schedule restarts from now
                due = start + (i - base) / RATE
                now = time.monotonic()
                if now - due > 0.5:
                    start, base = now, i
                elif due - now > 0.002:
                    time.sleep(due - now)
                handle = produce(
                    topic=self.topic,
                    payload=b"%d" % i,
                    key=b"k%d" % i,
                    partition=i % PARTITIONS,
                    label=i,
                )
                handle.add_done_callback(self._resolved)
                self.handles[i] = handle
                with self.cond:
                    self.produced = i + 1
                    self.cond.notify_all()
        except BaseException as error:  # noqa: BLE001 - re-raised in the test thread
            with self.cond:
                self.failure = error
                self.cond.notify_all()


def _wait_in_sync(cluster: KafkaCluster, topic: str) -> None:
    """Until every partition has a leader and all 3 replicas in its ISR again."""

    def in_sync() -> bool:
        leaders = partition_leaders(cluster.bootstrap, topic)
        return all(leader > 0 and len(isr) == 3 for leader, isr in leaders.values())

    wait_for(in_sync, RECOVERY_DEADLINE_S, f"every partition of {topic} fully in sync")


def test_sigkill_partition_leader_twice_loses_and_duplicates_nothing(cluster):
    topic = create_topic(cluster.bootstrap, PARTITIONS, 3, {"min.insync.replicas": "2"})
    acknowledged: list[int] = []
    failed_events: list[tuple[Any, str, str]] = []
    other_errors: list[str] = []
    events_lock = threading.Lock()

    producer = Producer(
        kafka={
            "bootstrap.servers": cluster.bootstrap,
            "acks": "all",
            "enable.idempotence": True,
            "linger.ms": 5,
            "message.timeout.ms": 150_000,
        },
        max_wait_timeout=DELIVERY_DEADLINE_MS,
    )

    def on_ack(event: Any) -> None:
        with events_lock:
            acknowledged.append(event["label"])

    def on_error(event: Any) -> None:
        with events_lock:
            if event["type"] == "librdkafka.dispatch_error":
                failed_events.append((event["label"], event["error"].code, event["topic"]))
            else:
                other_errors.append(f"{event['type']}: {event['error']!r}")

    producer.monitor.subscribe("message.acknowledged", on_ack)
    producer.monitor.subscribe("error.occurred", on_error)

    run = Run(producer, topic)
    kills: list[tuple[int, int, int]] = []   # (broker, pid, messages produced at the kill)
    recoveries: list[float] = []             # seconds from SIGKILL to every ISR complete
    started = time.monotonic()
    try:
        run.thread.start()
        for round_ in range(KILLS):
            fifth = TOTAL // (2 * KILLS + 1)
            kill_at, restart_at = (2 * round_ + 1) * fifth, (2 * round_ + 2) * fifth
            run.open_gate(kill_at)
            run.wait_produced(kill_at)
            leader, _isr = partition_leaders(cluster.bootstrap, topic)[0]
            assert leader > 0, "partition 0 has no leader before the kill"
            pid = cluster.kill(leader)
            killed_at = time.monotonic()
            kills.append((leader, pid, run.produced))
            # produce while the leader is dead and being replaced, then during its restart
            run.open_gate(restart_at)
            run.wait_produced(restart_at)
            run.open_gate(restart_at + fifth)
            cluster.restart(leader)
            _wait_in_sync(cluster, topic)
            recoveries.append(round(time.monotonic() - killed_at, 1))
        run.open_gate(TOTAL)
        run.wait_produced(TOTAL)
        run.thread.join(60)
        assert not run.thread.is_alive()
        if run.failure is not None:
            raise run.failure

        # every handle reaches a verdict (no hang): success or a reported failure
        pending = []
        for handle in run.handles:
            try:
                handle.wait(DELIVERY_DEADLINE_MS, False)
            except WaitTimeoutError:
                pending.append(handle.label)
        assert not pending, f"{len(pending)} handles never resolved, e.g. {pending[:10]}"
        produce_seconds = time.monotonic() - started
        assert producer.queue_size == 0
    finally:
        run.open_gate(TOTAL)
        close_within(producer, deadline_s=DELIVERY_DEADLINE_MS / 1000 + 30)

    succeeded: dict[int, tuple[int, int]] = {}
    failed: dict[int, str] = {}
    for i, handle in enumerate(run.handles):
        report = handle.wait(0, False)
        assert report.label == i and handle.label == i, "the label is the message's own"
        assert report.topic_name == topic
        if report.error is None:
            succeeded[i] = (report.partition, report.offset)
        else:
            failed[i] = report.error.code

    read_started = time.monotonic()
    messages = read_all(cluster.bootstrap, topic, deadline_s=sized(120, 600))
    read_seconds = time.monotonic() - read_started
    seen: dict[int, list[tuple[int, int]]] = collections.defaultdict(list)
    per_partition: dict[int, list[int]] = collections.defaultdict(list)
    for message in sorted(messages, key=lambda m: (m.partition(), m.offset())):
        number = int(message.value())
        assert message.key() == b"k%d" % number
        seen[number].append((message.partition(), message.offset()))
        per_partition[message.partition()].append(number)

    duplicates = {n: where for n, where in seen.items() if len(where) > 1}
    lost = sorted(n for n in succeeded if n not in seen)
    misplaced = sorted(n for n, where in succeeded.items() if n in seen and seen[n][0] != where)
    absent = sorted(n for n in range(TOTAL) if n not in seen)
    absent_unreported = [n for n in absent if n not in failed]
    failed_but_present = sorted(n for n in failed if n in seen)
    foreign = sorted(n for n in seen if not 0 <= n < TOTAL)
    out_of_order = {
        p: next(j for j in range(1, len(ns)) if ns[j] <= ns[j - 1])
        for p, ns in per_partition.items()
        if any(ns[j] <= ns[j - 1] for j in range(1, len(ns)))
    }
    wrong_partition = sorted(n for n in seen if seen[n][0][0] != n % PARTITIONS)

    record("broker_failure", {
        "produced": TOTAL,
        "acknowledged": len(succeeded),
        "failed_and_reported": len(failed),
        "failed_codes": dict(collections.Counter(failed.values())),
        "read_back": len(messages),
        "distinct_read_back": len(seen),
        "duplicates": len(duplicates),
        "lost": len(lost),
        "misplaced": len(misplaced),
        "absent": len(absent),
        "absent_unreported": len(absent_unreported),
        "failed_but_present": len(failed_but_present),
        "order_violations": len(out_of_order),
        "kills": [{"broker": b, "pid": p, "produced_before_kill": n} for b, p, n in kills],
        "kill_to_in_sync_s": recoveries,
        "acknowledged_events": len(acknowledged),
        "failed_events": len(failed_events),
        "other_error_events": len(other_errors),
        "cluster_start_s": round(getattr(cluster, "start_seconds", 0.0), 1),
        "produce_and_confirm_s": round(produce_seconds, 1),
        "read_back_s": round(read_seconds, 1),
    })

    assert not duplicates, f"duplicates: {list(duplicates.items())[:10]}"
    assert not lost, f"acknowledged but not in the topic: {lost[:20]}"
    assert not misplaced, f"at another partition/offset than reported: {misplaced[:20]}"
    assert not absent_unreported, f"absent and never reported failed: {absent_unreported[:20]}"
    assert not foreign and not wrong_partition
    assert not out_of_order, f"order broken in partition(s) {out_of_order}"
    assert len(messages) == len(seen) == len(succeeded) + len(failed_but_present)
    # the events agree with the handles, label for label
    assert sorted(acknowledged) == sorted(succeeded)
    assert sorted(label for label, _code, _topic in failed_events) == sorted(failed)
    assert all(failed[label] == code and t == topic for label, code, t in failed_events)
    assert len(kills) == KILLS and kills[0][0] > 0


def test_requests_timed_out_after_the_broker_read_them_are_not_written_twice(cluster):
    """Idempotence where it matters: the leader of partition 0 is frozen (SIGSTOP) with
    produce requests in its socket buffer, the producer times them out and sends them again,
    and the leader, thawed, reads the originals too. The broker's sequence check, not luck,
    must keep every message exactly once.

    This runs on the real broker because librdkafka's mock cluster checks producer sequences
    only for transactional producers (rd_kafka_mock_validate_records returns early without a
    TransactionalId), so it cannot tell an idempotent producer's retry from a new batch."""
    topic = create_topic(cluster.bootstrap, 1, 3, {"min.insync.replicas": "2"})
    count = 2_000
    timed_out = threading.Event()

    class Spy(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            text = record.getMessage()
            if "REQTMOUT" in text or "timed out" in text.lower():
                timed_out.set()

    logger = logging.getLogger(f"waterdrop.test.freeze.{id(timed_out)}")
    logger.addHandler(Spy())
    logger.propagate = False
    producer = Producer(
        kafka={
            "bootstrap.servers": cluster.bootstrap,
            "acks": "all",
            "enable.idempotence": True,
            "linger.ms": 5,
            "request.timeout.ms": 1_000,
            "socket.timeout.ms": 1_000,
            "message.timeout.ms": 120_000,
        },
        max_wait_timeout=DELIVERY_DEADLINE_MS,
        logger=logger,
    )
    handles: dict[int, Any] = {}
    try:
        # message 0 warms up: connection to the leader and producer id before the freeze
        handles[0] = producer.produce_async(topic=topic, payload=b"0", label=0)
        assert handles[0].wait().error is None
        leader, _isr = partition_leaders(cluster.bootstrap, topic)[0]
        assert leader > 0
        cluster.pause(leader)
        try:
            for i in range(1, count // 2):
                handles[i] = producer.produce_async(topic=topic, payload=b"%d" % i, label=i)
            # the requests are in the frozen broker's socket and librdkafka gave up on them
            assert timed_out.wait(60), "no produce request timed out while the leader was frozen"
        finally:
            cluster.resume(leader)
        for i in range(count // 2, count):
            handles[i] = producer.produce_async(topic=topic, payload=b"%d" % i, label=i)
        outcome = reconcile(cluster.bootstrap, topic, handles,
                            deadline_ms=DELIVERY_DEADLINE_MS)
    finally:
        close_within(producer, deadline_s=DELIVERY_DEADLINE_MS / 1000)
    print(f"\n[frozen leader, idempotent] {outcome}")
    assert len(outcome.succeeded) == count

