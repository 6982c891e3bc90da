#include <librdkafka/rdkafka.h>

/// `rd_kafka_producev` is variadic, which Swift cannot call: one record, its bytes copied,
/// to the partition the key hashes to, of the topic handle `topic` (`rd_kafka_topic_new`). On
/// success `headers` belongs to the record; on failure it is still the caller's.
static inline rd_kafka_resp_err_t edge_kafka_produce(
    rd_kafka_t *rk, rd_kafka_topic_t *topic, const void *key, size_t key_len, const void *value,
    size_t value_len, rd_kafka_headers_t *headers, void *opaque) {
    return rd_kafka_producev(
        rk, RD_KAFKA_V_RKT(topic), RD_KAFKA_V_KEY(key, key_len),
        RD_KAFKA_V_VALUE((void *)value, value_len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
        RD_KAFKA_V_HEADERS(headers), RD_KAFKA_V_OPAQUE(opaque), RD_KAFKA_V_END);
}
