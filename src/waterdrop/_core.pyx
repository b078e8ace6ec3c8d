# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""The binding: librdkafka client, per-message contract checks, produce, delivery handles.

Everything that touches a C pointer, runs without the GIL or runs once per message lives here;
policy (settings, lifecycle, instrumentation) lives in the Python layer above.
"""

from cpython.buffer cimport PyObject_GetBuffer, PyBuffer_Release, PyBUF_SIMPLE
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE
from cpython.dict cimport PyDict_GetItem, PyDict_GetItemWithError, PyDict_Size, PyDict_Next
from cpython.exc cimport PyErr_CheckSignals
from cpython.object cimport PyObject
from cpython.ref cimport Py_INCREF, Py_DECREF, Py_XINCREF, Py_XDECREF, Py_REFCNT
from cpython.unicode cimport PyUnicode_AsUTF8AndSize
from libc.stdint cimport int32_t, int64_t, INT32_MAX
from libc.stdlib cimport malloc, calloc, realloc, free, rand
from libc.string cimport memcpy, memset

cimport cython

from waterdrop._rdkafka cimport *

import datetime as _dt
import threading as _threading
import time as _time

from waterdrop import errors as _errors
from waterdrop.contracts import messages as _wording

# The oldest librdkafka this binding is written against, checked when compiling and at import.
cdef extern from *:
    """
    #if RD_KAFKA_VERSION < 0x020e0200
    #error "waterdrop needs librdkafka >= 2.14.2 (rdkafka.h is older)"
    #endif
    #define WATERDROP_MIN_RDKAFKA 0x020e0200
    """
    int WATERDROP_MIN_RDKAFKA

if rd_kafka_version() < WATERDROP_MIN_RDKAFKA:
    raise ImportError(
        f"waterdrop needs librdkafka >= 2.14.2 but the loaded library is "
        f"{rd_kafka_version_str().decode()}")

cdef extern from "Python.h":
    int PyErr_WarnEx(object category, const char *message, Py_ssize_t stack_level) except -1
    void PyErr_WriteUnraisable(object obj)

cdef extern from "<pthread.h>" nogil:
    ctypedef struct pthread_mutex_t:
        pass
    ctypedef struct pthread_cond_t:
        pass
    ctypedef struct pthread_condattr_t:
        pass
    ctypedef int clockid_t
    int pthread_mutex_init(pthread_mutex_t *m, void *attr)
    int pthread_mutex_destroy(pthread_mutex_t *m)
    int pthread_mutex_lock(pthread_mutex_t *m)
    int pthread_mutex_unlock(pthread_mutex_t *m)
    int pthread_condattr_init(pthread_condattr_t *a)
    int pthread_condattr_setclock(pthread_condattr_t *a, clockid_t c)
    int pthread_condattr_destroy(pthread_condattr_t *a)
    int pthread_cond_init(pthread_cond_t *c, pthread_condattr_t *a)
    int pthread_cond_destroy(pthread_cond_t *c)
    int pthread_cond_broadcast(pthread_cond_t *c)
    int pthread_cond_timedwait(pthread_cond_t *c, pthread_mutex_t *m, const timespec *t)

cdef extern from "<time.h>" nogil:
    cdef struct timespec:
        long tv_sec
        long tv_nsec
    clockid_t CLOCK_MONOTONIC
    int clock_gettime(clockid_t clk, timespec *tp)
    int nanosleep(const timespec *req, timespec *rem)


# ----------------------------------------------------------------------------------------------
# Errors: the one chokepoint from librdkafka codes to waterdrop.errors.KafkaError
# ----------------------------------------------------------------------------------------------

cdef dict _ERR_NAMES = {}
cdef dict _ERR_DESCS = {}


cdef _load_error_names():
    cdef const rd_kafka_err_desc *descs
    cdef size_t count, i
    rd_kafka_get_err_descs(&descs, &count)
    for i in range(count):
        if descs[i].name == NULL:
            continue
        name = descs[i].name.decode("ascii").lstrip("_").lower()
        _ERR_NAMES[descs[i].code] = name
        _ERR_DESCS[descs[i].code] = (descs[i].desc or b"").decode("utf-8", "replace")


_load_error_names()

#: librdkafka error names (lower case, no leading underscore) by integer code.
ERROR_NAMES = dict(_ERR_NAMES)
#: the reverse: integer code by name, e.g. ERROR_CODES["msg_timed_out"] == -192.
ERROR_CODES = {name: code for code, name in _ERR_NAMES.items()}


cpdef object kafka_error(int code, str message=None, bint fatal=False, bint retryable=False,
                         bint abortable=False):
    """Build the KafkaError for a librdkafka code (names come from the linked library)."""
    name = _ERR_NAMES.get(code)
    if name is None:
        name = (rd_kafka_err2name(code) or b"unknown").decode("ascii").lstrip("_").lower()
    desc = _ERR_DESCS.get(code) or (rd_kafka_err2str(code) or b"").decode("utf-8", "replace")
    return _errors.KafkaError(code, name, desc, fatal=fatal, retryable=retryable,
                              abortable=abortable, broker_message=message)


cdef object _error_from_rd_error(rd_kafka_error_t *error):
    """Turn an rd_kafka_error_t into KafkaError and free it."""
    cdef const char *text = rd_kafka_error_string(error)
    code = rd_kafka_error_code(error)
    message = text.decode("utf-8", "replace") if text != NULL else None
    result = kafka_error(code, message, rd_kafka_error_is_fatal(error) != 0,
                         rd_kafka_error_is_retriable(error) != 0,
                         rd_kafka_error_txn_requires_abort(error) != 0)
    rd_kafka_error_destroy(error)
    return result


def librdkafka_version():
    """The version string of the librdkafka linked into this extension."""
    return rd_kafka_version_str().decode("ascii")


def librdkafka_version_int():
    return rd_kafka_version()


# ----------------------------------------------------------------------------------------------
# Per-message contract (wording from waterdrop.contracts.messages, the shared table)
# ----------------------------------------------------------------------------------------------

cdef dict _MSG = _wording.MESSAGE
cdef str _MISSING = _MSG["missing"]
cdef frozenset _MESSAGE_KEYS = frozenset(
    ("topic", "payload", "key", "partition", "partition_key", "timestamp", "headers", "label"))
cdef object _datetime = _dt.datetime
cdef object _timezone_utc = _dt.timezone.utc
cdef object _EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_dt.timezone.utc)

# Topic names: ASCII letters, digits, '_', '-' and '.' (WaterDrop's /\A(\w|-|\.)+\z/).
cdef bint _TOPIC_CHARS[128]
memset(_TOPIC_CHARS, 0, sizeof(_TOPIC_CHARS))
for _c in range(128):
    _TOPIC_CHARS[_c] = chr(_c) in "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-."



cdef bint _topic_valid(object topic):
    cdef Py_ssize_t size, i
    cdef const char *data
    cdef unsigned char c
    if type(topic) is not str:
        return False
    if not (<str>topic).isascii():
        return False
    data = PyUnicode_AsUTF8AndSize(topic, &size)
    if size == 0:
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
    _REFS_ARGS = 4         # ... when passed as produce_async's keyword argument (the
                           # caller's stack, the parsed argument, the _Msg, the local)
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


cdef inline void _msg_release(_Msg *m) noexcept:
    """Drop what a prepared message holds (not the handle)."""
    if m.view != NULL:
        PyBuffer_Release(m.view)
        free(m.view)
        m.view = NULL
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
        return {"topic": _MISSING, "payload": _MISSING}
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


cdef dict _check(_Fields *fp, object names, Py_ssize_t max_payload_size, dict known_topics,
                 object known_topic):
    """The contract on extracted fields. ``names``: the message's keys, read only to name
    unknown ones (``fp.unknown``). ``known_topic`` (identity) and ``known_topics`` (a client's
    topic-handle cache): names already validated, whose format check is skipped."""
    cdef dict errors = None
    cdef _Fields f = fp[0]
    cdef Py_ssize_t size

    if f.topic == NULL:
        errors = {"topic": _MISSING}
    elif ((known_topic is None or <object>f.topic is not known_topic)
          and (known_topics is None or type(<object>f.topic) is not str
               or PyDict_GetItem(known_topics, <object>f.topic) == NULL)
          and not _topic_valid(<object>f.topic)):
        errors = {"topic": _MSG["topic_format"]}

    if f.payload == NULL:
        if errors is None:
            errors = {}
        errors["payload"] = _MISSING
    else:
        payload = <object>f.payload
        t = type(payload)
        if not (t is bytes or t is str or payload is None or t is bytearray
                or (t is memoryview and _usable_view(payload))):
            if errors is None:
                errors = {}
            errors["payload"] = _MSG["payload_format"]

    if not _is_none(f.key) and not _nonempty_key(<object>f.key):
        if errors is None:
            errors = {}
        errors["key"] = _MSG["key_format"]

    if f.partition != NULL:
        value = <object>f.partition
        if type(value) is not int or value < -1 or value > INT32_MAX:
            if errors is None:
                errors = {}
            errors["partition"] = _MSG["partition_format"]

    if not _is_none(f.partition_key) and not _nonempty_key(<object>f.partition_key):
        if errors is None:
            errors = {}
        errors["partition_key"] = _MSG["partition_key_format"]

    if not _is_none(f.timestamp) and _timestamp_ms(<object>f.timestamp) == -2:
        if errors is None:
            errors = {}
        errors["timestamp"] = _MSG["timestamp_format"]

    if not _is_none(f.headers) and type(<object>f.headers) is not dict:
        if errors is None:
            errors = {}
        errors["headers"] = _MSG["headers_format"]

    if f.unknown:
        if errors is None:
            errors = {}
        for name in names:
            if name not in _MESSAGE_KEYS:
                errors[str(name)] = _MSG["unknown_key"]

    if errors is not None:
        return errors

    # Virtual rules: only when everything above passed (WaterDrop reports in stages).
    if not _is_none(f.headers):
        if not _headers_valid(<dict>(<object>f.headers)):
            return {"headers": _MSG["headers_invalid_key_type"]}
        if not _headers_values_valid(<dict>(<object>f.headers)):
            return {"headers": _MSG["headers_invalid_value_type"]}
        if not _headers_encodable(<dict>(<object>f.headers)):
            return {"headers": _MSG["headers_invalid_value_type"]}

    payload = <object>f.payload
    if payload is not None:
        t = type(payload)
        if t is bytes:
            size = PyBytes_GET_SIZE(payload)
        elif t is str:
            if not _utf8_size(payload, &size):
                return {"payload": _MSG["payload_format"]}
        else:
            size = memoryview(payload).nbytes
        if size > max_payload_size:
            return {"payload": _MSG["payload_max_size"]}
    if f.key != NULL and type(<object>f.key) is str and not _utf8_size(<object>f.key, &size):
        return {"key": _MSG["key_format"]}
    if (f.partition_key != NULL and type(<object>f.partition_key) is str
            and not _utf8_size(<object>f.partition_key, &size)):
        return {"partition_key": _MSG["partition_key_format"]}
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


def check_message(message, Py_ssize_t max_payload_size=1_000_012):
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


# ----------------------------------------------------------------------------------------------
# Delivery handles and reports
# ----------------------------------------------------------------------------------------------

cdef enum:
    _PENDING = 0
    _DONE = 1


@cython.no_gc
cdef class DeliveryReport:
    """The broker's verdict on one message: where it landed, or the error.

    A resolved DeliveryHandle is its own report (no second object per message).
    """

    # 80 bytes per handle (a pymalloc size class), the fields packed for the million
    # messages in flight case: a pending handle's ``_offset`` holds its default wait (ms) and
    # its ``_error`` the payload object librdkafka points at (zero-copy), released when the
    # handle resolves.
    cdef readonly str topic_name
    cdef int32_t _partition
    cdef int32_t _state           # _PENDING (handles only) or _DONE
    cdef int64_t _offset
    cdef readonly object label
    cdef object _error
    cdef int64_t _latency_us

    def __init__(self, topic_name, partition=-1, offset=-1001, label=None, error=None,
                 latency_ms=-1.0):
        self._state = _DONE
        self.topic_name = topic_name
        self._partition = partition
        self._offset = offset
        self.label = label
        self._error = error
        self._latency_us = <int64_t>(latency_ms * 1000) if latency_ms >= 0 else -1

    @property
    def topic(self):
        """Alias of ``topic_name``."""
        return self.topic_name

    @property
    def partition(self):
        return self._partition

    @property
    def offset(self):
        return self._offset if self._state != _PENDING else -1001

    @property
    def error(self):
        """None, or the KafkaError the message failed with."""
        return self._error if self._state != _PENDING else None

    @property
    def latency_ms(self):
        """librdkafka's produce-to-acknowledgement time, -1.0 when unknown."""
        return self._latency_us / 1000.0 if self._latency_us >= 0 else -1.0

    def __repr__(self):
        if self._error is not None:
            return (f"<DeliveryReport topic={self.topic_name!r} partition={self._partition} "
                    f"error={self._error.code!r} label={self.label!r}>")
        return (f"<DeliveryReport topic={self.topic_name!r} partition={self._partition} "
                f"offset={self._offset} label={self.label!r}>")


cdef class Client


cdef class _Waiter:
    """A mutex and condition variable that waiting threads block on without the GIL.

    ``client`` is set for a librdkafka client's handles: a waiting thread may then serve the
    client's queue itself (one thread hop less than waiting for the poller).
    """
    cdef pthread_mutex_t mutex
    cdef pthread_cond_t cond
    cdef Client client

    def __cinit__(self):
        cdef pthread_condattr_t attr
        pthread_mutex_init(&self.mutex, NULL)
        pthread_condattr_init(&attr)
        pthread_condattr_setclock(&attr, CLOCK_MONOTONIC)
        pthread_cond_init(&self.cond, &attr)
        pthread_condattr_destroy(&attr)

    def __dealloc__(self):
        pthread_cond_destroy(&self.cond)
        pthread_mutex_destroy(&self.mutex)

    cdef inline void wake_all(self) noexcept nogil:
        pthread_mutex_lock(&self.mutex)
        pthread_cond_broadcast(&self.cond)
        pthread_mutex_unlock(&self.mutex)


cdef _Waiter _RESOLVED_WAITER = _Waiter()
cdef object _await_handle = None   # waterdrop._aio.await_handle, imported on first await


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


cdef inline int64_t _now_ns() noexcept nogil:
    cdef timespec ts
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return <int64_t>ts.tv_sec * 1_000_000_000 + ts.tv_nsec


@cython.final
@cython.no_gc
cdef class DeliveryHandle(DeliveryReport):
    """A message on its way to Kafka. ``wait()`` returns its DeliveryReport.

    Once resolved the handle is its own report: ``handle.wait() is handle``.
    """

    cdef _Waiter _waiter
    # What runs once resolved: None, an event loop's waker (gets the handle with its delivery
    # batch: waterdrop._aio), or a list [waker or None, callback, ...] (asyncio, policy).
    cdef object _extra

    def __init__(self):
        raise TypeError("DeliveryHandle objects are created by the producer")

    @property
    def pending(self):
        """True until the broker acknowledged the message or it failed."""
        return self._state == _PENDING

    def _resolve(self, int partition=-1, long long offset=-1001, error=None):
        """Resolve from Python (test clients); librdkafka resolves through the poller."""
        _handle_set(self, partition, offset, error, -1)
        self._waiter.wake_all()
        waker = _handle_run_callbacks(self)
        if waker is not None:
            try:
                waker.push_many([self])
            except BaseException:
                PyErr_WriteUnraisable(waker)

    def add_done_callback(self, callback):
        """Call ``callback(handle)`` once the handle is resolved (now, if it already is).

        Runs on the delivery poller thread; keep it short.
        """
        if self._state != _PENDING:
            callback(self)
            return
        extra = self._extra
        if extra is None:
            self._extra = [None, callback]
        elif type(extra) is list:
            (<list>extra).append(callback)
        else:
            self._extra = [extra, callback]

    def _set_waker(self, waker):
        """For waterdrop._aio: hand this handle to ``waker.push_many(handles)`` together with
        the other handles of its delivery batch, once per batch. False when the handle is
        already resolved or another waker is set (then use add_done_callback)."""
        if self._state != _PENDING:
            return False
        extra = self._extra
        if extra is None:
            self._extra = waker
            return True
        if type(extra) is list:
            if (<list>extra)[0] is None:
                (<list>extra)[0] = waker
                return True
            return (<list>extra)[0] is waker
        return extra is waker

    def report(self):
        """The report of a resolved handle (the handle itself), or None while pending."""
        if self._state == _PENDING:
            return None
        return self

    # binding(False): a plain method descriptor, which CPython's specialising interpreter calls
    # directly; a Cython function object goes through the generic vectorcall path (about 50
    # instructions more per call, and this is called once per message)
    @cython.binding(False)
    def wait(self, max_wait_timeout=None, bint raise_response_error=True):
        """Block (without the GIL) until delivered or failed; return the DeliveryReport.

        ``max_wait_timeout`` in ms (default: the producer's); WaitTimeoutError while pending.
        A delivery error is raised unless ``raise_response_error`` is False, in which case it
        is in ``report.error``.
        """
        cdef long long timeout_ms
        if self._state == _PENDING:
            if max_wait_timeout is None:
                timeout_ms = self._offset       # a pending handle's default wait
            else:
                # beyond ~292 years the deadline in ns would overflow: wait "forever" instead
                timeout_ms = <long long>min(max_wait_timeout, 9_000_000_000_000)
            if not _handle_block(self, timeout_ms):
                raise _errors.WaitTimeoutError(
                    f"Waiting for delivery timed out after {timeout_ms} ms")
        if raise_response_error and self._error is not None:
            raise self._error
        return self

    def __await__(self):
        global _await_handle
        if _await_handle is None:
            from waterdrop._aio import await_handle as _await_handle
        return _await_handle(self).__await__()

    def __repr__(self):
        if self._state == _PENDING:
            return f"<DeliveryHandle topic={self.topic_name!r} pending label={self.label!r}>"
        return "<DeliveryHandle " + DeliveryReport.__repr__(self)[16:]


cdef object _handle_run_callbacks(DeliveryHandle self):
    """Run (and drop) the callbacks of a resolved handle; return its waker, if any."""
    extra = self._extra
    if extra is None:
        return None
    self._extra = None
    if type(extra) is not list:
        return extra
    callbacks = <list>extra
    for i in range(1, len(callbacks)):
        callback = callbacks[i]
        try:
            callback(self)
        except BaseException:
            PyErr_WriteUnraisable(callback)
    return callbacks[0]


cdef bint _handle_block(DeliveryHandle self, long long timeout_ms) except -1:
    """Wait until resolved; False on timeout. Checks for signals every 100 ms."""
    cdef int64_t deadline = _now_ns() + min(timeout_ms, 9_000_000_000_000) * 1_000_000
    cdef Client client = self._waiter.client
    if client is not None:
        if client._can_serve():
            return client._serve_until(self, deadline)
        if client._lazy:
            client._wake_poller()
    return _handle_wait_condvar(self, deadline)


cdef bint _handle_wait_condvar(DeliveryHandle self, int64_t deadline) except -1:
    """Wait on the client's condition variable until resolved (or ``deadline``, ns)."""
    cdef int64_t slice_end, now
    cdef timespec ts
    cdef _Waiter waiter = self._waiter
    while self._state == _PENDING:
        now = _now_ns()
        if now >= deadline:
            return False
        slice_end = min(deadline, now + 100_000_000)
        ts.tv_sec = slice_end // 1_000_000_000
        ts.tv_nsec = slice_end % 1_000_000_000
        with nogil:
            pthread_mutex_lock(&waiter.mutex)
            if self._state == _PENDING:
                pthread_cond_timedwait(&waiter.cond, &waiter.mutex, &ts)
            pthread_mutex_unlock(&waiter.mutex)
        PyErr_CheckSignals()
    return True


# The handles' memory: a free list of their blocks. One handle per message comes and goes, in
# thousands per produce_many call; reusing the blocks skips pymalloc's allocate and free for
# each (Cython's @freelist does not apply to a subclass). Called with the GIL held only (tp_alloc
# and tp_free of a type that allows no subclass); at most 16,384 blocks (1.3 MB) are kept.
cdef extern from *:
    """
    #ifndef WD_HANDLE_FREELIST
    #define WD_HANDLE_FREELIST 16384      /* 0 in sanitizer builds: every handle is fresh */
    #endif
    static void *wd_handle_blocks[WD_HANDLE_FREELIST + 1];
    static Py_ssize_t wd_handle_nblocks = 0;
    static PyTypeObject *wd_handle_type = NULL;

    static PyObject *wd_handle_alloc(PyTypeObject *t, Py_ssize_t nitems) {
        if (t == wd_handle_type && wd_handle_nblocks > 0) {
            PyObject *o = (PyObject *)wd_handle_blocks[--wd_handle_nblocks];
            memset(o, 0, (size_t)t->tp_basicsize);
            return PyObject_Init(o, t);
        }
        return PyType_GenericAlloc(t, nitems);
    }

    static void wd_handle_free(void *o) {
        if (wd_handle_nblocks < WD_HANDLE_FREELIST)
            wd_handle_blocks[wd_handle_nblocks++] = o;
        else
            PyObject_Free(o);
    }

    static void wd_handle_freelist_install(PyObject *type) {
        PyTypeObject *t = (PyTypeObject *)type;
        wd_handle_type = t;
        t->tp_alloc = wd_handle_alloc;
        t->tp_free = wd_handle_free;
    }

    static Py_ssize_t wd_handle_freelist_size(void) { return wd_handle_nblocks; }
    """
    void wd_handle_freelist_install(PyObject *t)
    Py_ssize_t wd_handle_freelist_size()
    Py_ssize_t WD_HANDLE_FREELIST

wd_handle_freelist_install(<PyObject *>DeliveryHandle)


def _handle_freelist_size():
    """(blocks kept for reuse by new handles, the most it keeps): for the tests."""
    return wd_handle_freelist_size(), WD_HANDLE_FREELIST


cdef inline DeliveryHandle _new_handle(str topic, object label, long long max_wait_ms,
                                       _Waiter waiter):
    cdef DeliveryHandle h = DeliveryHandle.__new__(DeliveryHandle)
    h.topic_name = topic
    h.label = label
    h._partition = -1
    h._offset = max_wait_ms        # while pending
    h._latency_us = -1
    h._waiter = waiter
    return h


cdef inline void _handle_set(DeliveryHandle h, int32_t partition, int64_t offset, object error,
                             int64_t latency_us) noexcept:
    """Resolve: this also releases the payload a pending handle pins (``_error``), once."""
    h._partition = partition
    h._offset = offset
    h._latency_us = latency_us
    h._state = _DONE
    h._error = error


def resolved_handle(str topic, int partition=-1, long long offset=-1001, label=None,
                    error=None, long long max_wait_ms=180_000):
    """A handle already resolved: for clients that do not talk to Kafka (Dummy, Buffered)."""
    cdef DeliveryHandle h = _new_handle(topic, label, max_wait_ms, _RESOLVED_WAITER)
    _handle_set(h, partition, offset, error, 0)
    return h


def pending_handle(str topic, label=None, long long max_wait_ms=180_000):
    """A handle resolved later with ``handle._resolve(...)``."""
    return _new_handle(topic, label, max_wait_ms, _Waiter())


# ----------------------------------------------------------------------------------------------
# The client
# ----------------------------------------------------------------------------------------------

cdef class _Topic:
    cdef rd_kafka_topic_t *rkt
    cdef str name
    cdef rd_kafka_partitioner_fn partitioner
    cdef bint random_partitioner

    def __dealloc__(self):
        if self.rkt != NULL:
            rd_kafka_topic_destroy(self.rkt)
            self.rkt = NULL


cdef enum:
    _EVENT_BATCH = 64
    _MSG_CHUNK = 1024


cdef str _EV_ACKNOWLEDGED = "message.acknowledged"
cdef str _EV_ERROR = "error.occurred"
cdef str _EV_PURGED = "message.purged"
cdef str _K_LISTENERS = "_listeners"


cdef dict _listeners_of(object monitor):
    """A waterdrop Monitor's event -> listeners table, None for anything else. The table is
    replaced (never changed in place) on every subscribe / unsubscribe, so it is read anew
    each time; from the instance dict, without an attribute lookup."""
    d = getattr(monitor, "__dict__", None)
    if type(d) is not dict:
        return None
    listeners = (<dict>d).get(_K_LISTENERS)
    return listeners if type(listeners) is dict else None


# A produce's handle and the reference librdkafka holds to it (module functions, not
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
    Py_INCREF(handle)
    client._in_flight += 1
    m.handle = <PyObject *>handle
    return handle


cdef inline void _detach_handle(Client client, _Msg *m) noexcept:
    """Undo _attach_handle for a message librdkafka did not take: drop the pin and the
    opaque's reference."""
    (<DeliveryHandle>m.handle)._error = None
    Py_DECREF(<object>m.handle)
    m.handle = NULL
    client._in_flight -= 1


cdef class Client:
    """One librdkafka producer handle, its topic handles and its delivery-report poller.

    ``config`` is the merged librdkafka configuration with string values. Callbacks (set as
    attributes) run on the poller thread with the GIL, once per drained batch:
    ``on_error(KafkaError)``, ``on_log(level, facility, message)``, ``on_stats(json_str)``,
    ``on_deliveries(list_of_handles)``; any exception they raise goes to ``on_callback_error``.
    """

    cdef rd_kafka_t *rk
    cdef rd_kafka_queue_t *mainq
    cdef readonly str name
    cdef dict _topics                # (topic_config key, topic) -> _Topic
    cdef object _last_name           # the last topic produced to (by identity) ...
    cdef object _last_conf_key       # ... with this variant key ...
    cdef _Topic _last_topic          # ... and its handle: no lookup for a run of one topic
    cdef _Msg *_msgs                 # produce_many's array, reused (under the GIL) ...
    cdef Py_ssize_t _msgs_cap
    cdef bint _msgs_busy             # ... unless a call on another thread has it
    cdef rd_kafka_message_t *_batch  # _send_all's array for rd_kafka_produce_batch, same
    cdef Py_ssize_t _batch_cap
    cdef dict _partition_counts      # topic -> (count, expires_at)
    cdef set _refreshing             # topics whose count a background thread refreshes
    cdef str _partitioner
    cdef _Waiter _waiter
    cdef object _thread
    cdef bint _stopping
    cdef bint _closed
    cdef bint _closing
    cdef int _ops                    # produce calls inside librdkafka right now (GIL-protected)
    cdef bint _server_active         # a waiting thread serves the queue; the poller parks
    cdef bint _lazy                  # ... and may stay parked after it (see _poll_loop)
    cdef bint _poller_parked         # the poller is parked (not in a queue poll)
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
    cdef public object on_callback_error
    cdef public object on_oauth_refresh
    cdef object _lock
    cdef object __weakref__

    def __cinit__(self):
        self.rk = NULL
        self.mainq = NULL

    def __init__(self, dict config, long long max_wait_ms=180_000, str name="waterdrop",
                 bint statistics=False, bint oauth=False, bint start=True):
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
        # Only reached without close() when the owner was lost; never destroy a client that
        # a forked child inherited (its threads do not exist here).
        if self.rk != NULL and not self._closed:
            pass
        free(self._msgs)
        free(self._batch)
        self._msgs = NULL
        self._batch = NULL

    @property
    def closed(self):
        return self._closed

    @property
    def rdkafka_name(self):
        return rd_kafka_name(self.rk).decode() if self.rk != NULL else None

    # --- the poller ----------------------------------------------------------------------------

    def _poll_loop(self):
        """Runs on the poller thread: wait without the GIL, take it once per drained batch."""
        cdef rd_kafka_event_t *events[_EVENT_BATCH]
        cdef int n, i
        cdef rd_kafka_queue_t *q = self.mainq
        cdef int timeout_ms
        cdef timespec ts
        cdef int64_t until
        while True:
            if self._deferred:
                try:
                    self._serve_deferred()
                except BaseException:
                    PyErr_WriteUnraisable(self._poll_loop)
            if (self._server_active or self._lazy) and not self._stopping:
                # a thread waiting for its delivery serves the queue: stay out of its way
                # (``_lazy``: it has handed the queue back with nothing in flight; stay
                # parked until a produce wakes us, so that a run of produce_sync calls does
                # not wake this thread twice per message)
                until = _now_ns() + 100_000_000
                ts.tv_sec = until // 1_000_000_000
                ts.tv_nsec = until % 1_000_000_000
                self._poller_parked = True
                with nogil:
                    pthread_mutex_lock(&self._park.mutex)
                    if (self._server_active or self._lazy) and not self._stopping:
                        pthread_cond_timedwait(&self._park.cond, &self._park.mutex, &ts)
                    pthread_mutex_unlock(&self._park.mutex)
                self._poller_parked = False
                if not self._server_active:
                    self._lazy = False       # woken, or 100 ms passed: serve again
                continue
            # once close() asked us to stop: drain what is there, then leave (log events may
            # keep arriving forever while a broker is unreachable)
            timeout_ms = 0 if self._stopping else 1000
            with nogil:
                n = _drain(q, events, timeout_ms)
            if n > 0:
                try:
                    self._serve(events, n)
                except BaseException:
                    PyErr_WriteUnraisable(self._poll_loop)
                if self._server_active:
                    # a waiter started serving while we held these events: wake it from
                    # its poll so it sees what we resolved
                    rd_kafka_queue_yield(q)
            elif self._stopping and not self._deferred and not self._server_active:
                return

    cdef _serve(self, rd_kafka_event_t **events, int n, list resolved=None):
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
                        full = self.on_deliveries is not None and self._deliveries_listened()
                    delivered = self._serve_dr(events[i], delivered, full)
                elif etype == RD_KAFKA_EVENT_ERROR:
                    self._serve_error(events[i])
                elif etype == RD_KAFKA_EVENT_LOG:
                    self._serve_log(events[i])
                elif etype == RD_KAFKA_EVENT_STATS:
                    self._serve_stats(events[i])
                elif etype == RD_KAFKA_EVENT_OAUTHBEARER_TOKEN_REFRESH:
                    self._serve_oauth(events[i])
        finally:
            # every event of the batch, even after an exception, freed in one go: with the
            # GIL held (so never beside a single produce, which mallocs under the GIL) and in
            # turn with batch enqueues, which run without it (see _heap_turn). A batch
            # enqueue never needs the GIL, so waiting for it here cannot deadlock.
            pthread_mutex_lock(&self._heap_turn.mutex)
            for i in range(n):
                if events[i] != NULL:
                    rd_kafka_event_destroy(events[i])
            pthread_mutex_unlock(&self._heap_turn.mutex)
        if any_dr:
            self._waiter.wake_all()
            if delivered is not None:
                if resolved is not None:
                    resolved.append((delivered, full))
                else:
                    self._notify(delivered, full)

    cdef _notify(self, list delivered, bint full):
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
            self._call(waker.push_many, "delivery", (woken,))
            if others is not None:
                for other, handles in others.items():
                    self._call(other.push_many, "delivery", (handles,))
        if full and callback is not None:
            self._call(callback, "delivery", (delivered,))

    cdef bint _deliveries_listened(self) except -1:
        """False when ``delivery_monitor`` is set and none of its listeners wants delivery
        events: on_deliveries is then not called at all (a produce_sync gets one call per
        message otherwise)."""
        cdef dict listeners
        if self.delivery_monitor is None:
            return True
        listeners = _listeners_of(self.delivery_monitor)
        if listeners is None:
            return True
        return (PyDict_GetItemWithError(listeners, _EV_ACKNOWLEDGED) != NULL
                or PyDict_GetItemWithError(listeners, _EV_ERROR) != NULL
                or PyDict_GetItemWithError(listeners, _EV_PURGED) != NULL)

    cdef _serve_deferred(self):
        """On the poller thread: the events a waiting thread drained but left for the poller."""
        cdef rd_kafka_event_t *ev
        while self._deferred:
            ev = <rd_kafka_event_t *><size_t>self._deferred.pop(0)
            self._serve(&ev, 1)

    cdef list _serve_dr(self, rd_kafka_event_t *ev, list delivered, bint full):
        """Resolve a delivery report's handles; add them to ``delivered`` (all of them when
        ``full``, else only those with callbacks or a waker) and return it (None if empty)."""
        cdef const rd_kafka_message_t *msgs[_MSG_CHUNK]
        cdef size_t count, i
        cdef const rd_kafka_message_t *m
        cdef DeliveryHandle h
        cdef const char *errstr
        while True:
            count = rd_kafka_event_message_array(ev, msgs, _MSG_CHUNK)
            if count == 0:
                break
            for i in range(count):
                m = msgs[i]
                if m._private == NULL:
                    continue
                h = <DeliveryHandle>m._private
                if m.err:
                    errstr = rd_kafka_message_produce_errstr(m)
                    error = kafka_error(
                        m.err, errstr.decode("utf-8", "replace") if errstr != NULL else None,
                        m.err == RD_KAFKA_RESP_ERR__FATAL)
                else:
                    error = None
                _handle_set(h, m.partition, m.offset, error, rd_kafka_message_latency(m))
                if full or h._extra is not None:
                    if delivered is None:
                        delivered = []
                    delivered.append(h)
                # The reference taken at produce time, released exactly once, here.
                Py_DECREF(h)
                self._in_flight -= 1
            if count < _MSG_CHUNK:
                break
        return delivered

    cdef _serve_error(self, rd_kafka_event_t *ev):
        cdef char errstr[512]
        cdef int fatal = rd_kafka_event_error_is_fatal(ev)
        cdef rd_kafka_resp_err_t code = rd_kafka_event_error(ev)
        cdef const char *text = rd_kafka_event_error_string(ev)
        message = text.decode("utf-8", "replace") if text != NULL else None
        if fatal:
            code = rd_kafka_fatal_error(self.rk, errstr, sizeof(errstr))
            message = errstr.decode("utf-8", "replace")
        error = kafka_error(code, message, fatal != 0)
        if self.on_error is not None:
            self._call(self.on_error, "error", (error,))

    cdef _serve_log(self, rd_kafka_event_t *ev):
        cdef const char *fac
        cdef const char *text
        cdef int level
        if self.on_log is None:
            return
        if rd_kafka_event_log(ev, &fac, &text, &level) == 0:
            self._call(self.on_log, "log", (level, (fac or b"").decode("utf-8", "replace"),
                                            (text or b"").decode("utf-8", "replace")))

    cdef _serve_stats(self, rd_kafka_event_t *ev):
        cdef const char *stats = rd_kafka_event_stats(ev)
        if self.on_stats is not None and stats != NULL:
            self._call(self.on_stats, "statistics", (stats.decode("utf-8", "replace"),))

    cdef _serve_oauth(self, rd_kafka_event_t *ev):
        cdef const char *config = rd_kafka_event_config_string(ev)
        if self.on_oauth_refresh is not None:
            self._call(self.on_oauth_refresh, "oauthbearer_token_refresh",
                       ((config or b"").decode("utf-8", "replace"),))

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

    cdef _call(self, fn, str kind, tuple args):
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

    cdef inline void _wake_poller(self) noexcept:
        self._lazy = False
        self._park.wake_all()

    cdef inline bint _can_serve(self):
        return (not self._server_active and not self._stopping and not self._closed
                and self.mainq != NULL)

    cdef bint _serve_until(self, DeliveryHandle h, int64_t deadline) except -1:
        """Serve this client's queue on the waiting thread until ``h`` resolves.

        The delivery report then reaches the thread that waits for it directly, without a
        hop through the poller thread (which parks meanwhile). False on timeout.
        """
        cdef rd_kafka_event_t *events[_EVENT_BATCH]
        cdef rd_kafka_queue_t *q = self.mainq
        cdef int n
        cdef int slice_ms
        cdef int64_t now
        cdef list resolved = []
        # Serve for a short while only: the point is a fast answer for a fast delivery. A
        # slow one is waited for on the condition variable while the poller serves again,
        # so error and log events are never held back behind a long wait.
        cdef int64_t serve_until = min(deadline, _now_ns() + 200_000_000)
        self._server_active = True
        if not self._poller_parked:
            rd_kafka_queue_yield(q)    # the poller leaves its poll and parks
        try:
            while h._state == _PENDING:
                now = _now_ns()
                if now >= serve_until:
                    break
                slice_ms = <int>min(10, (deadline - now) // 1_000_000 + 1)
                with nogil:
                    n = _drain(q, events, slice_ms)
                if n > 0:
                    self._serve(events, n, resolved)
                if self._stopping:
                    break
                PyErr_CheckSignals()
        finally:
            # hand the queue back before any user code runs: a listener that waits for another
            # delivery must find the poller serving, not parked behind us
            self._server_active = False
            if self._in_flight > 0 or self._deferred or self._stopping:
                self._wake_poller()
            else:
                # nothing left to deliver: the poller may stay parked until the next produce
                # (or 100 ms at most, for error, log and statistics events)
                self._lazy = True
            for delivered, full in resolved:
                self._notify(<list>delivered, full)
        if h._state == _PENDING:
            # still on its way (or close() is under way and will resolve it)
            return _handle_wait_condvar(h, deadline)
        return True

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
        self._topics[cache_key] = topic
        return topic

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
            if cached[1] <= now and topic not in self._refreshing:
                self._refreshing.add(topic)
                _threading.Thread(target=self._refresh_partition_count, args=(topic, timeout_ms),
                                  daemon=True, name="waterdrop-metadata").start()
            return cached[0]
        return self._refresh_partition_count(topic, timeout_ms)

    def _refresh_partition_count(self, str topic, int timeout_ms):
        cdef int count = -1
        try:
            if not self._closed and not self._closing:
                self._ops += 1            # close() waits for this lookup before destroying
                try:
                    count = self._fetch_partition_count(self._topic(topic, None), timeout_ms)
                finally:
                    self._ops -= 1
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

    # --- produce -------------------------------------------------------------------------------

    cdef int _prepare(self, _Msg *m, object conf_key, Py_ssize_t transient_refs) except -1:
        """Fill ``m`` from the validated fields it owns (``m.f``): topic handle, partition,
        payload and key pointers, headers."""
        cdef _Topic topic
        cdef const char *pk
        cdef Py_ssize_t pk_len
        cdef Py_buffer *view
        cdef _Fields *f = &m.f
        name = <object>f.topic
        if name is self._last_name and conf_key is self._last_conf_key:
            topic = self._last_topic
        else:
            topic = self._topic(<str>name, conf_key)
            self._last_name = name
            self._last_conf_key = conf_key
            self._last_topic = topic
        m.rkt = topic.rkt
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

    cdef inline rd_kafka_resp_err_t _send(self, _Msg *m) noexcept nogil:
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

    cdef object _inline_error(self, rd_kafka_resp_err_t err):
        """A produce call's error; after a fatal error, the underlying fatal code."""
        if err == RD_KAFKA_RESP_ERR__FATAL:
            fatal = self.fatal_error()
            if fatal is not None:
                return fatal
            return kafka_error(err, None, True)
        return kafka_error(err)

    cdef inline int _ensure_open(self) except -1:
        if self._closed or self._closing or self.rk == NULL:
            raise _errors.ProducerClosedError(self.name)
        return 0

    def produce(self, object message, Py_ssize_t max_payload_size=1_000_012,
                object conf_key=None, long long max_wait_ms=-1):
        """Validate and enqueue one message; return its DeliveryHandle.

        Raises MessageInvalidError (nothing sent) or KafkaError (inline failure, e.g.
        queue_full; the handle is released).
        """
        return self._produce_one(message, max_payload_size, conf_key, max_wait_ms)

    cdef DeliveryHandle _produce_one(self, object message, Py_ssize_t max_payload_size,
                                     object conf_key, long long max_wait_ms):
        cdef _Fields f
        message = _as_dict(message)
        if type(message) is not dict:
            raise _errors.MessageInvalidError({"topic": _MISSING, "payload": _MISSING})
        _extract(<dict>message, &f)
        return self._produce_fields(&f, message, max_payload_size, conf_key, max_wait_ms)

    cdef DeliveryHandle _produce_fields(self, _Fields *f, object names,
                                        Py_ssize_t max_payload_size, object conf_key,
                                        long long max_wait_ms, bint serving=False,
                                        Py_ssize_t transient_refs=_REFS_DICT):
        """Validate and enqueue one message given by its fields (see _check and _prepare).
        ``names``: the message's keys (to name unknown ones). ``serving``: the caller waits
        for it next, serving the queue itself (the poller need not be woken)."""
        cdef _Msg m
        cdef dict errors
        cdef DeliveryHandle handle
        cdef rd_kafka_resp_err_t err
        memset(&m, 0, sizeof(_Msg))
        _own_fields(&m, f)
        try:
            if not _plain_valid(&m.f, max_payload_size, self._last_name):
                errors = _check(&m.f, names, max_payload_size, self._topics, self._last_name)
                if errors is not None:
                    raise _errors.MessageInvalidError(errors)
            self._ensure_open()
            self._ops += 1
            try:
                self._prepare(&m, conf_key, transient_refs)
                handle = _attach_handle(
                    self, &m, self.max_wait_ms if max_wait_ms < 0 else max_wait_ms)
                err = self._send(&m)
                if err:
                    _detach_handle(self, &m)
                    raise self._inline_error(err)
                if self._lazy and not serving:
                    self._wake_poller()
                return handle
            finally:
                self._ops -= 1
        finally:
            _msg_release(&m)

    def produce_many(self, list messages, Py_ssize_t max_payload_size=1_000_012,
                     object conf_key=None, long long max_wait_ms=-1):
        """Validate every message, then enqueue them all; return their handles.

        An invalid message raises MessageInvalidError before anything is sent. An inline
        failure stops the batch: the KafkaError raised carries ``.dispatched`` (the handles
        enqueued) and ``.index`` (the first message that failed).
        """
        cdef Py_ssize_t count = len(messages)
        cdef Py_ssize_t i, failed
        cdef Py_ssize_t ready = 0         # entries of ms initialised
        cdef _Msg *ms
        cdef _Fields f
        cdef dict errors
        cdef rd_kafka_resp_err_t err = 0
        cdef long long wait_ms = self.max_wait_ms if max_wait_ms < 0 else max_wait_ms
        if count == 0:
            self._ensure_open()
            return []
        handles = [None] * count
        ms = self._take_msgs(count)
        try:
            # every message is read once, into ms with references of its own, and checked;
            # nothing is prepared or sent before the whole batch passed
            for i in range(count):
                message = _as_dict(messages[i])
                memset(&ms[i], 0, sizeof(_Msg))
                ready = i + 1
                if type(message) is not dict:
                    raise _errors.MessageInvalidError({"topic": _MISSING, "payload": _MISSING})
                _extract(<dict>message, &f)
                _own_fields(&ms[i], &f)
                if _plain_valid(&ms[i].f, max_payload_size, self._last_name):
                    continue
                errors = _check(&ms[i].f, message, max_payload_size, self._topics,
                                self._last_name)
                if errors is not None:
                    raise _errors.MessageInvalidError(errors)
            self._ensure_open()
            self._ops += 1
            try:
                for i in range(count):
                    self._prepare(&ms[i], conf_key, _REFS_DICT)
                    handles[i] = _attach_handle(self, &ms[i], wait_ms)
                with nogil:
                    pthread_mutex_lock(&self._heap_turn.mutex)
                    failed = self._send_all(ms, count, &err)
                    pthread_mutex_unlock(&self._heap_turn.mutex)
                if self._lazy:
                    self._wake_poller()
                if failed < count:
                    error = self._inline_error(err)
                    error.dispatched = [handles[i] for i in range(count) if ms[i].sent]
                    error.index = failed
                    raise error
                return handles
            finally:
                self._ops -= 1
        finally:
            for i in range(ready):
                if not ms[i].sent and ms[i].handle != NULL:
                    _detach_handle(self, &ms[i])       # never reached librdkafka
                _msg_release(&ms[i])
            self._give_msgs(ms)

    cdef _Msg *_take_msgs(self, Py_ssize_t count) except NULL:
        """Room for ``count`` prepared messages: the client's reusable array unless another
        thread is using it (or the batch is huge), else a fresh one. Entries are not zeroed."""
        cdef _Msg *ms
        if not self._msgs_busy and count <= 65_536:
            if self._msgs_cap < count:
                ms = <_Msg *>realloc(self._msgs, count * sizeof(_Msg))
                if ms == NULL:
                    raise MemoryError()
                self._msgs = ms
                self._msgs_cap = count
            self._msgs_busy = True
            return self._msgs
        ms = <_Msg *>malloc(count * sizeof(_Msg))
        if ms == NULL:
            raise MemoryError()
        return ms

    cdef void _give_msgs(self, _Msg *ms) noexcept:
        if ms == self._msgs:
            self._msgs_busy = False
        else:
            free(ms)

    cdef inline bint _batchable(self, _Msg *m) noexcept nogil:
        """Can go through rd_kafka_produce_batch without breaking "stop at the first
        failure": no headers or timestamp (not supported there), and none of the per-message
        failures (an explicit partition that may not exist, a message over message.max.bytes)
        that would let later messages of the same run through."""
        return (m.headers == NULL and m.timestamp < 0 and m.partition == RD_KAFKA_PARTITION_UA
                and m.payload_len + m.key_len < self._max_msg_bytes)

    cdef Py_ssize_t _send_all(self, _Msg *ms, Py_ssize_t count,
                              rd_kafka_resp_err_t *first_err) noexcept nogil:
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
            if self._batchable(&ms[i]):
                j = i + 1
                while (j < count and ms[j].rkt == ms[i].rkt and ms[j].copy == ms[i].copy
                       and self._batchable(&ms[j])):
                    j += 1
                n = j - i
                if n > 1 and batch == NULL:
                    if ms == self._msgs:
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
                err = self._send(&ms[i])
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
        if batch != self._batch:
            free(batch)
        return failed

    # --- queue control ------------------------------------------------------------------------

    def flush(self, long long timeout_ms):
        """Wait until every message is delivered or failed; False if the time ran out."""
        cdef int64_t deadline = _now_ns() + timeout_ms * 1_000_000
        cdef int slice_ms
        cdef rd_kafka_resp_err_t err
        if self._closed or self.rk == NULL:
            raise _errors.ProducerClosedError(self.name)
        while True:
            slice_ms = <int>max(0, min(100, (deadline - _now_ns()) // 1_000_000))
            with nogil:
                err = rd_kafka_flush(self.rk, slice_ms)
            if err == RD_KAFKA_RESP_ERR_NO_ERROR:
                return True
            if _now_ns() >= deadline:
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
        return self._in_flight

    @property
    def queue_length(self):
        """Messages queued or in flight in librdkafka plus reports not yet served."""
        if self._closed or self.rk == NULL:
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

    # --- transactions (policy in waterdrop.producer) ------------------------------------------

    def init_transactions(self, int timeout_ms):
        cdef rd_kafka_error_t *error
        self._ensure_open()
        with nogil:
            error = rd_kafka_init_transactions(self.rk, timeout_ms)
        if error != NULL:
            raise _error_from_rd_error(error)

    def begin_transaction(self):
        cdef rd_kafka_error_t *error
        self._ensure_open()
        error = rd_kafka_begin_transaction(self.rk)
        if error != NULL:
            raise _error_from_rd_error(error)

    def commit_transaction(self, int timeout_ms=-1):
        cdef rd_kafka_error_t *error
        self._ensure_open()
        with nogil:
            error = rd_kafka_commit_transaction(self.rk, timeout_ms)
        if error != NULL:
            raise _error_from_rd_error(error)

    def abort_transaction(self, int timeout_ms=-1):
        cdef rd_kafka_error_t *error
        self._ensure_open()
        with nogil:
            error = rd_kafka_abort_transaction(self.rk, timeout_ms)
        if error != NULL:
            raise _error_from_rd_error(error)

    def send_offsets_to_transaction(self, list offsets, object group, int timeout_ms):
        """Commit consumed offsets in the current transaction.

        ``offsets``: (topic, partition, next_offset, metadata_or_None) tuples. ``group``: the
        consumer's serialized group metadata (``confluent_kafka.Consumer.consumer_group_metadata()``
        returns librdkafka's serialized form) or a plain group id.
        """
        cdef rd_kafka_consumer_group_metadata_t *cgmd = NULL
        cdef rd_kafka_topic_partition_list_t *tpl = NULL
        cdef rd_kafka_topic_partition_t *tp
        cdef rd_kafka_error_t *error
        self._ensure_open()
        if isinstance(group, str):
            cgmd = rd_kafka_consumer_group_metadata_new(group.encode("utf-8"))
        else:
            data = bytes(group)
            error = rd_kafka_consumer_group_metadata_read(&cgmd, <const char *>data, len(data))
            if error != NULL:
                raise _error_from_rd_error(error)
        try:
            tpl = rd_kafka_topic_partition_list_new(len(offsets))
            for topic, partition, offset, metadata in offsets:
                tp = rd_kafka_topic_partition_list_add(tpl, str(topic).encode("utf-8"),
                                                       partition)
                tp.offset = offset
                if metadata is not None:
                    # NUL-terminated, as librdkafka-based readers (confluent-kafka) expect
                    raw = (metadata.encode("utf-8") if isinstance(metadata, str)
                           else bytes(metadata)) + b"\0"
                    tp.metadata = malloc(len(raw))
                    if tp.metadata == NULL:
                        raise MemoryError()
                    memcpy(tp.metadata, <const char *>raw, len(raw))
                    tp.metadata_size = len(raw)
            with nogil:
                error = rd_kafka_send_offsets_to_transaction(self.rk, tpl, cgmd, timeout_ms)
            if error != NULL:
                raise _error_from_rd_error(error)
        finally:
            if tpl != NULL:
                rd_kafka_topic_partition_list_destroy(tpl)   # frees each metadata too
            rd_kafka_consumer_group_metadata_destroy(cgmd)

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
            self._closing = True
            try:
                while self._ops > 0:      # another thread is inside produce: let it finish
                    _time.sleep(0.001)
                delivered = self.flush(timeout_ms)
            except BaseException:
                self._closing = False     # interrupted: the client stays usable and open
                raise
            if force or not delivered:
                with nogil:
                    rd_kafka_purge(self.rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT)
                # Purged reports still go through the poller; wait for them to be served.
                self.flush(10_000)
            self._stopping = True
            rd_kafka_queue_yield(self.mainq)
            self._park.wake_all()
            if self._thread.ident is None:
                self._thread.start()      # never started: let it drain, then leave
            self._thread.join()
            while self._server_active:    # a waiting thread is leaving the queue
                rd_kafka_queue_yield(self.mainq)
                _time.sleep(0.001)
            self._waiter.client = None
            self._serve_deferred()        # events must be destroyed before the handle
            self._closed = True
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
        self._stopping = True
        self._closed = True
        self.rk = NULL
        self.mainq = NULL
        self._last_name = self._last_conf_key = self._last_topic = None
        for topic in self._topics.values():
            (<_Topic>topic).rkt = NULL
        self._topics.clear()


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


# ----------------------------------------------------------------------------------------------
# librdkafka's mock cluster
# ----------------------------------------------------------------------------------------------

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


# ----------------------------------------------------------------------------------------------
# The producer's dispatch hot path (the policy around it lives in waterdrop.producer)
# ----------------------------------------------------------------------------------------------

import contextvars as _contextvars
import os as _os

from cpython.pythread cimport PyThread_get_thread_ident

#: The variant whose method runs in this thread / asyncio task (None: the producer's default).
CURRENT_VARIANT = _contextvars.ContextVar("waterdrop_current_variant", default=None)
cdef object _CURRENT_VARIANT = CURRENT_VARIANT
cdef long _pid = _os.getpid()
cdef object _monotonic = _time.monotonic


cdef extern from "Python.h":
    int PyContextVar_Get(object var, PyObject *default_value, PyObject **value) except -1

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


def current_pid():
    """The pid clients are checked against (refreshed in a forked child)."""
    return _pid


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
        if self._transactional and self._transaction_owner != PyThread_get_thread_ident():
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
                    return (<Client>client)._produce_fields(
                        f, rest, self._max_payload, conf_key, wait_ms, serving, _REFS_ARGS)
                _extract(<dict>message, f)   # here: no Python code runs in between
                return (<Client>client)._produce_fields(
                    f, message, self._max_payload, conf_key, wait_ms, serving)
            return client.produce(_message_of(message, f, rest), self._max_payload, conf_key,
                                  wait_ms)
        except (_errors.KafkaError, _errors.ProducerClosedError) as error:
            return self._dispatch_retrying(_message_of(message, f, rest), variant, error,
                                           error_type)

    cdef object _produce_async_slow(self, object message):
        """produce_async of one mapping, the general way (middleware, non-dict mappings)."""
        if self._transactional and self._transaction_owner != PyThread_get_thread_ident():
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
                handle = (<Client>client)._produce_one(message, self._max_payload,
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


# ----------------------------------------------------------------------------------------------
# fork(): librdkafka's threads do not exist in the child, so its handles must never be used or
# destroyed there. Every native object is forgotten in the child, never freed.
# ----------------------------------------------------------------------------------------------

import weakref as _weakref

_LIVE_NATIVE = _weakref.WeakSet()


def _abandon_after_fork():
    global _pid
    _pid = _os.getpid()
    for obj in list(_LIVE_NATIVE):
        obj.abandon()
    _LIVE_NATIVE.clear()


_os.register_at_fork(after_in_child=_abandon_after_fork)
