/* Which kernel renders a bank of a given size fastest, measured: a wider kernel renders each voice
 * faster but pays more per block (clearing and summing its accumulator, frames x channels x
 * width floats), so on some CPUs a narrower one wins for small banks (docs/kernels.md). A few
 * blocks of each candidate on a scratch bank of the same shape, interleaved, and the fastest
 * block of each kept: the minimum is what the kernel costs when nothing interrupts it. */
#include <stdlib.h>

#include "dsp_internal.h"

#define MAX_CANDIDATES 4
#define MIN_ROUNDS 3
#define MAX_ROUNDS 12
#define BUDGET_NS (4 * FARM_NS_PER_MS) /* rounds stop after this, once MIN_ROUNDS are done */

/* A bank of this shape with every voice playing, as a farm starts: what is timed is the steady
 * render, so no fade-in ramp. */
/* The first (the widest) unless another is faster by the margin: near a tie the choice stays
 * put, so the same command on the same machine mostly makes the same choice. */
uint32_t dsp_calibration_pick(const double *ns, uint32_t n) {
    uint32_t pick = 0;
    for (uint32_t i = 1; i < n; i++)
        if (ns[i] > 0 && ns[pick] > 0 && ns[i] < (1.0 - DSP_CALIBRATION_MARGIN) * ns[pick])
            pick = i;
    return pick;
}

static dsp_bank *scratch_bank(const dsp_bank_desc *desc, const char *isa) {
    dsp_bank_desc d = *desc;
    d.isa = isa;
    dsp_bank *b;
    if (dsp_bank_create(&d, &b) != FARM_OK)
        return NULL;
    for (uint32_t v = 0; v < d.voices; v++) {
        dsp_voice_set_freq(b, v, dsp_voice_default_freq(1, v, 400, 800), 0);
        dsp_voice_set_feedback(b, v, 0.1, 0);
        dsp_voice_set_amp(b, v, 0.005, 0);
        dsp_voice_play(b, v, 0);
    }
    return b;
}

static uint64_t time_block(dsp_bank *b, float *out, uint32_t frames) {
    uint64_t t0 = farm_now_ns();
    dsp_bank_render(b, out, frames);
    return farm_now_ns() - t0;
}

/* Fills best[i] with candidate i's fastest block in ns; 0 when it could not be measured. */
static void measure(const dsp_bank_desc *desc, const char *const *names, uint32_t n,
                    uint64_t *best) {
    uint32_t frames = desc->max_frames ? desc->max_frames : 256;
    uint32_t channels = desc->channels ? desc->channels : 2;
    float *out = malloc((size_t)frames * channels * sizeof(float));
    dsp_bank *banks[MAX_CANDIDATES] = {NULL};
    int ok = out != NULL;
    for (uint32_t i = 0; i < n && ok; i++)
        ok = (banks[i] = scratch_bank(desc, names[i])) != NULL;
    for (uint32_t i = 0; i < n; i++)
        best[i] = 0;
    if (ok) {
        for (uint32_t i = 0; i < n; i++)
            time_block(banks[i], out, frames); /* warm: caches, pages, branch history */
        uint64_t t0 = farm_now_ns();
        for (uint32_t r = 0; r < MAX_ROUNDS; r++) {
            /* rotate who goes first, so no kernel always runs right after another */
            for (uint32_t j = 0; j < n; j++) {
                uint32_t i = (j + r) % n;
                uint64_t t = time_block(banks[i], out, frames);
                if (best[i] == 0 || t < best[i])
                    best[i] = t > 0 ? t : 1;
            }
            if (r + 1 >= MIN_ROUNDS && farm_now_ns() - t0 > BUDGET_NS)
                break;
        }
    }
    for (uint32_t i = 0; i < n; i++)
        dsp_bank_destroy(banks[i]);
    free(out);
}

const char *dsp_isa_calibrate(const dsp_bank_desc *desc, const char *const *names, uint32_t n,
                              double *ns_per_block) {
    if (n == 0)
        return dsp_isa();
    if (n > MAX_CANDIDATES)
        n = MAX_CANDIDATES;
    uint64_t best[MAX_CANDIDATES];
    measure(desc, names, n, best);
    double ns[MAX_CANDIDATES];
    for (uint32_t i = 0; i < n; i++)
        ns[i] = (double)best[i];
    for (uint32_t i = 0; ns_per_block != NULL && i < n; i++)
        ns_per_block[i] = ns[i];
    return names[dsp_calibration_pick(ns, n)];
}

const char *dsp_isa_for_bank(const dsp_bank_desc *desc) {
    if (dsp_isa_forced() || desc->voices >= DSP_CALIBRATION_MAX_VOICES)
        return dsp_isa();
    /* Only kernels of 8 lanes or more: SSE2 is three times slower than AVX2 at every size. */
    const char *wide[MAX_CANDIDATES];
    uint32_t n = 0;
    for (const char *const *isa = dsp_isa_available(); *isa != NULL && n < MAX_CANDIDATES; isa++)
        if (dsp_isa_width(*isa) >= 8)
            wide[n++] = *isa;
    if (n < 2)
        return dsp_isa();
    return dsp_isa_calibrate(desc, wide, n, NULL);
}
