"""statistics.emitted (inventory §4.4): opt-in when the client is built, decorated with
WaterDrop's ``_d`` / ``_fd`` keys, late subscriptions refused, partition counts refreshed."""

from __future__ import annotations

import copy
import threading
from types import SimpleNamespace

import pytest

from tests.helpers import close_within, unique_topic
from tests.unit.instrumentation.conftest import Recorder
from waterdrop import Producer
from waterdrop.errors import StatisticsNotEnabledError
from waterdrop.instrumentation import StatisticsDecorator
from waterdrop.instrumentation import statistics as statistics_module
from waterdrop.testing import MockCluster

DECORATED = ("tx", "txretries", "txerrs", "rxerrs")


def _stats_recorder(producer) -> Recorder:
    rec = Recorder()
    producer.monitor.subscribe("statistics.emitted", rec)
    return rec


# --- emission -------------------------------------------------------------------------------------


def test_statistics_emitted_when_a_listener_existed_before_the_client(make_producer, topic):
    producer = make_producer(kafka={"statistics.interval.ms": 100})
    rec = _stats_recorder(producer)
    threads = []
    producer.monitor.subscribe("statistics.emitted",
                               lambda e: threads.append(threading.current_thread().name))
    producer.produce_sync(topic=topic, payload=b"x")
    first, second = rec.wait_for("statistics.emitted", 2)[:2]
    assert set(first.payload) == {"producer_id", "statistics"}
    assert first["producer_id"] == producer.id
    statistics = first["statistics"]
    assert isinstance(statistics, dict)
    assert statistics["type"] == "producer"
    assert {"msg_cnt", "brokers", "topics", "txmsgs"} <= set(statistics)
    # never from a librdkafka thread
    assert all(not name.startswith("Dummy") for name in threads), threads


def test_first_emission_has_zero_deltas_and_freeze_durations(make_producer, topic):
    producer = make_producer(kafka={"statistics.interval.ms": 100})
    rec = _stats_recorder(producer)
    producer.produce_sync(topic=topic, payload=b"x")
    first = rec.wait_for("statistics.emitted")[0]["statistics"]
    assert first["tx_d"] == 0 and first["tx_fd"] == 0
    brokers = [b for b in first["brokers"].values() if b["nodeid"] != -1]
    assert brokers
    for broker in first["brokers"].values():
        for key in DECORATED:
            assert broker[f"{key}_d"] == 0
            assert broker[f"{key}_fd"] == 0


def test_later_emissions_carry_deltas(make_producer, topic):
    producer = make_producer(kafka={"statistics.interval.ms": 100})
    rec = _stats_recorder(producer)
    producer.produce_sync(topic=topic, payload=b"x")
    events = rec.wait_for("statistics.emitted", 3)
    # snapshots are mutated by the decorator in place only once: compare consecutive ones
    for before, after in zip(events, events[1:]):
        b, a = before["statistics"], after["statistics"]
        assert a["tx_d"] == a["tx"] - b["tx"]
        assert a["tx_fd"] >= 0


def test_default_decoration_is_waterdrops_narrow_one(make_producer, topic):
    """Only tx/txretries/txerrs/rxerrs, at the root and per broker; topics, partitions and
    the broker window stats (rtt, int_latency, ...) are left alone."""
    producer = make_producer(kafka={"statistics.interval.ms": 100})
    rec = _stats_recorder(producer)
    producer.produce_sync(topic=topic, payload=b"x")
    statistics = rec.wait_for("statistics.emitted")[0]["statistics"]
    root_extra = {k for k in statistics if k.endswith(("_d", "_fd"))}
    assert root_extra == {"tx_d", "tx_fd"}  # the root has tx, but no txretries/txerrs/rxerrs
    for broker in statistics["brokers"].values():
        extra = {k for k in broker if k.endswith(("_d", "_fd"))}
        assert extra == {f"{k}_{s}" for k in DECORATED for s in ("d", "fd")}
        assert not any(k.endswith("_d") for k in broker["rtt"])
    for topic_stats in statistics["topics"].values():
        assert not any(k.endswith(("_d", "_fd")) for k in topic_stats)


def test_a_custom_statistics_decorator(make_producer, topic):
    producer = make_producer(
        kafka={"statistics.interval.ms": 100},
        statistics_decorator=StatisticsDecorator(only_keys=(), excluded_keys=()),
    )
    rec = _stats_recorder(producer)
    producer.produce_sync(topic=topic, payload=b"x")
    statistics = rec.wait_for("statistics.emitted")[0]["statistics"]
    assert "msg_cnt_d" in statistics and "txmsgs_fd" in statistics
    broker = next(iter(statistics["brokers"].values()))
    assert "avg_d" in broker["rtt"]  # every numeric key at every depth


def test_a_late_subscription_raises_statistics_not_enabled(producer, topic):
    producer.produce_sync(topic=topic, payload=b"x")  # the client is built without statistics
    with pytest.raises(StatisticsNotEnabledError, match="statistics.emitted") as info:
        producer.monitor.subscribe("statistics.emitted", print)
    assert str(info.value).startswith(f"producer {producer.id!r} was connected without statistics")

    class Listener:
        def on_statistics_emitted(self, event):
            pass

    with pytest.raises(StatisticsNotEnabledError):
        producer.monitor.subscribe(Listener())
    producer.monitor.subscribe("error.occurred", print)  # everything else still subscribes


def test_statistics_disabled_by_the_user_also_freeze(make_producer, topic):
    producer = make_producer(kafka={"statistics.interval.ms": 0})
    rec = _stats_recorder(producer)  # subscribed, but the user turned statistics off
    producer.produce_sync(topic=topic, payload=b"x")
    with pytest.raises(StatisticsNotEnabledError):
        producer.monitor.subscribe("statistics.emitted", print)
    assert rec.events == []


def test_a_subscription_before_the_first_use_is_fine_even_after_setup(make_producer, topic):
    producer = make_producer(kafka={"statistics.interval.ms": 100})
    producer.monitor.subscribe("error.occurred", print)
    rec = _stats_recorder(producer)  # configured, not yet connected
    producer.produce_sync(topic=topic, payload=b"x")
    rec.wait_for("statistics.emitted")


def test_statistics_are_per_producer(make_producer, topic):
    """librdkafka's statistics are per client: each producer sees only its own."""
    one = make_producer(kafka={"statistics.interval.ms": 100})
    two = make_producer(kafka={"statistics.interval.ms": 100})
    rec_one, rec_two = _stats_recorder(one), _stats_recorder(two)
    one.produce_sync(topic=topic, payload=b"x")
    two.produce_sync(topic=topic, payload=b"x")
    names_one = {e["statistics"]["name"] for e in rec_one.wait_for("statistics.emitted", 2)}
    names_two = {e["statistics"]["name"] for e in rec_two.wait_for("statistics.emitted", 2)}
    assert len(names_one) == len(names_two) == 1
    assert names_one != names_two
    assert {e["producer_id"] for e in rec_one.events} == {one.id}


def test_partition_counts_are_refreshed_from_statistics():
    """With a statistics listener, the partition-count cache is filled from statistics: with
    every broker down, partition_count still answers (a metadata request could not)."""
    with MockCluster(brokers=1) as cluster:
        name = unique_topic()
        cluster.create_topic(name, partitions=3)
        producer = Producer(
            kafka={"bootstrap.servers": cluster.bootstrap_servers, "statistics.interval.ms": 100},
            max_wait_timeout=5_000,
        )
        try:
            rec = _stats_recorder(producer)
            producer.produce_sync(topic=name, payload=b"x", partition=2)

            def knows_partitions(event):
                topic_stats = event["statistics"].get("topics", {}).get(name, {})
                return len([p for p in topic_stats.get("partitions", {}) if p != "-1"]) == 3

            rec.wait_for("statistics.emitted", where=knows_partitions)
            cluster.broker_down(1)
            assert producer.partition_count(name) == 3
        finally:
            close_within(producer, force=True)


def test_partition_counts_without_statistics_need_the_broker():
    """The control for the test above: no statistics, broker down -> unknown (-1)."""
    with MockCluster(brokers=1) as cluster:
        name = unique_topic()
        cluster.create_topic(name, partitions=3)
        producer = Producer(
            kafka={"bootstrap.servers": cluster.bootstrap_servers}, max_wait_timeout=5_000
        )
        try:
            producer.produce_sync(topic=name, payload=b"x", partition=2)
            cluster.broker_down(1)
            assert producer.partition_count(name) == -1
        finally:
            close_within(producer, force=True)


# --- the decorator itself -------------------------------------------------------------------------


class _Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def monotonic(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch) -> _Clock:
    fake = _Clock()
    monkeypatch.setattr(statistics_module, "time", SimpleNamespace(monotonic=fake.monotonic))
    return fake


def _sample(tx: int, txerrs: int = 0, rtt: int = 10, msg_cnt: int = 5) -> dict:
    return {
        "name": "p#producer-1",
        "tx": tx,
        "msg_cnt": msg_cnt,
        "brokers": {
            "b1": {"nodeid": 1, "tx": tx, "txerrs": txerrs, "txretries": 0, "rxerrs": 0,
                   "rtt": {"avg": rtt, "cnt": 1}, "toppars": {"t-0": {"tx": 1}}},
        },
        "topics": {"t": {"partitions": {"0": {"txmsgs": tx}}}},
    }


def test_decorator_first_call_zeroes(clock):
    decorate = StatisticsDecorator()
    out = decorate(_sample(tx=10))
    assert (out["tx_d"], out["tx_fd"]) == (0, 0)
    assert out["brokers"]["b1"]["txerrs_d"] == 0


def test_decorator_deltas_and_freeze_durations(clock):
    decorate = StatisticsDecorator()
    decorate(_sample(tx=10, txerrs=1))
    clock.now += 5.0
    out = decorate(_sample(tx=15, txerrs=1))
    assert out["tx_d"] == 5
    assert out["tx_fd"] == 0            # it changed: not frozen
    broker = out["brokers"]["b1"]
    assert broker["txerrs_d"] == 0
    assert broker["txerrs_fd"] == 5_000  # unchanged for 5 s: milliseconds
    clock.now += 2.5
    out = decorate(_sample(tx=15, txerrs=1))
    assert out["tx_d"] == 0
    assert out["tx_fd"] == 2_500
    assert out["brokers"]["b1"]["txerrs_fd"] == 7_500


def test_decorator_returns_the_same_dict_mutated(clock):
    decorate = StatisticsDecorator()
    sample = _sample(tx=1)
    assert decorate(sample) is sample
    assert "tx_d" in sample


def test_decorator_default_keys_and_exclusions(clock):
    decorate = StatisticsDecorator()
    out = decorate(_sample(tx=1))
    assert "msg_cnt_d" not in out                           # not in only_keys
    assert "avg_d" not in out["brokers"]["b1"]["rtt"]       # excluded subtree
    assert "tx_d" not in out["brokers"]["b1"]["toppars"]["t-0"]
    assert "txmsgs_d" not in out["topics"]["t"]["partitions"]["0"]


def test_decorator_with_empty_lists_decorates_everything(clock):
    decorate = StatisticsDecorator(only_keys=[], excluded_keys=[])
    decorate(_sample(tx=1, rtt=10, msg_cnt=5))
    clock.now += 1.0
    out = decorate(_sample(tx=1, rtt=12, msg_cnt=3))
    assert out["msg_cnt_d"] == -2
    assert out["brokers"]["b1"]["rtt"]["avg_d"] == 2
    assert out["brokers"]["b1"]["rtt"]["cnt_fd"] == 1_000
    assert out["topics"]["t"]["partitions"]["0"]["txmsgs_d"] == 0
    assert "name_d" not in out  # strings are not decorated


def test_decorator_handles_keys_that_appear_later(clock):
    decorate = StatisticsDecorator()
    decorate({"tx": 1, "brokers": {}})
    clock.now += 1.0
    later = _sample(tx=2)
    out = decorate(copy.deepcopy(later))
    assert out["tx_d"] == 1
    # a broker seen for the first time: zero, as on a first emission
    assert out["brokers"]["b1"]["tx_d"] == 0
    assert out["brokers"]["b1"]["tx_fd"] == 0


def test_decorator_is_per_producer(make_producer):
    """Each producer gets its own decorator (deltas must not mix between producers)."""
    one = make_producer()
    two = make_producer()
    assert one.config.statistics_decorator is not two.config.statistics_decorator
    assert isinstance(one.config.statistics_decorator, StatisticsDecorator)
