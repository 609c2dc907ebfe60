/* The per-sample loop, compiled once per instruction set: CMake builds this file with
 * DSP_ISA=avx512|avx2|sse2|generic, DSP_VW = floats per vector, and the matching -m flags.
 * GCC's vector extensions keep one source for all of them.
 *
 * One frame of one voice: x = phase + fb * y; y = sin(2*pi*x); phase += inc. The chain through
 * y is long (about a dozen dependent operations), so a group of DSP_GROUP voices is kept in
 * DSP_GROUP / DSP_VW independent vectors and every frame advances all of them, which hides the
 * latency behind the other vectors' work. */
#include <string.h>

#include "dsp_internal.h"

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

ALWAYS_INLINE vf sin_cycles(vf x) {
    vf t = x - ((x + DSP_ROUND_MAGIC) - DSP_ROUND_MAGIC);
    vf z = t * t;
    vf q = z * DSP_SIN_Q4 + DSP_SIN_Q3;
    q = q * z + DSP_SIN_Q2;
    q = q * z + DSP_SIN_Q1;
    q = q * z + DSP_SIN_Q0;
    return t * (0.25f - z) * q;
}

/* C is 1 or 2 here (a compile-time constant after inlining), so every gain lives in a register. */
ALWAYS_INLINE void run_small(const dsp_soa *s, uint32_t v0, uint32_t frames, float *restrict acc,
                             const int ramp, const uint32_t C) {
    const uint32_t stride = s->stride;
    vu ph[K], inc[K], dinc[K];
    vf y[K], fb[K], dfb[K], g0[K], g1[K], dg0[K], dg1[K];
    for (int k = 0; k < K; k++) {
        uint32_t v = v0 + (uint32_t)k * DSP_VW;
        ph[k] = ldu(s->phase + v);
        inc[k] = ldu(s->inc + v);
        y[k] = ldf(s->y + v);
        fb[k] = ldf(s->fb + v);
        g0[k] = ldf(s->gain + v);
        g1[k] = C == 2 ? ldf(s->gain + stride + v) : g0[k];
        if (ramp) {
            dinc[k] = (vu)ldu((const uint32_t *)s->dinc + v);
            dfb[k] = ldf(s->dfb + v);
            dg0[k] = ldf(s->dgain + v);
            dg1[k] = C == 2 ? ldf(s->dgain + stride + v) : dg0[k];
        }
    }
    const float scale = 1.0f / 4294967296.0f;
    for (uint32_t n = 0; n < frames; n++) {
        vf a0 = {0}, a1 = {0};
        for (int k = 0; k < K; k++) {
            /* The phase read as signed is the same position mod 1, in [-1/2, 1/2). */
            vf pf = __builtin_convertvector((vi)ph[k], vf) * scale;
            y[k] = sin_cycles(pf + fb[k] * y[k]);
            ph[k] += inc[k];
            a0 += y[k] * g0[k];
            if (C == 2)
                a1 += y[k] * g1[k];
            if (ramp) {
                inc[k] += dinc[k];
                fb[k] += dfb[k];
                g0[k] += dg0[k];
                if (C == 2)
                    g1[k] += dg1[k];
            }
        }
        float *an = acc + (size_t)n * C * DSP_VW;
        stf(an, ldf(an) + a0);
        if (C == 2)
            stf(an + DSP_VW, ldf(an + DSP_VW) + a1);
    }
    for (int k = 0; k < K; k++) {
        uint32_t v = v0 + (uint32_t)k * DSP_VW;
        *(vu *)(s->phase + v) = ph[k];
        stf(s->y + v, y[k]);
        if (ramp) {
            *(vu *)(s->inc + v) = inc[k];
            stf(s->fb + v, fb[k]);
            stf(s->gain + v, g0[k]);
            if (C == 2)
                stf(s->gain + stride + v, g1[k]);
        }
    }
}

/* Any channel count: gains stay in memory and each frame's outputs are spread channel by
 * channel. Slower per voice, but only multichannel layouts take it. */
static void run_any(const dsp_soa *s, uint32_t v0, uint32_t frames, float *restrict acc, int ramp) {
    const uint32_t stride = s->stride, C = s->channels;
    vu ph[K], inc[K], dinc[K];
    vf y[K], fb[K], dfb[K];
    for (int k = 0; k < K; k++) {
        uint32_t v = v0 + (uint32_t)k * DSP_VW;
        ph[k] = ldu(s->phase + v);
        inc[k] = ldu(s->inc + v);
        y[k] = ldf(s->y + v);
        fb[k] = ldf(s->fb + v);
        dinc[k] = (vu)ldu((const uint32_t *)s->dinc + v);
        dfb[k] = ldf(s->dfb + v);
    }
    const float scale = 1.0f / 4294967296.0f;
    for (uint32_t n = 0; n < frames; n++) {
        for (int k = 0; k < K; k++) {
            vf pf = __builtin_convertvector((vi)ph[k], vf) * scale;
            y[k] = sin_cycles(pf + fb[k] * y[k]);
            ph[k] += inc[k];
            if (ramp) {
                inc[k] += dinc[k];
                fb[k] += dfb[k];
            }
        }
        float *an = acc + (size_t)n * C * DSP_VW;
        for (uint32_t c = 0; c < C; c++) {
            float *g = s->gain + (size_t)c * stride + v0;
            const float *dg = s->dgain + (size_t)c * stride + v0;
            vf a = ldf(an + c * DSP_VW);
            for (int k = 0; k < K; k++) {
                vf gk = ldf(g + k * DSP_VW);
                a += y[k] * gk;
                if (ramp)
                    stf(g + k * DSP_VW, gk + ldf(dg + k * DSP_VW));
            }
            stf(an + c * DSP_VW, a);
        }
    }
    for (int k = 0; k < K; k++) {
        uint32_t v = v0 + (uint32_t)k * DSP_VW;
        *(vu *)(s->phase + v) = ph[k];
        stf(s->y + v, y[k]);
        if (ramp) {
            *(vu *)(s->inc + v) = inc[k];
            stf(s->fb + v, fb[k]);
        }
    }
}

static void FN(run)(const dsp_soa *s, uint32_t v0, uint32_t frames, float *acc, int ramp) {
    switch (s->channels) {
    case 1:
        if (ramp)
            run_small(s, v0, frames, acc, 1, 1);
        else
            run_small(s, v0, frames, acc, 0, 1);
        break;
    case 2:
        if (ramp)
            run_small(s, v0, frames, acc, 1, 2);
        else
            run_small(s, v0, frames, acc, 0, 2);
        break;
    default:
        run_any(s, v0, frames, acc, ramp);
        break;
    }
}

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
    .run = FN(run),
    .reduce = FN(reduce),
};
