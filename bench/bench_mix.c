/* bench_mix — what the coordinator's mix (farm_mix, engine/mixdown.c) costs per callback, against
 * the number of workers it sums, for a few block sizes.
 *
 * The audio callback takes one block from every worker's ring and sums them, so its own work
 * grows with the worker count even though no voice is rendered there. This measures that part
 * alone: one block per worker, each in its own allocation (as the rings are), summed with the
 * master gain and the limiter as the engine does, in a tight loop on one pinned CPU. The
 * callback's fixed costs (ring bookkeeping, fades, meters, the recorder's copy) are not in it;
 * the real-time probes of bench/scaling.sh report the whole callback's duration beside it.
 *
 * Method as bench_kernel: warm up (which sizes a trial), then --trials timed trials with the
 * configurations interleaved; the median and the spread are reported.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_pin.h"
#include "dsp.h"
#include "engine.h"

#define MAX_LIST 16
#define MAX_TRIALS 1000
#define MAX_WORKERS 1024
#define SAMPLE_RATE 48000.0

typedef struct options {
    uint32_t workers[MAX_LIST], n_workers;
    uint32_t frames[MAX_LIST], n_frames;
    uint32_t channels;
    uint32_t trials;
    double seconds;
    const char *csv;
    int cpu;
} options;

typedef struct mix_case {
    uint32_t workers, frames;
    float **blocks;
    float *out;
    uint32_t calls; /* per trial, sized during warm-up */
    double ns[MAX_TRIALS];
    double median, min, max;
} mix_case;

static volatile float sink; /* keeps the compiler from dropping mixes nobody reads */

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void usage(FILE *to) {
    fprintf(to, "usage: bench_mix [options]\n"
                "\n"
                "Measures farm_mix, the coordinator's sum of the workers' blocks (gain and\n"
                "limiter included), per callback, on one CPU, for each worker count and block\n"
                "size. Prints a markdown table: ns per callback (median, min, max), ns per\n"
                "frame and the share of the block's period at 48 kHz.\n"
                "\n"
                "  --workers LIST   comma-separated worker counts (default 1,2,4,8,16,32,64)\n"
                "  --frames LIST    comma-separated block sizes (default 64,256)\n"
                "  --channels N     interleaved channels, 1..32 (default 2)\n"
                "  --trials N       timed trials per configuration (default 7)\n"
                "  --seconds S      wall time of one trial (default 0.05)\n"
                "  --csv FILE       also write the results as CSV\n"
                "  --cpu N          CPU to pin to (default: the first this process may use)\n"
                "  -h, --help       this text\n");
}

static int parse_u32(const char *s, uint32_t lo, uint32_t hi, uint32_t *out) {
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *end != '\0' || s[0] == '-' || v < lo || v > hi)
        return -1;
    *out = (uint32_t)v;
    return 0;
}

static int parse_list(const char *arg, uint32_t lo, uint32_t hi, uint32_t *list, uint32_t *n) {
    char buf[512]; /* strtok_r writes into its input; keep argv intact for the error message */
    if (snprintf(buf, sizeof buf, "%s", arg) >= (int)sizeof buf)
        return -1;
    *n = 0;
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save)) {
        if (*n == MAX_LIST || parse_u32(tok, lo, hi, &list[*n]) != 0)
            return -1;
        (*n)++;
    }
    return *n ? 0 : -1;
}

static int bad(const char *opt, const char *want, const char *val) {
    fprintf(stderr, "bench_mix: %s wants %s, not '%s' (see --help)\n", opt, want, val);
    return 2;
}

/* Returns 0 to run, 1 after --help, 2 on bad input (with a message). */
static int parse_options(int argc, char **argv, options *o) {
    *o = (options){.workers = {1, 2, 4, 8, 16, 32, 64},
                   .n_workers = 7,
                   .frames = {64, 256},
                   .n_frames = 2,
                   .channels = 2,
                   .trials = 7,
                   .seconds = 0.05,
                   .cpu = -1};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            return 1;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "bench_mix: unknown option or missing value: %s (see --help)\n", a);
            return 2;
        }
        const char *v = argv[++i];
        uint32_t u;
        char *end;
        if (strcmp(a, "--workers") == 0) {
            if (parse_list(v, 1, MAX_WORKERS, o->workers, &o->n_workers) != 0)
                return bad(a, "up to 16 comma-separated counts in 1..1024", v);
        } else if (strcmp(a, "--frames") == 0) {
            if (parse_list(v, 1, 8192, o->frames, &o->n_frames) != 0)
                return bad(a, "up to 16 comma-separated sizes in 1..8192", v);
        } else if (strcmp(a, "--channels") == 0) {
            if (parse_u32(v, 1, FARM_ENGINE_MAX_CHANNELS, &o->channels) != 0)
                return bad(a, "a count in 1..32", v);
        } else if (strcmp(a, "--trials") == 0) {
            if (parse_u32(v, 1, MAX_TRIALS, &o->trials) != 0)
                return bad(a, "1..1000", v);
        } else if (strcmp(a, "--seconds") == 0) {
            o->seconds = strtod(v, &end);
            if (end == v || *end != '\0' || !(o->seconds > 0 && o->seconds <= 60))
                return bad(a, "a number in (0, 60]", v);
        } else if (strcmp(a, "--csv") == 0) {
            o->csv = v;
        } else if (strcmp(a, "--cpu") == 0) {
            if (parse_u32(v, 0, PLAT_CPU_SETSIZE - 1, &u) != 0)
                return bad(a, "a CPU number", v);
            o->cpu = (int)u;
        } else {
            fprintf(stderr, "bench_mix: unknown option: %s (see --help)\n", a);
            return 2;
        }
    }
    return 0;
}

static void case_free(mix_case *c) {
    if (c->blocks)
        for (uint32_t k = 0; k < c->workers; k++)
            free(c->blocks[k]);
    free(c->blocks);
    free(c->out);
}

/* Quiet blocks, as the seed's workers deliver them: the limiter's comparisons never clip. */
static int case_create(mix_case *c, uint32_t workers, uint32_t frames, uint32_t channels) {
    memset(c, 0, sizeof *c);
    c->workers = workers;
    c->frames = frames;
    size_t samples = (size_t)frames * channels;
    c->blocks = calloc(workers, sizeof *c->blocks);
    c->out = malloc(samples * sizeof(float));
    if (c->blocks == NULL || c->out == NULL)
        return -1;
    for (uint32_t k = 0; k < workers; k++) {
        c->blocks[k] = malloc(samples * sizeof(float));
        if (c->blocks[k] == NULL)
            return -1;
        for (size_t i = 0; i < samples; i++)
            c->blocks[k][i] = 0.001f * (float)sin(0.01 * (double)(i + k));
    }
    return 0;
}

static double timed_calls(mix_case *c, uint32_t channels, uint32_t calls) {
    farm_gain gain = {.value = 1.0f, .target = 1.0f};
    farm_mix_stats stats = {0};
    double t0 = now_s();
    for (uint32_t i = 0; i < calls; i++)
        farm_mix(c->out, (const float *const *)c->blocks, c->workers, c->frames, channels, &gain,
                 &stats);
    double dt = now_s() - t0;
    sink += c->out[0] + (float)stats.clipped;
    return dt;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void measure(mix_case *cases, uint32_t n, const options *o) {
    for (uint32_t i = 0; i < n; i++) {
        uint32_t calls = 16;
        double dt;
        while ((dt = timed_calls(&cases[i], o->channels, calls)) < o->seconds / 4 &&
               calls < (1u << 30))
            calls *= 2;
        double want = o->seconds * calls / dt;
        cases[i].calls = want < 1 ? 1 : want > 1e9 ? 1000000000u : (uint32_t)want;
    }
    for (uint32_t t = 0; t < o->trials; t++)
        for (uint32_t i = 0; i < n; i++) {
            /* Rotate who goes first, so no case always runs right after the biggest one. */
            mix_case *c = &cases[(i + t) % n];
            c->ns[t] = 1e9 * timed_calls(c, o->channels, c->calls) / c->calls;
        }
    for (uint32_t i = 0; i < n; i++) {
        mix_case *c = &cases[i];
        qsort(c->ns, o->trials, sizeof(double), cmp_double);
        uint32_t k = o->trials;
        c->median = k % 2 ? c->ns[k / 2] : 0.5 * (c->ns[k / 2 - 1] + c->ns[k / 2]);
        c->min = c->ns[0];
        c->max = c->ns[k - 1];
    }
}

static void report(FILE *table, FILE *csv, const mix_case *cases, uint32_t n, const options *o) {
    fprintf(table,
            "| workers | frames | ns per callback (median) | min | max | ns per frame "
            "| share of the block period at 48 kHz |\n|---:|---:|---:|---:|---:|---:|---:|\n");
    if (csv)
        fprintf(csv, "workers,frames,channels,trials,calls_per_trial,median_ns,min_ns,max_ns,"
                     "ns_per_frame,period_share\n");
    for (uint32_t i = 0; i < n; i++) {
        const mix_case *c = &cases[i];
        double period_ns = 1e9 * c->frames / SAMPLE_RATE;
        fprintf(table, "| %u | %u | %.0f | %.0f | %.0f | %.2f | %.3f%% |\n", c->workers, c->frames,
                c->median, c->min, c->max, c->median / c->frames, 100 * c->median / period_ns);
        if (csv)
            fprintf(csv, "%u,%u,%u,%u,%u,%.6g,%.6g,%.6g,%.6g,%.6g\n", c->workers, c->frames,
                    o->channels, o->trials, c->calls, c->median, c->min, c->max,
                    c->median / c->frames, c->median / period_ns);
    }
}

int main(int argc, char **argv) {
    options o;
    int prv = parse_options(argc, argv, &o);
    if (prv != 0)
        return prv == 1 ? 0 : 2;
    int cpu = bench_pin_to_one_cpu("bench_mix", o.cpu);
    if (cpu < 0)
        return 1;
    FILE *csv = NULL;
    if (o.csv && (csv = fopen(o.csv, "w")) == NULL) {
        fprintf(stderr, "bench_mix: cannot write %s: %s\n", o.csv, strerror(errno));
        return 2;
    }
    dsp_enable_ftz();
    uint32_t n = o.n_workers * o.n_frames;
    mix_case *cases = calloc(n, sizeof *cases);
    int rv = cases ? 0 : 1;
    for (uint32_t i = 0; rv == 0 && i < n; i++)
        if (case_create(&cases[i], o.workers[i % o.n_workers], o.frames[i / o.n_workers],
                        o.channels) != 0) {
            fprintf(stderr, "bench_mix: out of memory\n");
            rv = 1;
        }
    if (rv == 0) {
        printf("# bench_mix: farm_mix, %u channels, pinned to CPU %d; %u trials x ~%g s\n",
               o.channels, cpu, o.trials, o.seconds);
        measure(cases, n, &o);
        report(stdout, csv, cases, n, &o);
    }
    for (uint32_t i = 0; cases && i < n; i++)
        case_free(&cases[i]);
    free(cases);
    if (csv && fclose(csv) != 0) {
        fprintf(stderr, "bench_mix: cannot write %s: %s\n", o.csv, strerror(errno));
        rv = 1;
    }
    return rv;
}
