/* The kernel frame: everything a bank's per-sample loop does that is not the oscillator itself,
 * written once for every voice kind and every instruction set.
 *
 * Included by kernel.c once per kind, with KIND defined to the kind's name, and KIND_PAIRS where
 * the kind's step is a chain from frame to frame that wants run_pair. The kind supplies,
 * as always-inline functions over K vectors of DSP_VW voices (one group of DSP_GROUP voices):
 *
 *   typedef struct { ... } KIND_state;       its state, as KMAX vectors, kept in registers
 *   void KIND_load(KIND_state *, const dsp_soa *, uint32_t v0, int ramp, int kv);
 *   vf   KIND_step(KIND_state *, int k, int ramp);   vector k's next sample; advances its state
 *   void KIND_store(const KIND_state *, const dsp_soa *, uint32_t v0, int ramp, int kv);
 *
 * and the frame holds the rest: the group's lane layout, the gains (in registers for one and two
 * channels, from memory for more), their ramps, the per-channel accumulation into acc laid out
 * [frame][channel][DSP_VW lanes], and the dispatch on channel count and ramp. The lanes are summed
 * once per block by reduce (kernel.c), whatever the kind.
 *
 * Each kind's loop is the frame's loop with its step inlined: a kind costs its step and nothing
 * else (docs/kernels.md measures the frame against the loop it replaced). */
#ifndef KIND
#error "define KIND to the voice kind's name before including kernel_frame.h"
#endif

#define KF(name) CAT(KIND, CAT(_, name))

/* One or two channels (C a compile-time constant after inlining): every gain lives in a
 * register. */
ALWAYS_INLINE void KF(frame_small)(const dsp_soa *s, uint32_t v0, uint32_t frames,
                                   float *restrict acc, const int ramp, const uint32_t C,
                                   const int kv) {
    const uint32_t stride = s->stride;
    KF(state) st;
    KF(load)(&st, s, v0, ramp, kv);
    vf g0[KMAX], g1[KMAX], dg0[KMAX], dg1[KMAX];
    for (int k = 0; k < kv; k++) {
        uint32_t v = v0 + (uint32_t)k * DSP_VW;
        g0[k] = ldf(s->gain + v);
        g1[k] = C == 2 ? ldf(s->gain + stride + v) : g0[k];
        if (ramp) {
            dg0[k] = ldf(s->dgain + v);
            dg1[k] = C == 2 ? ldf(s->dgain + stride + v) : dg0[k];
        }
    }
    for (uint32_t n = 0; n < frames; n++) {
        /* one sum per group, added to acc group after group: a pair's sums are the bits that
         * two calls, one per group, would have left */
        vf a0[KMAX / K] = {{0}}, a1[KMAX / K] = {{0}};
        for (int k = 0; k < kv; k++) {
            vf y = KF(step)(&st, k, ramp);
            a0[k / K] += y * g0[k];
            if (C == 2)
                a1[k / K] += y * g1[k];
            if (ramp) {
                g0[k] += dg0[k];
                if (C == 2)
                    g1[k] += dg1[k];
            }
        }
        float *an = acc + (size_t)n * C * DSP_VW;
        vf s0 = ldf(an), s1 = C == 2 ? ldf(an + DSP_VW) : s0;
        for (int h = 0; h < kv / K; h++) {
            s0 += a0[h];
            if (C == 2)
                s1 += a1[h];
        }
        stf(an, s0);
        if (C == 2)
            stf(an + DSP_VW, s1);
    }
    KF(store)(&st, s, v0, ramp, kv);
    if (ramp)
        for (int k = 0; k < kv; k++) {
            uint32_t v = v0 + (uint32_t)k * DSP_VW;
            stf(s->gain + v, g0[k]);
            if (C == 2)
                stf(s->gain + stride + v, g1[k]);
        }
}

/* Any channel count: gains stay in memory and each frame's outputs are spread channel by
 * channel. Slower per voice, but only multichannel layouts take it. */
ALWAYS_INLINE void KF(frame_any)(const dsp_soa *s, uint32_t v0, uint32_t frames,
                                 float *restrict acc, const int ramp) {
    const uint32_t stride = s->stride, C = s->channels;
    KF(state) st;
    KF(load)(&st, s, v0, ramp, K);
    for (uint32_t n = 0; n < frames; n++) {
        vf y[K];
        for (int k = 0; k < K; k++)
            y[k] = KF(step)(&st, k, ramp);
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
    KF(store)(&st, s, v0, ramp, K);
}

static void FN(KF(run))(const dsp_soa *s, uint32_t v0, uint32_t frames, float *acc, int ramp) {
    switch (s->channels) {
    case 1:
        if (ramp)
            KF(frame_small)(s, v0, frames, acc, 1, 1, K);
        else
            KF(frame_small)(s, v0, frames, acc, 0, 1, K);
        break;
    case 2:
        if (ramp)
            KF(frame_small)(s, v0, frames, acc, 1, 2, K);
        else
            KF(frame_small)(s, v0, frames, acc, 0, 2, K);
        break;
    default:
        if (ramp)
            KF(frame_any)(s, v0, frames, acc, 1);
        else
            KF(frame_any)(s, v0, frames, acc, 0);
        break;
    }
}

#if KMAX > K && defined(KIND_PAIRS)
/* Two neighbouring groups without ramps as one: twice the independent vectors, for an ISA whose
 * group alone is too few of them to hide a kind's chain from frame to frame (AVX-512: 4). */
static void FN(KF(run_pair))(const dsp_soa *s, uint32_t v0, uint32_t frames, float *acc, int ramp) {
    (void)ramp; /* pairs are steady groups only */
    switch (s->channels) {
    case 1:
        KF(frame_small)(s, v0, frames, acc, 0, 1, 2 * K);
        break;
    case 2:
        KF(frame_small)(s, v0, frames, acc, 0, 2, 2 * K);
        break;
    default:
        KF(frame_any)(s, v0, frames, acc, 0);
        KF(frame_any)(s, v0 + DSP_GROUP, frames, acc, 0);
        break;
    }
}
#endif

#undef KF
#undef KIND
#undef KIND_PAIRS
