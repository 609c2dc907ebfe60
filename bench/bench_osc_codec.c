/* bench_osc_codec — farm's own OSC codec (control/osc_codec_own.c) against liblo's
 * (control/osc_codec_lo.c) on the work the OSC server gives a codec: reading a request (its
 * path, then the message: types and arguments) and writing the /farm/reply with the JSON reply.
 *
 * Messages: a short set (/farm/set "all" "freq" 440.5f), a set with a value per voice for 64
 * voices (/farm/set "0-63" "freq" and 64 floats, as a client sends a list), a status (no
 * arguments); replies: a set's reply (about 200 bytes of JSON) and a status reply (4 KB).
 * Each case is timed for --seconds (default 0.2) per trial, the codecs interleaved, --trials
 * (default 9) trials; the median ns per operation is printed, with the fastest and slowest trial.
 *
 *   bench_osc_codec [--seconds S] [--trials N] [--cpu K]
 */
#define _GNU_SOURCE
#include <lo/lo.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_pin.h"

#include "osc_codecs_side_by_side.h"

#define MAX_TRIALS 99

typedef struct codec {
    const char *name;
    const char *(*path)(void *, size_t);
    osc_codec_msg *(*parse)(void *, size_t, int *);
    const char *(*types)(osc_codec_msg *);
    void *const *(*argv)(osc_codec_msg *);
    int (*argc)(osc_codec_msg *);
    void (*free)(osc_codec_msg *);
    void *(*string_message)(const char *, const char *, size_t *);
} codec;

static const codec codecs[2] = {
    {"liblo", osc_codec_path, osc_codec_parse, osc_codec_types, osc_codec_argv, osc_codec_argc,
     osc_codec_free, osc_codec_string_message},
    {"farm's own", own_path, own_parse, own_types, own_argv, own_argc, own_free,
     own_string_message},
};

static volatile uintptr_t sink; /* keeps the compiler from dropping work nobody reads */

static double now_s(void) {
    return (double)farm_now_ns() / FARM_NS_PER_S;
}

/* What osc.c does with one packet: the path, the message, a look at every argument. */
static void decode_once(const codec *k, void *data, size_t size) {
    uintptr_t x = (uintptr_t)k->path(data, size);
    int error = 0;
    osc_codec_msg *m = k->parse(data, size, &error);
    if (m != NULL) {
        const char *t = k->types(m);
        void *const *argv = k->argv(m);
        for (int i = 0; i < k->argc(m); i++)
            x += (uintptr_t)t[i] + (uintptr_t)(argv[i] ? *(const unsigned char *)argv[i] : 0);
        k->free(m);
    }
    sink += x + (uintptr_t)error;
}

static void encode_once(const codec *k, const char *json) {
    size_t size = 0;
    void *p = k->string_message("/farm/reply", json, &size);
    sink += size + (p ? *(unsigned char *)p : 0);
    free(p);
}

typedef struct bench_case {
    const char *what;
    void *data; /* a packet to decode, or NULL: encode json */
    size_t size;
    const char *json;
    double ns[2][MAX_TRIALS];
} bench_case;

/* ns per operation over about seconds */
static double trial(const codec *k, const bench_case *b, double seconds) {
    uint64_t n = 0;
    double t0 = now_s(), dt;
    do {
        for (int i = 0; i < 1000; i++) {
            if (b->data)
                decode_once(k, b->data, b->size);
            else
                encode_once(k, b->json);
        }
        n += 1000;
    } while ((dt = now_s() - t0) < seconds);
    return dt * 1e9 / (double)n;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void *packet(int which, size_t *size) {
    lo_message m = lo_message_new();
    const char *path = "/farm/set";
    if (which == 0)
        lo_message_add(m, "ssf", "all", "freq", 440.5f);
    else if (which == 1) {
        lo_message_add(m, "ss", "0-63", "freq");
        for (int i = 0; i < 64; i++)
            lo_message_add_float(m, 220.0f + (float)i);
    } else
        path = "/farm/status";
    void *p = lo_message_serialise(m, path, NULL, size);
    lo_message_free(m);
    return p;
}

static char *status_json(size_t bytes) {
    char *j = malloc(bytes + 1);
    size_t n = (size_t)snprintf(j, bytes + 1, "{\"ok\":true,\"config\":{\"workers\":8}");
    while (n + 40 < bytes)
        n += (size_t)snprintf(j + n, bytes + 1 - n, ",\"w%zu\":{\"load\":0.123456}", n);
    snprintf(j + n, bytes + 1 - n, "}");
    return j;
}

static int parse_args(int argc, char **argv, double *seconds, int *trials, int *cpu) {
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--seconds") == 0)
            *seconds = atof(argv[i + 1]);
        else if (strcmp(argv[i], "--trials") == 0)
            *trials = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--cpu") == 0)
            *cpu = atoi(argv[i + 1]);
        else
            return 0;
    }
    return (argc % 2) == 1 && *seconds > 0 && *trials > 0 && *trials <= MAX_TRIALS;
}

int main(int argc, char **argv) {
    double seconds = 0.2;
    int trials = 9, cpu = -1;
    if (!parse_args(argc, argv, &seconds, &trials, &cpu)) {
        fprintf(stderr, "usage: bench_osc_codec [--seconds S] [--trials N (1..%d)] [--cpu K]\n",
                MAX_TRIALS);
        return 2;
    }
    if ((cpu = bench_pin_to_one_cpu("bench_osc_codec", cpu)) < 0)
        return 1;
    char *status = status_json(4096);
    const char *set_reply = "{\"ok\":true,\"applied\":\"freq 440.5\",\"workers\":[0,1,2,3,4,5,6,"
                            "7],\"id\":12,\"voices\":4000,\"from_block\":123456,\"latency_blocks\""
                            ":2,\"latency_ms\":2.6666666666666665,\"ramp_s\":0.005}";
    bench_case cases[] = {
        {"decode /farm/set all freq 440.5", NULL, 0, NULL, {{0}}},
        {"decode /farm/set 0-63 freq + 64 floats", NULL, 0, NULL, {{0}}},
        {"decode /farm/status", NULL, 0, NULL, {{0}}},
        {"encode /farm/reply, a set's reply", NULL, 0, set_reply, {{0}}},
        {"encode /farm/reply, 4 KB status", NULL, 0, status, {{0}}},
    };
    for (int i = 0; i < 3; i++)
        cases[i].data = packet(i, &cases[i].size);
    const size_t n_cases = sizeof cases / sizeof cases[0];
    for (size_t c = 0; c < n_cases; c++) /* warm-up */
        for (int k = 0; k < 2; k++)
            trial(&codecs[k], &cases[c], seconds / 4);
    for (int t = 0; t < trials; t++)
        for (size_t c = 0; c < n_cases; c++)
            for (int k = 0; k < 2; k++)
                cases[c].ns[k][t] = trial(&codecs[k], &cases[c], seconds);
    printf("bench_osc_codec: CPU %d, %d trials of %.2f s, ns per operation: median "
           "(fastest-slowest)\n",
           cpu, trials, seconds);
    printf("%-42s %28s %28s\n", "case", codecs[0].name, codecs[1].name);
    for (size_t c = 0; c < n_cases; c++) {
        printf("%-42s", cases[c].what);
        for (int k = 0; k < 2; k++) {
            double *ns = cases[c].ns[k];
            qsort(ns, (size_t)trials, sizeof *ns, cmp_double);
            printf(" %10.1f (%6.1f-%7.1f)", ns[trials / 2], ns[0], ns[trials - 1]);
        }
        printf("\n");
    }
    for (int i = 0; i < 3; i++)
        free(cases[i].data);
    free(status);
    return 0;
}
