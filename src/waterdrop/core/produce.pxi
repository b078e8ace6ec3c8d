# The Client's produce paths: a message's C form prepared (topic handle, partition, payload
# and key pointers, headers), one message enqueued (_produce_fields: the per-message hot
# path), a batch enqueued (_produce_many, _send_all: runs to one topic through
# rd_kafka_produce_batch), and the handle each message carries. Functions of the Client
# (their first argument, ``self``): module functions are called directly, and inlined where
# they are ``inline``; a method of a class that can be subclassed goes through its vtable.

# methods: a method of a class that can be subclassed is called through its vtable and never
# inlined, and this runs once per message).
cdef inline DeliveryHandle _attach_handle(Client client, _Msg *m, long long wait_ms):
    """A new handle for prepared ``m``, pinning its payload when librdkafka will point at it,
    with the reference librdkafka holds as the message opaque (counted in flight)."""
    cdef DeliveryHandle handle = _new_handle(
        <str><object>m.f.topic, None if m.f.label == NULL else <object>m.f.label, wait_ms,
        client._waiter)
    if not m.copy and m.payload != NULL:
        handle._error = <object>m.f.payload     # pinned until resolved
        wd_share_ref(m.f.payload)               # ... and released by the poller
    Py_INCREF(handle)
    wd_share_ref(<PyObject *>handle)            # librdkafka's, dropped by the poller
    wd_add_ssize(&client._in_flight, 1)
    m.handle = <PyObject *>handle
    return handle


cdef inline void _detach_handle(Client client, _Msg *m) noexcept:
    """Undo _attach_handle for a message librdkafka did not take: drop the pin and the
    opaque's reference."""
    (<DeliveryHandle>m.handle)._error = None
    Py_DECREF(<object>m.handle)
    m.handle = NULL
    wd_add_ssize(&client._in_flight, -1)


cdef inline object _last_name_of(Client self):
    """The topic produced to last, read under the client's critical section: another thread
    may be replacing it (_prepare), and the reference taken here must not be to a name that
    write just released (ThreadSanitizer found the unlocked read; nothing on a GIL build)."""
    cdef wd_cs_t cs
    wd_cs_begin(&cs, <PyObject *>self)
    name = self._last_name
    wd_cs_end(&cs)
    return name


cdef int _prepare(Client self, _Msg *m, object conf_key, Py_ssize_t transient_refs) except -1:
    """Fill ``m`` from the validated fields it owns (``m.f``): topic handle, partition,
    payload and key pointers, headers."""
    cdef _Topic topic
    cdef const char *pk
    cdef Py_ssize_t pk_len
    cdef Py_buffer *view
    cdef _Fields *f = &m.f
    cdef bint cached
    cdef wd_cs_t cs
    name = <object>f.topic
    # the last topic's three fields, read and written together (the client's critical
    # section: another thread may be switching them; nothing on a GIL build)
    wd_cs_begin(&cs, <PyObject *>self)
    cached = name is self._last_name and conf_key is self._last_conf_key
    if cached:
        topic = self._last_topic
    wd_cs_end(&cs)
    if not cached:
        topic = self._topic(<str>name, conf_key)
        with cython.critical_section(self):
            self._last_name = name
            self._last_conf_key = conf_key
            self._last_topic = topic
    m.rkt = topic.rkt
    if m.plain:
        # _take_plain checked it all: a bytes payload (pinned or copied as below), a bytes
        # key or none, the partition already in m.partition; no partition key, timestamp
        # or headers
        payload = <object>f.payload
        m.payload = PyBytes_AS_STRING(payload)
        m.payload_len = PyBytes_GET_SIZE(payload)
        m.copy = m.payload_len < _PIN_MIN_SIZE and Py_REFCNT(payload) <= transient_refs
        if f.key != NULL:
            m.key = PyBytes_AS_STRING(<object>f.key)
            m.key_len = PyBytes_GET_SIZE(<object>f.key)
        m.timestamp = -1
        return 0
    m.partition = RD_KAFKA_PARTITION_UA if f.partition == NULL else <int32_t>(<object>f.partition)
    if not _is_none(f.partition_key):
        pk = _text_of(<object>f.partition_key, &pk_len)
        m.partition = self._partition_for_key(topic, pk, pk_len)
    payload = <object>f.payload
    if payload is None:
        m.payload = NULL
        m.payload_len = 0
    elif type(payload) is bytes or type(payload) is str:
        # Immutable: librdkafka can point at its bytes (a str's UTF-8 form is cached
        # inside it and lives as long) while the handle keeps the object until resolved:
        # no copy. Unless it is small and nothing else refers to it: the references are
        # then only the ones this call path holds (``transient_refs``: the caller's
        # argument or dict entry, ``m.f``, this local), the object would be freed right
        # after the call, and a copy inside librdkafka's message takes less memory than
        # keeping it (its header and allocator rounding). A miscount can only choose the
        # other way, never an unsafe one.
        m.payload = _text_of(payload, &m.payload_len)
        m.copy = m.payload_len < _PIN_MIN_SIZE and Py_REFCNT(payload) <= transient_refs
    else:
        view = <Py_buffer *>malloc(sizeof(Py_buffer))
        if view == NULL:
            raise MemoryError()
        try:
            PyObject_GetBuffer(payload, view, PyBUF_SIMPLE)
        except BaseException:
            free(view)
            raise
        m.view = view
        m.copy = True
        m.payload = <const char *>view.buf
        m.payload_len = view.len
    if not _is_none(f.key):
        m.key = _text_of(<object>f.key, &m.key_len)
    m.timestamp = -1 if _is_none(f.timestamp) else _timestamp_ms(<object>f.timestamp)
    if not _is_none(f.headers):
        m.headers = _build_headers(<dict>(<object>f.headers))
    return 0


cdef inline rd_kafka_resp_err_t _send(Client self, _Msg *m) noexcept nogil:
    """Enqueue one prepared message; librdkafka copies the key, and the payload only
    when it is a mutable buffer (``m.copy``)."""
    cdef rd_kafka_vu_t vus[8]
    cdef rd_kafka_error_t *error
    cdef rd_kafka_resp_err_t code
    cdef int n = 6
    if m.headers == NULL and m.timestamp < 0:
        if rd_kafka_produce(m.rkt, m.partition, RD_KAFKA_MSG_F_COPY if m.copy else 0,
                            <void *>m.payload,
                            m.payload_len, m.key, m.key_len, m.handle) == -1:
            return rd_kafka_last_error()
        return RD_KAFKA_RESP_ERR_NO_ERROR
    vus[0].vtype = RD_KAFKA_VTYPE_RKT
    vus[0].u.rkt = m.rkt
    vus[1].vtype = RD_KAFKA_VTYPE_PARTITION
    vus[1].u.i32 = m.partition
    vus[2].vtype = RD_KAFKA_VTYPE_MSGFLAGS
    vus[2].u.i = RD_KAFKA_MSG_F_COPY if m.copy else 0
    vus[3].vtype = RD_KAFKA_VTYPE_VALUE
    vus[3].u.mem.ptr = <void *>m.payload
    vus[3].u.mem.size = m.payload_len
    vus[4].vtype = RD_KAFKA_VTYPE_KEY
    vus[4].u.mem.ptr = <void *>m.key
    vus[4].u.mem.size = m.key_len
    vus[5].vtype = RD_KAFKA_VTYPE_OPAQUE
    vus[5].u.ptr = m.handle
    if m.timestamp >= 0:
        vus[n].vtype = RD_KAFKA_VTYPE_TIMESTAMP
        vus[n].u.i64 = m.timestamp
        n += 1
    if m.headers != NULL:
        vus[n].vtype = RD_KAFKA_VTYPE_HEADERS
        vus[n].u.headers = m.headers
        n += 1
    error = rd_kafka_produceva(self.rk, vus, n)
    if error != NULL:
        code = rd_kafka_error_code(error)
        rd_kafka_error_destroy(error)
        return code          # headers stay ours on failure
    m.headers = NULL         # ... and become the message's on success
    return RD_KAFKA_RESP_ERR_NO_ERROR


cdef object _inline_error(Client self, rd_kafka_resp_err_t err):
    """A produce call's error; after a fatal error, the underlying fatal code."""
    if err == RD_KAFKA_RESP_ERR__FATAL:
        fatal = self.fatal_error()
        if fatal is not None:
            return fatal
        return kafka_error(err, None, True)
    return kafka_error(err)


cdef DeliveryHandle _produce_one(Client self, object message, Py_ssize_t max_payload_size,
                                 object conf_key, long long max_wait_ms):
    """Client.produce: one mapping, validated and enqueued."""
    cdef _Fields f
    message = _as_dict(message)
    if type(message) is not dict:
        raise _errors.MessageInvalidError(_wording.not_a_message(message))
    _extract(<dict>message, &f)
    return _produce_fields(self, &f, message, max_payload_size, conf_key, max_wait_ms)


cdef DeliveryHandle _produce_fields(Client self, _Fields *f, object names,
                                    Py_ssize_t max_payload_size, object conf_key,
                                    long long max_wait_ms, bint serving=False,
                                    Py_ssize_t transient_refs=_REFS_DICT, bint borrow=False):
    """Validate and enqueue one message given by its fields (see _check and _prepare).
    ``names``: the message's keys (to name unknown ones). ``serving``: the caller waits
    for it next, serving the queue itself (the poller need not be woken). ``borrow``: ``f``
    holds the caller's own arguments (produce_async / produce_sync keywords), which outlive
    this call, so the _Msg borrows them instead of taking references."""
    cdef _Msg m
    cdef dict errors
    cdef DeliveryHandle handle
    cdef rd_kafka_resp_err_t err
    memset(&m, 0, sizeof(_Msg))
    if borrow:
        # the fields are produce_async's / produce_sync's own arguments, alive until that
        # call returns, which no Python code run meanwhile can rebind: borrowed, not taken
        # (on a free-threaded build each reference taken and dropped is two atomic
        # operations on a count the caller's thread may not own)
        m.f = f[0]
        m.borrowed = True
    else:
        _own_fields(&m, f)
    try:
        last_name = _last_name_of(self)
        if not _plain_valid(&m.f, max_payload_size, last_name):
            errors = _check(&m.f, names, max_payload_size, self._topics, last_name)
            if errors is not None:
                raise _errors.MessageInvalidError(errors)
        _enter_op(self)
        try:
            _prepare(self, &m, conf_key, transient_refs)
            handle = _attach_handle(
                self, &m, self.max_wait_ms if max_wait_ms < 0 else max_wait_ms)
            err = _send(self, &m)
            if err:
                _detach_handle(self, &m)
                raise _inline_error(self, err)
            if not serving and wd_load_int(&self._lazy):
                _wake_poller(self)
            return handle
        finally:
            _leave_op(self)
    finally:
        _msg_release(&m)


cdef list _produce_many(Client self, list messages, Py_ssize_t max_payload_size,
                        object conf_key, long long max_wait_ms):
    """Client.produce_many: every message read and checked first, then all enqueued."""
    cdef Py_ssize_t count = len(messages)
    cdef Py_ssize_t i, failed
    cdef Py_ssize_t ready = 0         # entries of ms initialised
    cdef _Msg *ms
    cdef _Fields f
    cdef dict errors
    cdef rd_kafka_resp_err_t err = 0
    cdef long long wait_ms = self.max_wait_ms if max_wait_ms < 0 else max_wait_ms
    cdef bint shared = False          # ms is the client's reusable array
    if count == 0:
        self._ensure_open()
        return []
    handles = [None] * count
    ms = _take_msgs(self, count, &shared)
    try:
        # every message is read once, into ms with references of its own, and checked;
        # nothing is prepared or sent before the whole batch passed
        last_name = _last_name_of(self)   # once: an older name only means the full check
        for i in range(count):
            message = messages[i]
            if (type(message) is dict
                    and _take_plain(<dict>message, &ms[i], max_payload_size, last_name)):
                ready = i + 1
                continue
            message = _as_dict(message)
            memset(&ms[i], 0, sizeof(_Msg))
            ready = i + 1
            if type(message) is not dict:
                raise _errors.MessageInvalidError(_wording.not_a_message(message), i)
            _extract(<dict>message, &f)
            _own_fields(&ms[i], &f)
            if _plain_valid(&ms[i].f, max_payload_size, last_name):
                continue
            errors = _check(&ms[i].f, message, max_payload_size, self._topics, last_name)
            if errors is not None:
                raise _errors.MessageInvalidError(errors, i)
        _enter_op(self)
        try:
            for i in range(count):
                _prepare(self, &ms[i], conf_key, _REFS_DICT)
                handles[i] = _attach_handle(self, &ms[i], wait_ms)
            with nogil:
                wd_mutex_lock(&self._heap_turn.mutex)
                failed = _send_all(self, ms, count, &err, shared)
                wd_mutex_unlock(&self._heap_turn.mutex)
            if wd_load_int(&self._lazy):
                _wake_poller(self)
            if failed < count:
                error = _inline_error(self, err)
                error.dispatched = [handles[i] for i in range(count) if ms[i].sent]
                error.index = failed
                raise error
            return handles
        finally:
            _leave_op(self)
    finally:
        for i in range(ready):
            if not ms[i].sent and ms[i].handle != NULL:
                _detach_handle(self, &ms[i])       # never reached librdkafka
            _msg_release(&ms[i])
        _give_msgs(self, ms, shared)


cdef _Msg *_take_msgs(Client self, Py_ssize_t count, bint *shared) except NULL:
    """Room for ``count`` prepared messages: the client's reusable array (``shared`` set) if
    this call claims it (another thread may be using it; a huge batch does not take it),
    else a fresh one. Entries are not zeroed."""
    cdef _Msg *ms
    if count <= 65_536 and wd_cas_int(&self._msgs_busy, 0, 1):
        # ours until _give_msgs (with _batch, its companion in _send_all)
        if self._msgs_cap < count:
            ms = <_Msg *>realloc(self._msgs, count * sizeof(_Msg))
            if ms == NULL:
                wd_store_int(&self._msgs_busy, 0)
                raise MemoryError()
            self._msgs = ms
            self._msgs_cap = count
        shared[0] = True
        return self._msgs
    ms = <_Msg *>malloc(count * sizeof(_Msg))
    if ms == NULL:
        raise MemoryError()
    return ms


cdef void _give_msgs(Client self, _Msg *ms, bint shared) noexcept:
    if shared:
        wd_store_int(&self._msgs_busy, 0)
    else:
        free(ms)


cdef inline bint _batchable(Client self, _Msg *m) noexcept nogil:
    """Can go through rd_kafka_produce_batch without breaking "stop at the first
    failure": no headers or timestamp (not supported there), and none of the per-message
    failures (an explicit partition that may not exist, a message over message.max.bytes)
    that would let later messages of the same run through."""
    return (m.headers == NULL and m.timestamp < 0 and m.partition == RD_KAFKA_PARTITION_UA
            and m.payload_len + m.key_len < self._max_msg_bytes)


cdef Py_ssize_t _send_all(Client self, _Msg *ms, Py_ssize_t count,
                          rd_kafka_resp_err_t *first_err, bint shared) noexcept nogil:
    """Enqueue prepared messages; return the index of the first failure (count if none).

    Runs of messages to one topic without headers or timestamps go through
    rd_kafka_produce_batch: one topic lock and one clock read per run instead of per
    message. Once a run has a failure nothing after it is attempted; with queue_full every
    message from the first failure on has failed, so the caller can retry that suffix.
    """
    cdef Py_ssize_t i = 0, j, k, n, failed = count
    cdef rd_kafka_message_t *batch = NULL
    cdef rd_kafka_resp_err_t err
    while i < count:
        n = 1
        if _batchable(self, &ms[i]):
            j = i + 1
            while (j < count and ms[j].rkt == ms[i].rkt and ms[j].copy == ms[i].copy
                   and _batchable(self, &ms[j])):
                j += 1
            n = j - i
            if n > 1 and batch == NULL:
                if shared:
                    # the reusable array's companion (whoever holds one holds both)
                    if self._batch_cap < count:
                        batch = <rd_kafka_message_t *>realloc(
                            self._batch, count * sizeof(rd_kafka_message_t))
                        if batch != NULL:
                            self._batch = batch
                            self._batch_cap = count
                    else:
                        batch = self._batch
                else:
                    batch = <rd_kafka_message_t *>malloc(count * sizeof(rd_kafka_message_t))
                if batch == NULL:      # no memory for the batch array: one by one
                    n = 1

        if n == 1:
            err = _send(self, &ms[i])
            if err:
                first_err[0] = err
                failed = i
                break
            ms[i].sent = True
            i += 1
            continue
        for k in range(n):
            # the fields rd_kafka_produce_batch reads; it sets .err of every message
            batch[k].err = RD_KAFKA_RESP_ERR_NO_ERROR
            batch[k].partition = ms[i + k].partition
            batch[k].payload = <void *>ms[i + k].payload
            batch[k].len = ms[i + k].payload_len
            batch[k].key = <void *>ms[i + k].key
            batch[k].key_len = ms[i + k].key_len
            batch[k]._private = ms[i + k].handle
        # without F_COPY librdkafka points at the pinned payloads; on a message's
        # failure it frees nothing of ours (no F_FREE) and the handle keeps the pin
        rd_kafka_produce_batch(ms[i].rkt, RD_KAFKA_PARTITION_UA,
                               (RD_KAFKA_MSG_F_COPY if ms[i].copy else 0)
                               | RD_KAFKA_MSG_F_PARTITION, batch, <int>n)
        for k in range(n):
            if batch[k].err:
                if failed == count:
                    failed = i + k
                    first_err[0] = batch[k].err
            else:
                ms[i + k].sent = True
        if failed < count:
            break
        i = j
    if not shared or batch != self._batch:
        free(batch)
    return failed
