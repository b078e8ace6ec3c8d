# The Client's delivery-report poller: one thread per client drains librdkafka's main queue
# without the GIL and takes the GIL once per batch; a thread that waits for its own delivery
# may serve the queue itself meanwhile (_serve_until, from a handle's wait); produce_sync's
# wait spins briefly first when its recent round trips were short. Functions of the Client
# (their first argument, ``self``).

cdef enum:
    _EVENT_BATCH = 64
    _MSG_CHUNK = 1024
    # produce_sync's waiter, serving the queue, first polls it without blocking (yielding the
    # CPU between polls) for twice the recent round trip plus _SPIN_SLACK_NS, when that is at most
    # _SPIN_MAX_NS, so that a fast delivery reaches a thread that is awake; a longer wait
    # blocks at once (a spin that ends before the report comes only burns CPU that the
    # broker thread, or a broker on the same host, needs). One wait counts for at most
    # _SPIN_SAMPLE_MAX_NS in the running estimate, so a lone stall does not stop spinning
    # for long.
    _SPIN_MAX_NS = 200_000
    _SPIN_SLACK_NS = 20_000
    _SPIN_SAMPLE_MAX_NS = 400_000


cdef inline int _drain(rd_kafka_queue_t *q, rd_kafka_event_t **events,
                       int timeout_ms) noexcept nogil:
    """Wait up to ``timeout_ms`` for an event, then take what else is ready (at most
    _EVENT_BATCH): the batch served under one GIL acquisition."""
    cdef int n = 0
    events[0] = rd_kafka_queue_poll(q, timeout_ms)
    if events[0] == NULL:
        return 0
    n = 1
    while n < _EVENT_BATCH:
        events[n] = rd_kafka_queue_poll(q, 0)
        if events[n] == NULL:
            break
        n += 1
    return n


cdef inline int _drain_spinning(rd_kafka_queue_t *q, rd_kafka_event_t **events,
                                int64_t spin_until) noexcept nogil:
    """_drain without blocking: wait for an event by polling the queue's length until the
    clock reaches ``spin_until`` (0 events then).

    The length, not a zero-timeout poll: a poll of an empty queue would take the yield
    meant for the poller (rd_kafka_queue_yield in _serve_until)."""
    while rd_kafka_queue_length(q) == 0:
        if wd_now_ns() >= spin_until:
            return 0
        wd_yield_cpu()
    return _drain(q, events, 0)


cdef _run_poller(Client self):
    """The poller thread's loop (Client._poll_loop): wait without the GIL, take it once per
    drained batch."""
    cdef rd_kafka_event_t *events[_EVENT_BATCH]
    cdef int n, i
    cdef rd_kafka_queue_t *q = self.mainq
    cdef int timeout_ms
    cdef int64_t until
    # The flags it shares with waiting threads and close() (_server_active, _lazy,
    # _poller_parked, _stopping) are read and written atomically (core/platform.h).
    while True:
        if self._deferred:
            try:
                _serve_deferred(self)
            except BaseException:
                PyErr_WriteUnraisable(self._poll_loop)
        if _poller_stays_parked(self):
            # a thread waiting for its delivery serves the queue: stay out of its way
            # (``_lazy``: it has handed the queue back with nothing in flight; stay
            # parked until a produce wakes us, so that a run of produce_sync calls does
            # not wake this thread twice per message)
            until = wd_now_ns() + 100_000_000
            wd_store_int(&self._poller_parked, 1)
            with nogil:
                wd_mutex_lock(&self._park.mutex)
                if _poller_stays_parked(self):
                    wd_cond_wait_until(&self._park.cond, &self._park.mutex, until)
                wd_mutex_unlock(&self._park.mutex)
            wd_store_int(&self._poller_parked, 0)
            if not wd_load_int(&self._server_active):
                wd_store_int(&self._lazy, 0)      # woken, or 100 ms passed: serve again
            continue
        # once close() asked us to stop: drain what is there, then leave (log events may
        # keep arriving forever while a broker is unreachable)
        timeout_ms = 0 if wd_load_int(&self._stopping) else 1000
        with nogil:
            n = _drain(q, events, timeout_ms)
        if n > 0:
            try:
                _serve(self, events, n)
            except BaseException:
                PyErr_WriteUnraisable(self._poll_loop)
            if wd_load_int(&self._server_active):
                # a waiter started serving while we held these events: wake it from
                # its poll so it sees what we resolved
                rd_kafka_queue_yield(q)
        elif (wd_load_int(&self._stopping) and not self._deferred
              and not wd_load_int(&self._server_active)):
            return


cdef inline bint _poller_stays_parked(Client self) noexcept nogil:
    return ((wd_load_int(&self._server_active) or wd_load_int(&self._lazy))
            and not wd_load_int(&self._stopping))


cdef _serve(Client self, rd_kafka_event_t **events, int n, list resolved=None):
    """Handle drained events.

    ``resolved`` is given on a thread that waits for its own delivery: delivery reports
    are resolved there and the batches collected in ``resolved`` (the waiter notifies
    them once it has handed the queue back); every other event goes to the poller.

    The handles of a batch are collected for ``on_deliveries`` only when it listens (the
    decision is taken once per batch); otherwise only those with callbacks or a waker.
    """
    cdef int i
    cdef int etype
    cdef list delivered = None
    cdef bint any_dr = False
    cdef bint full = False
    try:
        for i in range(n):
            etype = rd_kafka_event_type(events[i])
            if resolved is not None and etype != RD_KAFKA_EVENT_DR:
                self._deferred.append(<size_t>events[i])
                events[i] = NULL         # the poller's now
                continue
            if etype == RD_KAFKA_EVENT_DR:
                if not any_dr:
                    any_dr = True
                    full = self.on_deliveries is not None and _deliveries_listened(self)
                delivered = _serve_dr(self, events[i], delivered, full)
            elif etype == RD_KAFKA_EVENT_ERROR:
                _serve_error(self, events[i])
            elif etype == RD_KAFKA_EVENT_LOG:
                _serve_log(self, events[i])
            elif etype == RD_KAFKA_EVENT_STATS:
                _serve_stats(self, events[i])
            elif etype == RD_KAFKA_EVENT_OAUTHBEARER_TOKEN_REFRESH:
                _serve_oauth(self, events[i])
    finally:
        # every event of the batch, even after an exception, freed in one go: with the
        # GIL held (so never beside a single produce, which mallocs under the GIL) and in
        # turn with batch enqueues, which run without it (see _heap_turn). A batch
        # enqueue never needs the GIL, so waiting for it here cannot deadlock.
        wd_mutex_lock(&self._heap_turn.mutex)
        for i in range(n):
            if events[i] != NULL:
                rd_kafka_event_destroy(events[i])
        wd_mutex_unlock(&self._heap_turn.mutex)
    if any_dr:
        self._waiter.wake_all()
        if delivered is not None:
            if resolved is not None:
                resolved.append((delivered, full))
            else:
                _notify(self, delivered, full)


cdef _notify(Client self, list delivered, bint full):
    """Run what waits on a batch of resolved handles: their callbacks, then listeners
    (``full``: ``delivered`` is the whole batch, for on_deliveries)."""
    cdef DeliveryHandle h
    cdef object waker = None
    cdef list woken = None
    cdef dict others = None
    callback = self.on_deliveries
    for handle in delivered:
        h = <DeliveryHandle>handle
        if h._extra is None:
            continue
        hw = _handle_run_callbacks(h)
        if hw is not None:
            if woken is None:
                waker, woken = hw, [h]
            elif hw is waker:
                woken.append(h)
            else:                       # handles awaited on several loops
                if others is None:
                    others = {}
                others.setdefault(hw, []).append(h)
    if woken is not None:
        _call(self, waker.push_many, "delivery", (woken,))
        if others is not None:
            for other, handles in others.items():
                _call(self, other.push_many, "delivery", (handles,))
    if full and callback is not None:
        _call(self, callback, "delivery", (delivered,))


cdef bint _deliveries_listened(Client self) except -1:
    """False when ``delivery_monitor`` is set and listens to none of the delivery events:
    on_deliveries is then not called at all (a produce_sync gets one call per message
    otherwise)."""
    if self.delivery_monitor is None:
        return True
    return _listening(self._delivery_listening, self.delivery_monitor) != 0


cdef _serve_deferred(Client self):
    """On the poller thread: the events a waiting thread drained but left for the poller."""
    cdef rd_kafka_event_t *ev
    while self._deferred:
        ev = <rd_kafka_event_t *><size_t>self._deferred.pop(0)
        _serve(self, &ev, 1)


cdef list _serve_dr(Client self, rd_kafka_event_t *ev, list delivered, bint full):
    """Resolve a delivery report's handles; add them to ``delivered`` (all of them when
    ``full``, else only those with callbacks or a waker) and return it (None if empty)."""
    cdef const rd_kafka_message_t *msgs[_MSG_CHUNK]
    cdef size_t count, i
    cdef const rd_kafka_message_t *m
    cdef PyObject *h           # borrowed: librdkafka's reference keeps it (released below)
    cdef const char *errstr
    cdef int has_extra
    while True:
        count = rd_kafka_event_message_array(ev, msgs, _MSG_CHUNK)
        if count == 0:
            break
        for i in range(count):
            m = msgs[i]
            if m._private == NULL:
                continue
            h = <PyObject *>m._private
            if m.err:
                errstr = rd_kafka_message_produce_errstr(m)
                error = kafka_error(
                    m.err, errstr.decode("utf-8", "replace") if errstr != NULL else None,
                    m.err == RD_KAFKA_RESP_ERR__FATAL)
            else:
                error = None
            has_extra = _resolve_handle(<DeliveryHandle>h, m.partition, m.offset, error,
                                        rd_kafka_message_latency(m))
            if full or has_extra > 0:
                if delivered is None:
                    delivered = []
                delivered.append(<object>h)
            # The reference taken at produce time, released exactly once, here (no other
            # reference taken meanwhile: on a free-threaded build each would be two atomic
            # operations on a count the producing thread's references share)
            Py_DECREF(<object>h)
            wd_add_ssize(&self._in_flight, -1)
        if count < _MSG_CHUNK:
            break
    return delivered


cdef _serve_error(Client self, rd_kafka_event_t *ev):
    cdef char errstr[512]
    cdef int fatal = rd_kafka_event_error_is_fatal(ev)
    cdef rd_kafka_resp_err_t code = rd_kafka_event_error(ev)
    cdef const char *text = rd_kafka_event_error_string(ev)
    message = text.decode("utf-8", "replace") if text != NULL else None
    if fatal:
        code = rd_kafka_fatal_error(self.rk, errstr, sizeof(errstr))
        message = errstr.decode("utf-8", "replace")
    error = kafka_error(code, message, fatal != 0)
    _remember(self, self._recent_errors, error)
    if self.on_error is not None:
        _call(self, self.on_error, "error", (error,))


cdef _serve_log(Client self, rd_kafka_event_t *ev):
    cdef const char *fac
    cdef const char *text
    cdef int level
    if rd_kafka_event_log(ev, &fac, &text, &level) != 0:
        return
    if level <= 3:   # LOG_ERR and worse: kept for ping()'s cause
        _remember(self, self._recent_error_logs, (text or b"").decode("utf-8", "replace"))
    if self.on_log is not None:
        _call(self, self.on_log, "log", (level, (fac or b"").decode("utf-8", "replace"),
                                        (text or b"").decode("utf-8", "replace")))


cdef _remember(Client self, list recent, object item):
    """Keep ``item`` among the last 16 of ``recent`` (read by Client.recent_errors and
    recent_error_logs on another thread: under the client's critical section)."""
    if recent is None:
        return
    with cython.critical_section(self):
        recent.append(item)
        if len(recent) > 16:
            del recent[0]


cdef _serve_stats(Client self, rd_kafka_event_t *ev):
    cdef const char *stats = rd_kafka_event_stats(ev)
    if self.on_stats is not None and stats != NULL:
        _call(self, self.on_stats, "statistics", (stats.decode("utf-8", "replace"),))


cdef _serve_oauth(Client self, rd_kafka_event_t *ev):
    cdef const char *config = rd_kafka_event_config_string(ev)
    if self.on_oauth_refresh is not None:
        _call(self, self.on_oauth_refresh, "oauthbearer_token_refresh",
                   ((config or b"").decode("utf-8", "replace"),))


cdef _call(Client self, fn, str kind, tuple args):
    try:
        fn(*args)
    except BaseException as exc:
        handler = self.on_callback_error
        if handler is None:
            PyErr_WriteUnraisable(fn)
            return
        try:
            handler(kind, exc)
        except BaseException:
            PyErr_WriteUnraisable(handler)


cdef inline void _wake_poller(Client self) noexcept:
    wd_store_int(&self._lazy, 0)
    self._park.wake_all()


cdef inline bint _claim_queue(Client self) noexcept:
    """Make the calling thread the one that serves the queue (_serve_until), if nobody does
    and the client is not closing: one at a time, whoever wins the exchange; it sets
    ``_server_active`` back once done. close() sets ``_stopping`` first, then waits while
    ``_server_active``: one of the two sides sees the other's flag."""
    if wd_load_int(&self._server_active) or not wd_cas_int(&self._server_active, 0, 1):
        return False
    if wd_load_int(&self._stopping) or wd_load_int(&self._closed) or self.mainq == NULL:
        wd_store_int(&self._server_active, 0)
        self._park.wake_all()
        return False
    return True


cdef bint _serve_until(Client self, DeliveryHandle h, int64_t deadline, bint spin) except -1:
    """Serve this client's queue on the waiting thread until ``h`` resolves.

    The delivery report then reaches the thread that waits for it directly, without a
    hop through the poller thread (which parks meanwhile). ``spin``: the caller waits for
    the one message it has just produced (produce_sync); while such round trips were short
    (``_served_wait_ns``, which only the thread serving the queue reads and writes) it
    spins first, which saves the wake-up of a blocked thread. False on timeout.
    """
    cdef rd_kafka_event_t *events[_EVENT_BATCH]
    cdef rd_kafka_queue_t *q = self.mainq
    cdef int n
    cdef int slice_ms
    cdef int64_t now
    cdef int64_t start = wd_now_ns()
    cdef list resolved = []
    # Serve for a short while only: the point is a fast answer for a fast delivery. A
    # slow one is waited for on the condition variable while the poller serves again,
    # so error and log events are never held back behind a long wait.
    cdef int64_t serve_until = min(deadline, start + 200_000_000)
    cdef int64_t budget = 2 * self._served_wait_ns + _SPIN_SLACK_NS
    cdef int64_t spin_until = 0
    if spin and budget <= _SPIN_MAX_NS:
        spin_until = min(serve_until, start + budget)
    # the caller claimed the queue (_claim_queue set _server_active)
    if not wd_load_int(&self._poller_parked):
        rd_kafka_queue_yield(q)    # the poller leaves its poll and parks
    try:
        while wd_load_int(&h._state) == _PENDING:
            now = wd_now_ns()
            if now >= serve_until:
                break
            if now < spin_until:
                with nogil:
                    n = _drain_spinning(q, events, spin_until)
            else:
                slice_ms = <int>min(10, (deadline - now) // 1_000_000 + 1)
                with nogil:
                    n = _drain(q, events, slice_ms)
            if n > 0:
                _serve(self, events, n, resolved)
            if wd_load_int(&self._stopping):
                break
            PyErr_CheckSignals()
    finally:
        if spin:
            # this round trip in the estimate that sizes the next spin (an average over
            # about the last 8), while this thread still owns the queue and the estimate
            self._served_wait_ns += (min(wd_now_ns() - start, <int64_t>_SPIN_SAMPLE_MAX_NS)
                                     - self._served_wait_ns) // 8
        # hand the queue back before any user code runs: a listener that waits for another
        # delivery must find the poller serving, not parked behind us
        wd_store_int(&self._server_active, 0)
        if wd_load_ssize(&self._in_flight) > 0 or self._deferred or wd_load_int(&self._stopping):
            _wake_poller(self)
        else:
            # nothing left to deliver: the poller may stay parked until the next produce
            # (or 100 ms at most, for error, log and statistics events)
            wd_store_int(&self._lazy, 1)
            if wd_load_ssize(&self._in_flight) > 0:
                # another thread produced meanwhile and read _lazy before it was set (a
                # producer counts in flight, then reads _lazy: one side sees the other)
                _wake_poller(self)
        for delivered, full in resolved:
            _notify(self, <list>delivered, full)
    if wd_load_int(&h._state) == _PENDING:
        # still on its way (or close() is under way and will resolve it)
        return _handle_wait_condvar(h, deadline)
    return True
