"""The package on an interpreter without fork (Windows): os.fork and os.register_at_fork are
removed before waterdrop is imported, then a producer, a connection pool and an asyncio
producer deliver to a MockCluster and close. This is what the Windows wheel's import and
first use depend on (the fork hooks are registered only where os has them), proven here on
Linux (docs/distribution.md).

The scenario runs in its own interpreter: removing os.fork in this one would break the rest
of the suite."""

from __future__ import annotations

import subprocess
import sys
import textwrap

TIMEOUT_S = 120.0

SCENARIO = textwrap.dedent('''
    import asyncio, os, sys
    for name in ("fork", "forkpty", "register_at_fork"):
        if hasattr(os, name):
            delattr(os, name)

    import waterdrop
    import waterdrop.aio
    import waterdrop.cli
    from waterdrop import ConnectionPool, Producer, connection_pool
    from waterdrop.testing import MockCluster

    assert not hasattr(os, "register_at_fork") and not hasattr(os, "fork")
    with MockCluster(brokers=1) as cluster:
        kafka = {"bootstrap.servers": cluster.bootstrap_servers}

        producer = Producer(kafka=kafka)
        report = producer.produce_sync(topic="no-fork", partition=0, payload=b"sync")
        assert report.error is None and report.offset == 0, report
        handles = [producer.produce_async(topic="no-fork", partition=0, payload=b"%d" % i) for i in range(10)]
        offsets = sorted(h.wait().offset for h in handles)
        assert offsets == list(range(1, 11)), offsets
        producer.close()
        assert producer.status.name == "CLOSED"

        def configure(config):
            config.kafka = dict(kafka)

        connection_pool.setup(size=2, configure=configure)
        with connection_pool.with_producer() as pooled:
            assert pooled.produce_sync(topic="no-fork", partition=0, payload=b"pooled").offset == 11
        connection_pool.shutdown()

        async def main():
            aio = waterdrop.aio.Producer(kafka=kafka)
            report = await aio.produce_sync(topic="no-fork", partition=0, payload=b"aio")
            await aio.close()
            return report.offset

        assert asyncio.run(main()) == 12
    print("no-fork: ok")
''')


def test_imports_produces_and_closes_without_fork():
    proc = subprocess.run([sys.executable, "-c", SCENARIO], capture_output=True, text=True,
                          timeout=TIMEOUT_S)
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr[-4000:]}"
    assert proc.stdout.strip().endswith("no-fork: ok"), proc.stdout
