"""SIGINT and SIGTERM while waterdrop waits: in produce_sync, flush_sync, close() and inside a
transaction. Each case is a script in its own interpreter, blocked on a mock cluster whose
broker is down; the parent sends the signal once the script is inside the wait.

- SIGINT: KeyboardInterrupt reaches Python from inside the wait (the waits check for
  signals), the script sees it, and the process exits promptly.
- SIGTERM with a Python handler (sys.exit): the handler runs inside the wait, the process
  exits 143 promptly. SIGTERM with the default action: the process dies at once.
- Nothing is lost on the way out: the handler brings the broker back before raising, and
  the exit hook delivers what was still in flight (counted by an atexit hook registered
  before waterdrop's, which therefore runs after it).
- Interpreter exit with 20,000 messages in flight (every request takes 300 ms) and 100 more
  only buffered, without close(): the exit hook delivers all of them, once.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

pytestmark = [
    pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="POSIX signals"),
    pytest.mark.timeout(300),
]

READY_DEADLINE_S = 60.0
EXIT_DEADLINE_S = 60.0

SCRIPT = r'''
import atexit, collections, os, signal, sys, threading, time

HANDLES = []

@atexit.register
def report():          # runs after waterdrop's exit hook (registered later, run earlier)
    pending = sum(1 for h in HANDLES if h.pending)
    codes = collections.Counter(
        h.wait(0, raise_response_error=False).error.code
        for h in HANDLES if not h.pending and h.wait(0, raise_response_error=False).error)
    print(f"EXIT handles={len(HANDLES)} pending={pending} errors={dict(codes)} "
          f"in_topic={in_topic()}", flush=True)

def in_topic():
    """Messages the topic holds (read_committed), read by confluent-kafka."""
    from confluent_kafka import Consumer, TopicPartition
    consumer = Consumer({"bootstrap.servers": cluster.bootstrap_servers, "group.id": "count",
                         "enable.partition.eof": True, "auto.offset.reset": "earliest"})
    consumer.assign([TopicPartition("t", 0, 0)])
    count, end = 0, time.monotonic() + 30
    while time.monotonic() < end:
        message = consumer.poll(0.5)
        if message is None:
            continue
        if message.error() is not None:
            if message.error().code() == -191:      # end of partition
                break
            continue
        count += 1
    consumer.close()
    return count

from waterdrop import Producer, Status
from waterdrop.testing import MockCluster

MODE, TERM = sys.argv[1], sys.argv[2]
cluster = MockCluster(brokers=1)
cluster.create_topic("t", partitions=1)
kafka = {"bootstrap.servers": cluster.bootstrap_servers, "message.timeout.ms": 120_000}
if MODE == "transaction":
    kafka["transactional.id"] = "wd-signal"
producer = Producer(kafka=kafka, max_wait_timeout=120_000)
HANDLES.append(producer.produce_sync(topic="t", payload=b"warm-up"))

def restore():
    cluster.broker_up(1)

def on_sigint(signum, frame):
    restore()
    signal.default_int_handler(signum, frame)      # raises KeyboardInterrupt

signal.signal(signal.SIGINT, on_sigint)
if TERM == "python":
    def on_sigterm(signum, frame):
        restore()
        sys.exit(143)
    signal.signal(signal.SIGTERM, on_sigterm)

def announce(condition):
    def run():
        while not condition():
            time.sleep(0.01)
        time.sleep(0.2)          # the main thread is inside its wait by now
        print("READY", flush=True)
    threading.Thread(target=run, daemon=True).start()

cluster.broker_down(1)
try:
    if MODE == "produce_sync":
        announce(lambda: producer.queue_size >= 1)
        producer.produce_sync(topic="t", payload=b"sync")
    elif MODE == "flush_sync":
        producer.buffer_many([{"topic": "t", "payload": b"%d" % i} for i in range(100)])
        announce(lambda: producer.queue_size >= 100)
        HANDLES.extend(producer.flush_sync())
    elif MODE == "close":
        HANDLES.extend(producer.produce_async(topic="t", payload=b"%d" % i) for i in range(100))
        announce(lambda: producer.status is Status.CLOSING)
        producer.close()
    elif MODE == "transaction":
        announce(lambda: producer.queue_size >= 1)
        with producer.transaction():
            handle = producer.produce_async(topic="t", payload=b"in-transaction")
            HANDLES.append(handle)
            handle.wait()
    print("NOT INTERRUPTED", flush=True)
except KeyboardInterrupt:
    print("KeyboardInterrupt", flush=True)
    sys.exit(130)
'''


def run_scenario(mode: str, sig: int, term: str = "python") -> tuple[int, str, str, float]:
    env = dict(os.environ, PYTHONUNBUFFERED="1", PYTHONFAULTHANDLER="1")
    proc = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(SCRIPT), mode, term],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )
    try:
        end = time.monotonic() + READY_DEADLINE_S
        lines: list[str] = []
        assert proc.stdout is not None
        while True:
            line = proc.stdout.readline()
            if line.strip() == "READY":
                break
            if not line and proc.poll() is not None:
                raise AssertionError(f"script ended before READY:\n{''.join(lines)}\n"
                                     f"{proc.stderr.read() if proc.stderr else ''}")
            lines.append(line)
            if time.monotonic() > end:
                raise AssertionError("script never got into its wait")
        sent = time.monotonic()
        proc.send_signal(sig)
        try:
            out, err = proc.communicate(timeout=EXIT_DEADLINE_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
            raise AssertionError(f"{mode}: still running {EXIT_DEADLINE_S}s after the signal "
                                 f"(hang)\n{out}\n{err[-4000:]}") from None
        return proc.returncode, "".join(lines) + out, err, time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


MODES = ["produce_sync", "flush_sync", "close", "transaction"]


#: What the topic must hold at exit: the warm-up, plus what the interrupted call dispatched
#: (delivered by the exit hook), once; an interrupted transaction is aborted.
IN_TOPIC = {"produce_sync": 2, "flush_sync": 101, "close": 101, "transaction": 1}


def _exit_line(out: str) -> str:
    lines = [line for line in out.splitlines() if line.startswith("EXIT ")]
    assert lines, f"no EXIT line:\n{out}"
    return lines[-1]


@pytest.mark.parametrize("mode", MODES)
def test_sigint_raises_keyboard_interrupt_inside_the_wait_and_nothing_is_lost(mode):
    code, out, err, took = run_scenario(mode, signal.SIGINT)
    print(f"\n[SIGINT in {mode}] exit {code} after {took:.1f}s: {_exit_line(out)}")
    assert "KeyboardInterrupt" in out, f"stdout:\n{out}\nstderr:\n{err[-4000:]}"
    assert "NOT INTERRUPTED" not in out
    assert code == 130, f"exit code {code}\n{err[-4000:]}"
    assert " pending=0 " in _exit_line(out), f"handles left pending at exit: {out}"
    if mode != "transaction":   # an interrupted transaction is aborted: its message purged
        assert "errors={}" in _exit_line(out), f"messages lost at exit: {out}"
    assert _exit_line(out).endswith(f"in_topic={IN_TOPIC[mode]}"), (
        f"the topic should hold {IN_TOPIC[mode]} messages: {_exit_line(out)}")


@pytest.mark.parametrize("mode", MODES)
def test_sigterm_with_a_handler_runs_inside_the_wait_and_exits_promptly(mode):
    code, out, err, took = run_scenario(mode, signal.SIGTERM, "python")
    print(f"\n[SIGTERM handler in {mode}] exit {code} after {took:.1f}s: {_exit_line(out)}")
    assert code == 143, f"exit code {code}\nstdout:\n{out}\nstderr:\n{err[-4000:]}"
    assert "NOT INTERRUPTED" not in out
    assert " pending=0 " in _exit_line(out), f"handles left pending at exit: {out}"
    if mode != "transaction":
        assert "errors={}" in _exit_line(out), f"messages lost at exit: {out}"
    assert _exit_line(out).endswith(f"in_topic={IN_TOPIC[mode]}"), (
        f"the topic should hold {IN_TOPIC[mode]} messages: {_exit_line(out)}")


@pytest.mark.parametrize("mode", MODES)
def test_sigterm_default_action_ends_the_process_at_once(mode):
    code, out, err, took = run_scenario(mode, signal.SIGTERM, "default")
    assert code == -signal.SIGTERM, f"exit code {code}\n{err[-4000:]}"


# --- interpreter exit with messages in flight, no close() -------------------------------------

EXIT_SCRIPT = r'''
import atexit, collections, sys

HANDLES = []

@atexit.register
def report():          # registered before waterdrop's exit hook: runs after it
    from confluent_kafka import Consumer, TopicPartition
    consumer = Consumer({"bootstrap.servers": cluster.bootstrap_servers, "group.id": "count"})
    in_topic = sum(consumer.get_watermark_offsets(TopicPartition("t", p), timeout=30,
                                                  cached=False)[1] for p in range(3))
    consumer.close()
    codes = collections.Counter(
        h.wait(0, raise_response_error=False).error.code for h in HANDLES
        if not h.pending and h.wait(0, raise_response_error=False).error is not None)
    print(f"EXIT handles={len(HANDLES)} pending={sum(h.pending for h in HANDLES)} "
          f"errors={dict(codes)} in_topic={in_topic}", flush=True)

from waterdrop import Producer
from waterdrop.testing import MockCluster

COUNT = int(sys.argv[1])
cluster = MockCluster(brokers=1)
cluster.create_topic("t", partitions=3)
producer = Producer(kafka={"bootstrap.servers": cluster.bootstrap_servers, "linger.ms": 20})
HANDLES.append(producer.produce_sync(topic="t", payload=b"warm-up"))
cluster.set_rtt(-1, 300)        # every request now takes 300 ms: what follows is in flight
HANDLES.extend(producer.produce_async(topic="t", payload=b"%d" % i, partition=i % 3)
               for i in range(COUNT))
producer.buffer_many([{"topic": "t", "payload": b"buffered"} for _ in range(100)])
print(f"LEAVING pending={sum(h.pending for h in HANDLES)} buffered={len(producer.messages)}",
      flush=True)
# no close(), no flush: the interpreter exits here
'''


def test_interpreter_exit_with_messages_in_flight_and_no_close_delivers_them_all():
    count = 20_000
    env = dict(os.environ, PYTHONUNBUFFERED="1", PYTHONFAULTHANDLER="1")
    try:
        result = subprocess.run([sys.executable, "-c", EXIT_SCRIPT, str(count)],
                                capture_output=True, text=True, timeout=120, env=env)
    except subprocess.TimeoutExpired as error:
        pytest.fail(f"the interpreter hung at exit:\n{error.stdout}\n{error.stderr}")
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr[-4000:]}"
    leaving = [line for line in result.stdout.splitlines() if line.startswith("LEAVING ")]
    assert leaving, result.stdout + result.stderr[-4000:]
    print(f"\n[exit without close] {leaving[0]} -> {_exit_line(result.stdout)}")
    pending_at_exit = int(leaving[0].split()[1].split("=")[1])
    assert pending_at_exit > 0, "nothing was in flight at exit: the case proved nothing"
    assert "buffered=100" in leaving[0]
    # every handle resolved, none failed; the topic holds the warm-up, every async message
    # and the 100 buffered ones (flushed by the exit hook), each once
    assert _exit_line(result.stdout) == (
        f"EXIT handles={count + 1} pending=0 errors={{}} in_topic={count + 1 + 100}")
