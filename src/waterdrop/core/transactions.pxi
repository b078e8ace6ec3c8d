# A transactional producer's calls into librdkafka; the policy (when to begin, commit, abort
# or retry) is waterdrop.producer.transactions'. The blocking ones run without the GIL.
# Functions of the Client (their first argument, ``self``), behind its methods of the same
# names.

cdef enum _Transaction:
    _TXN_INIT
    _TXN_BEGIN
    _TXN_COMMIT
    _TXN_ABORT


cdef int _transaction_call(Client self, _Transaction call, int timeout_ms) except -1:
    """init_transactions, begin_transaction, commit_transaction or abort_transaction: a
    librdkafka error raises its KafkaError (fatal, retryable, abortable as librdkafka says)."""
    cdef rd_kafka_error_t *error
    self._ensure_open()
    if call == _TXN_BEGIN:                    # returns at once
        error = rd_kafka_begin_transaction(self.rk)
    else:
        with nogil:
            if call == _TXN_INIT:
                error = rd_kafka_init_transactions(self.rk, timeout_ms)
            elif call == _TXN_COMMIT:
                error = rd_kafka_commit_transaction(self.rk, timeout_ms)
            else:
                error = rd_kafka_abort_transaction(self.rk, timeout_ms)
    if error != NULL:
        raise _error_from_rd_error(error)
    return 0


cdef int _send_offsets_to_transaction(Client self, list offsets, object group,
                                      int timeout_ms) except -1:
    """Client.send_offsets_to_transaction."""
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
            # Exactly the bytes given, as WaterDrop sends them: librdkafka sends metadata_size
            # bytes (no terminator; its own reader adds one after what it reads). Empty or None
            # stays NULL, which librdkafka sends as an empty string.
            if metadata is None:
                raw = b""
            elif isinstance(metadata, str):
                raw = metadata.encode("utf-8")
            else:
                raw = bytes(metadata)
            if len(raw) > 0:
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
    return 0
