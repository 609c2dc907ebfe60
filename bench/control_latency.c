/* control_latency --url URL [--requests N] — how long a control request takes to reach the
 * sound: sends N `set all freq` requests at irregular intervals and collects, from each reply,
 * the distance in blocks from the block being played when the request arrived to the first
 * block it shaped (latency_blocks, latency_ms), and the round trip as the client sees it.
 * Prints a markdown row per figure: median, p99, max. */
#define _GNU_SOURCE
#include <cjson/cJSON.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double pct(double *v, int n, double p) {
    int i = (int)(p / 100.0 * (n - 1) + 0.5);
    return v[i < n ? i : n - 1];
}

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

int main(int argc, char **argv) {
    const char *url = NULL;
    int n = 300;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--url") == 0 && i + 1 < argc)
            url = argv[++i];
        else if (strcmp(argv[i], "--requests") == 0 && i + 1 < argc)
            n = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: control_latency --url URL [--requests N]\n");
            return 2;
        }
    }
    if (url == NULL || n < 1) {
        fprintf(stderr, "usage: control_latency --url URL [--requests N]\n");
        return 2;
    }
    nng_socket s;
    int rv;
    if ((rv = nng_req0_open(&s)) != 0 || (rv = nng_dial(s, url, NULL, 0)) != 0) {
        fprintf(stderr, "control_latency: %s: %s\n", url, nng_strerror(rv));
        return 1;
    }
    nng_socket_set_ms(s, NNG_OPT_RECVTIMEO, 5000);
    double *blocks = calloc((size_t)n, sizeof(double)), *ms = calloc((size_t)n, sizeof(double)),
           *rtt = calloc((size_t)n, sizeof(double));
    int got = 0;
    srand(1);
    for (int i = 0; i < n; i++) {
        char req[64];
        snprintf(req, sizeof req, "set all freq %d ramp 0", 400 + (i % 2) * 200);
        usleep((useconds_t)(rand() % 8000)); /* land anywhere within a block */
        double t0 = now_ms();
        char *buf = NULL;
        size_t size = 0;
        if ((rv = nng_send(s, req, strlen(req), 0)) != 0 ||
            (rv = nng_recv(s, &buf, &size, NNG_FLAG_ALLOC)) != 0) {
            fprintf(stderr, "control_latency: request %d: %s\n", i, nng_strerror(rv));
            return 1;
        }
        double t1 = now_ms();
        char *text = strndup(buf, size);
        nng_free(buf, size);
        cJSON *j = cJSON_Parse(text);
        cJSON *lb = cJSON_GetObjectItem(j, "latency_blocks"),
              *lm = cJSON_GetObjectItem(j, "latency_ms");
        if (!cJSON_IsTrue(cJSON_GetObjectItem(j, "ok")) || !cJSON_IsNumber(lb)) {
            fprintf(stderr, "control_latency: unexpected reply: %s\n", text);
            return 1;
        }
        blocks[got] = lb->valuedouble;
        ms[got] = lm->valuedouble;
        rtt[got] = t1 - t0;
        got++;
        cJSON_Delete(j);
        free(text);
    }
    qsort(blocks, (size_t)got, sizeof(double), cmp);
    qsort(ms, (size_t)got, sizeof(double), cmp);
    qsort(rtt, (size_t)got, sizeof(double), cmp);
    printf("| request to first shaped block, blocks | %.0f | %.0f | %.0f |\n", pct(blocks, got, 50),
           pct(blocks, got, 99), blocks[got - 1]);
    printf("| request to first shaped block, ms | %.2f | %.2f | %.2f |\n", pct(ms, got, 50),
           pct(ms, got, 99), ms[got - 1]);
    printf("| round trip of the request, ms | %.2f | %.2f | %.2f |\n", pct(rtt, got, 50),
           pct(rtt, got, 99), rtt[got - 1]);
    nng_close(s);
    return 0;
}
