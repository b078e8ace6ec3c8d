"""The variant contract: a variant's topic_config is judged when the variant is made, by
WaterDrop's rules (which keys may change per topic) and by librdkafka (their values)."""

from __future__ import annotations

import pytest

from waterdrop import Producer
from waterdrop.errors import VariantInvalidError


@pytest.fixture(scope="module")
def producer():
    producer = Producer(kafka={"bootstrap.servers": "127.0.0.1:1"})
    yield producer
    producer.close()


@pytest.mark.parametrize(
    ("key", "value", "words"),
    [
        ("compression.codec", "zstdd", 'Invalid value "zstdd"'),
        ("acks", "everyone", "Invalid value"),
        ("message.timeout.ms", -1, "outside allowed range"),
        ("partitioner", "alphabetical", "Invalid value"),
    ],
)
def test_a_value_librdkafka_refuses_fails_when_the_variant_is_made(producer, key, value, words):
    with pytest.raises(VariantInvalidError) as info:
        producer.variant(topic_config={key: value})
    reason = info.value.errors[f"topic_config.{key}"]
    assert f"{key}={value}" in reason and words in reason


def test_a_misspelt_per_topic_key_suggests_the_allowed_one(producer):
    with pytest.raises(VariantInvalidError) as info:
        producer.variant(topic_config={"acsk": "all", "compression.typ": "lz4"})
    assert "did you mean 'acks'?" in info.value.errors["topic_config.acsk"]
    assert "did you mean 'compression.type'?" in info.value.errors["topic_config.compression.typ"]


def test_values_librdkafka_accepts_make_a_variant(producer):
    variant = producer.variant(
        topic_config={"acks": "all", "compression.type": "zstd", "compression.level": 3,
                      "message.timeout.ms": 60_000, "partitioner": "murmur2_random"})
    assert variant.topic_config["compression.type"] == "zstd"


def test_a_variant_is_a_waterdrop_variant_to_annotate_with(producer):
    # its repr says waterdrop.Variant: that is where a user imports it from for a type hint
    import waterdrop

    variant = producer.variant(topic_config={"acks": 1})
    assert isinstance(variant, waterdrop.Variant) and "Variant" in waterdrop.__all__
    assert repr(variant).startswith("<waterdrop.Variant ")
