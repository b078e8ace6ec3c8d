"""A long run leaks nothing: messages are produced and acknowledged in rounds (async, batch,
sync, with labels and headers), and after every round the handles librdkafka holds
(``handles_in_flight``) and the queue are back at zero, no round's handle outlives it,
and the process's resident memory stays flat once the first rounds have warmed up.

300,000 messages in CI, 10,000,000 with WATERDROP_SOAK=1.
"""

from __future__ import annotations

import gc
import os
import resource

import pytest

from tests.helpers import close_within
from tests.reliability.sizes import sized
from waterdrop import Producer
from waterdrop.testing import MockCluster

TOTAL = sized(300_000, 10_000_000)
ROUND = 25_000
WARM_ROUNDS = 5
#: RSS may move by allocator noise; a leak of even 20 bytes a message would exceed this.
RSS_SLACK_BYTES = sized(24, 64) * 1024 * 1024

pytestmark = pytest.mark.timeout(sized(300, 7_200))


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize()


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="needs /proc")
def test_handles_and_memory_return_to_zero_round_after_round():
    with MockCluster(brokers=1) as cluster:
        # one partition: the mock cluster (in this process) keeps at most 5 MB / 100,000
        # messages of it, so its own memory stops growing after the first rounds
        cluster.create_topic("leaks", partitions=1)
        producer = Producer(
            kafka={"bootstrap.servers": cluster.bootstrap_servers, "linger.ms": 5},
            max_wait_timeout=120_000,
        )
        client = producer.client
        samples: list[int] = []
        produced = 0
        try:
            round_ = 0
            while produced < TOTAL:
                kind = round_ % 3
                if kind == 0:
                    handles = [producer.produce_async(topic="leaks", payload=b"x" * 100,
                                                      key=b"k%d" % i, label=("r", i))
                               for i in range(ROUND)]
                elif kind == 1:
                    handles = producer.produce_many_async(
                        [{"topic": "leaks", "payload": "é" * 50, "headers": {"h": [b"1", "2"]},
                          "label": i} for i in range(ROUND)])
                else:
                    handles = [producer.produce_sync(topic="leaks", payload=b"s", label=i)
                               for i in range(ROUND // 50)]
                for handle in handles:
                    assert handle.wait(120_000, False).error is None
                produced += len(handles)
                del handles, handle
                assert client.handles_in_flight == 0, "handles still held by librdkafka"
                assert producer.queue_size == 0
                gc.collect()
                samples.append(rss_bytes())
                round_ += 1
        finally:
            close_within(producer)
    baseline = max(samples[:WARM_ROUNDS])
    growth = max(samples[WARM_ROUNDS:]) - baseline
    print(f"\n[leaks] {produced} messages in {len(samples)} rounds; RSS after warm-up "
          f"{baseline / 2**20:.1f} MiB, max growth since {growth / 2**20:.2f} MiB")
    assert growth < RSS_SLACK_BYTES, (
        f"RSS grew by {growth / 2**20:.1f} MiB over {produced} messages: "
        f"{[round(s / 2**20, 1) for s in samples]}")
