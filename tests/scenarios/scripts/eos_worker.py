"""Consume-transform-produce worker for tests/scenarios/test_transaction_crash.py.

    python eos_worker.py BOOTSTRAP INPUT_TOPIC OUTPUT_TOPIC GROUP TRANSACTIONAL_ID END_OFFSET

Consumes INPUT_TOPIC (one partition) with a confluent_kafka Consumer in GROUP (no auto
commit), and for each message, in one waterdrop transaction, produces "out-<value>" to
OUTPUT_TOPIC and marks the message as consumed (the group's offset is committed by the
transaction). Prints "processed <offset>" after every commit and "done" once the message
before END_OFFSET is processed. The same TRANSACTIONAL_ID on every run: a restarted worker's
init_transactions aborts whatever the killed one left open (and fences it, were it alive).
"""

from __future__ import annotations

import sys
import time

from confluent_kafka import Consumer

import waterdrop


def main() -> int:
    bootstrap, source, target, group, transactional_id, end = sys.argv[1:7]
    end_offset = int(end)
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": group,
            # static membership: the restarted worker takes the killed one's place at once
            # instead of waiting for its session to expire
            "group.instance.id": f"{group}-worker",
            "session.timeout.ms": 6_000,
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "auto.offset.reset": "earliest",
            "isolation.level": "read_committed",
        }
    )
    producer = waterdrop.Producer(
        kafka={
            "bootstrap.servers": bootstrap,
            "transactional.id": transactional_id,
            # a transaction left open by a crash blocks read_committed readers until it
            # times out (or the restarted worker aborts it): keep it short
            "transaction.timeout.ms": 30_000,
            "message.timeout.ms": 25_000,  # librdkafka: must not exceed the above
        },
        max_wait_timeout=30_000,
    )
    # Build the client (init_transactions) before the consumer asks for its committed offset:
    # init_transactions aborts the transaction a killed worker left open, whose pending
    # offset commit would otherwise keep the offset fetch waiting until that transaction
    # times out.
    producer.client
    consumer.subscribe([source])
    print("started", flush=True)
    deadline = time.monotonic() + 90
    try:
        while time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is None:
                continue
            if message.error() is not None:
                print(f"consumer error {message.error()}", flush=True)
                continue
            with producer.transaction():
                producer.produce_async(
                    topic=target, key=message.key(), payload=b"out-" + message.value()
                )
                producer.transaction_mark_as_consumed(consumer, message)
            print(f"processed {message.offset()}", flush=True)
            if message.offset() + 1 >= end_offset:
                print("done", flush=True)
                return 0
        print("deadline", flush=True)
        return 1
    finally:
        producer.close()
        consumer.close()


if __name__ == "__main__":
    sys.exit(main())
