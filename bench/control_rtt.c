/* control_rtt FARM_WORKER TRANSPORT [REQUESTS] — the control server's round trip, hosted here
 * as farm's play hosts it (real farm-worker processes, the engine, the null sink,
 * farm_control_start), so that the same program measures it on Linux and, built for Windows,
 * under wine (farm.exe cannot play there yet). TRANSPORT: ipc (the default socket: a Unix
 * socket file; a named pipe on Windows) or tcp (tcp://127.0.0.1, a port the system chooses).
 * A REQ client in this process sends REQUESTS (default 1000) requests of each kind, one at a
 * time, and prints one markdown row per kind: median, p99 and max round trip in ms.
 * bench/wine_control.sh runs it on both and makes docs/benchmarks.md's table. */
#define _GNU_SOURCE /* putenv */
#include <cjson/cJSON.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audio.h"
#include "control.h"
#include "plat.h"
#include "supervisor.h"

typedef struct host {
    shm_region region;
    farm_procs *procs;
    farm_engine *engine;
    farm_audio *audio;
    farm_control *control;
} host;

static int die(const char *what) {
    fprintf(stderr, "control_rtt: %s: %s\n", what, farm_error_message());
    exit(1);
}

static void start(host *h, const farm_control_desc *cd) {
    shm_config cfg = {.workers = 2,
                      .channels = 2,
                      .block_frames = 256,
                      .ring_blocks = 4,
                      .total_voices = 500,
                      .sample_rate = 48000,
                      .freq_min = 100,
                      .freq_max = 1000,
                      .amp = 0.001,
                      .ramp_seconds = 0.005,
                      .seed = 1};
    farm_heal_desc heal = {.restart_window_s = 60};
    farm_procs_prepare(&cfg);
    if (shm_create(&cfg, &h->region) != FARM_OK ||
        farm_procs_start(&h->procs, &h->region, &heal, NULL) != FARM_OK)
        die("workers");
    farm_engine_desc ed = {.region = &h->region, .gain = 1};
    if (farm_engine_create(&h->engine, &ed) != FARM_OK)
        die("engine");
    farm_audio_desc ad = {
        .null_sink = 1, .sample_rate = 48000, .buffer_frames = 256, .channels = 2};
    if (farm_audio_open(&h->audio, &ad, h->engine) != FARM_OK || farm_audio_start(h->audio))
        die("null sink");
    if (farm_control_start(&h->control, cd, &h->region, h->procs, h->engine, h->audio) != FARM_OK)
        die("control");
}

static void stop(host *h) {
    farm_audio_stop(h->audio);
    farm_control_stop(h->control);
    farm_procs_stop(h->procs);
    shm_close(&h->region);
    farm_audio_close(h->audio);
    farm_engine_destroy(h->engine);
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* n requests made by make(i), one at a time; a row of the table. */
static void measure(nng_socket s, const char *transport, const char *kind, int n,
                    void (*make)(int i, char *out, size_t size)) {
    double *ms = malloc((size_t)n * sizeof *ms);
    for (int i = 0; i < n; i++) {
        char req[128], *buf = NULL;
        size_t len = 0;
        make(i, req, sizeof req);
        uint64_t t0 = farm_now_ns();
        if (nng_send(s, req, strlen(req), 0) != 0 || nng_recv(s, &buf, &len, NNG_FLAG_ALLOC) != 0) {
            fprintf(stderr, "control_rtt: %s: no reply\n", req);
            exit(1);
        }
        ms[i] = (double)(farm_now_ns() - t0) / 1e6;
        if (len < 11 || memcmp(buf, "{\"ok\":true", 10) != 0) {
            fprintf(stderr, "control_rtt: %s: %.*s\n", req, (int)len, buf);
            exit(1);
        }
        nng_free(buf, len);
    }
    qsort(ms, (size_t)n, sizeof *ms, cmp);
    printf("| %s | %s | %.3f | %.3f | %.3f |\n", transport, kind, ms[n / 2],
           ms[(int)(0.99 * (n - 1) + 0.5)], ms[n - 1]);
    free(ms);
}

static void make_set(int i, char *out, size_t size) {
    snprintf(out, size, "set all freq %d ramp 0.01", 200 + i % 400);
}

static void make_get(int i, char *out, size_t size) {
    snprintf(out, size, "get %d freq", i % 500);
}

static void make_status(int i, char *out, size_t size) {
    (void)i;
    snprintf(out, size, "status");
}

int main(int argc, char **argv) {
    if (argc < 3 || (strcmp(argv[2], "ipc") != 0 && strcmp(argv[2], "tcp") != 0)) {
        fprintf(stderr, "usage: control_rtt FARM_WORKER ipc|tcp [REQUESTS]\n");
        return 2;
    }
    int n = argc > 3 ? atoi(argv[3]) : 1000;
    if (n < 1) {
        fprintf(stderr, "control_rtt: REQUESTS must be a positive count\n");
        return 2;
    }
    static char env[PLAT_PATH_MAX + 16];
    snprintf(env, sizeof env, "FARM_WORKER=%s", argv[1]);
    putenv(env);
    int tcp = strcmp(argv[2], "tcp") == 0;
    farm_control_desc cd = {.control_url = tcp ? "tcp://127.0.0.1:0" : NULL,
                            .telemetry_url = tcp ? "tcp://127.0.0.1:0" : NULL,
                            .telemetry_rate = 10};
    host h = {0};
    start(&h, &cd);
    nng_socket s;
    if (nng_req0_open(&s) != 0 || nng_dial(s, farm_control_url(h.control), NULL, 0) != 0) {
        fprintf(stderr, "control_rtt: cannot reach %s\n", farm_control_url(h.control));
        return 1;
    }
    nng_socket_set_ms(s, NNG_OPT_RECVTIMEO, 5000);
    const char *name = tcp              ? "tcp://127.0.0.1"
                       : PLAT_IPC_FILES ? "ipc (Unix socket)"
                                        : "ipc (named pipe)";
    measure(s, name, "get 1 voice", n, make_get);
    measure(s, name, "set all 500 voices", n, make_set);
    measure(s, name, "status", n, make_status);
    nng_close(s);
    stop(&h);
    return 0;
}
