# A message: its fields read from a dict (or produce_async's keywords) in one pass, the
# per-message contract on them, and the prepared C form librdkafka gets (_Msg). The contract
# decides here whether a field is valid; the reason for one that is not comes from
# waterdrop.contracts.wording (the texts the Python contracts share), called only then.

cdef dict _MSG = _wording.MESSAGE
cdef str _MISSING = _MSG["missing"]
cdef frozenset _MESSAGE_KEYS = frozenset(
    ("topic", "payload", "key", "partition", "partition_key", "timestamp", "headers", "label"))
cdef object _datetime = _dt.datetime
cdef object _timezone_utc = _dt.timezone.utc
cdef object _EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_dt.timezone.utc)

# Topic names: ASCII letters, digits, '_', '-' and '.' (WaterDrop's /\A(\w|-|\.)+\z/), at
# most 249 of them (Kafka's limit): both from the wording module, which explains a refusal.
cdef Py_ssize_t _TOPIC_MAX_LENGTH = _wording.TOPIC_MAX_LENGTH
cdef bint _TOPIC_CHARS[128]
memset(_TOPIC_CHARS, 0, sizeof(_TOPIC_CHARS))
for _c in range(128):
    _TOPIC_CHARS[_c] = chr(_c) in _wording.TOPIC_CHARS


cdef bint _topic_valid(object topic):
    cdef Py_ssize_t size, i
    cdef const char *data
    cdef unsigned char c
    if type(topic) is not str:
        return False
    if not (<str>topic).isascii():
        return False
    data = PyUnicode_AsUTF8AndSize(topic, &size)
    if size == 0 or size > _TOPIC_MAX_LENGTH:
        return False
    for i in range(size):
        c = <unsigned char>data[i]
        if c >= 128 or not _TOPIC_CHARS[c]:
            return False
    return True


cdef inline bint _nonempty_key(object value):
    t = type(value)
    if t is bytes:
        return PyBytes_GET_SIZE(value) > 0
    if t is str:
        return len(<str>value) > 0
    return False


cdef bint _headers_valid(dict headers):
    for name, value in headers.items():
        if type(name) is not str:
            return False
    return True


cdef int _headers_values_valid(dict headers) except -1:
    t = None
    for value in headers.values():
        t = type(value)
        if t is str or t is bytes:
            continue
        if t is list or t is tuple:
            for item in value:
                if type(item) is not str and type(item) is not bytes:
                    return 0
            continue
        return 0
    return 1


cdef int64_t _timestamp_ms(object ts) except? -2:
    """Milliseconds since the epoch, or -2 when the value is not a valid timestamp."""
    if type(ts) is int:
        if ts < 0 or ts > 0x7FFFFFFFFFFFFFFF:
            return -2
        return <int64_t>ts
    if isinstance(ts, _datetime):
        if ts.tzinfo is None:
            ts = ts.replace(tzinfo=_timezone_utc)
        delta = ts - _EPOCH
        ms = (delta.days * 86_400_000 + delta.seconds * 1000 + delta.microseconds // 1000)
        if ms < 0:
            return -2
        return <int64_t>ms
    return -2


cdef enum:
    _REFS_DICT = 3         # a payload's references in Client._prepare when only its message
                           # dict keeps it (the dict, the _Msg, _prepare's local)
    _REFS_ARGS = 3         # ... when passed as produce_async's keyword argument (the
                           # caller's stack, the parsed argument, the local; the _Msg
                           # borrows the argument's: see _produce_fields)
    _PIN_MIN_SIZE = 512    # bytes / str payloads this large are never copied (Client._prepare)


cdef struct _Fields:
    # References to a message's values (NULL: key absent): borrowed from the message dict
    # or the call's arguments, or owned when inside a _Msg (see _own_fields).
    PyObject *topic
    PyObject *payload
    PyObject *key
    PyObject *partition
    PyObject *partition_key
    PyObject *timestamp
    PyObject *headers
    PyObject *label
    bint unknown


cdef struct _Msg:
    rd_kafka_topic_t *rkt
    int32_t partition
    const char *payload
    Py_ssize_t payload_len
    const char *key
    Py_ssize_t key_len
    int64_t timestamp          # -1: none
    rd_kafka_headers_t *headers
    PyObject *handle           # owned reference handed to librdkafka as the message opaque
    _Fields f                  # owned references to the message's values: whatever Python
                               # code runs meanwhile, payload and key stay alive and valid
    Py_buffer *view            # a buffer payload's view (malloc'd; NULL for bytes / str)
    bint copy                  # librdkafka copies the payload (a mutable buffer, or a small
                               # bytes / str nothing else keeps); otherwise it points at the
                               # payload object, which the handle keeps until it resolves
    bint sent                  # librdkafka accepted it (and owns the handle reference)
    bint borrowed              # ``f`` borrows the references of the call's own arguments
                               # (they outlive the _Msg): _msg_release does not drop them
    bint plain                 # read by _take_plain: only topic / payload / key / partition,
                               # checked there (m.partition set); _prepare skips the rest


cdef inline void _msg_release(_Msg *m) noexcept:
    """Drop what a prepared message holds (not the handle)."""
    if m.view != NULL:
        PyBuffer_Release(m.view)
        free(m.view)
        m.view = NULL
    if m.borrowed:
        memset(&m.f, 0, sizeof(_Fields))
    else:
        _fields_release(&m.f)
    if m.headers != NULL:
        rd_kafka_headers_destroy(m.headers)
        m.headers = NULL


cdef inline void _own_fields(_Msg *m, _Fields *f) noexcept:
    """Copy extracted fields into ``m`` with a reference of its own to each value."""
    m.f = f[0]
    Py_XINCREF(m.f.topic)
    Py_XINCREF(m.f.payload)
    Py_XINCREF(m.f.key)
    Py_XINCREF(m.f.partition)
    Py_XINCREF(m.f.partition_key)
    Py_XINCREF(m.f.timestamp)
    Py_XINCREF(m.f.headers)
    Py_XINCREF(m.f.label)


cdef inline void _fields_release(_Fields *f) noexcept:
    Py_XDECREF(f.topic)
    Py_XDECREF(f.payload)
    Py_XDECREF(f.key)
    Py_XDECREF(f.partition)
    Py_XDECREF(f.partition_key)
    Py_XDECREF(f.timestamp)
    Py_XDECREF(f.headers)
    Py_XDECREF(f.label)
    memset(f, 0, sizeof(_Fields))


# Interned key objects: a literal key in user code is the same object, so the common case
# is a pointer comparison; equal strings built at run time still match by value.
cdef str _K_TOPIC = "topic"
cdef str _K_PAYLOAD = "payload"
cdef str _K_KEY = "key"
cdef str _K_PARTITION = "partition"
cdef str _K_PARTITION_KEY = "partition_key"
cdef str _K_TIMESTAMP = "timestamp"
cdef str _K_HEADERS = "headers"
cdef str _K_LABEL = "label"


# The same names in field order: the by-value match and _message_of walk them.
cdef tuple _FIELD_KEYS = (_K_TOPIC, _K_PAYLOAD, _K_KEY, _K_PARTITION, _K_PARTITION_KEY,
                          _K_TIMESTAMP, _K_HEADERS, _K_LABEL)


cdef inline PyObject **_field_slot(PyObject *k, _Fields *f) noexcept:
    """The field of ``f`` a key fills, matched by identity with the interned names (the most
    common first); NULL for any other object."""
    if k == <PyObject *>_K_TOPIC:
        return &f.topic
    if k == <PyObject *>_K_PAYLOAD:
        return &f.payload
    if k == <PyObject *>_K_KEY:
        return &f.key
    if k == <PyObject *>_K_LABEL:
        return &f.label
    if k == <PyObject *>_K_PARTITION:
        return &f.partition
    if k == <PyObject *>_K_HEADERS:
        return &f.headers
    if k == <PyObject *>_K_PARTITION_KEY:
        return &f.partition_key
    if k == <PyObject *>_K_TIMESTAMP:
        return &f.timestamp
    return NULL


cdef PyObject **_field_slot_by_value(PyObject *k, _Fields *f) noexcept:
    """The field a str key equal to one of the names (built at run time) fills; NULL for
    anything else. A str compared with a str runs no Python code."""
    cdef str name
    if type(<object>k) is str:
        for name in _FIELD_KEYS:
            if <str><object>k == name:
                return _field_slot(<PyObject *>name, f)
    return NULL


cdef void _extract(dict msg, _Fields *f) noexcept:
    """One pass over the message's items (usually two) instead of a lookup per known key.

    Keys are matched by identity first (literal keys are the interned names), by value only
    for a key that is none of them by identity."""
    cdef Py_ssize_t pos = 0
    cdef Py_ssize_t left = PyDict_Size(msg)
    cdef PyObject *k
    cdef PyObject *v
    cdef PyObject **slot
    memset(f, 0, sizeof(_Fields))
    while left > 0 and PyDict_Next(msg, &pos, &k, &v):
        left -= 1
        slot = _field_slot(k, f)
        if slot == NULL:
            slot = _field_slot_by_value(k, f)
            if slot == NULL:
                f.unknown = True
                continue
        slot[0] = v


cdef inline bint _take_plain(dict msg, _Msg *m, Py_ssize_t max_payload_size,
                             object known_topic) noexcept:
    """produce_many's fast path: a message dict whose keys are only ``topic``, ``payload``,
    ``key`` and ``partition`` (the interned names, by identity), its topic the one produced
    to last (validated then), a bytes payload within the limit, no key or a non-empty bytes
    key, no partition or an int in -1..INT32_MAX: valid by the contract, read into ``m``
    (zeroed here) with a reference of its own to each value, and ``m.plain`` set. False for
    anything else, ``m`` untouched: the general path (_extract, _check) reads it instead, so a
    refusal has the same reasons and index. No Python code runs."""
    cdef Py_ssize_t pos = 0
    cdef Py_ssize_t n = PyDict_GET_SIZE(msg)
    cdef PyObject *k
    cdef PyObject *v
    cdef PyObject *topic = NULL
    cdef PyObject *payload = NULL
    cdef PyObject *key = NULL
    cdef PyObject *partition = NULL
    cdef long long part = RD_KAFKA_PARTITION_UA
    cdef int overflow = 0
    if n < 2 or n > 4:
        return False
    while n > 0 and PyDict_Next(msg, &pos, &k, &v):     # (no last call to find the end)
        n -= 1
        if k == <PyObject *>_K_TOPIC:
            topic = v
        elif k == <PyObject *>_K_PAYLOAD:
            payload = v
        elif k == <PyObject *>_K_KEY:
            key = v
        elif k == <PyObject *>_K_PARTITION:
            partition = v
        else:
            return False      # another field, or a name not interned: the general walk
    if (topic == NULL or topic != <PyObject *>known_topic or known_topic is None
            or payload == NULL or type(<object>payload) is not bytes
            or PyBytes_GET_SIZE(<object>payload) > max_payload_size):
        return False
    if key != NULL and not (type(<object>key) is bytes and PyBytes_GET_SIZE(<object>key) > 0):
        return False
    if partition != NULL:
        if type(<object>partition) is not int:
            return False
        part = PyLong_AsLongLongAndOverflow(<object>partition, &overflow)
        if overflow or part < -1 or part > INT32_MAX:
            return False      # (no error set: an exact int always converts or overflows)
    memset(m, 0, sizeof(_Msg))
    Py_INCREF(<object>topic)
    Py_INCREF(<object>payload)
    Py_XINCREF(key)
    Py_XINCREF(partition)
    m.f.topic = topic
    m.f.payload = payload
    m.f.key = key
    m.f.partition = partition
    m.partition = <int32_t>part
    m.plain = True
    return True


cdef inline const char *_text_of(object value, Py_ssize_t *size) except NULL:
    """The bytes of a bytes or str value (a str's UTF-8 form, cached inside it): valid as long
    as the value lives."""
    if type(value) is bytes:
        size[0] = PyBytes_GET_SIZE(value)
        return PyBytes_AS_STRING(value)
    return PyUnicode_AsUTF8AndSize(value, size)


cdef bint _usable_view(object view):
    """A C-contiguous memoryview that has not been released."""
    try:
        return (<memoryview>view).c_contiguous
    except ValueError:
        return False


cdef inline bint _is_none(PyObject *p):
    return p == NULL or <object>p is None


cdef dict _check_fields(object message, Py_ssize_t max_payload_size, dict known_topics=None):
    """Return None when the message satisfies the contract, else a dict field -> reason.

    ``known_topics``: names already validated (a client's topic-handle cache), whose format
    check is skipped.
    """
    cdef _Fields f
    if type(message) is not dict:
        return _wording.not_a_message(message)
    _extract(<dict>message, &f)
    return _check(&f, message, max_payload_size, known_topics, None)


cdef inline bint _plain_valid(_Fields *f, Py_ssize_t max_payload_size, object known_topic):
    """The common message, proven valid without the full walk: the topic produced to last
    (validated then), a bytes payload within the size limit, no key or a non-empty bytes
    key, a label or not, nothing else. False means "not this shape", not "invalid"."""
    cdef PyObject *p = f.payload
    if (f.topic == NULL or <object>f.topic is not known_topic or known_topic is None
            or p == NULL or type(<object>p) is not bytes
            or PyBytes_GET_SIZE(<object>p) > max_payload_size
            or f.partition != NULL or f.partition_key != NULL or f.timestamp != NULL
            or f.headers != NULL or f.unknown):
        return False
    if f.key != NULL and not (type(<object>f.key) is bytes and PyBytes_GET_SIZE(<object>f.key) > 0):
        return False
    return True


cdef inline dict _refuse(dict errors, str field, str reason):
    """``errors`` (created on the first refusal) with ``field``'s reason added."""
    if errors is None:
        errors = {}
    errors[field] = reason
    return errors


cdef dict _check(_Fields *fp, object names, Py_ssize_t max_payload_size, dict known_topics,
                 object known_topic):
    """The contract on extracted fields. ``names``: the message's keys, read only to name
    unknown ones (``fp.unknown``). ``known_topic`` (identity) and ``known_topics`` (a client's
    topic-handle cache): names already validated, whose format check is skipped."""
    cdef dict errors = None
    cdef _Fields f = fp[0]
    cdef Py_ssize_t size

    if f.topic == NULL:
        errors = _refuse(errors, "topic", _MISSING)
    elif ((known_topic is None or <object>f.topic is not known_topic)
          and (known_topics is None or type(<object>f.topic) is not str
               or PyDict_GetItem(known_topics, <object>f.topic) == NULL)
          and not _topic_valid(<object>f.topic)):
        errors = _refuse(errors, "topic", _wording.topic_reason(<object>f.topic))

    if f.payload == NULL:
        errors = _refuse(errors, "payload", _MISSING)
    else:
        payload = <object>f.payload
        t = type(payload)
        if not (t is bytes or t is str or payload is None or t is bytearray
                or (t is memoryview and _usable_view(payload))):
            errors = _refuse(errors, "payload", _wording.payload_reason(payload))

    if not _is_none(f.key) and not _nonempty_key(<object>f.key):
        errors = _refuse(errors, "key", _wording.key_reason(<object>f.key))

    if f.partition != NULL:
        value = <object>f.partition
        if type(value) is not int or value < -1 or value > INT32_MAX:
            errors = _refuse(errors, "partition", _wording.partition_reason(value))

    if not _is_none(f.partition_key) and not _nonempty_key(<object>f.partition_key):
        errors = _refuse(errors, "partition_key",
                         _wording.key_reason(<object>f.partition_key))

    if not _is_none(f.timestamp) and _timestamp_ms(<object>f.timestamp) == -2:
        errors = _refuse(errors, "timestamp", _wording.timestamp_reason(<object>f.timestamp))

    if not _is_none(f.headers) and type(<object>f.headers) is not dict:
        errors = _refuse(errors, "headers", _wording.headers_reason(<object>f.headers))

    if f.unknown:
        if errors is None:
            errors = {}          # even if no name turns out unknown (a str subclass's key)
        for name in names:
            if name not in _MESSAGE_KEYS:
                errors[str(name)] = _MSG["unknown_key"]

    if errors is not None:
        return errors

    # Virtual rules: only when everything above passed (WaterDrop reports in stages).
    if not _is_none(f.headers):
        if (not _headers_valid(<dict>(<object>f.headers))
                or not _headers_values_valid(<dict>(<object>f.headers))
                or not _headers_encodable(<dict>(<object>f.headers))):
            return {"headers": _wording.headers_reason(<object>f.headers)}

    payload = <object>f.payload
    if payload is not None:
        t = type(payload)
        if t is bytes:
            size = PyBytes_GET_SIZE(payload)
        elif t is str:
            if not _utf8_size(payload, &size):
                return {"payload": _wording.payload_reason(payload)}
        else:
            size = memoryview(payload).nbytes
        if size > max_payload_size:
            return {"payload": _wording.payload_size_reason(size, max_payload_size)}
    if f.key != NULL and type(<object>f.key) is str and not _utf8_size(<object>f.key, &size):
        return {"key": _wording.key_reason(<object>f.key)}
    if (f.partition_key != NULL and type(<object>f.partition_key) is str
            and not _utf8_size(<object>f.partition_key, &size)):
        return {"partition_key": _wording.key_reason(<object>f.partition_key)}
    return None


cdef bint _utf8_size(str value, Py_ssize_t *size) except -1:
    """UTF-8 size of ``value`` (cached inside the str); False if it cannot be encoded."""
    try:
        PyUnicode_AsUTF8AndSize(value, size)
    except UnicodeEncodeError:
        return False
    return True


cdef bint _headers_encodable(dict headers) except -1:
    cdef Py_ssize_t size
    for name, value in headers.items():
        if not _utf8_size(name, &size):
            return False
        if type(value) is str:
            if not _utf8_size(value, &size):
                return False
        elif type(value) is list or type(value) is tuple:
            for item in value:
                if type(item) is str and not _utf8_size(item, &size):
                    return False
    return True


def check_message(message, Py_ssize_t max_payload_size=DEFAULT_MAX_PAYLOAD_SIZE):
    """Validate one message; return a dict of errors (empty when valid). Sends nothing."""
    if type(message) is not dict and hasattr(message, "keys"):
        message = dict(message)
    return _check_fields(message, max_payload_size) or {}


cdef inline object _as_dict(object message):
    if type(message) is dict:
        return message
    if hasattr(message, "keys"):
        return dict(message)
    return message


cdef rd_kafka_headers_t *_build_headers(dict headers) except? NULL:
    cdef rd_kafka_headers_t *hdrs
    cdef const char *name_p
    cdef const char *val_p
    cdef Py_ssize_t name_n, val_n
    if not headers:
        return NULL
    hdrs = rd_kafka_headers_new(len(headers))
    for name, value in headers.items():
        name_p = PyUnicode_AsUTF8AndSize(name, &name_n)
        if type(value) is list or type(value) is tuple:
            items = value
        else:
            items = (value,)
        for item in items:
            if type(item) is bytes:
                val_p = PyBytes_AS_STRING(item)
                val_n = PyBytes_GET_SIZE(item)
            else:
                val_p = PyUnicode_AsUTF8AndSize(item, &val_n)
            rd_kafka_header_add(hdrs, name_p, name_n, val_p, val_n)
    return hdrs


cdef rd_kafka_partitioner_fn _partitioner_by_name(str name) noexcept:
    if name == "consistent_random" or name is None:
        return rd_kafka_msg_partitioner_consistent_random
    if name == "consistent":
        return rd_kafka_msg_partitioner_consistent
    if name == "murmur2":
        return rd_kafka_msg_partitioner_murmur2
    if name == "murmur2_random":
        return rd_kafka_msg_partitioner_murmur2_random
    if name == "fnv1a":
        return rd_kafka_msg_partitioner_fnv1a
    if name == "fnv1a_random":
        return rd_kafka_msg_partitioner_fnv1a_random
    return NULL   # "random": handled without a key
