"""Side-by-side benchmark harness: waterdrop vs confluent-kafka vs librdkafka's own C loop.

Shared by ``bench/compare.py`` (the standalone script) and ``waterdrop bench --compare`` (the
installed command), so that both print the same table. Not part of the public API; the
command line imports it only when ``bench`` runs.

Every scenario runs against one cluster that neither client under test owns: a MockCluster
hosted by a separate process (:class:`.processes.HostedMockCluster`,
``bench/mockcluster_host.py``), or a real broker. Both clients get the same librdkafka settings
(:data:`.settings.COMMON`), 100-byte payloads, and rounds alternate between the two sides
(A, B, A, B, ...); the table shows medians.

Scenarios (the bars are those of the performance issue):

``async``   produce_async, every handle waited, vs confluent-kafka produce() with an
            on_delivery callback plus poll(0) per message and a final flush().   bar >= 2.0x
``many``    produce_many_async in batches of 10,000, every handle waited, vs the C program
            bench/c/produce_bench (rd_kafka_produce F_COPY loop).               bar >= 0.75x
            confluent-kafka's produce_batch() is shown beside it for reference.
``sync``    produce_sync with linger.ms 0, 1,000 in a row: p50/p99 latency vs confluent-kafka
            produce() + flush().                                                bar <= 1.0x
``memory``  peak RSS with 1,000,000 messages in flight (linger.ms 120,000 so they stay queued),
            each client in a fresh subprocess of its own.                       bar <= 1.0x
``flat``    RSS from 2 to 10 million messages produced and acknowledged in a loop (sampled
            after every million), a fresh subprocess per client.                bar |change| <= 2 %
            The change from 1 million is shown beside it, with the part of RSS in glibc's
            per-thread arenas (librdkafka's broker threads build their requests there).

The modules, by concern:

- :mod:`.settings`: the shared settings, payload, topic and run sizes;
- :mod:`.options`: the command-line options of a comparison run;
- :mod:`.clients`: both clients and their timed loops;
- :mod:`.scenarios`: the scenarios and the run over the clusters, which makes the report;
- :mod:`.report`: the report pooled over runs and drawn as a table;
- :mod:`.stats`: percentiles and medians of rounds;
- :mod:`.processes`: the cluster host, the C program and the child interpreters;
- :mod:`.children`: the roles a child process plays (memory, flatness, profiling, host);
- :mod:`.memory`: the process's RSS, C heap and arena readings.

The child processes (memory, flat, and the profiling driver ``path``) load this package *by
path* under another name, so a confluent-kafka child never imports the waterdrop package (and
its librdkafka) and its RSS stays comparable: no module here imports waterdrop at its top, and
this file imports nothing.
"""
