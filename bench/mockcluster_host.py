#!/usr/bin/env python3
"""Host a librdkafka MockCluster in a process of its own, so that no client under test owns it.

    python bench/mockcluster_host.py --topic bench --topic other
    python -m waterdrop._bench host --topic bench              # the same, from the package

Starts ``waterdrop.testing.MockCluster(brokers=3)``, creates each ``--topic`` (3 partitions,
replication factor 3 unless told otherwise), prints the bootstrap string as the first line on
stdout, and lives until its stdin closes or it gets SIGTERM/SIGINT. While it lives it reads
commands from stdin, one a line, and answers each with one line:

    topic NAME [PARTITIONS [REPLICATION]]   ->  ok topic NAME
    ping                                    ->  ok ping
    quit                                    ->  ok quit   (then exits)

The benchmark harness (bench/compare.py, ``waterdrop bench --compare``) starts it through
``waterdrop._bench.processes.HostedMockCluster``; this file is a thin entry point for running it
by hand. The cluster runs on librdkafka's own threads; this process only waits.
"""

from __future__ import annotations

import sys

from waterdrop._bench.processes import host_main

if __name__ == "__main__":
    sys.exit(host_main(sys.argv[1:]))
