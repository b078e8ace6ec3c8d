# The producer's dispatch hot path: ProducerBase, the Cython base of waterdrop.Producer (the
# policy around it, and every slow path, lives in waterdrop.producer).

#: The variant whose method runs in this thread / asyncio task (None: the producer's default).
CURRENT_VARIANT = _contextvars.ContextVar("waterdrop_current_variant", default=None)
cdef object _CURRENT_VARIANT = CURRENT_VARIANT
cdef object _monotonic = _time.monotonic

#: The default of produce_async's keyword fields: the field was not given.
_ABSENT = object()
# Compared against from C (a module global would be a dict lookup per use wherever Cython
# cannot cache it: a free-threaded build). Immortal on a free-threaded build: every call
# takes and drops a reference to it per absent field, from every producing thread, and
# without that each is an atomic add on one shared counter.
cdef object _absent = _ABSENT
wd_immortalize(<PyObject *>_ABSENT)

cdef enum:
    _PRODUCED_ASYNC = 1     # ProducerBase._produced's bits: who listens to
    _PRODUCED_SYNC = 2      # message.produced_async, message.produced_sync


cdef class ProducerBase:
    """The per-message part of ``waterdrop.Producer``: one dispatch without an interpreter
    frame of its own. Everything else (and every slow path) is Python in the subclass.

    The hooks the subclass defines (each declared below; the base's raises
    NotImplementedError):

    - ``id``: the producer's id, in event payloads (an attribute)
    - ``_connect()``: the client for this process, connected first if need be
    - ``_dispatch_retrying(message, variant, error, error_type)``: a failed enqueue, retried
      under the producer's policies (queue full, fatal idempotent error, reconnect)
    - ``_produce_error(message, error, error_type)``: the ProduceError for a failed message
    - ``_produce_async_slow(message)``: produce_async with middleware, or of a mapping other
      than a dict
    - ``_produce_sync_slow(message)``: produce_sync with middleware, in a transaction, or of
      a mapping other than a dict
    - ``_produce_async_in_transaction(message)``: produce_async of a transactional producer
      outside a transaction block: the message in a transaction of its own
    """

    # Shared between threads (docs/free-threading.md). Set once by setup(), before the
    # producer is shared: _max_payload, _transactional, _middleware(_steps), monitor, id,
    # _default_variant. Replaced while in use: the client (reconnects, reloads, close) and
    # the cached variant fields, read and written under the producer's critical section
    # (nothing on a GIL build); the transaction owner, a thread id read atomically.
    cdef object _client_ref          # the ``_client`` property
    cdef public long _client_pid
    cdef public Py_ssize_t _max_payload
    cdef public bint _transactional
    cdef unsigned long _owner        # the ``_transaction_owner`` property (0: none)
    cdef public object _transaction_first_handle   # the owner thread's only
    cdef public list _middleware_steps
    cdef public object _middleware
    cdef public object monitor
    cdef public object id
    cdef public object _default_variant
    cdef _Listening _produced        # who listens to the produced events (see _listening)
    cdef object _variant_seen        # the variant of the last dispatch, and its settings
    cdef object _variant_conf_key
    cdef long long _variant_wait
    cdef dict __dict__

    def __cinit__(self, *args, **kwargs):
        self._produced = _Listening(
            (_events.MESSAGE_PRODUCED_ASYNC, _events.MESSAGE_PRODUCED_SYNC))

    @property
    def _client(self):
        """The client of this process (None before the first use and after close)."""
        with cython.critical_section(self):
            return self._client_ref

    @_client.setter
    def _client(self, client):
        with cython.critical_section(self):
            old = self._client_ref
            self._client_ref = client
        del old                  # the last reference may go: outside the critical section

    @property
    def _transaction_owner(self):
        """The id of the thread inside this producer's transaction block, or None."""
        cdef unsigned long owner = wd_load_ulong(&self._owner)
        return owner if owner != 0 else None

    @_transaction_owner.setter
    def _transaction_owner(self, owner):
        wd_store_ulong(&self._owner, 0 if owner is None else <unsigned long>owner)

    # --- the hooks -------------------------------------------------------------------------------

    def _connect(self):
        """Return the producer's client for this process, connecting it first if need be."""
        raise NotImplementedError

    def _dispatch_retrying(self, message, variant, error, error_type):
        """Retry the failed enqueue of ``message`` (``error``) under the producer's policies;
        return its handle or raise its ProduceError."""
        raise NotImplementedError

    def _produce_error(self, message, error, error_type):
        """Report ``message``'s failure (``error``) and return the ProduceError to raise."""
        raise NotImplementedError

    def _produce_async_slow(self, message):
        """produce_async of ``message`` with middleware, or of a mapping other than a dict."""
        raise NotImplementedError

    def _produce_sync_slow(self, message):
        """produce_sync of ``message`` with middleware, in a transaction, or of a mapping other
        than a dict."""
        raise NotImplementedError

    def _produce_async_in_transaction(self, message):
        """produce_async of ``message`` by a transactional producer outside a transaction
        block: in a transaction of its own."""
        raise NotImplementedError

    # --- the dispatch ----------------------------------------------------------------------------

    # binding(False): called directly by the interpreter (see DeliveryHandle.wait). The
    # signature goes in the docstring's first line: the sentinel defaults (_ABSENT) cannot be a
    # __text_signature__, so help() reads it there (and tools read _core.pyi)
    @cython.binding(False)
    @cython.embedsignature.format("python")
    def produce_async(self, message=None, /, *, topic=_ABSENT, payload=_ABSENT, key=_ABSENT,
                      partition=_ABSENT, partition_key=_ABSENT, timestamp=_ABSENT,
                      headers=_ABSENT, label=_ABSENT, **rest):
        """Enqueue one message; return its DeliveryHandle without waiting.

        The message is one mapping, or its fields as keyword arguments (read straight from
        the arguments: no dict is built unless middleware, a listener or an error needs it);
        a mapping with keyword fields too raises TypeError, before anything is sent.
        """
        cdef object handle
        cdef double start = 0.0
        cdef _Fields f
        cdef long long wait_ms
        if message is None:
            _fields_of_args(&f, topic, payload, key, partition, partition_key, timestamp,
                            headers, label, rest)
        elif _fields_given(topic, payload, key, partition, partition_key, timestamp, headers,
                           label, rest):
            raise _mapping_and_fields("produce_async", topic, payload, key, partition,
                                      partition_key, timestamp, headers, label, rest)
        elif self._middleware_steps or type(message) is not dict:
            return self._produce_async_slow(message)
        if self._transactional and wd_load_ulong(&self._owner) != wd_thread_id():
            return self._produce_async_in_transaction(_message_of(message, &f, rest))
        if self._middleware_steps:
            return self._produce_async_slow(_message_of(message, &f, rest))
        timed = _producer_listening(self, _PRODUCED_ASYNC)
        if timed:
            start = _monotonic()
        handle = self._dispatch_one(message, &f, rest, "message.produce_async", &wait_ms)
        if self._transactional and self._transaction_first_handle is None:
            self._transaction_first_handle = handle
        if timed:
            self.monitor.instrument(_events.MESSAGE_PRODUCED_ASYNC, **_payloads.produced_async(
                self.id, _message_of(message, &f, rest), handle, start))
        return handle

    @cython.binding(False)
    @cython.embedsignature.format("python")
    def produce_sync(self, message=None, /, *, topic=_ABSENT, payload=_ABSENT, key=_ABSENT,
                     partition=_ABSENT, partition_key=_ABSENT, timestamp=_ABSENT,
                     headers=_ABSENT, label=_ABSENT, **rest):
        """Send one message and wait for the broker's acknowledgement; return the report.

        A transactional producer commits the message's own transaction before the wait.
        """
        cdef object handle
        cdef double start = 0.0
        cdef _Fields f
        cdef long long wait_ms
        if message is None:
            _fields_of_args(&f, topic, payload, key, partition, partition_key, timestamp,
                            headers, label, rest)
        elif _fields_given(topic, payload, key, partition, partition_key, timestamp, headers,
                           label, rest):
            raise _mapping_and_fields("produce_sync", topic, payload, key, partition,
                                      partition_key, timestamp, headers, label, rest)
        elif self._middleware_steps or self._transactional or type(message) is not dict:
            return self._produce_sync_slow(message)
        if self._middleware_steps or self._transactional:
            return self._produce_sync_slow(_message_of(message, &f, rest))
        timed = _producer_listening(self, _PRODUCED_SYNC)
        if timed:
            start = _monotonic()
        handle = self._dispatch_one(message, &f, rest, "message.produce_sync", &wait_ms, True)
        try:
            if type(handle) is DeliveryHandle:
                report = _handle_wait_sync(<DeliveryHandle>handle, wait_ms)
            else:
                report = handle.wait(wait_ms, True)
        except (_errors.KafkaError, _errors.WaitTimeoutError) as error:
            raise self._produce_error(_message_of(message, &f, rest), error,
                                      "message.produce_sync") from error
        if timed:
            self.monitor.instrument(_events.MESSAGE_PRODUCED_SYNC, **_payloads.produced_sync(
                self.id, _message_of(message, &f, rest), report, start))
        return report

    cdef object _dispatch_one(self, object message, _Fields *f, dict rest, str error_type,
                              long long *wait_out, bint serving=False):
        """Enqueue one message (a dict, or ``f`` from keyword arguments when ``message`` is
        None) through the current variant, with the retry policies; return its handle and
        put the variant's wait in ``wait_out``."""
        cdef PyObject *value = NULL
        cdef long long wait_ms = 0
        cdef bint cached
        cdef wd_cs_t cs
        PyContextVar_Get(_CURRENT_VARIANT, NULL, &value)
        variant = <object>value
        Py_DECREF(variant)           # PyContextVar_Get gave a new reference
        if variant is None:
            variant = self._default_variant
        # the cached variant's fields are read together, and the client with them: another
        # thread may switch them (the producer's critical section; nothing on a GIL build)
        wd_cs_begin(&cs, <PyObject *>self)
        cached = variant is self._variant_seen and variant is not None
        if cached:
            conf_key = self._variant_conf_key
            wait_ms = self._variant_wait
        client = self._client_ref
        wd_cs_end(&cs)
        if not cached:
            variant = self._use_variant(variant)
            conf_key = variant.conf_key
            wait_ms = variant.max_wait_timeout
        wait_out[0] = wait_ms
        if client is None or self._client_pid != _pid:
            client = self._connect()
        try:
            if type(client) is Client:
                if message is None:
                    return _produce_fields(<Client>client, f, rest, self._max_payload, conf_key,
                                           wait_ms, serving, _REFS_ARGS, True)
                _extract(<dict>message, f)   # here: no Python code runs in between
                return _produce_fields(<Client>client, f, message, self._max_payload, conf_key,
                                       wait_ms, serving)
            return client.produce(_message_of(message, f, rest), self._max_payload, conf_key,
                                  wait_ms)
        except (_errors.KafkaError, _errors.ProducerClosedError) as error:
            return self._dispatch_retrying(_message_of(message, f, rest), variant, error,
                                           error_type)

    cdef object _use_variant(self, object variant):
        """Make ``variant`` (from CURRENT_VARIANT; None or another producer's: the default)
        the one whose settings are cached for the next dispatches, and return it. Variants do
        not change once built, so a dispatch through the same one reads two C fields."""
        cdef long long wait_ms
        if variant is None or variant.producer is not self:
            variant = self._default_variant
            if variant is None:
                raise _errors.ProducerNotConfiguredError(self.id)
        conf_key = variant.conf_key
        wait_ms = variant.max_wait_timeout
        with cython.critical_section(self):
            old = (self._variant_seen, self._variant_conf_key)
            self._variant_conf_key = conf_key
            self._variant_wait = wait_ms
            self._variant_seen = variant
        del old                  # released outside the critical section
        return variant


cdef inline bint _producer_listening(ProducerBase self, int event) except -1:
    """Whether the producer's monitor listens to ``event`` (_PRODUCED_ASYNC or
    _PRODUCED_SYNC): ``monitor.listening(...)``, asked again only when its listeners change."""
    monitor = self.monitor
    if monitor is None:          # not set up yet: the dispatch raises NotConfigured
        return False
    return (_listening(self._produced, monitor) & event) != 0


cdef inline PyObject *_arg(object value):
    # (_ABSENT: the keyword was not given, which the contract tells from an explicit None)
    return NULL if value is _absent else <PyObject *>value


cdef inline void _fields_of_args(_Fields *f, object topic, object payload, object key,
                                 object partition, object partition_key, object timestamp,
                                 object headers, object label, dict rest):
    """Borrow produce_async/produce_sync's keyword fields (the arguments keep them alive)."""
    f.topic = _arg(topic)
    f.payload = _arg(payload)
    f.key = _arg(key)
    f.partition = _arg(partition)
    f.partition_key = _arg(partition_key)
    f.timestamp = _arg(timestamp)
    f.headers = _arg(headers)
    f.label = _arg(label)
    f.unknown = len(rest) > 0


cdef inline bint _fields_given(object topic, object payload, object key, object partition,
                               object partition_key, object timestamp, object headers,
                               object label, dict rest):
    """Whether any keyword field was given (alongside a mapping: a TypeError)."""
    absent = _absent
    return not (topic is absent and payload is absent and key is absent
                and partition is absent and partition_key is absent and timestamp is absent
                and headers is absent and label is absent and not rest)


cdef object _mapping_and_fields(str method, object topic, object payload, object key,
                                object partition, object partition_key, object timestamp,
                                object headers, object label, dict rest):
    """The TypeError for a mapping given with keyword fields: nothing is dropped or merged."""
    values = (topic, payload, key, partition, partition_key, timestamp, headers, label)
    names = [name for name, value in zip(_FIELD_KEYS, values) if value is not _ABSENT]
    names.extend(rest)
    return TypeError(_wording.mapping_and_fields(method, names))


cdef object _message_of(object message, _Fields *f, dict rest):
    """The message as a dict: the mapping given, or one built from the keyword fields."""
    cdef PyObject *value
    if message is not None:
        return message
    message = {}
    for name in _FIELD_KEYS:
        value = _field_slot(<PyObject *>name, f)[0]
        if value != NULL:
            message[name] = <object>value
    if rest:
        message.update(rest)
    return message
