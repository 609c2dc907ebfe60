/* The engine's outside input (NetJACK2 nodes' audio): it joins the mix before the gain, in
 * step with the workers' blocks when callbacks are blocks, and exactly one block later when
 * callbacks are shorter; nothing is lost or repeated either way. The test plays the worker's
 * part itself: it keeps the worker's ring full of silence. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>

#include "engine.h"
#include "shm_layout.h"

#define BLOCK 256u
#define CH 2u

static shm_region region;
static farm_engine *engine;

static void setup(float gain) {
    shm_config cfg = {.workers = 1,
                      .channels = CH,
                      .block_frames = BLOCK,
                      .ring_blocks = 4,
                      .sample_rate = 48000};
    cr_assert_eq(shm_create(&cfg, &region), FARM_OK);
    farm_engine_desc d = {.region = &region,
                          .gain = gain,
                          .fade_seconds = 1e-9, /* no fade-in to look through */
                          .input_frames_max = BLOCK};
    cr_assert_eq(farm_engine_create(&engine, &d), FARM_OK);
}

static void teardown(void) {
    farm_engine_destroy(engine);
    shm_close(&region);
}

/* The worker's ring kept full of silence, so its blocks are never late. */
static void worker_fills(void) {
    shm_worker *w = shm_worker_at(&region, 0);
    float *slot;
    while ((slot = shm_ring_begin_write(&w->audio, region.base)) != NULL) {
        for (uint32_t i = 0; i < BLOCK * CH; i++)
            slot[i] = 0.0f;
        shm_ring_publish(&w->audio);
    }
}

/* Outside frame f, channel c: a ramp that never repeats within the test, kept small. */
static float outside(uint64_t f, uint32_t c) {
    return (float)((double)(f % 4096) * 1e-4 + c * 1e-5);
}

/* Plays frames in callbacks of n frames with outside input; out gets everything played. */
static void play(float *out, uint64_t frames, uint32_t n) {
    float in[BLOCK * CH];
    for (uint64_t done = 0; done < frames; done += n) {
        worker_fills();
        for (uint32_t f = 0; f < n; f++)
            for (uint32_t c = 0; c < CH; c++)
                in[f * CH + c] = outside(done + f, c);
        farm_engine_process_input(engine, out + done * CH, n, 0, in);
    }
}

Test(input, joins_the_mix_in_step_when_callbacks_are_blocks) {
    setup(0.5f);
    const uint64_t frames = 16 * BLOCK;
    float *out = calloc(frames * CH, sizeof *out);
    play(out, frames, BLOCK);
    for (uint64_t f = 1; f < frames; f++) /* frame 0: the fade-in's first step */
        for (uint32_t c = 0; c < CH; c++)
            cr_assert_float_eq(out[f * CH + c], 0.5f * outside(f, c), 1e-7,
                               "frame %llu channel %u: after the gain, in step",
                               (unsigned long long)f, c);
    cr_assert_eq(farm_engine_input_short(engine), 0);
    free(out);
    teardown();
}

Test(input, comes_one_block_later_whole_when_callbacks_are_shorter) {
    setup(1.0f);
    const uint64_t frames = 16 * BLOCK;
    float *out = calloc(frames * CH, sizeof *out);
    play(out, frames, BLOCK / 4);
    for (uint64_t f = 0; f < BLOCK; f++)
        cr_assert_eq(out[f * CH], 0.0f, "the first block waits for a whole block of input");
    for (uint64_t f = BLOCK; f < frames; f++)
        for (uint32_t c = 0; c < CH; c++)
            cr_assert_float_eq(out[f * CH + c], outside(f - BLOCK, c), 1e-7,
                               "frame %llu: the input of one block before, none lost",
                               (unsigned long long)f);
    cr_assert_eq(farm_engine_input_short(engine), 0, "after the start, never short");
    free(out);
    teardown();
}
