# The client: one librdkafka producer handle with its configuration, topic handles, partition
# counts, queue control and shutdown. Its poller, produce paths and transaction calls are
# parts of their own (core/poller.pxi, core/produce.pxi, core/transactions.pxi).

cdef class _Topic:
    cdef rd_kafka_topic_t *rkt
    cdef str name
    cdef rd_kafka_partitioner_fn partitioner
    cdef bint random_partitioner

    def __dealloc__(self):
        if self.rkt != NULL:
            rd_kafka_topic_destroy(self.rkt)
            self.rkt = NULL


cdef class Client:
    """One librdkafka producer handle, its topic handles and its delivery-report poller.

    Its parts: the poller (core/poller.pxi), the produce paths (core/produce.pxi), the
    transaction calls (core/transactions.pxi); here its state, topics and lifecycle.

    ``config`` is the merged librdkafka configuration with string values. Callbacks (set as
    attributes) run on the poller thread with the GIL, once per drained batch:
    ``on_error(KafkaError)``, ``on_log(level, facility, message)``, ``on_stats(json_str)``,
    ``on_deliveries(list_of_handles)``; any exception they raise goes to ``on_callback_error``.
    """

    cdef rd_kafka_t *rk
    cdef rd_kafka_queue_t *mainq
    cdef readonly str name
    # Shared between threads (docs/free-threading.md): the C flags and counters below are read
    # and written atomically (core/platform.h: plain C on a GIL build); the three _last_*
    # fields only together, under the client's critical section; the dicts and set are
    # Python's own (thread-safe) and only ever filled with setdefault-style updates.
    cdef dict _topics                # (topic_config key, topic) -> _Topic
    cdef object _last_name           # the last topic produced to (by identity) ...
    cdef object _last_conf_key       # ... with this variant key ...
    cdef _Topic _last_topic          # ... and its handle: no lookup for a run of one topic
    cdef _Msg *_msgs                 # produce_many's array, reused by whoever claims ...
    cdef Py_ssize_t _msgs_cap
    cdef int _msgs_busy              # ... this flag (an exchange): other calls malloc theirs
    cdef rd_kafka_message_t *_batch  # _send_all's array for rd_kafka_produce_batch, same
    cdef Py_ssize_t _batch_cap
    cdef dict _partition_counts      # topic -> (count, expires_at)
    cdef set _refreshing             # topics whose count a background thread refreshes
    cdef str _partitioner
    cdef _Waiter _waiter
    cdef object _thread
    cdef int _stopping
    cdef int _closed
    cdef int _closing
    cdef Py_ssize_t _ops             # produce calls inside librdkafka right now (_enter_op)
    cdef int _server_active          # a waiting thread serves the queue; the poller parks
    cdef int _lazy                   # ... and may stay parked after it (see _poll_loop)
    cdef int _poller_parked          # the poller is parked (not in a queue poll)
    cdef int64_t _served_wait_ns     # recent waits of serving waiters (ns): their spin
    cdef list _deferred              # what that thread left for the poller (events, batches)
    cdef Py_ssize_t _max_msg_bytes   # message.max.bytes (batchable messages stay below it)
    cdef _Waiter _park               # where the poller parks meanwhile
    # Its mutex makes a batch enqueue (malloc of every message) and the freeing of delivered
    # events take turns: both hit glibc's main arena, whose lock sleeps at once when
    # contended (one context switch per collision, tens of thousands per million messages).
    cdef _Waiter _heap_turn
    cdef Py_ssize_t _in_flight       # handle references held by librdkafka messages
    cdef readonly long long max_wait_ms
    cdef public object on_error
    cdef public object on_log
    cdef public object on_stats
    cdef public object on_deliveries
    cdef public object delivery_monitor   # a waterdrop Monitor: on_deliveries only if it listens
    cdef _Listening _delivery_listening   # ... to one of these events (core/listening.pxi)
    cdef public object on_callback_error
    cdef public object on_oauth_refresh
    cdef list _recent_errors         # the last errors librdkafka reported (_serve_error) ...
    cdef list _recent_error_logs     # ... and its last error-level log lines (_serve_log)
    cdef object _lock
    cdef object __weakref__

    def __cinit__(self):
        self.rk = NULL
        self.mainq = NULL
        self._delivery_listening = _Listening(
            (_events.MESSAGE_ACKNOWLEDGED, _events.ERROR_OCCURRED, _events.MESSAGE_PURGED))

    def __init__(self, dict config, long long max_wait_ms=DEFAULT_MAX_WAIT_TIMEOUT,
                 str name="waterdrop", bint statistics=False, bint oauth=False,
                 bint start=True):
        cdef char errstr[512]
        cdef rd_kafka_conf_t *conf = rd_kafka_conf_new()
        cdef int events = RD_KAFKA_EVENT_DR | RD_KAFKA_EVENT_ERROR | RD_KAFKA_EVENT_LOG
        self._topics = {}
        self._partition_counts = {}
        self._refreshing = set()
        self._waiter = _Waiter()
        self._waiter.client = self
        self._park = _Waiter()
        self._heap_turn = _Waiter()
        self._deferred = []
        self._recent_errors = []
        self._recent_error_logs = []
        self._lock = _threading.Lock()
        self.max_wait_ms = max_wait_ms
        self.name = name
        self._partitioner = str(config.get("partitioner", "consistent_random"))
        settings = dict(config)
        settings.setdefault("log.queue", "true")
        if statistics:
            events |= RD_KAFKA_EVENT_STATS
        if oauth:
            # the application refreshes OAUTHBEARER tokens (oauthbearer_set_token)
            events |= RD_KAFKA_EVENT_OAUTHBEARER_TOKEN_REFRESH
        try:
            for key, value in settings.items():
                bkey = str(key).encode("utf-8")
                bvalue = str(value).encode("utf-8")
                if rd_kafka_conf_set(conf, bkey, bvalue, errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK:
                    raise _errors.ConfigurationInvalidError(
                        {f"kafka.{key}": errstr.decode("utf-8", "replace")})
        except BaseException:
            rd_kafka_conf_destroy(conf)
            raise
        rd_kafka_conf_set_events(conf, events)
        self._max_msg_bytes = _conf_int(conf, b"message.max.bytes", 1_000_000)
        # rd_kafka_new takes ownership of conf only on success.
        self.rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr))
        if self.rk == NULL:
            rd_kafka_conf_destroy(conf)
            raise _errors.ConfigurationInvalidError({"kafka": errstr.decode("utf-8", "replace")})
        self.mainq = rd_kafka_queue_get_main(self.rk)
        rd_kafka_set_log_queue(self.rk, NULL)
        self._thread = _threading.Thread(target=self._poll_loop, daemon=True,
                                         name=f"waterdrop-poller-{name}")
        _LIVE_NATIVE.add(self)
        if start:
            self._thread.start()

    def start(self):
        """Start serving events (``start=False`` lets callbacks be set first: events such as
        the first OAUTHBEARER refresh are queued from rd_kafka_new() on)."""
        if not self._thread.is_alive() and not self._closed:
            self._thread.start()

    @property
    def poller_thread(self):
        """The thread that serves this client's delivery reports and events."""
        return self._thread

    def __dealloc__(self):
        # Only reached without close() when the owner was lost, and then only for a client
        # whose poller never ran (a running poller holds its client): nothing serves its queue,
        # so destroy it as close() would, without serving or flushing anything. A client that a
        # forked child inherited was abandoned (rk NULL): its threads do not exist here.
        if self.rk != NULL and not self._closed:
            _destroy_unclosed(self)
        free(self._msgs)
        free(self._batch)
        self._msgs = NULL
        self._batch = NULL

    @property
    def closed(self):
        return wd_load_int(&self._closed) != 0

    @property
    def rdkafka_name(self):
        return rd_kafka_name(self.rk).decode() if self.rk != NULL else None

    def _poll_loop(self):
        """The poller thread's target (core/poller.pxi)."""
        _run_poller(self)

    def oauthbearer_set_token(self, str token, long long lifetime_ms, str principal_name,
                              dict extensions=None):
        """Hand librdkafka a new OAUTHBEARER token (after an oauthbearer.token_refresh)."""
        cdef char errstr[512]
        cdef const char **ext = NULL
        cdef Py_ssize_t i, n = 0
        cdef rd_kafka_resp_err_t err
        self._ensure_open()
        flat = []
        for key, value in (extensions or {}).items():
            flat.append(str(key).encode("utf-8"))
            flat.append(str(value).encode("utf-8"))
        n = len(flat)
        if n:
            ext = <const char **>malloc(n * sizeof(char *))
            if ext == NULL:
                raise MemoryError()
            for i in range(n):
                ext[i] = <const char *>(<bytes>flat[i])
        try:
            err = rd_kafka_oauthbearer_set_token(
                self.rk, token.encode("utf-8"), lifetime_ms, principal_name.encode("utf-8"),
                ext, n, errstr, sizeof(errstr))
        finally:
            free(ext)
        if err:
            raise kafka_error(err, errstr.decode("utf-8", "replace"))

    def oauthbearer_set_token_failure(self, str reason):
        """Tell librdkafka the token could not be refreshed (it retries later)."""
        self._ensure_open()
        err = rd_kafka_oauthbearer_set_token_failure(self.rk, reason.encode("utf-8"))
        if err:
            raise kafka_error(err)

    # --- connectivity ----------------------------------------------------------------------------

    def ping(self, long long timeout_ms):
        """Wait until a broker answers a metadata request (brokers only, no topic), at most
        ``timeout_ms``: the number of brokers it names, or -1 when none answered in time.

        The wait runs without the GIL in slices of up to 1 s (Ctrl-C is seen between them);
        a slice must outlast one round trip, so it is never cut shorter than that while time
        is left. Why none answered is in ``recent_errors``.
        """
        cdef const rd_kafka_metadata_t *md = NULL
        cdef rd_kafka_resp_err_t err
        cdef int64_t deadline = wd_now_ns() + max(0, timeout_ms) * 1_000_000
        cdef int64_t started
        cdef int slice_ms, count
        _enter_op(self)
        try:
            while True:
                slice_ms = <int>max(1, min(1000, (deadline - wd_now_ns()) // 1_000_000))
                started = wd_now_ns()
                with nogil:
                    err = rd_kafka_metadata(self.rk, 0, NULL, &md, slice_ms)
                if err == RD_KAFKA_RESP_ERR_NO_ERROR and md != NULL:
                    count = md.broker_cnt
                    rd_kafka_metadata_destroy(md)
                    return count
                if wd_now_ns() >= deadline:
                    return -1
                PyErr_CheckSignals()
                if (wd_now_ns() - started) // 1_000_000 < slice_ms // 2:
                    # refused at once (not a wait for a broker): do not spin on it
                    _time.sleep(min(0.05, max(0, deadline - wd_now_ns()) / 1e9))
        finally:
            _leave_op(self)

    @property
    def recent_errors(self):
        """The last errors librdkafka reported for this client as KafkaError (oldest first,
        at most 16): with ``recent_error_logs``, why ping() found no broker."""
        with cython.critical_section(self):
            return tuple(self._recent_errors or ())

    @property
    def recent_error_logs(self):
        """The text of librdkafka's last error-level log lines (oldest first, at most 16):
        the detail its error events leave out ("Connect to ... failed: Connection refused")."""
        with cython.critical_section(self):
            return tuple(self._recent_error_logs or ())

    # --- topics ----------------------------------------------------------------------------------

    cdef _Topic _topic(self, str name, object conf_key):
        cdef rd_kafka_topic_conf_t *tconf = NULL
        cdef char errstr[512]
        cdef _Topic topic
        cache_key = (conf_key, name) if conf_key is not None else name
        topic = self._topics.get(cache_key)
        if topic is not None:
            return topic
        self._ensure_open()
        # conf_key: a variant's per-topic settings as a sorted tuple of (name, value) pairs
        topic_config = dict(conf_key) if conf_key is not None else None
        partitioner = self._partitioner
        if topic_config:
            tconf = rd_kafka_topic_conf_new()
            for key, value in topic_config.items():
                if rd_kafka_topic_conf_set(tconf, str(key).encode(), _conf_value(value).encode(),
                                           errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK:
                    rd_kafka_topic_conf_destroy(tconf)
                    raise _errors.VariantInvalidError(
                        {f"topic_config.{key}": errstr.decode("utf-8", "replace")})
            partitioner = str(topic_config.get("partitioner", partitioner))
        topic = _Topic.__new__(_Topic)
        topic.name = name
        topic.rkt = rd_kafka_topic_new(self.rk, name.encode("utf-8"), tconf)
        if topic.rkt == NULL:
            if tconf != NULL:
                rd_kafka_topic_conf_destroy(tconf)
            raise kafka_error(rd_kafka_last_error())
        topic.partitioner = _partitioner_by_name(partitioner)
        topic.random_partitioner = partitioner == "random"
        # two threads may build the same topic at once: the first one stored is kept by both
        # (the other's handle is released with its _Topic)
        return <_Topic>self._topics.setdefault(cache_key, topic)

    def refresh_partition_counts(self, dict counts):
        """Set partition counts seen elsewhere (statistics) for another 30 s."""
        expires = _time.monotonic() + 30.0
        for topic, count in counts.items():
            self._partition_counts[topic] = (count, expires)

    def partition_count(self, str topic, int timeout_ms=5000, bint fresh=False):
        """Partitions of ``topic`` from metadata, cached 30 s; -1 when unknown.

        An expired count is still returned while a background thread refreshes it, so only
        the very first lookup of a topic waits for the broker (``fresh=True`` always waits).
        A name the message contract refuses is unknown (-1) and never reaches the topic
        cache, whose names produce trusts as already validated.
        """
        if not _topic_valid(topic):
            return -1
        cached = self._partition_counts.get(topic)
        now = _time.monotonic()
        if cached is not None and (cached[1] > now or not fresh):
            if cached[1] <= now and _claim_refresh(self, topic):
                _threading.Thread(target=self._refresh_partition_count, args=(topic, timeout_ms),
                                  daemon=True, name="waterdrop-metadata").start()
            return cached[0]
        return self._refresh_partition_count(topic, timeout_ms)

    def _refresh_partition_count(self, str topic, int timeout_ms):
        cdef int count = -1
        try:
            if _try_enter_op(self):       # close() waits for this lookup before destroying
                try:
                    count = self._fetch_partition_count(self._topic(topic, None), timeout_ms)
                finally:
                    _leave_op(self)
            if count > 0:
                self._partition_counts[topic] = (count, _time.monotonic() + 30.0)
            return count
        finally:
            self._refreshing.discard(topic)

    cdef int _fetch_partition_count(self, _Topic topic, int timeout_ms) except? -2:
        cdef const rd_kafka_metadata_t *md = NULL
        cdef rd_kafka_resp_err_t err
        cdef int count = -1
        with nogil:
            err = rd_kafka_metadata(self.rk, 0, topic.rkt, &md, timeout_ms)
        if err == 0 and md != NULL:
            if md.topic_cnt > 0 and md.topics[0].err == 0:
                count = md.topics[0].partition_cnt
            rd_kafka_metadata_destroy(md)
        return count

    cdef int32_t _partition_for_key(self, _Topic topic, const char *key, Py_ssize_t keylen) except? -2:
        cdef int count = self.partition_count(topic.name)
        if count <= 0:
            return RD_KAFKA_PARTITION_UA
        if topic.random_partitioner or topic.partitioner == NULL:
            return rand() % count
        return topic.partitioner(topic.rkt, key, keylen, count, NULL, NULL)

    # --- produce (core/produce.pxi) ----------------------------------------------------------

    cdef inline int _ensure_open(self) except -1:
        if wd_load_int(&self._closed) or wd_load_int(&self._closing) or self.rk == NULL:
            raise _errors.ProducerClosedError(self.name)
        return 0

    def produce(self, object message, Py_ssize_t max_payload_size=DEFAULT_MAX_PAYLOAD_SIZE,
                object conf_key=None, long long max_wait_ms=-1):
        """Validate and enqueue one message; return its DeliveryHandle.

        Raises MessageInvalidError (nothing sent) or KafkaError (inline failure, e.g.
        queue_full; the handle is released).
        """
        return _produce_one(self, message, max_payload_size, conf_key, max_wait_ms)

    def produce_many(self, list messages,
                     Py_ssize_t max_payload_size=DEFAULT_MAX_PAYLOAD_SIZE,
                     object conf_key=None, long long max_wait_ms=-1):
        """Validate every message, then enqueue them all; return their handles.

        An invalid message raises MessageInvalidError before anything is sent. An inline
        failure stops the batch: the KafkaError raised carries ``.dispatched`` (the handles
        enqueued) and ``.index`` (the first message that failed).
        """
        return _produce_many(self, messages, max_payload_size, conf_key, max_wait_ms)

    # --- queue control ------------------------------------------------------------------------

    def flush(self, long long timeout_ms):
        """Wait until every message is delivered or failed; False if the time ran out."""
        cdef int64_t deadline = wd_now_ns() + timeout_ms * 1_000_000
        cdef int slice_ms
        cdef rd_kafka_resp_err_t err
        if wd_load_int(&self._closed) or self.rk == NULL:
            raise _errors.ProducerClosedError(self.name)
        while True:
            slice_ms = <int>max(0, min(100, (deadline - wd_now_ns()) // 1_000_000))
            with nogil:
                err = rd_kafka_flush(self.rk, slice_ms)
            if err == RD_KAFKA_RESP_ERR_NO_ERROR:
                return True
            if wd_now_ns() >= deadline:
                return False
            PyErr_CheckSignals()

    def purge(self, bint in_flight=True):
        """Fail every queued (and in-flight) message with purge_queue / purge_inflight."""
        cdef int flags = RD_KAFKA_PURGE_F_QUEUE
        cdef rd_kafka_resp_err_t err
        if in_flight:
            flags |= RD_KAFKA_PURGE_F_INFLIGHT
        self._ensure_open()
        with nogil:
            err = rd_kafka_purge(self.rk, flags)
        if err:
            raise kafka_error(err)

    @property
    def handles_in_flight(self):
        """Handle references librdkafka holds (one per undelivered message); 0 when idle."""
        return wd_load_ssize(&self._in_flight)

    @property
    def queue_length(self):
        """Messages queued or in flight in librdkafka plus reports not yet served."""
        if wd_load_int(&self._closed) or self.rk == NULL:
            return 0
        return rd_kafka_outq_len(self.rk)

    def fatal_error(self):
        """The client's fatal error as KafkaError, or None."""
        cdef char errstr[512]
        cdef rd_kafka_resp_err_t code
        self._ensure_open()
        code = rd_kafka_fatal_error(self.rk, errstr, sizeof(errstr))
        if code == 0:
            return None
        return kafka_error(code, errstr.decode("utf-8", "replace"), True)

    def trigger_test_fatal_error(self, int code, str reason):
        self._ensure_open()
        return rd_kafka_test_fatal_error(self.rk, code, reason.encode())

    # --- transactions (core/transactions.pxi; policy in waterdrop.producer) -----------------

    def init_transactions(self, int timeout_ms):
        _transaction_call(self, _TXN_INIT, timeout_ms)

    def begin_transaction(self):
        _transaction_call(self, _TXN_BEGIN, -1)

    def commit_transaction(self, int timeout_ms=-1):
        _transaction_call(self, _TXN_COMMIT, timeout_ms)

    def abort_transaction(self, int timeout_ms=-1):
        _transaction_call(self, _TXN_ABORT, timeout_ms)

    def send_offsets_to_transaction(self, list offsets, object group, int timeout_ms):
        """Commit consumed offsets in the current transaction.

        ``offsets``: (topic, partition, next_offset, metadata_or_None) tuples. ``group``: the
        consumer's serialized group metadata (``confluent_kafka.Consumer.consumer_group_metadata()``
        returns librdkafka's serialized form) or a plain group id.
        """
        _send_offsets_to_transaction(self, offsets, group, timeout_ms)

    # --- shutdown ------------------------------------------------------------------------------

    def close(self, long long timeout_ms=-1, bint force=False):
        """Flush up to ``timeout_ms`` (purge first when ``force``), then destroy the handle.

        Every handle resolves before this returns: messages still undelivered when the time
        runs out are purged, so their handles fail with purge_queue / purge_inflight instead
        of being dropped.
        """
        cdef rd_kafka_resp_err_t err
        with self._lock:
            if self._closed:
                return True
            if timeout_ms < 0:
                timeout_ms = self.max_wait_ms
            # a producer counts itself in _ops, then reads _closing (_enter_op); here the
            # reverse: one side sees the other's write
            wd_store_int(&self._closing, 1)
            try:
                while wd_load_ssize(&self._ops) > 0:   # another thread is inside produce
                    _time.sleep(0.001)
                delivered = self.flush(timeout_ms)
            except BaseException:
                wd_store_int(&self._closing, 0)   # interrupted: the client stays usable
                raise
            if force or not delivered:
                with nogil:
                    rd_kafka_purge(self.rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT)
                # Purged reports still go through the poller; wait for them to be served.
                self.flush(10_000)
            wd_store_int(&self._stopping, 1)   # before reading _server_active: _claim_queue
            rd_kafka_queue_yield(self.mainq)
            self._park.wake_all()
            if self._thread.ident is None:
                self._thread.start()      # never started: let it drain, then leave
            self._thread.join()
            while wd_load_int(&self._server_active):   # a waiting thread is leaving the queue
                rd_kafka_queue_yield(self.mainq)
                _time.sleep(0.001)
            self._waiter.client = None
            _serve_deferred(self)        # events must be destroyed before the handle
            wd_store_int(&self._closed, 1)
            with cython.critical_section(self):
                self._last_name = self._last_conf_key = self._last_topic = None
            for topic in self._topics.values():
                rd_kafka_topic_destroy((<_Topic>topic).rkt)
                (<_Topic>topic).rkt = NULL
            self._topics.clear()
            rd_kafka_queue_destroy(self.mainq)
            self.mainq = NULL
            with nogil:
                rd_kafka_destroy(self.rk)
            self.rk = NULL
            return delivered

    def abandon(self):
        """Forget the native handle without touching it (a forked child's inherited client)."""
        self._waiter.client = None
        wd_store_int(&self._stopping, 1)
        wd_store_int(&self._closed, 1)
        self.rk = NULL
        self.mainq = NULL
        with cython.critical_section(self):
            self._last_name = self._last_conf_key = self._last_topic = None
        for topic in self._topics.values():
            (<_Topic>topic).rkt = NULL
        self._topics.clear()


cdef void _destroy_unclosed(Client self) noexcept:
    """Client.__dealloc__'s end of a client never closed: its deferred events, topic handles
    and queue go first (librdkafka's order, as in close()), then the handle, without the GIL.
    Nothing is delivered: no poller runs, and messages still queued are dropped by librdkafka
    (their handles hold their client, so a client with messages in flight is never here).
    rd_kafka_destroy does not block on the broker: it stops librdkafka's threads (at most
    1 s for a last telemetry push) and joins them."""
    cdef rd_kafka_t *rk = self.rk
    self.rk = NULL
    wd_store_int(&self._closed, 1)
    if self._deferred is not None:       # (None once the cycle collector cleared the fields)
        for ev in self._deferred:
            rd_kafka_event_destroy(<rd_kafka_event_t *><size_t>ev)
        self._deferred = None
    if self._topics is not None:
        for topic in self._topics.values():
            if (<_Topic>topic).rkt != NULL:
                rd_kafka_topic_destroy((<_Topic>topic).rkt)
                (<_Topic>topic).rkt = NULL
    if self.mainq != NULL:
        rd_kafka_queue_destroy(self.mainq)
        self.mainq = NULL
    with nogil:
        rd_kafka_destroy(rk)


cdef inline int _enter_op(Client self) except -1:
    """Count a call that uses the librdkafka handle (close() waits until none is left), or
    raise ProducerClosedError once close() started. Counted first, then the flag read: close()
    sets the flag, then reads the count, so that one of the two sides sees the other."""
    wd_add_ssize(&self._ops, 1)
    if wd_load_int(&self._closed) or wd_load_int(&self._closing) or self.rk == NULL:
        wd_add_ssize(&self._ops, -1)
        raise _errors.ProducerClosedError(self.name)
    return 0


cdef inline bint _try_enter_op(Client self) noexcept:
    """_enter_op without the error: False once close() started."""
    wd_add_ssize(&self._ops, 1)
    if wd_load_int(&self._closed) or wd_load_int(&self._closing) or self.rk == NULL:
        wd_add_ssize(&self._ops, -1)
        return False
    return True


cdef inline void _leave_op(Client self) noexcept:
    wd_add_ssize(&self._ops, -1)


cdef bint _claim_refresh(Client self, str topic) except -1:
    """One background refresh per topic at a time: True for the thread that gets to start it."""
    with cython.critical_section(self._refreshing):
        if topic in self._refreshing:
            return False
        self._refreshing.add(topic)
        return True


cdef Py_ssize_t _conf_int(rd_kafka_conf_t *conf, const char *name, Py_ssize_t default):
    cdef char buf[64]
    cdef size_t size = sizeof(buf)
    if rd_kafka_conf_get(conf, name, buf, &size) != RD_KAFKA_CONF_OK:
        return default
    try:
        return int(buf.decode("ascii"))
    except ValueError:
        return default


cdef str _conf_value(object value):
    if value is True:
        return "true"
    if value is False:
        return "false"
    return str(value)


def conf_value(value):
    """The librdkafka string form of a setting value (bools as true/false)."""
    return _conf_value(value)


def check_conf(dict settings, bint topic=False):
    """librdkafka's verdict on each setting, set one by one on a configuration that is then
    thrown away (nothing connects): ``{key: (unknown, reason)}`` for every setting it
    refuses, ``unknown`` True when it knows no such property. ``topic``: per-topic settings
    (rd_kafka_topic_conf_set); else the client's (rd_kafka_conf_set). Values take the form
    the client gives them (``conf_value``)."""
    cdef char errstr[512]
    cdef rd_kafka_conf_t *conf = NULL
    cdef rd_kafka_topic_conf_t *tconf = NULL
    cdef rd_kafka_conf_res_t res
    refused = {}
    if topic:
        tconf = rd_kafka_topic_conf_new()
    else:
        conf = rd_kafka_conf_new()
    try:
        for key, value in settings.items():
            bkey = str(key).encode("utf-8")
            bvalue = _conf_value(value).encode("utf-8")
            errstr[0] = 0
            if topic:
                res = rd_kafka_topic_conf_set(tconf, bkey, bvalue, errstr, sizeof(errstr))
            else:
                res = rd_kafka_conf_set(conf, bkey, bvalue, errstr, sizeof(errstr))
            if res != RD_KAFKA_CONF_OK:
                refused[key] = (res == RD_KAFKA_CONF_UNKNOWN, errstr.decode("utf-8", "replace"))
    finally:
        if conf != NULL:
            rd_kafka_conf_destroy(conf)
        if tconf != NULL:
            rd_kafka_topic_conf_destroy(tconf)
    return refused


def conf_properties_doc():
    """librdkafka's own table of its configuration properties (rd_kafka_conf_properties_show,
    Markdown: name, C/P, range, default, importance, description), or "" when no temporary
    file can hold it. Read only to suggest the property nearest a misspelt key."""
    cdef FILE *fp = tmpfile()
    cdef char buf[4096]
    cdef size_t n
    if fp == NULL:
        return ""
    chunks = []
    try:
        rd_kafka_conf_properties_show(fp)
        rewind(fp)
        while True:
            n = fread(buf, 1, sizeof(buf), fp)
            if n == 0:
                break
            chunks.append(buf[:n])
    finally:
        fclose(fp)
    return b"".join(chunks).decode("utf-8", "replace")
