# Declarations from librdkafka's rdkafka.h and rdkafka_mock.h that waterdrop uses, nothing else.
# The headers are the pinned librdkafka's (vendor/librdkafka); names and types mirror them.

from libc.stdint cimport int16_t, int32_t, int64_t
from libc.stdio cimport FILE

# ssize_t: rdkafka.h has it on every platform (from <sys/types.h>, or its own typedef on Windows)
cdef extern from "librdkafka/rdkafka.h":
    ctypedef long ssize_t

cdef extern from "librdkafka/rdkafka.h" nogil:
    int RD_KAFKA_VERSION
    int rd_kafka_version()
    const char *rd_kafka_version_str()

    ctypedef struct rd_kafka_t
    ctypedef struct rd_kafka_conf_t
    ctypedef struct rd_kafka_topic_t
    ctypedef struct rd_kafka_topic_conf_t
    ctypedef struct rd_kafka_queue_t
    ctypedef struct rd_kafka_event_t
    ctypedef struct rd_kafka_headers_t
    ctypedef struct rd_kafka_error_t
    ctypedef struct rd_kafka_consumer_group_metadata_t

    ctypedef enum rd_kafka_type_t:
        RD_KAFKA_PRODUCER
        RD_KAFKA_CONSUMER

    ctypedef enum rd_kafka_conf_res_t:
        RD_KAFKA_CONF_UNKNOWN
        RD_KAFKA_CONF_INVALID
        RD_KAFKA_CONF_OK

    ctypedef int rd_kafka_resp_err_t
    rd_kafka_resp_err_t RD_KAFKA_RESP_ERR_NO_ERROR
    rd_kafka_resp_err_t RD_KAFKA_RESP_ERR__QUEUE_FULL
    rd_kafka_resp_err_t RD_KAFKA_RESP_ERR__MSG_TIMED_OUT
    rd_kafka_resp_err_t RD_KAFKA_RESP_ERR__PURGE_QUEUE
    rd_kafka_resp_err_t RD_KAFKA_RESP_ERR__PURGE_INFLIGHT
    rd_kafka_resp_err_t RD_KAFKA_RESP_ERR__FATAL
    rd_kafka_resp_err_t RD_KAFKA_RESP_ERR__TIMED_OUT
    rd_kafka_resp_err_t RD_KAFKA_RESP_ERR__DESTROY
    rd_kafka_resp_err_t RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION

    struct rd_kafka_err_desc:
        rd_kafka_resp_err_t code
        const char *name
        const char *desc

    void rd_kafka_get_err_descs(const rd_kafka_err_desc **errdescs, size_t *cntp)
    const char *rd_kafka_err2str(rd_kafka_resp_err_t err)
    const char *rd_kafka_err2name(rd_kafka_resp_err_t err)
    rd_kafka_resp_err_t rd_kafka_last_error()
    rd_kafka_resp_err_t rd_kafka_fatal_error(rd_kafka_t *rk, char *errstr, size_t errstr_size)
    rd_kafka_resp_err_t rd_kafka_test_fatal_error(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                                                  const char *reason)

    rd_kafka_resp_err_t rd_kafka_error_code(const rd_kafka_error_t *error)
    const char *rd_kafka_error_string(const rd_kafka_error_t *error)
    int rd_kafka_error_is_fatal(const rd_kafka_error_t *error)
    int rd_kafka_error_is_retriable(const rd_kafka_error_t *error)
    int rd_kafka_error_txn_requires_abort(const rd_kafka_error_t *error)
    void rd_kafka_error_destroy(rd_kafka_error_t *error)

    # Configuration
    rd_kafka_conf_t *rd_kafka_conf_new()
    void rd_kafka_conf_destroy(rd_kafka_conf_t *conf)
    rd_kafka_conf_res_t rd_kafka_conf_set(rd_kafka_conf_t *conf, const char *name,
                                          const char *value, char *errstr, size_t errstr_size)
    rd_kafka_conf_res_t rd_kafka_conf_get(const rd_kafka_conf_t *conf, const char *name,
                                          char *dest, size_t *dest_size)
    void rd_kafka_conf_set_events(rd_kafka_conf_t *conf, int events)
    void rd_kafka_conf_properties_show(FILE *fp)
    rd_kafka_topic_conf_t *rd_kafka_topic_conf_new()
    void rd_kafka_topic_conf_destroy(rd_kafka_topic_conf_t *topic_conf)
    rd_kafka_conf_res_t rd_kafka_topic_conf_set(rd_kafka_topic_conf_t *conf, const char *name,
                                                const char *value, char *errstr,
                                                size_t errstr_size)

    # Handle
    rd_kafka_t *rd_kafka_new(rd_kafka_type_t type, rd_kafka_conf_t *conf, char *errstr,
                             size_t errstr_size)
    void rd_kafka_destroy(rd_kafka_t *rk)
    const char *rd_kafka_name(const rd_kafka_t *rk)
    int rd_kafka_outq_len(rd_kafka_t *rk)
    rd_kafka_resp_err_t rd_kafka_flush(rd_kafka_t *rk, int timeout_ms)
    int RD_KAFKA_PURGE_F_QUEUE
    int RD_KAFKA_PURGE_F_INFLIGHT
    int RD_KAFKA_PURGE_F_NON_BLOCKING
    rd_kafka_resp_err_t rd_kafka_purge(rd_kafka_t *rk, int purge_flags)

    # Topics
    rd_kafka_topic_t *rd_kafka_topic_new(rd_kafka_t *rk, const char *topic,
                                         rd_kafka_topic_conf_t *conf)
    void rd_kafka_topic_destroy(rd_kafka_topic_t *rkt)
    const char *rd_kafka_topic_name(const rd_kafka_topic_t *rkt)

    # Messages
    int32_t RD_KAFKA_PARTITION_UA
    int64_t RD_KAFKA_OFFSET_INVALID
    int RD_KAFKA_MSG_F_COPY
    int RD_KAFKA_MSG_F_BLOCK

    ctypedef struct rd_kafka_message_t:
        rd_kafka_resp_err_t err
        rd_kafka_topic_t *rkt
        int32_t partition
        void *payload
        size_t len
        void *key
        size_t key_len
        int64_t offset
        void *_private

    ctypedef enum rd_kafka_msg_status_t:
        RD_KAFKA_MSG_STATUS_NOT_PERSISTED
        RD_KAFKA_MSG_STATUS_POSSIBLY_PERSISTED
        RD_KAFKA_MSG_STATUS_PERSISTED

    ctypedef enum rd_kafka_timestamp_type_t:
        RD_KAFKA_TIMESTAMP_NOT_AVAILABLE
        RD_KAFKA_TIMESTAMP_CREATE_TIME
        RD_KAFKA_TIMESTAMP_LOG_APPEND_TIME

    rd_kafka_msg_status_t rd_kafka_message_status(const rd_kafka_message_t *rkmessage)
    int64_t rd_kafka_message_latency(const rd_kafka_message_t *rkmessage)
    int64_t rd_kafka_message_timestamp(const rd_kafka_message_t *rkmessage,
                                       rd_kafka_timestamp_type_t *tstype)
    const char *rd_kafka_message_produce_errstr(const rd_kafka_message_t *rkmessage)

    int RD_KAFKA_MSG_F_PARTITION
    int rd_kafka_produce_batch(rd_kafka_topic_t *rkt, int32_t partition, int msgflags,
                               rd_kafka_message_t *rkmessages, int message_cnt)
    int rd_kafka_produce(rd_kafka_topic_t *rkt, int32_t partition, int msgflags,
                         void *payload, size_t len, const void *key, size_t keylen,
                         void *msg_opaque)

    ctypedef enum rd_kafka_vtype_t:
        RD_KAFKA_VTYPE_END
        RD_KAFKA_VTYPE_TOPIC
        RD_KAFKA_VTYPE_RKT
        RD_KAFKA_VTYPE_PARTITION
        RD_KAFKA_VTYPE_VALUE
        RD_KAFKA_VTYPE_KEY
        RD_KAFKA_VTYPE_OPAQUE
        RD_KAFKA_VTYPE_MSGFLAGS
        RD_KAFKA_VTYPE_TIMESTAMP
        RD_KAFKA_VTYPE_HEADER
        RD_KAFKA_VTYPE_HEADERS

    # The union member of rd_kafka_vu_t is named `u`; only field accesses are emitted.
    cdef struct _rd_kafka_vu_mem:
        void *ptr
        size_t size

    cdef union _rd_kafka_vu_u:
        rd_kafka_topic_t *rkt
        int i
        int32_t i32
        int64_t i64
        _rd_kafka_vu_mem mem
        rd_kafka_headers_t *headers
        void *ptr

    ctypedef struct rd_kafka_vu_t:
        rd_kafka_vtype_t vtype
        _rd_kafka_vu_u u

    rd_kafka_error_t *rd_kafka_produceva(rd_kafka_t *rk, const rd_kafka_vu_t *vus, size_t cnt)

    # Headers
    rd_kafka_headers_t *rd_kafka_headers_new(size_t initial_count)
    void rd_kafka_headers_destroy(rd_kafka_headers_t *hdrs)
    rd_kafka_resp_err_t rd_kafka_header_add(rd_kafka_headers_t *hdrs, const char *name,
                                            ssize_t name_size, const void *value,
                                            ssize_t value_size)

    # Metadata
    ctypedef struct rd_kafka_metadata_topic_t:
        char *topic
        int partition_cnt
        rd_kafka_resp_err_t err

    ctypedef struct rd_kafka_metadata_t:
        int broker_cnt
        int topic_cnt
        rd_kafka_metadata_topic_t *topics

    rd_kafka_resp_err_t rd_kafka_metadata(rd_kafka_t *rk, int all_topics,
                                          rd_kafka_topic_t *only_rkt,
                                          const rd_kafka_metadata_t **metadatap,
                                          int timeout_ms)
    void rd_kafka_metadata_destroy(const rd_kafka_metadata_t *metadata)

    # Queues and events
    rd_kafka_queue_t *rd_kafka_queue_get_main(rd_kafka_t *rk)
    void rd_kafka_queue_destroy(rd_kafka_queue_t *rkqu)
    void rd_kafka_queue_yield(rd_kafka_queue_t *rkqu)
    size_t rd_kafka_queue_length(rd_kafka_queue_t *rkqu)
    rd_kafka_resp_err_t rd_kafka_set_log_queue(rd_kafka_t *rk, rd_kafka_queue_t *rkqu)
    rd_kafka_event_t *rd_kafka_queue_poll(rd_kafka_queue_t *rkqu, int timeout_ms)

    int RD_KAFKA_EVENT_NONE
    int RD_KAFKA_EVENT_DR
    int RD_KAFKA_EVENT_ERROR
    int RD_KAFKA_EVENT_LOG
    int RD_KAFKA_EVENT_STATS
    int RD_KAFKA_EVENT_OAUTHBEARER_TOKEN_REFRESH
    ctypedef int rd_kafka_event_type_t
    rd_kafka_event_type_t rd_kafka_event_type(const rd_kafka_event_t *rkev)
    void rd_kafka_event_destroy(rd_kafka_event_t *rkev)
    size_t rd_kafka_event_message_count(rd_kafka_event_t *rkev)
    size_t rd_kafka_event_message_array(rd_kafka_event_t *rkev,
                                        const rd_kafka_message_t **rkmessages, size_t size)
    rd_kafka_resp_err_t rd_kafka_event_error(rd_kafka_event_t *rkev)
    const char *rd_kafka_event_error_string(rd_kafka_event_t *rkev)
    int rd_kafka_event_error_is_fatal(rd_kafka_event_t *rkev)
    int rd_kafka_event_log(rd_kafka_event_t *rkev, const char **fac, const char **str,
                           int *level)
    const char *rd_kafka_event_stats(rd_kafka_event_t *rkev)

    # OAUTHBEARER
    const char *rd_kafka_event_config_string(rd_kafka_event_t *rkev)
    rd_kafka_resp_err_t rd_kafka_oauthbearer_set_token(
        rd_kafka_t *rk, const char *token_value, int64_t md_lifetime_ms,
        const char *md_principal_name, const char **extensions, size_t extension_size,
        char *errstr, size_t errstr_size)
    rd_kafka_resp_err_t rd_kafka_oauthbearer_set_token_failure(rd_kafka_t *rk, const char *errstr)

    # Transactions
    ctypedef struct rd_kafka_topic_partition_t:
        char *topic
        int32_t partition
        int64_t offset
        void *metadata
        size_t metadata_size
        rd_kafka_resp_err_t err

    ctypedef struct rd_kafka_topic_partition_list_t:
        int cnt
        int size
        rd_kafka_topic_partition_t *elems

    rd_kafka_topic_partition_list_t *rd_kafka_topic_partition_list_new(int size)
    void rd_kafka_topic_partition_list_destroy(rd_kafka_topic_partition_list_t *rkparlist)
    rd_kafka_topic_partition_t *rd_kafka_topic_partition_list_add(
        rd_kafka_topic_partition_list_t *rktparlist, const char *topic, int32_t partition)
    rd_kafka_consumer_group_metadata_t *rd_kafka_consumer_group_metadata_new(const char *group_id)
    void rd_kafka_consumer_group_metadata_destroy(rd_kafka_consumer_group_metadata_t *cgmd)
    rd_kafka_error_t *rd_kafka_consumer_group_metadata_read(
        rd_kafka_consumer_group_metadata_t **cgmdp, const void *buffer, size_t size)
    rd_kafka_error_t *rd_kafka_send_offsets_to_transaction(
        rd_kafka_t *rk, const rd_kafka_topic_partition_list_t *offsets,
        const rd_kafka_consumer_group_metadata_t *cgmetadata, int timeout_ms)
    rd_kafka_error_t *rd_kafka_init_transactions(rd_kafka_t *rk, int timeout_ms)
    rd_kafka_error_t *rd_kafka_begin_transaction(rd_kafka_t *rk)
    rd_kafka_error_t *rd_kafka_commit_transaction(rd_kafka_t *rk, int timeout_ms)
    rd_kafka_error_t *rd_kafka_abort_transaction(rd_kafka_t *rk, int timeout_ms)


cdef extern from "librdkafka/rdkafka_mock.h" nogil:
    ctypedef struct rd_kafka_mock_cluster_t
    rd_kafka_mock_cluster_t *rd_kafka_mock_cluster_new(rd_kafka_t *rk, int broker_cnt)
    void rd_kafka_mock_cluster_destroy(rd_kafka_mock_cluster_t *mcluster)
    const char *rd_kafka_mock_cluster_bootstraps(const rd_kafka_mock_cluster_t *mcluster)
    rd_kafka_resp_err_t rd_kafka_mock_topic_create(rd_kafka_mock_cluster_t *mcluster,
                                                   const char *topic, int partition_cnt,
                                                   int replication_factor)
    rd_kafka_resp_err_t rd_kafka_mock_broker_set_down(rd_kafka_mock_cluster_t *mcluster,
                                                      int32_t broker_id)
    rd_kafka_resp_err_t rd_kafka_mock_broker_set_up(rd_kafka_mock_cluster_t *mcluster,
                                                    int32_t broker_id)
    rd_kafka_resp_err_t rd_kafka_mock_broker_set_rtt(rd_kafka_mock_cluster_t *mcluster,
                                                     int32_t broker_id, int rtt_ms)
    rd_kafka_resp_err_t rd_kafka_mock_partition_set_leader(rd_kafka_mock_cluster_t *mcluster,
                                                           const char *topic,
                                                           int32_t partition,
                                                           int32_t broker_id)
    void rd_kafka_mock_push_request_errors_array(rd_kafka_mock_cluster_t *mcluster,
                                                 int16_t ApiKey, size_t cnt,
                                                 const rd_kafka_resp_err_t *errors)
    void rd_kafka_mock_clear_request_errors(rd_kafka_mock_cluster_t *mcluster, int16_t ApiKey)


# Not a librdkafka typedef: the signature shared by its rd_kafka_msg_partitioner_* functions.
ctypedef int32_t (*rd_kafka_partitioner_fn)(const rd_kafka_topic_t *rkt, const void *key,
                                           size_t keylen, int32_t partition_cnt,
                                           void *rkt_opaque, void *msg_opaque) noexcept nogil

# Partitioners (called with the GIL held, on the caller's thread, for partition_key): declared
# by the signature they share, as the addresses the core takes ("random" is handled without a
# key: rd_kafka_msg_partitioner_random is never called).
cdef extern from "librdkafka/rdkafka.h" nogil:
    rd_kafka_partitioner_fn rd_kafka_msg_partitioner_consistent
    rd_kafka_partitioner_fn rd_kafka_msg_partitioner_consistent_random
    rd_kafka_partitioner_fn rd_kafka_msg_partitioner_murmur2
    rd_kafka_partitioner_fn rd_kafka_msg_partitioner_murmur2_random
    rd_kafka_partitioner_fn rd_kafka_msg_partitioner_fnv1a
    rd_kafka_partitioner_fn rd_kafka_msg_partitioner_fnv1a_random
