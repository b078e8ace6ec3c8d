"""What the linked librdkafka was built with: every build, wheel or source, has every codec
and the security mechanisms API.md promises, and each codec really sends (read back with
confluent-kafka's own librdkafka)."""

from __future__ import annotations

import pytest

import waterdrop
from tests.helpers import close_within, consume, unique_topic
from waterdrop import Producer

#: API.md: "Every install, wheel or source build, has at least ..."
REQUIRED = {"gzip", "snappy", "lz4", "zstd", "ssl", "sasl_plain", "sasl_scram", "sasl_oauthbearer"}
CODECS = ("gzip", "snappy", "lz4", "zstd")


def test_features_are_a_tuple_of_names():
    features = waterdrop.librdkafka_features()
    assert isinstance(features, tuple)
    assert features and all(isinstance(f, str) and f and "," not in f for f in features)


def test_every_required_feature_is_built_in():
    missing = REQUIRED - set(waterdrop.librdkafka_features())
    assert not missing, f"librdkafka was built without {sorted(missing)}"


@pytest.mark.parametrize("codec", CODECS)
def test_each_codec_sends(cluster, codec):
    topic = unique_topic(f"wd-codec-{codec}")
    cluster.create_topic(topic, partitions=1, replication_factor=1)
    producer = Producer()
    producer.setup(kafka={"bootstrap.servers": cluster.bootstrap_servers,
                          "compression.type": codec})
    payloads = [f"{codec} message {i} ".encode() * 20 for i in range(50)]
    try:
        producer.produce_many_sync([{"topic": topic, "payload": p} for p in payloads])
    finally:
        close_within(producer)
    assert [m.value() for m in consume(cluster.bootstrap_servers, topic, len(payloads))] == payloads
