"""Property: headers of any shape (KIP-82 lists, wrong nesting, surrogates, NULs, empty and
100 kB values, non-str names, thirty of them) are delivered intact, in order, repeated
names kept, or refused with MessageInvalidError before anything is sent."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.helpers import close_within
from tests.properties.conftest import EXAMPLES, PROPERTY_SETTINGS
from tests.properties.ledger import Ledger
from tests.properties.runner import WAIT_MS, run_single
from tests.properties.strategies import hostile_headers, nonempty
from tests.reliability.report import record
from tests.reliability.sizes import sized
from waterdrop import Producer

pytestmark = pytest.mark.timeout(sized(600, 7_200))

#: examples run by the current property (hypothesis stops early if it runs out of ideas)
EXAMPLES_RUN = [0]


def test_headers_are_delivered_intact_or_refused_before_sending(mock_cluster):
    topic = "prop-headers"
    mock_cluster.create_topic(topic, partitions=1)
    producer = Producer(
        kafka={"bootstrap.servers": mock_cluster.bootstrap_servers, "linger.ms": 0},
        max_wait_timeout=WAIT_MS,
    )
    ledger = Ledger(mock_cluster.bootstrap_servers, topic)
    try:
        producer.produce_sync(topic="prop-warm-up", payload=b"warm")
        EXAMPLES_RUN[0] = 0

        @PROPERTY_SETTINGS
        @given(hostile_headers, st.one_of(st.none(), nonempty),
               st.sampled_from(["async", "sync", "kwargs"]))
        def prop(headers: Any, key: Any, how: str) -> None:
            EXAMPLES_RUN[0] += 1
            message = {"topic": topic, "payload": b"h", "headers": headers}
            if key is not None:
                message["key"] = key
            run_single(producer, producer, ledger, message, how)

        prop()
        assert EXAMPLES_RUN[0] >= EXAMPLES, f"only {EXAMPLES_RUN[0]} examples ran"
        record("property_headers", {"examples": EXAMPLES_RUN[0], "result": ledger.verify()})
        assert ledger.accepted and ledger.refused
    finally:
        ledger.close()
        close_within(producer)
