// kafka-mock: librdkafka's mock cluster (rdkafka_mock.h) in a process of its own, for the
// Kafka sink's integration tests. It prints the bootstrap servers on its first line, then
// reads one command a line on stdin and answers each with one line, "ok" or "error ...":
//
//   topic NAME PARTITIONS REPLICAS   create a topic
//   down BROKER / up BROKER          close a broker's connections and refuse new ones / accept again
//   leader TOPIC PARTITION BROKER    move a partition's leader
//   errors APIKEY COUNT CODE         fail the next COUNT requests of APIKEY (0 is Produce) with CODE
//   errors APIKEY COUNT CODE BROKER  the same, of requests to BROKER only
//   rtt BROKER MS                    delay a broker's responses
//
// It ends when stdin closes.
//
// `kafka-mock txn BOOTSTRAP TOPIC TRANSACTIONAL_ID` is a transactional producer for the tests of
// the read_committed relay: it prints "ready" once init_transactions returned, then takes
// commands the same way: begin, produce KEY VALUE, flush (the records in the log, the transaction
// still open), commit, abort. It ends when stdin closes without ending a transaction in progress,
// as a producer killed mid-transaction would.
//
// `kafka-mock produce BOOTSTRAP TOPIC FILE` is the baseline of `edge-bench kafka.drain`: a bare
// librdkafka producer with the sink's settings (idempotent, acks=all, lz4) sending FILE's records
// (one a line: KEY, a tab, VALUE) as the sink's structured mode does (the CloudEvents
// `content-type` header on each) and waiting for every delivery report; it prints the seconds taken.
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static long delivered, failed;

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *message, void *opaque) {
    (void)rk;
    (void)opaque;
    if (message->err)
        failed++;
    else
        delivered++;
}

static int produce(const char *bootstrap, const char *topic, const char *path) {
    char message[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    const char *settings[][2] = {
        {"bootstrap.servers", bootstrap}, {"enable.idempotence", "true"}, {"acks", "all"},
        {"compression.type", "lz4"}, {"queue.buffering.max.messages", "1000000"},
    };
    for (size_t i = 0; i < sizeof settings / sizeof settings[0]; i++)
        if (rd_kafka_conf_set(conf, settings[i][0], settings[i][1], message, sizeof message)) {
            fprintf(stderr, "kafka-mock: %s\n", message);
            return 1;
        }
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, message, sizeof message);
    FILE *file = fopen(path, "r");
    if (!rk || !file) {
        fprintf(stderr, "kafka-mock: cannot start the producer or read %s\n", path);
        return 1;
    }
    static char line[1 << 16];
    long sent = 0;
    struct timespec start, end;
    clock_gettime(CLOCK_MONOTONIC, &start);
    while (fgets(line, sizeof line, file)) {
        char *tab = strchr(line, '\t');
        if (!tab) continue;
        size_t length = strcspn(tab + 1, "\n");
        for (;;) {
            rd_kafka_resp_err_t err = rd_kafka_producev(
                rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(line, (size_t)(tab - line)),
                RD_KAFKA_V_VALUE(tab + 1, length), RD_KAFKA_V_HEADER("content-type", "application/cloudevents+json", -1),
                RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
            if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) break;
            rd_kafka_poll(rk, 10);
        }
        sent++;
        rd_kafka_poll(rk, 0);
    }
    while (delivered + failed < sent) rd_kafka_poll(rk, 50);
    clock_gettime(CLOCK_MONOTONIC, &end);
    printf("%.6f\n", (double)(end.tv_sec - start.tv_sec) + (double)(end.tv_nsec - start.tv_nsec) / 1e9);
    fclose(file);
    rd_kafka_destroy(rk);
    return failed ? 1 : 0;
}

static void answer(rd_kafka_resp_err_t err);

static void answer_error(rd_kafka_error_t *error) {
    if (error) {
        printf("error %s\n", rd_kafka_error_string(error));
        fflush(stdout);
        rd_kafka_error_destroy(error);
    } else
        answer(RD_KAFKA_RESP_ERR_NO_ERROR);
}

static int transactional(const char *bootstrap, const char *topic, const char *id) {
    char message[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, message, sizeof message) ||
        rd_kafka_conf_set(conf, "transactional.id", id, message, sizeof message)) {
        fprintf(stderr, "kafka-mock: %s\n", message);
        return 1;
    }
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, message, sizeof message);
    if (!rk) {
        fprintf(stderr, "kafka-mock: %s\n", message);
        return 1;
    }
    rd_kafka_error_t *error = rd_kafka_init_transactions(rk, 10000);
    if (error) {
        fprintf(stderr, "kafka-mock: %s\n", rd_kafka_error_string(error));
        return 1;
    }
    printf("ready\n");
    fflush(stdout);
    char line[1024], key[512];
    int at;
    while (fgets(line, sizeof line, stdin)) {
        line[strcspn(line, "\n")] = 0;
        if (strcmp(line, "begin") == 0)
            answer_error(rd_kafka_begin_transaction(rk));
        else if (sscanf(line, "produce %511s %n", key, &at) == 1)
            answer(rd_kafka_producev(
                rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(key, strlen(key)),
                RD_KAFKA_V_VALUE(line + at, strlen(line + at)), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                RD_KAFKA_V_END));
        else if (strcmp(line, "flush") == 0)
            answer(rd_kafka_flush(rk, 10000));
        else if (strcmp(line, "commit") == 0)
            answer_error(rd_kafka_commit_transaction(rk, 10000));
        else if (strcmp(line, "abort") == 0)
            answer_error(rd_kafka_abort_transaction(rk, 10000));
        else {
            printf("error unknown command\n");
            fflush(stdout);
        }
    }
    _exit(0);  // no abort, no goodbye: the transaction in progress stays open
}

static void answer(rd_kafka_resp_err_t err) {
    if (err)
        printf("error %s\n", rd_kafka_err2name(err));
    else
        printf("ok\n");
    fflush(stdout);
}

int main(int argc, char **argv) {
    if (argc == 5 && strcmp(argv[1], "produce") == 0) return produce(argv[2], argv[3], argv[4]);
    if (argc == 5 && strcmp(argv[1], "txn") == 0) return transactional(argv[2], argv[3], argv[4]);
    int brokers = argc > 1 ? atoi(argv[1]) : 3;
    char message[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, message, sizeof message);
    if (!rk) {
        fprintf(stderr, "kafka-mock: %s\n", message);
        return 1;
    }
    rd_kafka_mock_cluster_t *cluster = rd_kafka_mock_cluster_new(rk, brokers);
    if (!cluster) {
        fprintf(stderr, "kafka-mock: cannot start the mock cluster\n");
        return 1;
    }
    printf("%s\n", rd_kafka_mock_cluster_bootstraps(cluster));
    fflush(stdout);

    char line[1024], name[512];
    while (fgets(line, sizeof line, stdin)) {
        int a, b, c, d;
        if (sscanf(line, "topic %511s %d %d", name, &a, &b) == 3)
            answer(rd_kafka_mock_topic_create(cluster, name, a, b));
        else if (sscanf(line, "down %d", &a) == 1)
            answer(rd_kafka_mock_broker_set_down(cluster, a));
        else if (sscanf(line, "up %d", &a) == 1)
            answer(rd_kafka_mock_broker_set_up(cluster, a));
        else if (sscanf(line, "leader %511s %d %d", name, &a, &b) == 3)
            answer(rd_kafka_mock_partition_set_leader(cluster, name, a, b));
        else if (sscanf(line, "errors %d %d %d %d", &a, &b, &c, &d) == 4) {
            rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR_NO_ERROR;
            for (int i = 0; i < b && !err; i++)
                err = rd_kafka_mock_broker_push_request_error_rtts(cluster, d, (int16_t)a, 1,
                                                                   (rd_kafka_resp_err_t)c, 0);
            answer(err);
        } else if (sscanf(line, "errors %d %d %d", &a, &b, &c) == 3) {
            rd_kafka_resp_err_t *codes = calloc((size_t)b, sizeof *codes);
            for (int i = 0; i < b; i++) codes[i] = (rd_kafka_resp_err_t)c;
            rd_kafka_mock_push_request_errors_array(cluster, (int16_t)a, (size_t)b, codes);
            free(codes);
            answer(RD_KAFKA_RESP_ERR_NO_ERROR);
        } else if (sscanf(line, "rtt %d %d", &a, &b) == 2)
            answer(rd_kafka_mock_broker_set_rtt(cluster, a, b));
        else {
            printf("error unknown command\n");
            fflush(stdout);
        }
    }
    rd_kafka_mock_cluster_destroy(cluster);
    rd_kafka_destroy(rk);
    return 0;
}
