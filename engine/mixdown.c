/* The mixdown of one block (engine.h): the workers' blocks summed in worker order (farm_sum), the
 * master gain and the limiter (farm_mix). The audio callback and farm render run it; farm mix
 * (coordinator/mix_parts.c) too, on parts read from files. */
#include "engine.h"

void farm_sum(float *out, const float *const *blocks, uint32_t n, uint32_t samples) {
    /* Workers are summed in index order, always, so a render is bit-for-bit repeatable. */
    for (uint32_t i = 0; i < samples; i++)
        out[i] = n > 0 ? blocks[0][i] : 0.0f;
    for (uint32_t k = 1; k < n; k++) {
        const float *b = blocks[k];
        for (uint32_t i = 0; i < samples; i++)
            out[i] += b[i];
    }
}

void farm_mix(float *out, const float *const *blocks, uint32_t n, uint32_t frames,
              uint32_t channels, farm_gain *gain, farm_mix_stats *stats) {
    farm_sum(out, blocks, n, frames * channels);
    uint64_t clipped = 0;
    for (uint32_t f = 0; f < frames; f++) {
        if (gain->left > 0) {
            gain->value = --gain->left == 0 ? gain->target : gain->value + gain->step;
        }
        for (uint32_t c = 0; c < channels; c++) {
            float v = out[f * channels + c] * gain->value;
            if (v > 1.0f) {
                v = 1.0f;
                clipped++;
            } else if (v < -1.0f) {
                v = -1.0f;
                clipped++;
            }
            out[f * channels + c] = v;
        }
    }
    stats->clipped += clipped;
}
