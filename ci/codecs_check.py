#!/usr/bin/env python3
"""Every codec of an *installed* waterdrop really sends: run by ci/no-system-codecs.

    python ci/codecs_check.py [--bootstrap-servers HOST:PORT]

1. ``waterdrop.librdkafka_features()`` has every feature shared/API.md promises (the codecs
   gzip, snappy, lz4, zstd among them);
2. for each codec, a producer with ``compression.type`` set to it sends 200 compressible
   messages to a ``waterdrop.testing.MockCluster`` (librdkafka's mock broker stores the
   compressed batches as they come);
3. confluent-kafka's consumer (its own librdkafka, none of our code) reads them back: every
   payload, in order;
4. with ``--bootstrap-servers`` (or KAFKA_BOOTSTRAP_SERVERS), 2 and 3 again against that
   broker, which decompresses every batch to validate it before it accepts it.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import uuid

REQUIRED = ("gzip", "snappy", "lz4", "zstd", "ssl", "sasl_plain", "sasl_scram", "sasl_oauthbearer")
CODECS = ("gzip", "snappy", "lz4", "zstd")
N = 200
DEADLINE_S = 30.0


def fail(msg: str) -> None:
    print(f"codecs check: FAIL: {msg}", file=sys.stderr, flush=True)
    raise SystemExit(1)


def read_back(bootstrap: str, topic: str, count: int) -> list[bytes]:
    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"wd-codecs-{uuid.uuid4().hex}",
                         "enable.auto.commit": False, "enable.partition.eof": False})
    try:
        consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
        got: list[bytes] = []
        end = time.monotonic() + DEADLINE_S
        while len(got) < count and time.monotonic() < end:
            for message in consumer.consume(num_messages=count - len(got), timeout=0.5):
                if message.error() is not None:
                    fail(f"{topic}: consumer error {message.error()}")
                got.append(message.value())
        return got
    finally:
        consumer.close()


def send_each_codec(bootstrap: str, where: str, create_topic) -> None:
    from waterdrop import Producer

    for codec in CODECS:
        topic = f"wd-codecs-{codec}-{uuid.uuid4().hex[:12]}"
        create_topic(topic)
        payloads = [(f"{codec} {i:05d} " * 40).encode() for i in range(N)]
        producer = Producer()
        producer.setup(kafka={"bootstrap.servers": bootstrap, "compression.type": codec,
                              "linger.ms": 5})
        try:
            reports = producer.produce_many_sync([{"topic": topic, "payload": p} for p in payloads])
        finally:
            producer.close()
        if len(reports) != N:
            fail(f"{where} {codec}: {len(reports)} delivery reports for {N} messages")
        got = read_back(bootstrap, topic, N)
        if got != payloads:
            fail(f"{where} {codec}: read back {len(got)} of {N} messages"
                 + ("" if len(got) != N else ", not the ones sent"))
        print(f"  {where}: {codec:6s} {N} messages sent and read back")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bootstrap-servers", default=os.environ.get("KAFKA_BOOTSTRAP_SERVERS", ""))
    args = ap.parse_args()

    import waterdrop
    from waterdrop.testing import MockCluster

    features = waterdrop.librdkafka_features()
    print(f"waterdrop {waterdrop.__version__} from {os.path.dirname(waterdrop.__file__)}")
    print(f"librdkafka {waterdrop.librdkafka_version()} features: {' '.join(features)}")
    missing = [f for f in REQUIRED if f not in features]
    if missing:
        fail(f"librdkafka_features() lacks {', '.join(missing)}")

    with MockCluster(brokers=1) as mc:
        send_each_codec(mc.bootstrap_servers, "MockCluster",
                        lambda t: mc.create_topic(t, partitions=1, replication_factor=1))

    if args.bootstrap_servers:
        from confluent_kafka.admin import AdminClient, NewTopic

        admin = AdminClient({"bootstrap.servers": args.bootstrap_servers})

        def create(topic: str) -> None:
            admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(timeout=DEADLINE_S)

        send_each_codec(args.bootstrap_servers, f"broker {args.bootstrap_servers}", create)
    print("codecs check: OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
