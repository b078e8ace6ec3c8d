# librdkafka itself: the oldest version this binding is written against (checked when compiling
# and at import), its version string, and the one chokepoint from its error codes to
# waterdrop.errors.KafkaError.

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


def librdkafka_features():
    """The features the linked librdkafka was built with (its ``builtin.features``).

    Read from a default configuration, so it says what this build can do (a codec that is
    missing here fails at the first produce through it, not at setup).
    """
    cdef rd_kafka_conf_t *conf = rd_kafka_conf_new()
    cdef size_t size = 0
    cdef char *buf = NULL
    cdef bytes raw = b""
    try:
        # first the length (NUL included), then the value
        if rd_kafka_conf_get(conf, b"builtin.features", NULL, &size) != RD_KAFKA_CONF_OK:
            raise RuntimeError("librdkafka does not report builtin.features")
        buf = <char *>malloc(size + 1)
        if buf == NULL:
            raise MemoryError()
        if rd_kafka_conf_get(conf, b"builtin.features", buf, &size) != RD_KAFKA_CONF_OK:
            raise RuntimeError("librdkafka does not report builtin.features")
        buf[size] = 0
        raw = <bytes>buf
    finally:
        free(buf)
        rd_kafka_conf_destroy(conf)
    return tuple(f for f in raw.decode("ascii").split(",") if f)
