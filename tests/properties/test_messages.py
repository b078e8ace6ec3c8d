"""Property: any message is either accepted and delivered intact, or refused with
MessageInvalidError before anything is sent. Never a crash, a hang, a TypeError (or any other
stray exception) from inside the core, or a partly sent batch.

Every accepted message is waited for (so "nothing queued" can be checked exactly after each
refusal) and checked byte for byte against an independent reading of the contract
(oracle.py) when the topic is read back, in rounds (ledger.py).
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.helpers import close_within
from tests.properties.conftest import EXAMPLES, PROPERTY_SETTINGS
from tests.properties.ledger import Ledger
from tests.properties.runner import WAIT_MS, run_batch, run_single
from tests.properties.strategies import containers
from tests.reliability.report import record
from tests.reliability.sizes import sized
from waterdrop import Producer

pytestmark = pytest.mark.timeout(sized(600, 7_200))

#: examples run by the current property (hypothesis stops early if it runs out of ideas)
EXAMPLES_RUN = [0]


@pytest.fixture
def setup(mock_cluster, request):
    topic = f"prop-{request.node.name.split('[')[0][-40:].replace('_', '-')}"
    mock_cluster.create_topic(topic, partitions=1)
    producer = Producer(
        kafka={"bootstrap.servers": mock_cluster.bootstrap_servers, "linger.ms": 0},
        max_wait_timeout=WAIT_MS,
    )
    producer.produce_sync(topic="prop-warm-up", payload=b"warm")  # connected, metadata known
    ledger = Ledger(mock_cluster.bootstrap_servers, topic)
    yield producer, ledger
    ledger.close()
    close_within(producer)


def test_single_messages_are_delivered_intact_or_refused_before_sending(setup):
    producer, ledger = setup
    EXAMPLES_RUN[0] = 0

    @PROPERTY_SETTINGS
    @given(containers(ledger.topic), st.sampled_from(["async", "sync", "kwargs"]))
    def prop(message: Any, how: str) -> None:
        EXAMPLES_RUN[0] += 1
        run_single(producer, producer, ledger, message, how)

    prop()
    assert EXAMPLES_RUN[0] >= EXAMPLES, f"only {EXAMPLES_RUN[0]} examples ran"
    record("property_single_messages", {"examples": EXAMPLES_RUN[0], "result": ledger.verify()})
    assert ledger.accepted and ledger.refused


def test_batches_are_all_delivered_or_all_refused(setup):
    producer, ledger = setup
    EXAMPLES_RUN[0] = 0

    @PROPERTY_SETTINGS
    @given(st.lists(containers(ledger.topic, hostile=False), min_size=1, max_size=4),
           st.one_of(st.none(),
                     st.tuples(st.integers(0, 4), containers(ledger.topic, hostile=True))),
           st.sampled_from(["async", "sync", "buffer"]))
    def prop(batch: list[Any], spoiler: Any, how: str) -> None:
        EXAMPLES_RUN[0] += 1
        if spoiler is not None:     # half the batches carry one hostile message somewhere
            batch.insert(min(spoiler[0], len(batch)), spoiler[1])
        run_batch(producer, producer, ledger, batch, how)

    prop()
    assert EXAMPLES_RUN[0] >= EXAMPLES, f"only {EXAMPLES_RUN[0]} examples ran"
    record("property_batches", {"examples": EXAMPLES_RUN[0], "result": ledger.verify()})
    assert ledger.accepted and ledger.refused
