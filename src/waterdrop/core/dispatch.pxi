# The producer's dispatch hot path: ProducerBase, the Cython base of waterdrop.Producer (the
# policy around it, and every slow path, lives in waterdrop.producer).

#: The variant whose method runs in this thread / asyncio task (None: the producer's default).
CURRENT_VARIANT = _contextvars.ContextVar("waterdrop_current_variant", default=None)
cdef object _CURRENT_VARIANT = CURRENT_VARIANT
cdef object _monotonic = _time.monotonic

cdef extern from *:
    """
    /* PEP 509 dict version tags: every change of a dict gives it a new, globally unique
       tag. Read only where CPython still maintains them without deprecation (3.11). */
    #if PY_VERSION_HEX < 0x030C0000
    #define WD_DICT_VERSIONS 1
    static inline unsigned long long wd_dict_version(PyObject *d) {
        return (unsigned long long)((PyDictObject *)d)->ma_version_tag;
    }
    #else
    #define WD_DICT_VERSIONS 0
    static inline unsigned long long wd_dict_version(PyObject *d) { (void)d; return 0; }
    #endif
    """
    bint _DICT_VERSIONS "WD_DICT_VERSIONS"
    unsigned long long _dict_version "wd_dict_version" (object d)

#: The default of produce_async's keyword fields: the field was not given.
_ABSENT = object()
cdef str _EV_PRODUCED_ASYNC = "message.produced_async"
cdef str _EV_PRODUCED_SYNC = "message.produced_sync"


cdef class ProducerBase:
    """The per-message part of ``waterdrop.Producer``: one dispatch without an interpreter
    frame of its own. Everything else (and every slow path) is Python in the subclass."""

    cdef public object _client
    cdef public long _client_pid
    cdef public Py_ssize_t _max_payload
    cdef public bint _transactional
    cdef public object _transaction_owner
    cdef public object _transaction_first_handle
    cdef public list _middleware_steps
    cdef public object _middleware
    cdef public object monitor
    cdef public object _default_variant
    cdef object _monitor_seen
    cdef object _listeners_seen      # its listener table when last read, and the dicts'
    cdef unsigned long long _monitor_version     # version tags then (see _listening)
    cdef unsigned long long _listeners_version
    cdef bint _listens_async
    cdef bint _listens_sync
    cdef object _variant_seen        # the variant of the last dispatch, and its settings
    cdef object _variant_conf_key
    cdef long long _variant_wait
    cdef dict _monitor_dict
    cdef dict __dict__

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
        the arguments: no dict is built unless middleware, a listener or an error needs it).
        """
        cdef object handle
        cdef double start = 0.0
        cdef _Fields f
        cdef long long wait_ms
        if message is None:
            _fields_of_args(&f, topic, payload, key, partition, partition_key, timestamp,
                            headers, label, rest)
        elif self._middleware_steps or type(message) is not dict:
            return self._produce_async_slow(message)
        if self._transactional and self._transaction_owner != wd_thread_id():
            return self._produce_async_in_transaction(_message_of(message, &f, rest))
        if self._middleware_steps:
            return self._produce_async_slow(_message_of(message, &f, rest))
        timed = self._listening(0)
        if timed:
            start = _monotonic()
        handle = self._dispatch_one(message, &f, rest, "message.produce_async", &wait_ms)
        if self._transactional and self._transaction_first_handle is None:
            self._transaction_first_handle = handle
        if timed:
            self.monitor.instrument(
                "message.produced_async",
                producer_id=self.id,
                message=_message_of(message, &f, rest),
                handle=handle,
                time=(_monotonic() - start) * 1000.0,
            )
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
        elif self._middleware_steps or self._transactional or type(message) is not dict:
            return self._produce_sync_slow(message)
        if self._middleware_steps or self._transactional:
            return self._produce_sync_slow(_message_of(message, &f, rest))
        timed = self._listening(1)
        if timed:
            start = _monotonic()
        handle = self._dispatch_one(message, &f, rest, "message.produce_sync", &wait_ms, True)
        try:
            report = handle.wait(wait_ms, True)
        except (_errors.KafkaError, _errors.WaitTimeoutError) as error:
            raise self._produce_error(_message_of(message, &f, rest), error,
                                      "message.produce_sync") from error
        if timed:
            self.monitor.instrument(
                "message.produced_sync",
                producer_id=self.id,
                message=_message_of(message, &f, rest),
                report=report,
                time=(_monotonic() - start) * 1000.0,
            )
        return report

    cdef object _dispatch_one(self, object message, _Fields *f, dict rest, str error_type,
                              long long *wait_out, bint serving=False):
        """Enqueue one message (a dict, or ``f`` from keyword arguments when ``message`` is
        None) through the current variant, with the retry policies; return its handle and
        put the variant's wait in ``wait_out``."""
        cdef PyObject *value = NULL
        cdef long long wait_ms
        PyContextVar_Get(_CURRENT_VARIANT, NULL, &value)
        variant = <object>value
        Py_DECREF(variant)           # PyContextVar_Get gave a new reference
        if variant is None:
            variant = self._default_variant
        if variant is not self._variant_seen or variant is None:
            self._use_variant(variant)
        # read together (no Python code runs in between): another thread may switch the
        # cached variant as soon as Python code runs
        variant = self._variant_seen
        conf_key = self._variant_conf_key
        wait_ms = self._variant_wait
        wait_out[0] = wait_ms
        client = self._client
        if client is None or self._client_pid != _pid:
            client = self._connect()
        try:
            if type(client) is Client:
                if message is None:
                    return _produce_fields(
                        <Client>client, f, rest, self._max_payload, conf_key, wait_ms, serving, _REFS_ARGS)
                _extract(<dict>message, f)   # here: no Python code runs in between
                return _produce_fields(
                    <Client>client, f, message, self._max_payload, conf_key, wait_ms, serving)
            return client.produce(_message_of(message, f, rest), self._max_payload, conf_key,
                                  wait_ms)
        except (_errors.KafkaError, _errors.ProducerClosedError) as error:
            return self._dispatch_retrying(_message_of(message, f, rest), variant, error,
                                           error_type)

    cdef object _produce_async_slow(self, object message):
        """produce_async of one mapping, the general way (middleware, non-dict mappings)."""
        if self._transactional and self._transaction_owner != wd_thread_id():
            return self._produce_async_in_transaction(message)
        variant = _CURRENT_VARIANT.get()
        if variant is None or variant.producer is not self:
            variant = self._default_variant
            if variant is None:
                raise _errors.ProducerNotConfiguredError(getattr(self, "id", None))
        client = self._client
        if client is None or self._client_pid != _pid:
            client = self._connect()
        if self._middleware_steps:
            message = self._middleware.run(dict(message))
        timed = self._listening(0)
        if timed:
            start = _monotonic()
        try:
            if type(client) is Client:
                handle = _produce_one(<Client>client, message, self._max_payload,
                                                       variant.conf_key, variant.max_wait_timeout)
            else:
                handle = client.produce(message, self._max_payload, variant.conf_key,
                                        variant.max_wait_timeout)
        except (_errors.KafkaError, _errors.ProducerClosedError) as error:
            handle = self._dispatch_retrying(message, variant, error, "message.produce_async")
        if self._transactional and self._transaction_first_handle is None:
            self._transaction_first_handle = handle
        if timed:
            self.monitor.instrument(
                "message.produced_async",
                producer_id=self.id,
                message=message,
                handle=handle,
                time=(_monotonic() - start) * 1000.0,
            )
        return handle

    cdef int _use_variant(self, object variant) except -1:
        """Make ``variant`` (from CURRENT_VARIANT; None or another producer's: the default)
        the one whose settings are cached for the next dispatches. Variants do not change
        once built, so a dispatch through the same one reads two C fields."""
        if variant is None or variant.producer is not self:
            variant = self._default_variant
            if variant is None:
                raise _errors.ProducerNotConfiguredError(getattr(self, "id", None))
        if variant is not self._variant_seen:
            self._variant_conf_key = variant.conf_key
            self._variant_wait = variant.max_wait_timeout
            self._variant_seen = variant
        return 0

    cdef bint _listening(self, int which) except -1:
        """``self.monitor.listening(event)`` without a method call, for
        message.produced_async (``which`` 0) or message.produced_sync (1).

        The monitor's listener table is read from its instance dict (found once per monitor
        object). Where CPython keeps dict version tags (3.11), the answer is cached until
        either dict changes: two integer compares per message instead of two lookups."""
        cdef object listeners
        cdef PyObject *found
        monitor = self.monitor
        if monitor is None:          # not set up yet: the dispatch raises NotConfigured
            return False
        if monitor is not self._monitor_seen:
            self._monitor_seen = monitor
            self._monitor_dict = None
            self._listeners_seen = None
            if (type(monitor).__dict__.get("_listeners") is None
                    and type(getattr(monitor, "__dict__", None)) is dict
                    and type(monitor.__dict__.get("_listeners")) is dict):
                self._monitor_dict = monitor.__dict__
        if self._monitor_dict is None:
            return (_EV_PRODUCED_ASYNC if which == 0 else _EV_PRODUCED_SYNC) in monitor._listeners
        if (_DICT_VERSIONS and self._listeners_seen is not None
                and _dict_version(self._monitor_dict) == self._monitor_version
                and _dict_version(self._listeners_seen) == self._listeners_version):
            return self._listens_async if which == 0 else self._listens_sync
        found = PyDict_GetItemWithError(self._monitor_dict, _K_LISTENERS)
        if found == NULL or type(<object>found) is not dict:
            self._listeners_seen = None
            return (_EV_PRODUCED_ASYNC if which == 0 else _EV_PRODUCED_SYNC) in monitor._listeners
        listeners = <object>found
        self._listens_async = PyDict_GetItemWithError(listeners, _EV_PRODUCED_ASYNC) != NULL
        self._listens_sync = PyDict_GetItemWithError(listeners, _EV_PRODUCED_SYNC) != NULL
        self._listeners_seen = listeners
        self._monitor_version = _dict_version(self._monitor_dict)
        self._listeners_version = _dict_version(listeners)
        return self._listens_async if which == 0 else self._listens_sync


cdef inline PyObject *_arg(object value):
    # (_ABSENT: the keyword was not given, which the contract tells from an explicit None)
    return NULL if value is _ABSENT else <PyObject *>value


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
