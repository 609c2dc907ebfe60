/* Shared between dsp.c (bookkeeping, run once per block and group) and kernel.c (the per-sample
 * loop, compiled once per instruction set). Not part of the module's contract. */
#ifndef FARM_DSP_INTERNAL_H
#define FARM_DSP_INTERNAL_H

#include <stdint.h>

#include "dsp.h"

#define DSP_MAX_VW 16 /* widest vector in floats (AVX-512) */

/* Per-voice working state as structure of arrays, each array padded to a whole number of
 * groups and 64-byte aligned. Gains are [channel][voice] with row length `stride`. */
typedef struct dsp_soa {
    uint32_t stride;
    uint32_t channels;
    uint32_t *phase; /* cycles in 0.32 fixed point, resynchronised from 64 bits every segment */
    uint32_t *inc;
    int32_t *dinc; /* per-frame change of inc while ramping */
    float *y;      /* previous output, the feedback loop's state */
    float *fb;
    float *dfb;
    float *gain;
    float *dgain;
} dsp_soa;

/* Renders one group (DSP_GROUP voices from v0) for `frames` frames, adding each frame's
 * contribution into acc laid out [frame][channel][width lanes]. With ramp set it also steps
 * inc, fb and gain by their deltas every frame and stores them back. */
typedef void (*dsp_kernel_fn)(const dsp_soa *s, uint32_t v0, uint32_t frames, float *acc, int ramp);
/* Sums acc's lanes into interleaved out (overwriting it). */
typedef void (*dsp_reduce_fn)(const float *acc, uint32_t frames, uint32_t channels, float *out);

/* The voice kinds the kernels know (kernel.c). Sine is SineLoop at fb = 0, bit for bit, without
 * the feedback loop's chain from frame to frame: dsp.c gives it the groups that have no feedback.
 */
typedef enum dsp_kind { DSP_KIND_SINELOOP, DSP_KIND_SINE, DSP_KINDS } dsp_kind;

typedef struct dsp_kernel {
    const char *name;
    uint32_t width;
    dsp_kernel_fn run[DSP_KINDS];
    /* Two neighbouring steady groups (no ramps) as one call, where that is faster; else NULL. */
    dsp_kernel_fn run_pair[DSP_KINDS];
    dsp_reduce_fn reduce;
} dsp_kernel;

/* Polynomial for sin(2*pi*t) = t * (1/4 - t^2) * Q(t^2) on t in [-1/2, 1/2], Q of degree 4,
 * fitted minimax for absolute error (2.8e-7 in float). The factor puts the zeros at 0 and +-1/2
 * exactly, so folding to a quarter wave is unnecessary. */
#define DSP_SIN_Q0 2.513273038e+01f
#define DSP_SIN_Q1 -6.483468112e+01f
#define DSP_SIN_Q2 6.704389828e+01f
#define DSP_SIN_Q3 -3.812319857e+01f
#define DSP_SIN_Q4 1.223330533e+01f
/* Adding and subtracting 1.5 * 2^23 rounds a float to the nearest integer (|x| < 2^22) on every
 * instruction set, SSE2 included, which has no round instruction. */
#define DSP_ROUND_MAGIC 12582912.0f

/* For the calibration (calibrate.c): whether a kernel is forced (dsp_force_isa), and a kernel's
 * width in floats (0 for a name this CPU cannot run). */
int dsp_isa_forced(void);
uint32_t dsp_isa_width(const char *name);

#define DSP_DECLARE_KERNEL(isa) extern const dsp_kernel dsp_kernel_##isa;
DSP_DECLARE_KERNEL(avx512)
DSP_DECLARE_KERNEL(avx2)
DSP_DECLARE_KERNEL(sse2)
DSP_DECLARE_KERNEL(generic)

/* calibrate.c: which of n measured kernels (ns per block, the widest first) to take. */
uint32_t dsp_calibration_pick(const double *ns, uint32_t n);

#endif
