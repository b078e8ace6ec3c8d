"""Property: ``producer.variant(topic_config=..., max_wait_timeout=...)`` with any settings
either refuses them with VariantInvalidError (at variant(), where librdkafka judges the
values too; the first produce refusing one is tolerated) with nothing sent, or gives a variant whose
messages are delivered intact (or refused as messages) exactly like the producer's."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.helpers import close_within
from tests.properties.conftest import EXAMPLES, PROPERTY_SETTINGS
from tests.properties.ledger import Ledger, assert_nothing_sent
from tests.properties.runner import WAIT_MS, run_single
from tests.properties.strategies import containers, variant_settings
from tests.reliability.report import record
from tests.reliability.sizes import sized
from waterdrop import Producer
from waterdrop.errors import VariantInvalidError

pytestmark = pytest.mark.timeout(sized(600, 7_200))

#: examples run by the current property (hypothesis stops early if it runs out of ideas)
EXAMPLES_RUN = [0]


def test_variants_deliver_intact_or_are_refused_before_sending(mock_cluster):
    """Each example picks a plain or an idempotent producer (acks may not change on the
    latter), each with its own one-partition topic."""
    setups = []
    for idempotent in (False, True):
        topic = f"prop-variants-{idempotent}"
        mock_cluster.create_topic(topic, partitions=1)
        producer = Producer(
            kafka={"bootstrap.servers": mock_cluster.bootstrap_servers, "linger.ms": 0,
                   "enable.idempotence": idempotent},
            max_wait_timeout=WAIT_MS,
        )
        producer.produce_sync(topic="prop-warm-up", payload=b"warm")
        setups.append((producer, Ledger(mock_cluster.bootstrap_servers, topic)))
    outcomes: dict[str, int] = {}
    try:
        EXAMPLES_RUN[0] = 0

        @PROPERTY_SETTINGS
        @given(variant_settings(), st.sampled_from([0, 1]).flatmap(
            lambda n: st.tuples(st.just(n), containers(setups[n][1].topic))),
            st.sampled_from(["async", "sync", "kwargs"]))
        def prop(variant_args: tuple[Any, Any], chosen: tuple[int, Any], how: str) -> None:
            EXAMPLES_RUN[0] += 1
            which, message = chosen
            producer, ledger = setups[which]
            config, wait = variant_args
            kwargs = {"topic_config": config}
            if wait is not None:
                kwargs["max_wait_timeout"] = wait
            try:
                variant = producer.variant(**kwargs)
            except VariantInvalidError as error:
                assert isinstance(error.errors, dict) and error.errors
                assert_nothing_sent(producer)
                outcomes["variant() refused"] = outcomes.get("variant() refused", 0) + 1
                return
            outcome = run_single(variant, producer, ledger, message, how,
                                 refusals=(VariantInvalidError,))
            outcomes[outcome] = outcomes.get(outcome, 0) + 1

        prop()
        assert EXAMPLES_RUN[0] >= EXAMPLES, f"only {EXAMPLES_RUN[0]} examples ran"
        results = {}
        for (producer, ledger), name in zip(setups, ("plain", "idempotent")):
            results[name] = ledger.verify()
            assert ledger.accepted
        record("property_variants", {"examples": EXAMPLES_RUN[0], **results,
                                     "outcomes": dict(outcomes)})
        assert outcomes.get("variant() refused") and outcomes.get("accepted")
    finally:
        for producer, ledger in setups:
            ledger.close()
            close_within(producer)
