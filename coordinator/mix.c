#include "coordinator.h"

void farm_mix(float *out, const float *const *blocks, uint32_t n, uint32_t samples, float gain,
              farm_mix_stats *stats) {
    /* Workers are summed in index order, always, so a render is bit-for-bit repeatable. */
    for (uint32_t i = 0; i < samples; i++)
        out[i] = n > 0 ? blocks[0][i] : 0.0f;
    for (uint32_t k = 1; k < n; k++) {
        const float *b = blocks[k];
        for (uint32_t i = 0; i < samples; i++)
            out[i] += b[i];
    }
    uint64_t clipped = 0;
    for (uint32_t i = 0; i < samples; i++) {
        float v = out[i] * gain;
        if (v > 1.0f) {
            v = 1.0f;
            clipped++;
        } else if (v < -1.0f) {
            v = -1.0f;
            clipped++;
        }
        out[i] = v;
    }
    stats->clipped += clipped;
}
