"""Calls that are wrong, each of which ``mypy --strict`` must reject with the error given.

The single-message methods are overloaded (a ``Message`` mapping, or its fields as keywords),
so a wrong field there is mypy's ``call-overload`` ("No overload variant ... matches argument
types ..."), and a misspelt keyword is named in it. A batch method's list of messages, or a
variable annotated ``Message``, gets the precise TypedDict error (``typeddict-item``,
``typeddict-unknown-key``).

Checked by tests/typing/test_typing.py: every line that ends with ``# E: <code>`` (or
``# E: <code>: <text>``, where <text> must be part of mypy's message) must get an error of that
code on that line (and only errors of the codes listed, comma-separated); a line without
``# E:`` must get none. Nothing here runs: the bodies are functions that are never called.
"""

from __future__ import annotations

from datetime import datetime

from waterdrop import DeliveryHandle, DeliveryReport, Message, Producer, Tombstone, aio
from waterdrop.config import Config, Settings


def single_message_keywords(producer: Producer) -> None:
    producer.produce_sync(topic="orders", payload=b"{}")
    producer.produce_sync(topic="orders", payload=42)  # E: call-overload: types "str", "int"
    producer.produce_sync(topic=123, payload=b"{}")  # E: call-overload: types "int", "bytes"
    producer.produce_sync(topic="orders", paylod=b"{}")  # E: call-overload: did you mean "payload"
    producer.produce_async(topic="orders", payload=b"{}", partiton=3)  # E: call-overload: "partiton"
    producer.produce_sync(topic="orders")  # E: call-overload: argument type "str"
    producer.produce_async(topic="orders", payload=b"{}", key=7)  # E: call-overload: "str", "bytes", "int"
    producer.produce_async(topic="orders", payload=b"{}", partition="3")  # E: call-overload: "str", "bytes", "str"
    producer.produce_async(topic="orders", payload=b"{}", timestamp="now")  # E: call-overload: "str", "bytes", "str"
    producer.produce_async(topic="orders", payload=b"{}", timestamp=datetime.now())
    producer.produce_async(topic="orders", payload=b"{}", headers={"a": 1})  # E: dict-item: "str": "int"
    producer.produce_async(topic="orders", payload=None, headers={"a": ["x", b"y"]})


def single_message_mapping(producer: Producer) -> None:
    producer.produce_sync({"topic": "orders", "payload": b"{}"})
    producer.produce_sync({"topic": "orders", "payload": 42})  # E: call-overload: "dict[str, object]"
    producer.produce_sync({"topic": "orders", "paylod": b"{}"})  # E: call-overload
    producer.produce_sync({"payload": b"{}"})  # E: call-overload: "dict[str, bytes]"
    producer.produce_sync({"topic": "orders"})  # E: call-overload: "dict[str, str]"
    producer.buffer({"topic": "orders", "key": "k"})  # E: call-overload: "dict[str, str]"
    unsent: Message = {"topic": "orders", "key": "k"}  # E: typeddict-item: Missing key "payload"
    producer.produce_sync({"topic": "orders", "payload": b"{}"}, partition=3)  # E: call-overload: Sequence[object]]", "int"
    message: Message = {"topic": "orders", "payload": b"{}", "colour": "red"}  # E: typeddict-unknown-key: "colour"
    loose = {"topic": "orders", "payload": b"{}"}
    producer.produce_async(loose)  # E: call-overload: argument type "dict[str, 
    producer.produce_async(message)


def batches(producer: Producer) -> None:
    producer.produce_many_sync([{"topic": "orders", "payload": b"1"}])
    producer.produce_many_sync([{"topic": "orders", "paylod": b"1"}])  # E: typeddict-item, typeddict-unknown-key: "paylod"
    producer.produce_many_async([{"topic": 1, "payload": b"1"}])  # E: typeddict-item: "topic"
    producer.buffer_many([{"payload": b"1"}])  # E: typeddict-item: Missing key "topic"
    producer.tombstone_many_sync([{"topic": "orders", "key": 1, "partition": 0}])  # E: typeddict-item: "key"
    producer.tombstone_many_async([{"topic": "orders", "key": "k"}])  # E: typeddict-item: Missing key "partition"
    producer.produce_many_sync([{"topic": "orders", "key": "k"}])  # E: typeddict-item: Missing key "payload"


def tombstones_and_buffer(producer: Producer) -> None:
    producer.tombstone_sync(topic="orders", key="k", partition=0)
    producer.tombstone_sync(topic="orders", key="k")  # E: call-overload: types "str", "str"
    producer.tombstone_sync({"topic": "orders", "key": "k"})  # E: call-overload: "dict[str, str]"
    producer.tombstone_async({"topic": "orders", "partition": 0})  # E: call-overload: "dict[str, object]"
    producer.tombstone_sync({"topic": "orders", "key": "k", "partition": 0, "payload": b"x"})  # E: call-overload: "dict[str, object]"
    producer.tombstone_sync(topic="orders", key=None, partition=0)  # E: call-overload: "None", "int"
    gone: Tombstone = {"topic": "orders", "key": "k"}  # E: typeddict-item: Missing key "partition"
    message: Message = {"topic": "orders", "payload": None, "key": "k", "partition": 0}
    producer.tombstone_sync(message)  # E: arg-type: incompatible type "Message"; expected "Tombstone"
    producer.tombstone_async(topic="orders", key="k", partition=0, payload=b"x")  # E: call-overload: keyword argument "payload"
    producer.buffer(topic="orders", payload=42)  # E: call-overload: types "str", "int"
    producer.buffer(topic="orders", payload=b"x", colour="red")  # E: call-overload: keyword argument "colour"


def returns(producer: Producer, handle: DeliveryHandle) -> None:
    report: DeliveryReport = producer.produce_sync(topic="orders", payload=b"{}")
    wrong: int = producer.produce_sync(topic="orders", payload=b"{}")  # E: assignment: "DeliveryReport"
    handles: list[DeliveryHandle] = producer.produce_many_async([])
    offset: str = report.offset  # E: assignment: "int"
    handle.wait(max_wait_timeout="5s")  # E: arg-type: "max_wait_timeout"
    del report, wrong, handles, offset


def variants(producer: Producer) -> None:
    variant = producer.variant(topic_config={"acks": "all"})
    report: DeliveryReport = variant.produce_sync(topic="orders", payload=b"{}")
    variant.produce_sync(topic="orders", payload=42)  # E: call-overload: types "str", "int"
    variant.produce_async(topic=123, payload=b"{}")  # E: call-overload: types "int", "bytes"
    variant.produce_async(topic="orders", payload=b"{}", paylod=b"")  # E: call-overload: "paylod"
    variant.produce_many_async([{"topic": "orders", "payload": 42}])  # E: typeddict-item: "payload"
    variant.tombstone_sync(topic="orders", key="k")  # E: call-overload: types "str", "str"
    variant.tombstone_async({"topic": "orders", "key": "k"})  # E: call-overload: "dict[str, str]"
    variant.produce_sync({"topic": "orders"})  # E: call-overload: "dict[str, str]"
    variant.buffer(topic="orders", payload=42)  # E: call-overload: types "str", "int"
    variant.flush_sync()
    variant.produce_everything()  # E: attr-defined: "produce_everything"
    del report


async def with_asyncio(producer: aio.Producer, handle: DeliveryHandle) -> None:
    report: DeliveryReport = await producer.produce_sync(topic="orders", payload=b"{}")
    wrong: int = await producer.produce_sync(topic="orders", payload=b"{}")  # E: assignment: "DeliveryReport"
    await producer.produce_sync(topic="orders", payload=42)  # E: call-overload: types "str", "int"
    await producer.produce_sync(topic=123, payload=b"{}")  # E: call-overload: types "int", "bytes"
    await producer.produce_sync(topic="orders", paylod=b"{}")  # E: call-overload: "paylod"
    await producer.produce_sync({"topic": "orders"})  # E: call-overload: "dict[str, str]"
    await producer.tombstone_sync({"topic": "orders", "key": "k"})  # E: call-overload: "dict[str, str]"
    producer.tombstone_many_async([{"topic": "orders", "partition": 0}])  # E: typeddict-item: Missing key "key"
    producer.produce_async({"topic": "orders", "payload": 42})  # E: call-overload: "dict[str, object]"
    await producer.produce_many_sync([{"topic": "orders", "paylod": b"1"}])  # E: typeddict-item, typeddict-unknown-key: "paylod"
    not_a_report: int = await handle  # E: assignment: "DeliveryReport"
    also_not: int = await aio.wait(handle)  # E: assignment: "DeliveryReport"
    variant = producer.variant(topic_config={"acks": "all"})
    await variant.produce_sync(topic="orders", payload=42)  # E: call-overload: types "str", "int"
    async with variant.transaction() as tx:
        same: aio.Variant = tx
        other: aio.Producer = tx  # E: assignment: "Variant"
        del same, other
    del report, wrong, not_a_report, also_not


def settings() -> None:
    Producer(kafka={"bootstrap.servers": "localhost:9092"}, max_wait_timeout=5_000)
    Producer(kafka={"bootstrap.servers": "localhost:9092"}, max_wait_timout=5_000)  # E: call-arg: Unexpected keyword argument "max_wait_timout" for "Producer"
    Producer().setup(kafka={"bootstrap.servers": "localhost:9092"}, idle_disconect_timeout=0)  # E: call-arg: Unexpected keyword argument "idle_disconect_timeout" for "setup" of "Producer"
    Producer(kafka={"bootstrap.servers": "localhost:9092"}, wait_on_queue_full="yes")  # E: arg-type: "wait_on_queue_full" to "Producer" has incompatible type "str"; expected "bool"
    Producer(kafka={"bootstrap.servers": 9092j})  # E: dict-item: "str": "complex"
    Producer(kafka={"bootstrap.servers": "localhost:9092"}, non_reloadable_errors="fenced")  # E: arg-type: "non_reloadable_errors"
    Producer(kafka={"bootstrap.servers": "localhost:9092"}, linger_ms=5)  # E: call-arg: "linger_ms"
    aio.Producer(kafka={"bootstrap.servers": "localhost:9092"}, max_wait_timout=5_000)  # E: call-arg: "max_wait_timout"
    aio.Producer().setup(kafka={"bootstrap.servers": "localhost:9092"}, delivr=False)  # E: call-arg: "delivr"
    aio.Producer(kafka={"bootstrap.servers": "localhost:9092"}, executor=None, deliver=False)
    kafka: dict[str, str] = {"bootstrap.servers": "localhost:9092"}
    Producer(kafka=kafka, id="orders", max_payload_size=2_000_000, wait_backoff_on_queue_full=2.5)

    def configure(config: Config) -> None:
        config.kafka = {"bootstrap.servers": "localhost:9092"}
        config.max_wait_timeout = 5_000
        config.max_wait_timout = 5_000  # E: attr-defined: "Config" has no attribute "max_wait_timout"
        config.wait_on_queue_full = "yes"  # E: assignment: "str", variable has type "bool"

    def needs_an_int(config: int) -> None:
        del config

    Producer(configure)
    Producer(configure, max_wait_timeout=5_000)
    aio.Producer(configure)
    Producer(needs_an_int)  # E: arg-type: "Callable[[int], None]"
    Producer().setup(configure, max_wait_timout=1)  # E: call-arg: "max_wait_timout"
    settings: Settings = {"kafka": kafka, "max_wait_timeout": 5_000}
    Producer(**settings)
    typo: Settings = {"kafka": kafka, "max_wait_timout": 5_000}  # E: typeddict-unknown-key: "max_wait_timout"
