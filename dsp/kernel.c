/* The per-sample loops, compiled once per instruction set: CMake builds this file with
 * DSP_ISA=avx512|avx2|sse2|generic, DSP_VW = floats per vector, and the matching -m flags.
 * GCC's vector extensions keep one source for all of them.
 *
 * A voice kind here is its state and its step (SineLoop, Sine); kernel_frame.h wraps each in the
 * loop over a group's frames, vectors and channels that every kind shares. A new kind is a state,
 * a load, a step and a store, then `#define KIND name` and the include. */
#include <string.h>

#include "dsp_internal.h"

#if DSP_VW == 16 && defined(__AVX512DQ__)
#include <immintrin.h>
#endif

#if DSP_VW != 4 && DSP_VW != 8 && DSP_VW != 16
#error "DSP_VW must be 4, 8 or 16"
#endif

#ifndef DSP_ISA
#error "DSP_ISA must name the instruction set"
#endif
#ifndef DSP_VW
#error "DSP_VW must give the vector width in floats"
#endif

#define K (DSP_GROUP / DSP_VW)
/* Vectors one call may render: a group, or on AVX-512 two (run_pair). */
#define KMAX (DSP_VW == 16 ? 2 * K : K)
#define CAT2(a, b) a##b
#define CAT(a, b) CAT2(a, b)
#define FN(name) CAT(name, CAT(_, DSP_ISA))
#define STR2(x) #x
#define STR(x) STR2(x)

typedef float vf __attribute__((vector_size(DSP_VW * 4), aligned(DSP_VW * 4)));
typedef int32_t vi __attribute__((vector_size(DSP_VW * 4), aligned(DSP_VW * 4)));
typedef uint32_t vu __attribute__((vector_size(DSP_VW * 4), aligned(DSP_VW * 4)));

#define ALWAYS_INLINE static inline __attribute__((always_inline))

ALWAYS_INLINE vf ldf(const float *p) {
    return *(const vf *)p;
}
ALWAYS_INLINE void stf(float *p, vf v) {
    *(vf *)p = v;
}
ALWAYS_INLINE vu ldu(const uint32_t *p) {
    return *(const vu *)p;
}

/* x - round(x), round to nearest even: the position in the cycle, in [-1/2, 1/2]. AVX-512DQ does
 * it in one instruction (vreduceps); elsewhere adding and subtracting DSP_ROUND_MAGIC rounds. Both
 * give the same bits: the subtraction is exact either way. */
ALWAYS_INLINE vf wrap_cycles(vf x) {
#if DSP_VW == 16 && defined(__AVX512DQ__)
    return (vf)_mm512_reduce_ps((__m512)x, _MM_FROUND_TO_NEAREST_INT);
#else
    return x - ((x + DSP_ROUND_MAGIC) - DSP_ROUND_MAGIC);
#endif
}

/* sin(2*pi*t) for t in [-1/2, 1/2]. The factor t * (1/4 - t^2) is computed beside Q's chain,
 * not after it: the feedback loop waits on this, so its latency is the kernel's. */
ALWAYS_INLINE vf sin_wrapped(vf t) {
    vf z = t * t;
    vf q = z * DSP_SIN_Q4 + DSP_SIN_Q3;
    q = q * z + DSP_SIN_Q2;
    q = q * z + DSP_SIN_Q1;
    q = q * z + DSP_SIN_Q0;
    return t * (0.25f - z) * q;
}

/* The phase, read as signed, is the same position mod 1 in [-1/2, 1/2). */
ALWAYS_INLINE vf phase_cycles(vu ph) {
    return __builtin_convertvector((vi)ph, vf) * (1.0f / 4294967296.0f);
}

/* Hides v's origin from the optimiser, so that a multiply that made it is not contracted into
 * the add that uses it: the contraction is then free to take the other multiply, the one on the
 * feedback loop (fb * y + phase as one FMA, the phase's scaling off the loop). */
ALWAYS_INLINE vf opaque(vf v) {
#if defined(__x86_64__) || defined(__i386__)
    __asm__("" : "+v"(v));
#endif
    return v;
}

/* ---- voice kinds: each is a state and a step, the frame does the rest ---- */

/* SineLoop: x = phase + fb * y; y = sin(2*pi*x); phase += inc. The chain through y is long
 * (about ten dependent operations), so a group keeps K independent vectors and every frame
 * advances all of them, which hides the latency behind the other vectors' work. */
typedef struct {
    vu ph[KMAX], inc[KMAX], dinc[KMAX];
    vf y[KMAX], fb[KMAX], dfb[KMAX];
} sineloop_state;

ALWAYS_INLINE void sineloop_load(sineloop_state *st, const dsp_soa *s, uint32_t v0, int ramp,
                                 int kv) {
    for (int k = 0; k < kv; k++) {
        uint32_t v = v0 + (uint32_t)k * DSP_VW;
        st->ph[k] = ldu(s->phase + v);
        st->inc[k] = ldu(s->inc + v);
        st->y[k] = ldf(s->y + v);
        st->fb[k] = ldf(s->fb + v);
        if (ramp) {
            st->dinc[k] = ldu((const uint32_t *)s->dinc + v);
            st->dfb[k] = ldf(s->dfb + v);
        }
    }
}

ALWAYS_INLINE vf sineloop_step(sineloop_state *st, int k, int ramp) {
    vf y = sin_wrapped(wrap_cycles(st->fb[k] * st->y[k] + opaque(phase_cycles(st->ph[k]))));
    st->y[k] = y;
    st->ph[k] += st->inc[k];
    if (ramp) {
        st->inc[k] += st->dinc[k];
        st->fb[k] += st->dfb[k];
    }
    return y;
}

ALWAYS_INLINE void sineloop_store(const sineloop_state *st, const dsp_soa *s, uint32_t v0, int ramp,
                                  int kv) {
    for (int k = 0; k < kv; k++) {
        uint32_t v = v0 + (uint32_t)k * DSP_VW;
        *(vu *)(s->phase + v) = st->ph[k];
        stf(s->y + v, st->y[k]);
        if (ramp) {
            *(vu *)(s->inc + v) = st->inc[k];
            stf(s->fb + v, st->fb[k]);
        }
    }
}

#define KIND sineloop
#define KIND_PAIRS
#include "kernel_frame.h"

/* Sine: SineLoop without feedback, so every frame's sample depends on the phase alone. The
 * phase already is in [-1/2, 1/2): no wrapping, and no chain from one frame to the next. Its
 * samples are SineLoop's at fb = 0, bit for bit, and it keeps y up to date for a later feedback. */
typedef struct {
    vu ph[KMAX], inc[KMAX], dinc[KMAX];
    vf y[KMAX];
} sine_state;

ALWAYS_INLINE void sine_load(sine_state *st, const dsp_soa *s, uint32_t v0, int ramp, int kv) {
    for (int k = 0; k < kv; k++) {
        uint32_t v = v0 + (uint32_t)k * DSP_VW;
        st->ph[k] = ldu(s->phase + v);
        st->inc[k] = ldu(s->inc + v);
        if (ramp)
            st->dinc[k] = ldu((const uint32_t *)s->dinc + v);
    }
}

ALWAYS_INLINE vf sine_step(sine_state *st, int k, int ramp) {
    vf y = sin_wrapped(phase_cycles(st->ph[k]));
    st->y[k] = y;
    st->ph[k] += st->inc[k];
    if (ramp)
        st->inc[k] += st->dinc[k];
    return y;
}

ALWAYS_INLINE void sine_store(const sine_state *st, const dsp_soa *s, uint32_t v0, int ramp,
                              int kv) {
    for (int k = 0; k < kv; k++) {
        uint32_t v = v0 + (uint32_t)k * DSP_VW;
        *(vu *)(s->phase + v) = st->ph[k];
        stf(s->y + v, st->y[k]);
        if (ramp)
            *(vu *)(s->inc + v) = st->inc[k];
    }
}

#define KIND sine
#include "kernel_frame.h"

/* Half-width vectors for the pairwise sum below, aligned as acc's rows are (64 bytes apart). */
typedef float v8f __attribute__((vector_size(32), aligned(32)));
typedef float v4f __attribute__((vector_size(16), aligned(16)));
typedef float v2f __attribute__((vector_size(8), aligned(8)));

/* The lanes of one output, summed pairwise in a fixed order (lane j += lane j + w, for
 * w = DSP_VW/2 .. 1), so the result does not depend on the compiler's mood. Written as a cascade
 * of half-width adds in registers rather than a loop over w: GCC 12 leaves that loop rolled at
 * 16 lanes, every level stored to the stack and read back (some 70 instructions per output,
 * against 10 here), and the reduce runs frames x channels times per block whatever the voice
 * count: a fixed cost per block that a small bank cannot hide (docs/kernels.md). */
ALWAYS_INLINE float sum_lanes(const float *a) {
#if DSP_VW == 16
    v8f s8 = *(const v8f *)a + *(const v8f *)(a + 8);
    v4f s4 =
        __builtin_shufflevector(s8, s8, 0, 1, 2, 3) + __builtin_shufflevector(s8, s8, 4, 5, 6, 7);
#elif DSP_VW == 8
    v8f s8 = *(const v8f *)a;
    v4f s4 =
        __builtin_shufflevector(s8, s8, 0, 1, 2, 3) + __builtin_shufflevector(s8, s8, 4, 5, 6, 7);
#else
    v4f s4 = *(const v4f *)a;
#endif
    v2f s2 = __builtin_shufflevector(s4, s4, 0, 1) + __builtin_shufflevector(s4, s4, 2, 3);
    return s2[0] + s2[1];
}

static void FN(reduce)(const float *acc, uint32_t frames, uint32_t channels, float *out) {
    for (uint32_t i = 0; i < frames * channels; i++)
        out[i] = sum_lanes(acc + (size_t)i * DSP_VW);
}

const dsp_kernel CAT(dsp_kernel_, DSP_ISA) = {
    .name = STR(DSP_ISA),
    .width = DSP_VW,
    .run = {[DSP_KIND_SINELOOP] = FN(sineloop_run), [DSP_KIND_SINE] = FN(sine_run)},
#if KMAX > K
    /* Sine has no chain from frame to frame: one group's vectors are enough for it. */
    .run_pair = {[DSP_KIND_SINELOOP] = FN(sineloop_run_pair)},
#endif
    .reduce = FN(reduce),
};
