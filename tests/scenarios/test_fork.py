"""Fork safety, each case a scenario in its own interpreter, repeated over many forks.

Rules (WaterDrop's, see the docs' forking page): a producer configured but not used before
fork() works in the child; one used before fork() raises ProducerUsedInParentProcessError in
the child, and close() there never touches the parent's librdkafka handle (it returns at
once); the parent keeps working; nothing the parent owns (a MockCluster included) can hang
a child at exit.

Every scenario runs in ``sys.executable -c`` with a hard timeout, and the scenario itself
kills a child that does not exit in time, so a hang fails the test instead of blocking CI.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")

FORKS = 20
CHILD_TIMEOUT_S = 20.0
SCENARIO_TIMEOUT_S = 180.0

PRELUDE = f'''
import os, signal, sys, threading, time, traceback
import waterdrop
from waterdrop import Producer, ProducerClosedError, Status
from waterdrop.errors import ProducerUsedInParentProcessError
from waterdrop.testing import MockCluster

FORKS = {FORKS}
CHILD_TIMEOUT_S = {CHILD_TIMEOUT_S}
TOPIC = "fork"


def wait_child(pid):
    """The child's exit code; a child still running after CHILD_TIMEOUT_S is killed."""
    deadline = time.monotonic() + CHILD_TIMEOUT_S
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            raise AssertionError(f"child {{pid}} hung for {{CHILD_TIMEOUT_S}} s and was killed")
        time.sleep(0.005)


def fork_and_check(child_body):
    """Run child_body in a forked child that exits the normal way (atexit hooks, finalizers,
    interpreter shutdown); fail unless it exited 0 in time."""
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            child_body()
        except BaseException:
            traceback.print_exc()
            code = 1
        sys.stderr.flush()
        sys.exit(code)
    code = wait_child(pid)
    assert code == 0, f"child exited with {{code}}"


cluster = MockCluster(brokers=1)
cluster.create_topic(TOPIC, partitions=1)
KAFKA = {{"bootstrap.servers": cluster.bootstrap_servers}}
'''


def run_scenario(body: str) -> str:
    code = PRELUDE + textwrap.dedent(body) + '\nprint("SCENARIO OK", flush=True)\n'
    env = dict(os.environ, PYTHONUNBUFFERED="1", PYTHONFAULTHANDLER="1")
    try:
        result = subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            timeout=SCENARIO_TIMEOUT_S,
            env=env,
        )
    except subprocess.TimeoutExpired as error:
        pytest.fail(f"scenario hung for {SCENARIO_TIMEOUT_S} s:\n{error.stderr}")
    assert result.returncode == 0, (
        f"scenario failed ({result.returncode})\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    )
    assert "SCENARIO OK" in result.stdout, result.stdout
    return result.stdout


def test_configured_but_unused_producer_works_in_the_child():
    run_scenario(
        """
        producer = Producer(kafka=KAFKA)
        assert producer.status is Status.CONFIGURED

        def child():
            report = producer.produce_sync(topic=TOPIC, partition=0, payload=str(os.getpid()))
            assert report.error is None and report.offset >= 0
            producer.close()
            assert producer.status is Status.CLOSED

        for _ in range(FORKS):
            fork_and_check(child)

        # every child delivered: the parent's first message comes after all of theirs
        assert producer.status is Status.CONFIGURED
        report = producer.produce_sync(topic=TOPIC, partition=0, payload=b"parent")
        assert report.offset == FORKS, report
        producer.close()
        """
    )


def test_child_exiting_without_close_delivers_through_the_exit_hook():
    run_scenario(
        """
        producer = Producer(kafka=dict(KAFKA, **{"queue.buffering.max.ms": 1_000}))

        def child():
            for i in range(10):
                producer.produce_async(topic=TOPIC, partition=0, payload=f"{os.getpid()}-{i}")
            # no close(): the exit hook delivers what is queued

        for _ in range(FORKS):
            fork_and_check(child)

        report = producer.produce_sync(topic=TOPIC, partition=0, payload=b"parent")
        assert report.offset == FORKS * 10, report
        producer.close()
        """
    )


def test_used_producer_raises_in_the_child_and_close_returns_promptly():
    run_scenario(
        """
        producer = Producer(kafka=KAFKA)
        producer.produce_sync(topic=TOPIC, partition=0, payload=b"before fork")

        # the parent keeps producing while it forks, so forks land mid-dispatch
        stop = threading.Event()
        handles = []

        def keep_producing():
            while not stop.is_set():
                handles.append(producer.produce_async(topic=TOPIC, partition=0, payload=b"bg"))
                time.sleep(0.001)

        background = threading.Thread(target=keep_producing)
        background.start()

        def child():
            try:
                producer.produce_sync(topic=TOPIC, partition=0, payload=b"from child")
            except ProducerUsedInParentProcessError as error:
                assert str(os.getpid()) in str(error)
                assert "was used before a fork" in str(error)
                assert error.pid == os.getpid() and error.parent_pid == os.getppid()
            else:
                raise AssertionError("no ProducerUsedInParentProcessError in the child")
            start = time.monotonic()
            producer.close()
            assert time.monotonic() - start < 5.0, "close() in the child blocked"
            assert producer.status is Status.CLOSED

        def child_closing_at_once():
            start = time.monotonic()
            producer.close()
            assert time.monotonic() - start < 5.0, "close() in the child blocked"

        def child_exiting_without_close():
            pass  # the exit hook must not touch the parent's handle either

        try:
            for i in range(FORKS):
                fork_and_check(child)
                fork_and_check(child_closing_at_once)
                fork_and_check(child_exiting_without_close)
        finally:
            stop.set()
            background.join()

        # the parent is unaffected: everything it sent arrives, and it keeps working
        assert all(h.wait(30_000).error is None for h in handles)
        assert producer.status is Status.CONNECTED
        report = producer.produce_sync(topic=TOPIC, partition=0, payload=b"after forks")
        assert report.offset == 1 + len(handles), (report, len(handles))
        producer.close()
        """
    )


def test_producer_closed_before_fork_stays_closed_in_the_child():
    run_scenario(
        """
        producer = Producer(kafka=KAFKA)
        producer.produce_sync(topic=TOPIC, payload=b"x")
        producer.close()

        def child():
            try:
                producer.produce_sync(topic=TOPIC, payload=b"from child")
            except ProducerClosedError:
                pass
            else:
                raise AssertionError("a closed producer worked in the child")
            producer.close()  # no-op

        for _ in range(FORKS):
            fork_and_check(child)
        """
    )


def test_mock_cluster_in_the_parent_does_not_hang_the_child():
    run_scenario(
        """
        producer = Producer(kafka=KAFKA)
        producer.produce_sync(topic=TOPIC, payload=b"x")
        other = MockCluster(brokers=3)
        other.create_topic("other", partitions=3)

        def child_doing_nothing():
            pass  # exit with both clusters and a used producer inherited

        def child_closing_the_clusters():
            other.close()
            cluster.close()

        for _ in range(FORKS):
            fork_and_check(child_doing_nothing)
            fork_and_check(child_closing_the_clusters)

        # the parent's clusters still serve
        assert producer.produce_sync(topic=TOPIC, payload=b"y").error is None
        with Producer(kafka={"bootstrap.servers": other.bootstrap_servers}) as p:
            assert p.produce_sync(topic="other", partition=2, payload=b"z").error is None
        producer.close()
        other.close()
        """
    )


def test_connection_pool_used_before_fork_gives_the_child_new_producers():
    run_scenario(
        """
        def configure(config, index):
            config.kafka = dict(KAFKA)
            config.id = f"pooled-{index}"

        pool = waterdrop.ConnectionPool(size=2, timeout=5_000, configure=configure)
        with pool.producer() as parent_producer:
            parent_producer.produce_sync(topic=TOPIC, partition=0, payload=b"parent")

        def child():
            with pool.producer() as producer:
                assert producer is not parent_producer
                report = producer.produce_sync(topic=TOPIC, partition=0, payload=b"child")
                assert report.error is None
            pool.shutdown()

        for _ in range(FORKS):
            fork_and_check(child)

        with pool.producer() as producer:
            assert producer is parent_producer
            report = producer.produce_sync(topic=TOPIC, partition=0, payload=b"parent again")
            assert report.offset == FORKS + 1, report
        pool.shutdown()
        """
    )


def test_an_unstarted_client_dropped_in_the_child_is_forgotten_not_destroyed():
    """A Client never started (its __dealloc__ destroys the librdkafka handle in the process
    that made it) is dropped in each child without touching the handle, whose threads do not
    exist there, then dropped in the parent, where it is destroyed."""
    run_scenario(
        """
        import gc
        from waterdrop import _core

        clients = [_core.Client(dict(KAFKA), 10_000, name="unstarted", start=False)
                   for _ in range(3)]

        def child():
            global clients
            clients = None
            gc.collect()

        for _ in range(FORKS):
            fork_and_check(child)
        clients = None
        gc.collect()
        """
    )
