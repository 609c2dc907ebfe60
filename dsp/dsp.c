/* Bookkeeping around the kernel: parameter ramps, play/stop, kernel choice, and the 64-bit
 * phase that keeps long renders exact.
 *
 * Why 64 bits: a 0.32 fixed-point increment is off by up to 2^-33 cycles per frame, which over
 * ten seconds at 48 kHz drifts a 20 kHz voice by 3.5e-4 radians. The kernel runs in 32 bits inside
 * a segment (at most one block), and the exact 64-bit phase is advanced here and copied back in
 * before every segment. */
#define _GNU_SOURCE
#include "dsp_internal.h"
#include "plat.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

#define PI_D 3.14159265358979323846

/* The arena is 64-byte aligned for the widest kernel. */
static void *arena_alloc(size_t size) {
    return plat_aligned_alloc(64, size);
}

static void arena_free(void *p) {
    plat_aligned_free(p);
}

typedef struct voice_ctl {
    uint64_t inc;        /* exact increment */
    int64_t dinc;        /* per-frame change while left_freq > 0 */
    uint64_t inc_target; /* reached exactly when the ramp ends */
    uint64_t phase_offset;
    float fb_target;
    float amp;
    float pan;
    uint32_t left_freq, left_fb, left_gain;
    uint8_t playing;  /* sounding or fading out */
    uint8_t stopping; /* fading out; stops when the gain ramp ends */
} voice_ctl;

struct dsp_bank {
    dsp_soa soa;
    voice_ctl *ctl;
    uint64_t *phase;    /* exact phases, 0.64 fixed point: apart from ctl, so that the snapshot of
                           every block (dsp_bank_save) copies one small array */
    int32_t *inc_err;   /* ctl's exact inc less soa.inc's, as segment_begin set them: a steady
                           group advances its exact phases from these two dense arrays, not from
                           ctl's 64-byte records (a cache line a voice, every block) */
    float *gain_target; /* [channel][stride] */
    float *acc;         /* [frame][channel][kernel width] */
    uint8_t *group_active;
    uint8_t *group_steady; /* nothing ramps and nothing changed since the last full segment:
                              the kernel's inputs but the phases are as that segment left them */
    uint32_t voices, groups, channels, max_frames;
    uint32_t playing; /* voices playing or fading out, kept as they change: the render loop
                         reports it every block and must not count */
    uint64_t epoch;   /* bumped by every change but the phases' own advance (see save) */
    double sample_rate;
    const dsp_kernel *kernel;
    void *arena;
};

/* ---- kernel choice ---- */

static const dsp_kernel *const all_kernels[] = {
#if defined(__x86_64__)
    &dsp_kernel_avx512,
    &dsp_kernel_avx2,
    &dsp_kernel_sse2,
#endif
    &dsp_kernel_generic,
};
#define N_KERNELS (sizeof all_kernels / sizeof all_kernels[0])

static int kernel_supported(const dsp_kernel *k) {
#if defined(__x86_64__)
    __builtin_cpu_init();
    if (k == &dsp_kernel_avx512)
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq");
    if (k == &dsp_kernel_avx2)
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#endif
    (void)k;
    return 1;
}

static const dsp_kernel *forced_kernel;

static const dsp_kernel *best_kernel(void) {
    if (forced_kernel)
        return forced_kernel;
    for (size_t i = 0; i < N_KERNELS; i++)
        if (kernel_supported(all_kernels[i]))
            return all_kernels[i];
    return &dsp_kernel_generic;
}

const char *dsp_isa(void) {
    return best_kernel()->name;
}

/* The kernel called name, if this CPU runs it. */
static int kernel_named(const char *name, const dsp_kernel **out) {
    for (size_t i = 0; i < N_KERNELS; i++) {
        if (strcmp(all_kernels[i]->name, name) == 0) {
            if (!kernel_supported(all_kernels[i]))
                return farm_fail(FARM_ENOISA, "kernel %s: this CPU cannot run it", name);
            *out = all_kernels[i];
            return FARM_OK;
        }
    }
    return farm_fail(FARM_EINVAL, "kernel '%s' is not one of avx512, avx2, sse2, generic", name);
}

int dsp_force_isa(const char *name) {
    if (name == NULL) {
        forced_kernel = NULL;
        return FARM_OK;
    }
    return kernel_named(name, &forced_kernel);
}

int dsp_isa_forced(void) {
    return forced_kernel != NULL;
}

uint32_t dsp_isa_width(const char *name) {
    const dsp_kernel *k;
    return kernel_named(name, &k) == FARM_OK ? k->width : 0;
}

const char *dsp_bank_isa(const dsp_bank *b) {
    return b->kernel->name;
}

const char *const *dsp_isa_available(void) {
    static const char *names[N_KERNELS + 1];
    size_t n = 0;
    for (size_t i = 0; i < N_KERNELS; i++)
        if (kernel_supported(all_kernels[i]))
            names[n++] = all_kernels[i]->name;
    names[n] = NULL;
    return names;
}

void dsp_enable_ftz(void) {
#if defined(__SSE__)
    _mm_setcsr(_mm_getcsr() | 0x8040); /* FTZ | DAZ */
#endif
}

float dsp_sin_cycles(float x) {
    float t = x - ((x + DSP_ROUND_MAGIC) - DSP_ROUND_MAGIC);
    float z = t * t;
    float q =
        ((((DSP_SIN_Q4 * z + DSP_SIN_Q3) * z + DSP_SIN_Q2) * z + DSP_SIN_Q1) * z) + DSP_SIN_Q0;
    return t * (0.25f - z) * q;
}

/* ---- the voices every process agrees on ---- */

static uint64_t splitmix64(uint64_t x) {
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

double dsp_voice_default_freq(uint64_t seed, uint64_t index, double freq_min, double freq_max) {
    uint64_t r = splitmix64(splitmix64(seed) ^ index);
    double u = (double)(r >> 11) * (1.0 / 9007199254740992.0); /* [0, 1) */
    return freq_min + u * (freq_max - freq_min);
}

double dsp_voice_default_pan(uint64_t index, uint32_t channels) {
    return channels <= 1 ? 0.0 : (double)(index % channels);
}

/* ---- bank ---- */

static uint64_t cycles_to_fixed(double cycles) {
    double f = cycles - floor(cycles); /* [0, 1], 1 only by rounding */
    double scaled = ldexp(f, 64);
    if (!(scaled < 18446744073709551616.0))
        return 0;
    return (uint64_t)scaled;
}

/* Slices of the one allocation; void * converts to each array's type without a cast. */
static void *arena_at(char *arena, size_t offset) {
    return arena + offset;
}

int dsp_bank_create(const dsp_bank_desc *desc, dsp_bank **out) {
    *out = NULL;
    dsp_bank_desc d = *desc;
    if (d.channels == 0)
        d.channels = 2;
    if (d.sample_rate == 0)
        d.sample_rate = 48000;
    if (d.max_frames == 0)
        d.max_frames = 256;
    if (d.voices == 0 || d.channels > DSP_MAX_CHANNELS || !(d.sample_rate > 0) ||
        d.max_frames > DSP_MAX_FRAMES)
        return farm_fail(FARM_EINVAL,
                         "a bank of %u voices, %u channels, %g Hz, %u frames is out of range",
                         d.voices, d.channels, d.sample_rate, d.max_frames);

    const dsp_kernel *kernel = best_kernel();
    int rv = d.isa != NULL ? kernel_named(d.isa, &kernel) : FARM_OK;
    if (rv != FARM_OK)
        return rv;
    dsp_bank *b = calloc(1, sizeof *b);
    if (b == NULL)
        return farm_fail(FARM_ENOMEM, "out of memory for a bank of %u voices", d.voices);
    b->voices = d.voices;
    b->groups = (d.voices + DSP_GROUP - 1) / DSP_GROUP;
    b->channels = d.channels;
    b->max_frames = d.max_frames;
    b->sample_rate = d.sample_rate;
    b->kernel = kernel;

    const size_t stride = (size_t)b->groups * DSP_GROUP;
    const size_t vec = farm_align_up(stride * 4, 64);
    const size_t chan = farm_align_up(stride * 4 * d.channels, 64);
    const size_t acc = farm_align_up((size_t)d.max_frames * d.channels * DSP_MAX_VW * 4, 64);
    const size_t total = 6 * vec + 3 * chan + acc;
    char *arena = arena_alloc(total);
    b->ctl = calloc(stride, sizeof *b->ctl);
    b->phase = calloc(stride, sizeof *b->phase);
    b->inc_err = calloc(stride, sizeof *b->inc_err);
    b->group_active = calloc(2 * (size_t)b->groups, 1);
    b->group_steady = b->group_active ? b->group_active + b->groups : NULL;
    if (arena == NULL || b->ctl == NULL || b->phase == NULL || b->inc_err == NULL ||
        b->group_active == NULL) {
        arena_free(arena);
        free(b->ctl);
        free(b->phase);
        free(b->inc_err);
        free(b->group_active);
        free(b);
        return farm_fail(FARM_ENOMEM, "out of memory for a bank of %u voices", d.voices);
    }
    memset(arena, 0, total);
    b->arena = arena;
    b->soa.stride = (uint32_t)stride;
    b->soa.channels = d.channels;
    b->soa.phase = arena_at(arena, 0 * vec);
    b->soa.inc = arena_at(arena, 1 * vec);
    b->soa.dinc = arena_at(arena, 2 * vec);
    b->soa.y = arena_at(arena, 3 * vec);
    b->soa.fb = arena_at(arena, 4 * vec);
    b->soa.dfb = arena_at(arena, 5 * vec);
    b->soa.gain = arena_at(arena, 6 * vec);
    b->soa.dgain = arena_at(arena, 6 * vec + chan);
    b->gain_target = arena_at(arena, 6 * vec + 2 * chan);
    b->acc = arena_at(arena, 6 * vec + 3 * chan);

    /* Every voice starts stopped, at 440 Hz, amp 1, panned by pyo's i % channels rule. */
    for (uint32_t v = 0; v < b->voices; v++) {
        b->ctl[v].amp = 1.0f;
        b->ctl[v].pan = (float)dsp_voice_default_pan(v, b->channels);
        dsp_voice_set_freq(b, v, 440.0, 0);
    }
    *out = b;
    return FARM_OK;
}

void dsp_bank_destroy(dsp_bank *b) {
    if (b == NULL)
        return;
    arena_free(b->arena);
    free(b->ctl);
    free(b->phase);
    free(b->inc_err);
    free(b->group_active);
    free(b);
}

/* ---- setters ---- */

static void pan_gains(const dsp_bank *b, float amp, float pan, float *g) {
    uint32_t C = b->channels;
    if (C == 2) {
        double p = pan < 0 ? 0 : pan > 1 ? 1 : pan;
        g[0] = (float)(amp * cos(p * PI_D / 2));
        g[1] = (float)(amp * sin(p * PI_D / 2));
        return;
    }
    long ch = lrint(pan);
    for (uint32_t c = 0; c < C; c++)
        g[c] = (long)c == ch ? amp : 0.0f;
}

static void gain_ramp_to(dsp_bank *b, uint32_t v, const float *target, uint32_t ramp) {
    const uint32_t st = b->soa.stride;
    voice_ctl *c = &b->ctl[v];
    for (uint32_t ch = 0; ch < b->channels; ch++) {
        b->gain_target[ch * st + v] = target[ch];
        if (ramp == 0) {
            b->soa.gain[ch * st + v] = target[ch];
            b->soa.dgain[ch * st + v] = 0;
        } else {
            b->soa.dgain[ch * st + v] = (target[ch] - b->soa.gain[ch * st + v]) / (float)ramp;
        }
    }
    c->left_gain = ramp;
    if (ramp == 0 && c->stopping) {
        c->stopping = 0;
        c->playing = 0;
        b->playing--;
    }
}

static void update_gains(dsp_bank *b, uint32_t v, uint32_t ramp) {
    voice_ctl *c = &b->ctl[v];
    b->epoch++;
    if (!c->playing || c->stopping)
        return; /* applied when the voice plays again */
    float g[DSP_MAX_CHANNELS];
    pan_gains(b, c->amp, c->pan, g);
    gain_ramp_to(b, v, g, ramp);
}

void dsp_voice_set_freq(dsp_bank *b, uint32_t v, double hz, uint32_t ramp) {
    if (v >= b->voices || !isfinite(hz))
        return;
    b->group_steady[v / DSP_GROUP] = 0;
    voice_ctl *c = &b->ctl[v];
    b->epoch++;
    uint64_t target = cycles_to_fixed(hz / b->sample_rate);
    c->inc_target = target;
    if (ramp == 0 || !c->playing) {
        c->inc = target;
        c->dinc = 0;
        c->left_freq = 0;
    } else {
        /* Signed difference mod 2^64: a ramp takes the short way round, as frequencies
         * above Nyquist alias anyway. */
        c->dinc = (int64_t)(target - c->inc) / (int64_t)ramp;
        c->left_freq = ramp;
    }
}

void dsp_voice_set_feedback(dsp_bank *b, uint32_t v, double fb, uint32_t ramp) {
    if (v >= b->voices || isnan(fb))
        return;
    b->group_steady[v / DSP_GROUP] = 0;
    float f = (float)(fb < 0 ? 0 : fb > 1 ? 1 : fb);
    voice_ctl *c = &b->ctl[v];
    b->epoch++;
    c->fb_target = f;
    if (ramp == 0 || !c->playing) {
        b->soa.fb[v] = f;
        b->soa.dfb[v] = 0;
        c->left_fb = 0;
    } else {
        b->soa.dfb[v] = (f - b->soa.fb[v]) / (float)ramp;
        c->left_fb = ramp;
    }
}

void dsp_voice_set_amp(dsp_bank *b, uint32_t v, double amp, uint32_t ramp) {
    if (v >= b->voices || !isfinite(amp))
        return;
    b->group_steady[v / DSP_GROUP] = 0;
    b->ctl[v].amp = (float)amp;
    update_gains(b, v, ramp);
}

void dsp_voice_set_pan(dsp_bank *b, uint32_t v, double pan, uint32_t ramp) {
    if (v >= b->voices || !isfinite(pan))
        return;
    b->group_steady[v / DSP_GROUP] = 0;
    if (b->channels != 2) {
        pan = floor(pan + 0.5);
        if (pan < 0 || pan >= b->channels)
            return;
    }
    b->ctl[v].pan = (float)pan;
    update_gains(b, v, ramp);
}

void dsp_voice_set_phase(dsp_bank *b, uint32_t v, double phase) {
    if (v >= b->voices || !isfinite(phase))
        return;
    b->group_steady[v / DSP_GROUP] = 0;
    voice_ctl *c = &b->ctl[v];
    b->epoch++;
    uint64_t off = cycles_to_fixed(phase);
    b->phase[v] += off - c->phase_offset;
    c->phase_offset = off;
}

void dsp_voice_play(dsp_bank *b, uint32_t v, uint32_t ramp) {
    if (v >= b->voices)
        return;
    b->group_steady[v / DSP_GROUP] = 0;
    voice_ctl *c = &b->ctl[v];
    if (c->playing && !c->stopping)
        return;
    b->epoch++;
    if (!c->playing) {
        /* A fresh start: phase and feedback state reset, gains rise from silence. */
        b->phase[v] = c->phase_offset;
        b->soa.y[v] = 0;
        for (uint32_t ch = 0; ch < b->channels; ch++)
            b->soa.gain[ch * b->soa.stride + v] = 0;
        c->inc = c->inc_target;
        c->dinc = 0;
        c->left_freq = 0;
        b->soa.fb[v] = c->fb_target;
        b->soa.dfb[v] = 0;
        c->left_fb = 0;
        b->playing++;
    }
    c->playing = 1;
    c->stopping = 0;
    b->group_active[v / DSP_GROUP] = 1;
    update_gains(b, v, ramp);
}

void dsp_voice_stop(dsp_bank *b, uint32_t v, uint32_t ramp) {
    if (v >= b->voices)
        return;
    b->group_steady[v / DSP_GROUP] = 0;
    voice_ctl *c = &b->ctl[v];
    if (!c->playing || c->stopping)
        return;
    b->epoch++;
    static const float silence[DSP_MAX_CHANNELS];
    c->stopping = 1;
    gain_ramp_to(b, v, silence, ramp);
}

int dsp_voice_playing(const dsp_bank *b, uint32_t v) {
    return v < b->voices && b->ctl[v].playing;
}

uint32_t dsp_bank_playing(const dsp_bank *b) {
    return b->playing;
}

/* ---- rendering ---- */

/* Frames until the group's nearest ramp end, or 0 when nothing in it ramps. */
static uint32_t group_ramp_left(const dsp_bank *b, uint32_t g) {
    uint32_t m = 0;
    uint32_t end = (g + 1) * DSP_GROUP < b->voices ? (g + 1) * DSP_GROUP : b->voices;
    for (uint32_t v = g * DSP_GROUP; v < end; v++) {
        const voice_ctl *c = &b->ctl[v];
        uint32_t l[3] = {c->left_freq, c->left_fb, c->left_gain};
        for (int i = 0; i < 3; i++)
            if (l[i] && (m == 0 || l[i] < m))
                m = l[i];
    }
    return m;
}

static uint32_t fixed_hi32_rounded(uint64_t x) {
    return (uint32_t)((x + (1ULL << 31)) >> 32);
}

static void segment_begin(dsp_bank *b, uint32_t g) {
    uint32_t end = (g + 1) * DSP_GROUP < b->voices ? (g + 1) * DSP_GROUP : b->voices;
    for (uint32_t v = g * DSP_GROUP; v < end; v++) {
        const voice_ctl *c = &b->ctl[v];
        b->soa.phase[v] = fixed_hi32_rounded(b->phase[v]);
        b->soa.inc[v] = fixed_hi32_rounded(c->inc);
        b->inc_err[v] = (int32_t)(c->inc - ((uint64_t)b->soa.inc[v] << 32));
        b->soa.dinc[v] = c->left_freq ? (int32_t)fixed_hi32_rounded((uint64_t)c->dinc) : 0;
    }
}

/* Advances the exact phases by m frames, and the kernel's to their rounding (where the next
 * segment, steady or not, starts from), and ends the ramps that ran out. */
static void segment_end(dsp_bank *b, uint32_t g, uint32_t m) {
    const uint32_t st = b->soa.stride;
    uint32_t end = (g + 1) * DSP_GROUP < b->voices ? (g + 1) * DSP_GROUP : b->voices;
    int any = 0;
    for (uint32_t v = g * DSP_GROUP; v < end; v++) {
        voice_ctl *c = &b->ctl[v];
        if (c->left_freq) {
            /* sum over k < m of (inc + k*dinc), all mod 2^64 */
            uint64_t tri = (uint64_t)m * (uint64_t)(m - 1) / 2;
            b->phase[v] += (uint64_t)m * c->inc + tri * (uint64_t)c->dinc;
            c->inc += (uint64_t)m * (uint64_t)c->dinc;
            if ((c->left_freq -= m) == 0) {
                c->inc = c->inc_target;
                c->dinc = 0;
            }
        } else {
            b->phase[v] += (uint64_t)m * c->inc;
        }
        b->soa.phase[v] = fixed_hi32_rounded(b->phase[v]);
        if (c->left_fb && (c->left_fb -= m) == 0) {
            b->soa.fb[v] = c->fb_target;
            b->soa.dfb[v] = 0;
        }
        if (c->left_gain && (c->left_gain -= m) == 0) {
            for (uint32_t ch = 0; ch < b->channels; ch++) {
                b->soa.gain[ch * st + v] = b->gain_target[ch * st + v];
                b->soa.dgain[ch * st + v] = 0;
            }
            if (c->stopping) {
                c->stopping = 0;
                c->playing = 0;
                b->playing--;
            }
        }
        any |= c->playing;
    }
    b->group_active[g] = (uint8_t)any;
}

/* Sine's loop for a group in which no voice has feedback, now or ramping: the same samples as
 * SineLoop's, without the chain from one frame to the next. Any bit set, -0 included, is
 * feedback, so the test can only err towards SineLoop. */
static dsp_kind group_kind(const dsp_bank *b, uint32_t g) {
    const float *fb = b->soa.fb + (size_t)g * DSP_GROUP, *dfb = b->soa.dfb + (size_t)g * DSP_GROUP;
    uint32_t bits = 0;
    for (uint32_t i = 0; i < DSP_GROUP; i++) {
        uint32_t a, d;
        memcpy(&a, fb + i, sizeof a);
        memcpy(&d, dfb + i, sizeof d);
        bits |= a | d;
    }
    return bits ? DSP_KIND_SINELOOP : DSP_KIND_SINE;
}

/* A steady group's segment: what segment_begin and segment_end do when nothing ramps, and
 * nothing but the phases moved since the last full segment (inc is where that one put it, dinc
 * is 0, no ramp can end, so group_active stands). The same numbers, without three passes over
 * every voice's control record per block. `groups` neighbouring steady groups (1, or 2 for a
 * kernel's run_pair) in one call. */
static void steady_segment(dsp_bank *b, dsp_kernel_fn run, uint32_t g, uint32_t groups, uint32_t m,
                           float *acc) {
    uint32_t first = g * DSP_GROUP, last = (g + groups) * DSP_GROUP;
    uint32_t end = last < b->voices ? last : b->voices;
    run(&b->soa, first, m, acc, 0); /* soa.phase: as the last segment's end left them */
    for (uint32_t v = first; v < end; v++) {
        b->phase[v] += (uint64_t)m * (((uint64_t)b->soa.inc[v] << 32) + (uint64_t)b->inc_err[v]);
        b->soa.phase[v] = fixed_hi32_rounded(b->phase[v]);
    }
}

void dsp_bank_render(dsp_bank *b, float *out, uint32_t frames) {
    if (frames > b->max_frames)
        frames = b->max_frames; /* the contract forbids it; never write past acc */
    const dsp_kernel *k = b->kernel;
    const size_t frame_stride = (size_t)b->channels * k->width;
    memset(b->acc, 0, (size_t)frames * frame_stride * sizeof(float));
    for (uint32_t g = 0; g < b->groups; g++) {
        if (!b->group_active[g])
            continue;
        if (b->group_steady[g]) {
            dsp_kind kind = group_kind(b, g);
            if (k->run_pair[kind] && g + 1 < b->groups && b->group_active[g + 1] &&
                b->group_steady[g + 1] && group_kind(b, g + 1) == kind) {
                steady_segment(b, k->run_pair[kind], g, 2, frames, b->acc);
                g++;
            } else {
                steady_segment(b, k->run[kind], g, 1, frames, b->acc);
            }
            continue;
        }
        uint32_t f = 0;
        while (f < frames) {
            uint32_t left = group_ramp_left(b, g);
            b->group_steady[g] = left == 0; /* this segment is a full one without ramps */
            uint32_t m = frames - f;
            if (left && left < m)
                m = left;
            segment_begin(b, g);
            if (left != 0)
                b->epoch++; /* a ramp moves more than the phases */
            k->run[group_kind(b, g)](&b->soa, g * DSP_GROUP, m, b->acc + f * frame_stride,
                                     left != 0);
            segment_end(b, g, m);
            f += m;
            if (!b->group_active[g])
                break;
        }
    }
    k->reduce(b->acc, frames, b->channels, out);
}

/* ---- state that outlives the process ---- */

#define STATE_MAGIC 0x64737073u /* "dsps" */

/* A snapshot: this header, then ctl[voices], then y, fb, dfb [stride] and gain, dgain,
 * gain_target [channels * stride], then group_active[groups]. The float arrays are the kernel's
 * working state (fb and the gains move while they ramp); the 32-bit phases and increments are
 * not kept: segment_begin derives them from ctl before every segment. */
typedef struct state_header {
    uint32_t magic, voices, channels, stride;
    uint32_t playing, pad;
    uint64_t writer; /* who wrote the full part, and at which of its epochs */
    uint64_t epoch;
} state_header;

typedef struct state_layout {
    size_t ctl, phase, y, fb, dfb, gain, dgain, gain_target, group_active, total;
} state_layout;

static state_layout layout_of(uint32_t voices, uint32_t channels) {
    const size_t groups = (voices + DSP_GROUP - 1) / DSP_GROUP, stride = groups * DSP_GROUP;
    const size_t vec = farm_align_up(stride * sizeof(float), 64);
    const size_t chan = farm_align_up(stride * channels * sizeof(float), 64);
    state_layout l;
    l.ctl = farm_align_up(sizeof(state_header), 64);
    l.phase = l.ctl + farm_align_up(voices * sizeof(voice_ctl), 64);
    l.y = l.phase + farm_align_up(stride * sizeof(uint64_t), 64);
    l.fb = l.y + vec;
    l.dfb = l.fb + vec;
    l.gain = l.dfb + vec;
    l.dgain = l.gain + chan;
    l.gain_target = l.dgain + chan;
    l.group_active = l.gain_target + chan;
    l.total = farm_align_up(l.group_active + groups, 64);
    return l;
}

size_t dsp_state_bytes(uint32_t voices, uint32_t channels) {
    return layout_of(voices, channels).total;
}

void dsp_bank_save(const dsp_bank *b, void *dst, uint64_t writer) {
    char *d = dst;
    state_header *h = dst;
    const state_layout l = layout_of(b->voices, b->channels);
    const size_t st = b->soa.stride, chan = st * b->channels * sizeof(float);
    if (h->magic == STATE_MAGIC && h->writer == writer && h->epoch == b->epoch) {
        /* Only the phases and the feedback state moved since this snapshot's full part was
         * written, and only in the groups that play: a stopped group costs nothing here either. */
        uint64_t *phase = (uint64_t *)(void *)(d + l.phase);
        float *y = (float *)(void *)(d + l.y);
        for (uint32_t g = 0; g < b->groups; g++) {
            if (!b->group_active[g])
                continue;
            memcpy(phase + g * DSP_GROUP, b->phase + g * DSP_GROUP, DSP_GROUP * sizeof(uint64_t));
            memcpy(y + g * DSP_GROUP, b->soa.y + g * DSP_GROUP, DSP_GROUP * sizeof(float));
        }
        return;
    }
    memcpy(d + l.phase, b->phase, st * sizeof(uint64_t));
    memcpy(d + l.y, b->soa.y, st * sizeof(float));
    *h = (state_header){.magic = STATE_MAGIC,
                        .voices = b->voices,
                        .channels = b->channels,
                        .stride = (uint32_t)st,
                        .playing = b->playing,
                        .writer = writer,
                        .epoch = b->epoch};
    memcpy(d + l.ctl, b->ctl, b->voices * sizeof(voice_ctl));
    memcpy(d + l.fb, b->soa.fb, st * sizeof(float));
    memcpy(d + l.dfb, b->soa.dfb, st * sizeof(float));
    memcpy(d + l.gain, b->soa.gain, chan);
    memcpy(d + l.dgain, b->soa.dgain, chan);
    memcpy(d + l.gain_target, b->gain_target, chan);
    memcpy(d + l.group_active, b->group_active, b->groups);
}

int dsp_bank_load(dsp_bank *b, const void *src) {
    const char *s = src;
    const state_header *h = src;
    const state_layout l = layout_of(b->voices, b->channels);
    const size_t st = b->soa.stride, chan = st * b->channels * sizeof(float);
    if (h->magic != STATE_MAGIC || h->voices != b->voices || h->channels != b->channels ||
        h->stride != st)
        return farm_fail(FARM_EINVAL, "the saved state is not of a bank of %u voices, %u channels",
                         b->voices, b->channels);
    memcpy(b->ctl, s + l.ctl, b->voices * sizeof(voice_ctl));
    memcpy(b->phase, s + l.phase, st * sizeof(uint64_t));
    memcpy(b->soa.y, s + l.y, st * sizeof(float));
    memcpy(b->soa.fb, s + l.fb, st * sizeof(float));
    memcpy(b->soa.dfb, s + l.dfb, st * sizeof(float));
    memcpy(b->soa.gain, s + l.gain, chan);
    memcpy(b->soa.dgain, s + l.dgain, chan);
    memcpy(b->gain_target, s + l.gain_target, chan);
    memcpy(b->group_active, s + l.group_active, b->groups);
    memset(b->group_steady, 0, b->groups);
    b->playing = h->playing;
    b->epoch = h->epoch + 1; /* the next save by anyone is a full one */
    return FARM_OK;
}
