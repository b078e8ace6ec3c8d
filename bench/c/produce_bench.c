/*
 * produce_bench: librdkafka's own ceiling for the produce path, the yardstick that
 * waterdrop's produce_many_async is measured against (issue 6).
 *
 *   produce_bench BOOTSTRAP TOPIC COUNT SIZE [ROUNDS]
 *
 * Loops rd_kafka_produce() with RD_KAFKA_MSG_F_COPY on one cached topic handle, counts
 * deliveries in dr_msg_cb, calls rd_kafka_poll(rk, 0) every 1,000 messages and
 * rd_kafka_flush() at the end; every message's delivery is accounted for. Same settings as
 * the Python sides: linger.ms 5, acks all, queue.buffering.max.messages 2,000,000,
 * queue.buffering.max.kbytes 4,000,000. Extra settings: PRODUCE_BENCH_X="k=v,k=v".
 * For profilers (bench/profile.py): PRODUCE_BENCH_EXIT_AFTER_LOOP=1 leaves with _exit(0) right
 * after the produce loop (no flush, nothing delivered: only the enqueue path is counted).
 *
 * A warm-up message is produced and flushed before timing (connections up, metadata known).
 * With ROUNDS > 1 the producer is reused and each round is timed separately. With ROUNDS
 * "stdin" it prints "ready", then runs one round per line read from stdin until EOF (so a
 * harness can alternate rounds with another client against one warm producer). Prints one
 * human line per round and one JSON line per round:
 *   {"client":"c","round":1,"messages":N,"size":S,"seconds":T,"msgs_per_s":R,"failed":F}
 *
 * Build: bench/c/build.sh (links the vendored static librdkafka, the same one waterdrop's
 * _core links).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

static long long delivered_ok = 0;
static long long delivered_err = 0;

static void dr_msg_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
    (void)rk;
    (void)opaque;
    if (m->err)
        delivered_err++;
    else
        delivered_ok++;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double cpu_s(void) { /* every thread of this process */
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void set(rd_kafka_conf_t *conf, const char *k, const char *v) {
    char errstr[512];
    if (rd_kafka_conf_set(conf, k, v, errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK) {
        fprintf(stderr, "produce_bench: %s=%s: %s\n", k, v, errstr);
        exit(2);
    }
}

static int produce_one(rd_kafka_t *rk, rd_kafka_topic_t *rkt, void *payload, size_t size) {
    while (rd_kafka_produce(rkt, RD_KAFKA_PARTITION_UA, RD_KAFKA_MSG_F_COPY, payload, size,
                            NULL, 0, NULL) == -1) {
        rd_kafka_resp_err_t err = rd_kafka_last_error();
        if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            fprintf(stderr, "produce_bench: produce failed: %s\n", rd_kafka_err2str(err));
            return -1;
        }
        rd_kafka_poll(rk, 10); /* queue full: let deliveries drain, then retry */
    }
    return 0;
}

int main(int argc, char **argv) {
    char errstr[512];
    if (argc < 5) {
        fprintf(stderr, "usage: %s BOOTSTRAP TOPIC COUNT SIZE [ROUNDS]\n", argv[0]);
        return 2;
    }
    const char *bootstrap = argv[1];
    const char *topic = argv[2];
    long long count = atoll(argv[3]);
    size_t size = (size_t)atoll(argv[4]);
    int from_stdin = argc > 5 && strcmp(argv[5], "stdin") == 0;
    int rounds = from_stdin ? 1 : (argc > 5 ? atoi(argv[5]) : 1);
    if (count < 1 || rounds < 1) {
        fprintf(stderr, "produce_bench: COUNT and ROUNDS must be >= 1\n");
        return 2;
    }

    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    set(conf, "bootstrap.servers", bootstrap);
    set(conf, "linger.ms", "5");
    set(conf, "acks", "all");
    set(conf, "queue.buffering.max.messages", "2000000");
    set(conf, "queue.buffering.max.kbytes", "4000000");
    set(conf, "socket.nagle.disable", "true");   /* as the two Python clients */
    const char *extra = getenv("PRODUCE_BENCH_X");
    if (extra && *extra) {
        char *copy = strdup(extra), *save = NULL;
        for (char *kv = strtok_r(copy, ",", &save); kv; kv = strtok_r(NULL, ",", &save)) {
            char *eq = strchr(kv, '=');
            if (!eq) {
                fprintf(stderr, "produce_bench: PRODUCE_BENCH_X entry without '=': %s\n", kv);
                return 2;
            }
            *eq = '\0';
            set(conf, kv, eq + 1);
        }
        free(copy);
    }
    rd_kafka_conf_set_dr_msg_cb(conf, dr_msg_cb);

    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (!rk) {
        fprintf(stderr, "produce_bench: rd_kafka_new: %s\n", errstr);
        return 1;
    }
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    if (!rkt) {
        fprintf(stderr, "produce_bench: rd_kafka_topic_new: %s\n",
                rd_kafka_err2str(rd_kafka_last_error()));
        return 1;
    }

    char *payload = malloc(size ? size : 1);
    memset(payload, 'x', size ? size : 1);

    /* warm-up: connections and metadata, not timed */
    if (produce_one(rk, rkt, payload, size) || rd_kafka_flush(rk, 60000)) {
        fprintf(stderr, "produce_bench: warm-up failed\n");
        return 1;
    }
    if (delivered_err) {
        fprintf(stderr, "produce_bench: warm-up message not delivered\n");
        return 1;
    }

    int exit_after_loop = getenv("PRODUCE_BENCH_EXIT_AFTER_LOOP") != NULL &&
                          *getenv("PRODUCE_BENCH_EXIT_AFTER_LOOP") == '1';
    int failed_any = 0;
    char line[256];
    if (from_stdin) {
        printf("ready\n");
        fflush(stdout);
    }
    for (int round = 1; from_stdin || round <= rounds; round++) {
        if (from_stdin && !fgets(line, sizeof(line), stdin))
            break;
        delivered_ok = delivered_err = 0;
        double t0 = now_s(), c0 = cpu_s();
        for (long long i = 0; i < count; i++) {
            if (produce_one(rk, rkt, payload, size))
                return 1;
            if ((i + 1) % 1000 == 0)
                rd_kafka_poll(rk, 0);
        }
        if (exit_after_loop) {
            printf("{\"client\":\"c\",\"messages\":%lld,\"enqueue_seconds\":%.6f}\n", count,
                   now_s() - t0);
            fflush(stdout);
            _exit(0);
        }
        rd_kafka_resp_err_t ferr = rd_kafka_flush(rk, 300000);
        double dt = now_s() - t0, cpu = cpu_s() - c0;
        long long failed = count - delivered_ok;
        if (ferr || failed)
            failed_any = 1;
        double rate = (double)count / dt;
        printf("c librdkafka %s: %lld x %zu B in %.3f s = %.0f msgs/s (failed %lld)\n",
               rd_kafka_version_str(), count, size, dt, rate, failed);
        printf("{\"client\":\"c\",\"librdkafka\":\"%s\",\"round\":%d,\"messages\":%lld,"
               "\"size\":%zu,\"seconds\":%.6f,\"cpu_seconds\":%.6f,\"msgs_per_s\":%.1f,"
               "\"failed\":%lld}\n",
               rd_kafka_version_str(), round, count, size, dt, cpu, rate, failed);
        fflush(stdout);
    }

    free(payload);
    rd_kafka_topic_destroy(rkt);
    rd_kafka_destroy(rk);
    return failed_any;
}
