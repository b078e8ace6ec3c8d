# librdkafka's mock cluster (waterdrop.testing.MockCluster): brokers in this process, for
# tests, the demo and the benchmark.

cdef class MockCluster:
    """librdkafka's in-process Kafka cluster: real protocol on 127.0.0.1, fault injection."""

    cdef rd_kafka_t *rk
    cdef rd_kafka_mock_cluster_t *mc
    cdef readonly str bootstrap_servers
    cdef readonly int brokers
    cdef object __weakref__

    def __cinit__(self):
        self.rk = NULL
        self.mc = NULL

    def __init__(self, int brokers=3):
        cdef char errstr[512]
        cdef rd_kafka_conf_t *conf
        if brokers < 1:
            raise ValueError("a mock cluster needs at least one broker")
        conf = rd_kafka_conf_new()
        rd_kafka_conf_set(conf, b"log_level", b"3", errstr, sizeof(errstr))
        self.rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr))
        if self.rk == NULL:
            rd_kafka_conf_destroy(conf)
            raise RuntimeError(errstr.decode())
        self.mc = rd_kafka_mock_cluster_new(self.rk, brokers)
        if self.mc == NULL:
            rd_kafka_destroy(self.rk)
            self.rk = NULL
            raise RuntimeError("could not start the mock cluster")
        self.brokers = brokers
        self.bootstrap_servers = rd_kafka_mock_cluster_bootstraps(self.mc).decode()
        _LIVE_NATIVE.add(self)

    def abandon(self):
        """Forget the native cluster without touching it (in a forked child)."""
        self.mc = NULL
        self.rk = NULL

    cdef int _check(self, rd_kafka_resp_err_t err) except -1:
        if err:
            raise kafka_error(err)
        return 0

    cdef inline int _open(self) except -1:
        if self.mc == NULL:
            raise RuntimeError("the mock cluster is closed")
        return 0

    def create_topic(self, str topic, int partitions=1, int replication_factor=1):
        self._open()
        self._check(rd_kafka_mock_topic_create(self.mc, topic.encode(), partitions,
                                               replication_factor))

    def broker_down(self, int broker_id):
        self._open()
        self._check(rd_kafka_mock_broker_set_down(self.mc, broker_id))

    def broker_up(self, int broker_id):
        self._open()
        self._check(rd_kafka_mock_broker_set_up(self.mc, broker_id))

    def set_rtt(self, int broker_id, int rtt_ms):
        """Delay every response of ``broker_id`` (-1: all brokers) by ``rtt_ms``."""
        self._open()
        self._check(rd_kafka_mock_broker_set_rtt(self.mc, broker_id, rtt_ms))

    def set_leader(self, str topic, int partition, int broker_id):
        self._open()
        self._check(rd_kafka_mock_partition_set_leader(self.mc, topic.encode(), partition,
                                                       broker_id))

    def push_request_errors(self, int api_key, errors):
        """The next requests of ``api_key`` (0 = Produce) fail with ``errors`` in order.

        Each error is a librdkafka code or name (``"not_leader_for_partition"``).
        """
        cdef rd_kafka_resp_err_t *codes
        cdef Py_ssize_t i, n = len(errors)
        self._open()
        codes = <rd_kafka_resp_err_t *>malloc(max(1, n) * sizeof(rd_kafka_resp_err_t))
        try:
            for i in range(n):
                e = errors[i]
                codes[i] = ERROR_CODES[e] if isinstance(e, str) else int(e)
            rd_kafka_mock_push_request_errors_array(self.mc, api_key, n, codes)
        finally:
            free(codes)

    def clear_request_errors(self, int api_key):
        self._open()
        rd_kafka_mock_clear_request_errors(self.mc, api_key)

    def close(self):
        if self.mc != NULL:
            with nogil:
                rd_kafka_mock_cluster_destroy(self.mc)
            self.mc = NULL
        if self.rk != NULL:
            with nogil:
                rd_kafka_destroy(self.rk)
            self.rk = NULL

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __dealloc__(self):
        if self.mc != NULL:
            rd_kafka_mock_cluster_destroy(self.mc)
        if self.rk != NULL:
            rd_kafka_destroy(self.rk)
