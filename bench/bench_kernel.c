/* bench_kernel — the oscillator kernel's throughput on one core, in voice-samples per second.
 *
 * Workload: pyo's seed (SineLoop, freq uniform in [400, 800) from seed 1, feedback 0.1, amp 0.005,
 * voice i on channel i % 2), stereo, 48 kHz, 256-frame blocks, every voice playing. Each
 * instruction set the CPU has is measured against a naive scalar loop (double-precision libm
 * sin, one voice at a time) on the same workload in the same run, so the ratio survives a noisy
 * machine better than two separately measured numbers would.
 *
 * Method: pin to one CPU, warm every configuration up (which also sizes a trial to about
 * --seconds of wall time), then run --trials timed trials. Trials of the different
 * configurations are interleaved, so a burst of machine noise lands on all of them rather than
 * on one; the table reports the median and the spread.
 *
 * "auto" is a bank of the kernel farm itself would take for that voice count
 * (dsp_isa_for_bank: on a CPU with AVX-512 and AVX2, a short calibration); its CSV row names the
 * kernel it got. --sweep measures voice counts from 16 to 20000, the check of docs/kernels.md's
 * claim that the automatic choice is the fastest kernel at every count.
 *
 * Cycles: G/s depends on the clock of whatever machine ran it, so the core clock is measured too,
 * on the pinned CPU, before the trials, after each voice count's trials and so after the last: a
 * chain of dependent 32-bit integer multiplies (imul, 3 cycles of latency on every Intel core
 * since Nehalem and every AMD Zen), of a fixed length, the third best of 41 short runs. Every row
 * also gives voice-samples per cycle, the figure docs/kernels.md's roofline
 * (bench/kernel_roofline.py) compares with the kernel's bound. A voice count's figures use the
 * higher of the two readings around its trials (or, where only one of them has runs that agree,
 * that one): the clock of a shared host moves (3.59 to 3.90 GHz within one sweep on a cloud VM,
 * each reading repeatable), and a reading can only come out low by itself (another process took
 * the CPU during the chain), which would flatter the kernel. Readings more than 5% apart, or runs
 * that disagree, get a one-line warning: the per-cycle figures are then approximate.
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

#define SAMPLE_RATE 48000.0
#define CHANNELS 2
#define FRAMES 256
#define SEED 1
#define FREQ_MIN 400.0
#define FREQ_MAX 800.0
#define FEEDBACK 0.1
#define AMP 0.005
#define PI_D 3.14159265358979323846

#define MAX_CASES 8 /* the ISAs dsp knows (4), auto and the naive loop, with room to spare */
#define AUTO_NAME "auto"
#define SWEEP "16,32,64,100,128,250,500,1000,2000,5000,10000,20000"
#define MAX_VOICE_COUNTS 16
#define MAX_TRIALS 1000
#define NAIVE_NAME "naive (double sin)"

#define IMUL_LATENCY 3 /* cycles: Intel since Nehalem, AMD Zen 1-4 (Agner Fog's tables) */
/* Short runs, many: a run shorter than the scheduler's time slice often runs whole while the CPU
 * is shared with another busy process, and the best of them is the clock. (Runs of 20 ms read
 * 2.2 GHz on a 3.6 GHz core shared with another process; runs of 1 ms read 3.59 every time.) */
#define CLOCK_IMULS 1200000 /* per run: about 1 ms at 3.6 GHz */
#define CLOCK_RUNS 41       /* the third best run counts */
#define CLOCK_TOLERANCE                                                                            \
    0.05 /* readings, or one reading's best and third best runs, further apart: warn */

/* ---- the core clock ---- */

#if defined(__x86_64__) || defined(__i386__)
#define HAVE_IMUL_CLOCK 1
/* n dependent imuls (n a multiple of 8): the chain is the only dependency, so it runs at one
 * imul per IMUL_LATENCY cycles; the loop's counter and branch run beside it. */
static uint32_t imul_chain(uint32_t x, uint32_t n) {
    for (uint32_t i = 0; i < n; i += 8)
        __asm__ volatile("imul %0, %0\n\timul %0, %0\n\timul %0, %0\n\timul %0, %0\n\t"
                         "imul %0, %0\n\timul %0, %0\n\timul %0, %0\n\timul %0, %0"
                         : "+r"(x));
    return x;
}
#else
#define HAVE_IMUL_CLOCK 0
#endif

static double now_s(void);
static volatile uint32_t chain_sink; /* keeps the chain's result, so the chain runs */

typedef struct clock_reading {
    double ghz;    /* the third best run's; 0 where it cannot be measured */
    double spread; /* best / third best - 1 of the runs: whether they agree */
} clock_reading;

static clock_reading measure_clock(void) {
    clock_reading r = {0, 0};
#if HAVE_IMUL_CLOCK
    double ghz[CLOCK_RUNS];
    imul_chain(3, CLOCK_IMULS / 4); /* wakes the core up from any idle clock */
    for (int i = 0; i < CLOCK_RUNS; i++) {
        double t0 = now_s();
        chain_sink ^= imul_chain(3u + (uint32_t)i, CLOCK_IMULS);
        double dt = now_s() - t0; /* 0 from a clock coarser than a run: no reading */
        ghz[i] = dt > 0 ? (double)CLOCK_IMULS * IMUL_LATENCY / dt * 1e-9 : 0;
    }
    /* A shared machine preempts some runs, so the clock is among the fastest; the third fastest,
     * so that one or two runs timed wrong (a timer read late, a burst) do not make it. */
    double top[3] = {0, 0, 0};
    for (int i = 0; i < CLOCK_RUNS; i++)
        for (int j = 0; j < 3; j++)
            if (ghz[i] > top[j]) {
                for (int k = 2; k > j; k--)
                    top[k] = top[k - 1];
                top[j] = ghz[i];
                break;
            }
    r.ghz = top[2];
    r.spread = top[2] > 0 ? top[0] / top[2] - 1 : 1;
#endif
    return r;
}

/* ---- the naive reference: what a first C port of pyo's SineLoop would look like ---- */

typedef struct naive_bank {
    uint32_t voices;
    double *phase, *inc, *y, *gl, *gr;
} naive_bank;

static int naive_create(naive_bank *nb, uint32_t voices) {
    nb->voices = voices;
    nb->phase = calloc(voices, sizeof(double));
    nb->inc = calloc(voices, sizeof(double));
    nb->y = calloc(voices, sizeof(double));
    nb->gl = calloc(voices, sizeof(double));
    nb->gr = calloc(voices, sizeof(double));
    if (!nb->phase || !nb->inc || !nb->y || !nb->gl || !nb->gr)
        return -1;
    for (uint32_t v = 0; v < voices; v++) {
        nb->inc[v] = dsp_voice_default_freq(SEED, v, FREQ_MIN, FREQ_MAX) / SAMPLE_RATE;
        /* Stereo equal-power pan, the same gains dsp gives pan 0 and pan 1. */
        double p = dsp_voice_default_pan(v, CHANNELS) * (PI_D / 2);
        nb->gl[v] = AMP * cos(p);
        nb->gr[v] = AMP * sin(p);
    }
    return 0;
}

static void naive_destroy(naive_bank *nb) {
    free(nb->phase);
    free(nb->inc);
    free(nb->y);
    free(nb->gl);
    free(nb->gr);
}

/* sineloop.md's formula verbatim. The loop-carried y makes every sample wait for the previous
 * sin(), which is exactly the latency the real kernel hides by running voices side by side. */
static void naive_render(naive_bank *nb, float *out, uint32_t frames) {
    memset(out, 0, (size_t)frames * CHANNELS * sizeof(float));
    for (uint32_t v = 0; v < nb->voices; v++) {
        double ph = nb->phase[v], y = nb->y[v];
        const double inc = nb->inc[v], gl = nb->gl[v], gr = nb->gr[v];
        for (uint32_t n = 0; n < frames; n++) {
            y = sin(2 * PI_D * (ph + FEEDBACK * y));
            ph += inc;
            if (ph >= 1.0)
                ph -= 1.0;
            out[2 * n] += (float)(y * gl);
            out[2 * n + 1] += (float)(y * gr);
        }
        nb->phase[v] = ph;
        nb->y[v] = y;
    }
}

/* ---- one measured configuration ---- */

typedef struct bench_case {
    const char *name;
    dsp_bank *bank; /* NULL: the naive loop */
    naive_bank naive;
    uint32_t blocks; /* per trial, sized during warm-up */
    double vps[MAX_TRIALS];
} bench_case;

typedef struct result {
    double median, min, max;
    uint32_t blocks;
    int valid;
    const char *kernel; /* the kernel the bank rendered with; "naive" for the naive loop */
} result;

static volatile float sink; /* keeps the compiler from dropping renders nobody reads */

/* What trials and the clock's runs are timed by: wall time, or with --cpu-time the thread's CPU
 * time, which leaves out the time another process held the CPU (on a shared machine, a 0.3 s
 * trial is time-sliced with whatever else runs there; wall time then halves the rate). */
static clockid_t timing_clock = CLOCK_MONOTONIC;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(timing_clock, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void render_block(bench_case *c, float *out) {
    if (c->bank)
        dsp_bank_render(c->bank, out, FRAMES);
    else
        naive_render(&c->naive, out, FRAMES);
    sink += out[0];
}

static int case_create(bench_case *c, const char *isa, uint32_t voices) {
    memset(c, 0, sizeof *c);
    const char *name = isa;
    if (isa != NULL && strcmp(isa, AUTO_NAME) == 0) {
        dsp_bank_desc d = {.voices = voices,
                           .channels = CHANNELS,
                           .sample_rate = SAMPLE_RATE,
                           .max_frames = FRAMES};
        isa = dsp_isa_for_bank(&d);
    }
    if (isa == NULL) {
        c->name = NAIVE_NAME;
        if (naive_create(&c->naive, voices) != 0) {
            naive_destroy(&c->naive);
            fprintf(stderr, "bench_kernel: out of memory\n");
            return -1;
        }
        return 0;
    }
    c->name = name;
    dsp_bank_desc d = {.voices = voices,
                       .channels = CHANNELS,
                       .sample_rate = SAMPLE_RATE,
                       .max_frames = FRAMES,
                       .isa = isa};
    int rv = dsp_bank_create(&d, &c->bank);
    if (rv != FARM_OK) {
        fprintf(stderr, "bench_kernel: %s bank of %u voices: %s\n", isa, voices,
                farm_error_message());
        return -1;
    }
    for (uint32_t v = 0; v < voices; v++) {
        dsp_voice_set_freq(c->bank, v, dsp_voice_default_freq(SEED, v, FREQ_MIN, FREQ_MAX), 0);
        dsp_voice_set_feedback(c->bank, v, FEEDBACK, 0);
        dsp_voice_set_amp(c->bank, v, AMP, 0);
        dsp_voice_set_pan(c->bank, v, dsp_voice_default_pan(v, CHANNELS), 0);
        /* No fade-in: a ramp would time the slower ramping path for the first blocks. */
        dsp_voice_play(c->bank, v, 0);
    }
    return 0;
}

static void case_destroy(bench_case *c) {
    if (c->bank)
        dsp_bank_destroy(c->bank);
    else
        naive_destroy(&c->naive);
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static result summarize(const bench_case *c, uint32_t trials) {
    double s[MAX_TRIALS];
    memcpy(s, c->vps, trials * sizeof(double));
    qsort(s, trials, sizeof(double), cmp_double);
    result r = {.min = s[0],
                .max = s[trials - 1],
                .blocks = c->blocks,
                .valid = 1,
                .kernel = c->bank ? dsp_bank_isa(c->bank) : "naive"};
    r.median = trials % 2 ? s[trials / 2] : 0.5 * (s[trials / 2 - 1] + s[trials / 2]);
    return r;
}

/* ---- options ---- */

typedef struct options {
    uint32_t trials;
    double seconds;
    uint32_t voices[MAX_VOICE_COUNTS];
    uint32_t n_voices;
    const char *csv;
    int cpu; /* -1: the one we start on */
} options;

static void usage(FILE *to) {
    fprintf(to, "usage: bench_kernel [options]\n"
                "\n"
                "Measures the dsp kernel on one core for every instruction set this CPU has,\n"
                "against a naive double-precision sin() loop, on pyo's seed workload, in\n"
                "voice-samples per second and per cycle of the core clock, which it measures\n"
                "(a dependent imul chain) before and after the trials.\n"
                "\n"
                "  --trials N       timed trials per configuration (default 7)\n"
                "  --seconds S      time of one trial (default 0.3)\n"
                "  --voices LIST    comma-separated voice counts (default 500,2000,20000)\n"
                "  --sweep          voice counts 16 to 20000 (" SWEEP ")\n"
                "                   with --csv: the check that 'auto', the kernel farm takes\n"
                "                   for each count, is the fastest at every count\n"
                "  --csv FILE       also write the results as CSV\n"
                "  --cpu N          CPU to pin to (default: the first this process may use)\n"
                "  --cpu-time       time by the thread's CPU time, not wall time: on a machine\n"
                "                   shared with other busy processes, the rate while running\n"
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

static int parse_voices(const char *arg, options *o) {
    char list[512]; /* strtok_r writes into its input; keep argv intact for the error message */
    if (snprintf(list, sizeof list, "%s", arg) >= (int)sizeof list)
        return -1;
    o->n_voices = 0;
    for (char *save = NULL, *tok = strtok_r(list, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save)) {
        if (o->n_voices == MAX_VOICE_COUNTS)
            return -1;
        if (parse_u32(tok, 1, 10000000, &o->voices[o->n_voices++]) != 0)
            return -1;
    }
    return o->n_voices ? 0 : -1;
}

/* Returns 0 to run, 1 after --help, 2 on bad input (with a message). */
static int parse_options(int argc, char **argv, options *o) {
    *o = (options){
        .trials = 7, .seconds = 0.3, .voices = {500, 2000, 20000}, .n_voices = 3, .cpu = -1};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            return 1;
        }
        if (strcmp(a, "--sweep") == 0) {
            parse_voices(SWEEP, o);
            continue;
        }
        if (strcmp(a, "--cpu-time") == 0) {
#ifdef CLOCK_THREAD_CPUTIME_ID
            timing_clock = CLOCK_THREAD_CPUTIME_ID;
            continue;
#else
            fprintf(stderr, "bench_kernel: --cpu-time: no thread CPU clock here\n");
            return 2;
#endif
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "bench_kernel: unknown option or missing value: %s\n", a);
            return 2;
        }
        char *val = argv[++i];
        if (strcmp(a, "--trials") == 0) {
            if (parse_u32(val, 1, MAX_TRIALS, &o->trials) != 0) {
                fprintf(stderr, "bench_kernel: --trials wants 1..%d, not %s\n", MAX_TRIALS, val);
                return 2;
            }
        } else if (strcmp(a, "--seconds") == 0) {
            char *end;
            o->seconds = strtod(val, &end);
            if (end == val || *end != '\0' || !(o->seconds > 0 && o->seconds <= 60)) {
                fprintf(stderr, "bench_kernel: --seconds wants a number in (0, 60], not %s\n", val);
                return 2;
            }
        } else if (strcmp(a, "--voices") == 0) {
            if (parse_voices(val, o) != 0) {
                fprintf(stderr,
                        "bench_kernel: --voices wants up to %d comma-separated counts in "
                        "1..10000000, not %s\n",
                        MAX_VOICE_COUNTS, val);
                return 2;
            }
        } else if (strcmp(a, "--csv") == 0) {
            o->csv = val;
        } else if (strcmp(a, "--cpu") == 0) {
            uint32_t c;
            if (parse_u32(val, 0, PLAT_CPU_SETSIZE - 1, &c) != 0) {
                fprintf(stderr, "bench_kernel: --cpu wants a CPU number, not %s\n", val);
                return 2;
            }
            o->cpu = (int)c;
        } else {
            fprintf(stderr, "bench_kernel: unknown option: %s (see --help)\n", a);
            return 2;
        }
    }
    return 0;
}

/* ---- setup ---- */

/* Labels the table with the machine it came from; tables get pasted far from where they ran. */
static void cpu_model(char *buf, size_t len) {
    snprintf(buf, len, "unknown CPU");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (f == NULL)
        return;
    char line[256];
    while (fgets(line, sizeof line, f)) {
        char *colon = strchr(line, ':');
        if (strncmp(line, "model name", 10) == 0 && colon) {
            colon += 1 + (colon[1] == ' ');
            colon[strcspn(colon, "\n")] = '\0';
            snprintf(buf, len, "%s", colon);
            break;
        }
    }
    fclose(f);
}

/* ---- measuring ---- */

/* Renders the first block of every case from fresh state and compares it with the naive one, so
 * a benchmark of a kernel that computes the wrong thing cannot go unnoticed. */
static void check_against_naive(bench_case *cases, uint32_t n_cases, uint32_t voices) {
    static float ref[FRAMES * CHANNELS], out[FRAMES * CHANNELS];
    bench_case *naive = &cases[n_cases - 1];
    render_block(naive, ref);
    float peak = 0;
    for (size_t i = 0; i < FRAMES * CHANNELS; i++)
        peak = fmaxf(peak, fabsf(ref[i]));
    for (uint32_t c = 0; c + 1 < n_cases; c++) {
        render_block(&cases[c], out);
        float diff = 0;
        for (size_t i = 0; i < FRAMES * CHANNELS; i++)
            diff = fmaxf(diff, fabsf(out[i] - ref[i]));
        fprintf(stderr, "# check %-7s %7u voices: max |kernel - naive| = %.2g (peak %.3g)%s\n",
                cases[c].name, voices, (double)diff, (double)peak,
                diff > 1e-4f * fmaxf(peak, 1.0f) ? "  <-- MISMATCH" : "");
    }
}

/* Runs blocks for at least `seconds` (and 2 blocks) and sizes a trial from the rate seen. */
static void warm_up(bench_case *c, double seconds, double trial_seconds) {
    static float out[FRAMES * CHANNELS];
    uint32_t n = 0;
    double t0 = now_s(), dt;
    do {
        render_block(c, out);
        n++;
    } while ((dt = now_s() - t0) < seconds || n < 2);
    double blocks = trial_seconds * n / dt;
    c->blocks = blocks < 1 ? 1 : blocks > 1e9 ? 1000000000u : (uint32_t)llround(blocks);
}

static double timed_trial(bench_case *c, uint32_t voices) {
    static float out[FRAMES * CHANNELS];
    double t0 = now_s();
    for (uint32_t b = 0; b < c->blocks; b++)
        render_block(c, out);
    double dt = now_s() - t0;
    return (double)voices * FRAMES * c->blocks / dt;
}

/* All cases for one voice count; results[case] is filled in case order. */
static int measure(const char *const *isas, uint32_t n_isas, uint32_t voices, const options *o,
                   result *results) {
    static bench_case cases[MAX_CASES];
    uint32_t n = 0;
    int rv = 0;
    for (; n < n_isas + 1; n++) {
        if (case_create(&cases[n], n < n_isas ? isas[n] : NULL, voices) != 0) {
            rv = -1;
            break;
        }
    }
    if (rv == 0) {
        check_against_naive(cases, n, voices);
        for (uint32_t c = 0; c < n; c++)
            warm_up(&cases[c], fmax(0.1, o->seconds / 3), o->seconds);
        for (uint32_t t = 0; t < o->trials; t++)
            for (uint32_t i = 0; i < n; i++) {
                /* Rotate who goes first, so no case always runs right after the slow one. */
                bench_case *c = &cases[(i + t) % n];
                c->vps[t] = timed_trial(c, voices);
            }
        for (uint32_t c = 0; c < n; c++)
            results[c] = summarize(&cases[c], o->trials);
    }
    for (uint32_t c = 0; c < n; c++)
        case_destroy(&cases[c]);
    return rv;
}

/* ---- reporting ---- */

/* Voice-samples per cycle at vps, as text: "n/a" where the clock is unknown. */
static const char *per_cycle(char *buf, size_t len, double vps, double ghz) {
    if (ghz > 0)
        snprintf(buf, len, "%.3f", vps / (ghz * 1e9));
    else
        snprintf(buf, len, "n/a");
    return buf;
}

static void print_table(FILE *to, const char *const *names, uint32_t n_cases, const options *o,
                        result r[][MAX_VOICE_COUNTS], const double *ghz) {
    fprintf(to, "| isa | voices | median Gvoice-samples/s | voice-samples per cycle | min | max "
                "| ns per voice-sample | vs naive |\n");
    fprintf(to, "|---|---:|---:|---:|---:|---:|---:|---:|\n");
    for (uint32_t c = 0; c < n_cases; c++)
        for (uint32_t v = 0; v < o->n_voices; v++) {
            const result *x = &r[c][v], *naive = &r[n_cases - 1][v];
            char name[48];
            snprintf(name, sizeof name, "%s", names[c]);
            if (strcmp(names[c], AUTO_NAME) == 0)
                snprintf(name, sizeof name, "auto (%s)", x->kernel);
            char pc[32];
            fprintf(to, "| %s | %u | %#.4g | %s | %#.4g | %#.4g | %.3f | %.1fx |\n", name,
                    o->voices[v], x->median * 1e-9, per_cycle(pc, sizeof pc, x->median, ghz[v]),
                    x->min * 1e-9, x->max * 1e-9, 1e9 / x->median, x->median / naive->median);
        }
}

static int write_csv(const char *path, const char *const *names, uint32_t n_cases, const options *o,
                     result r[][MAX_VOICE_COUNTS], const double *ghz) {
    FILE *f = fopen(path, "w");
    if (f == NULL) {
        fprintf(stderr, "bench_kernel: cannot write %s: %s\n", path, strerror(errno));
        return -1;
    }
    fprintf(f, "isa,voices,trials,blocks_per_trial,median_vps,min_vps,max_vps,"
               "ns_per_voice_sample,vs_naive,kernel,clock_ghz,vs_per_cycle\n");
    for (uint32_t c = 0; c < n_cases; c++)
        for (uint32_t v = 0; v < o->n_voices; v++) {
            const result *x = &r[c][v], *naive = &r[n_cases - 1][v];
            /* An unknown clock leaves the last two fields empty. */
            char clk[32] = "", pc[32] = "";
            if (ghz[v] > 0) {
                snprintf(clk, sizeof clk, "%.4g", ghz[v]);
                per_cycle(pc, sizeof pc, x->median, ghz[v]);
            }
            fprintf(f, "%s,%u,%u,%u,%.6g,%.6g,%.6g,%.6g,%.6g,%s,%s,%s\n",
                    c == n_cases - 1 ? "naive" : names[c], o->voices[v], o->trials, x->blocks,
                    x->median, x->min, x->max, 1e9 / x->median, x->median / naive->median,
                    x->kernel, clk, pc);
        }
    if (fclose(f) != 0) {
        fprintf(stderr, "bench_kernel: cannot write %s: %s\n", path, strerror(errno));
        return -1;
    }
    return 0;
}

int main(int argc, char **argv) {
    options o;
    int prv = parse_options(argc, argv, &o);
    if (prv != 0)
        return prv == 1 ? 0 : 2;
    int cpu = bench_pin_to_one_cpu("bench_kernel", o.cpu);
    if (cpu < 0)
        return 1;
    dsp_enable_ftz();

    const char *names[MAX_CASES];
    uint32_t n_isas = 0;
    for (const char *const *isa = dsp_isa_available(); *isa && n_isas + 2 < MAX_CASES; isa++)
        names[n_isas++] = *isa;
    names[n_isas++] = AUTO_NAME;
    names[n_isas] = NAIVE_NAME;
    const uint32_t n_cases = n_isas + 1;

    char model[128];
    cpu_model(model, sizeof model);
    printf("# bench_kernel: %s, pinned to CPU %d; default kernel %s\n", model, cpu, dsp_isa());
    printf("# SineLoop fb %.1f amp %g, freq U[%g, %g) seed %d, stereo, %.0f Hz, %d-frame "
           "blocks; %u trials x ~%g s each%s, median (min, max)\n",
           FEEDBACK, AMP, FREQ_MIN, FREQ_MAX, SEED, SAMPLE_RATE, FRAMES, o.trials, o.seconds,
           timing_clock == CLOCK_MONOTONIC ? "" : " of the thread's CPU time");
    clock_reading before = measure_clock();
    if (before.ghz > 0)
        printf("# core clock before the trials: %.3f GHz (dependent imul chain, %d x %d imuls, "
               "third best run)\n",
               before.ghz, CLOCK_RUNS, CLOCK_IMULS);
    else
        printf("# core clock: not measured on this architecture; no per-cycle figures\n");
    fflush(stdout);

    static result results[MAX_CASES][MAX_VOICE_COUNTS];
    /* reading[v]: before voice count v's trials; reading[n_voices]: after the last. */
    double reading[MAX_VOICE_COUNTS + 1], ghz[MAX_VOICE_COUNTS] = {0};
    int steady[MAX_VOICE_COUNTS + 1]; /* the reading's own runs agree */
    double lo = before.ghz, spread = before.spread;
    double hi = lo;
    reading[0] = before.ghz;
    steady[0] = before.spread <= CLOCK_TOLERANCE;
    for (uint32_t v = 0; v < o.n_voices; v++) {
        result r[MAX_CASES];
        if (measure(names, n_isas, o.voices[v], &o, r) != 0)
            return 1;
        for (uint32_t c = 0; c < n_cases; c++)
            results[c][v] = r[c];
        if (before.ghz > 0) {
            clock_reading after = measure_clock();
            reading[v + 1] = after.ghz;
            steady[v + 1] = after.spread <= CLOCK_TOLERANCE;
            /* The higher of the two readings around the trials, unless only the other one's
             * runs agree (a reading of 4.5 GHz among 3.6s, its runs 57% apart, was no clock). */
            ghz[v] = steady[v] == steady[v + 1] ? fmax(reading[v], after.ghz)
                     : steady[v]                ? reading[v]
                                                : after.ghz;
            lo = fmin(lo, after.ghz);
            hi = fmax(hi, after.ghz);
            spread = fmax(spread, after.spread);
        }
    }
    if (before.ghz > 0) {
        printf("# core clock after the trials: %.3f GHz; readings before each voice count and "
               "after the last:",
               reading[o.n_voices]);
        for (uint32_t v = 0; v <= o.n_voices; v++)
            printf(" %.3f", reading[v]);
        printf("; a count's per-cycle figures use the higher reading around its trials (of the "
               "two, one whose runs agree)\n");
        if (hi / lo - 1 > CLOCK_TOLERANCE || spread > CLOCK_TOLERANCE)
            printf("# WARNING: the clock was not stable (readings %.1f%% apart, runs within one "
                   "%.1f%%): per-cycle figures are approximate\n",
                   100 * (hi / lo - 1), 100 * spread);
    }
    print_table(stdout, names, n_cases, &o, results, ghz);
    if (o.csv && write_csv(o.csv, names, n_cases, &o, results, ghz) != 0)
        return 1;
    return 0;
}
