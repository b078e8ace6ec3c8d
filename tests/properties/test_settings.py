"""Property: a producer built from any settings (real and made-up librdkafka properties,
values of every type, WaterDrop settings of the wrong type, settings that do not exist,
kafka settings of the wrong shape) either refuses them with ConfigurationInvalidError
(at setup or, for what only librdkafka can judge, when its client is built) with nothing
sent, or delivers a message intact. Never a stray exception, never a hang."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.helpers import close_within
from tests.properties.conftest import EXAMPLES, PROPERTY_SETTINGS
from tests.properties.ledger import Ledger
from tests.properties.runner import run_single
from tests.properties.strategies import producer_settings
from tests.reliability.report import record
from tests.reliability.sizes import sized
from waterdrop import ConfigurationInvalidError, Producer

pytestmark = pytest.mark.timeout(sized(600, 7_200))

#: examples run by the current property (hypothesis stops early if it runs out of ideas)
EXAMPLES_RUN = [0]


def test_settings_are_refused_at_once_or_deliver_intact(mock_cluster):
    topic = "prop-settings"
    mock_cluster.create_topic(topic, partitions=1)
    ledger = Ledger(mock_cluster.bootstrap_servers, topic)
    outcomes: dict[str, int] = {}
    EXAMPLES_RUN[0] = 0

    @PROPERTY_SETTINGS
    @given(producer_settings(mock_cluster.bootstrap_servers),
           st.binary(max_size=64), st.one_of(st.none(), st.binary(min_size=1, max_size=8)))
    def prop(drawn: tuple[dict[str, Any], bool], payload: bytes, key: Any) -> None:
        EXAMPLES_RUN[0] += 1
        # (messages of every shape are the other suites' job: here, the settings')
        settings, _hostile = drawn
        message = {"topic": topic, "payload": payload, "key": key, "label": payload}
        try:
            producer = Producer(**settings)
        except ConfigurationInvalidError as error:
            assert isinstance(error.errors, dict) and error.errors
            outcomes["setup refused"] = outcomes.get("setup refused", 0) + 1
            return
        try:
            outcome = run_single(
                producer, producer, ledger, message, "async",
                max_payload=producer.config.max_payload_size,
                refusals=(ConfigurationInvalidError,),
            )
            outcomes[outcome] = outcomes.get(outcome, 0) + 1
        finally:
            close_within(producer)

    try:
        prop()
        assert EXAMPLES_RUN[0] >= EXAMPLES, f"only {EXAMPLES_RUN[0]} examples ran"
        record("property_settings", {"examples": EXAMPLES_RUN[0], "result": ledger.verify(),
                                      "outcomes": dict(outcomes)})
        assert ledger.accepted and outcomes.get("setup refused")
    finally:
        ledger.close()
