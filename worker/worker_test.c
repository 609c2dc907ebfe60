/* Real farm-worker processes started through plat, as the supervisor starts them, rendering
 * into their rings across the process boundary: what arrives is bit for bit what the same banks
 * render in this process, and a command pushed into a worker's ring lands on its block. Written
 * for every system plat has (the Windows build runs it under wine). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dsp.h"
#include "plat.h"
#include "shm_layout.h"

#define FRAMES 256
#define CHANNELS 2
#define BLOCKS 200
#define SET_AT 50 /* the block a command changes every voice's frequency at */
#define NEW_FREQ 1234.5
#define WAIT_NS (20 * FARM_NS_PER_S) /* for a block; one takes microseconds */

static shm_config config(uint32_t workers, uint32_t voices) {
    shm_config c = {.workers = workers,
                    .channels = CHANNELS,
                    .block_frames = FRAMES,
                    .ring_blocks = 4,
                    .total_voices = voices,
                    .oscillator = SHM_OSC_SINELOOP,
                    .sample_rate = 48000,
                    .freq_min = 400,
                    .freq_max = 800,
                    .feedback = 0.1,
                    .amp = 0.005,
                    .seed = 7,
                    .block_limit = BLOCKS};
    c.state_bytes = (uint32_t)dsp_state_bytes((voices + workers - 1) / workers, CHANNELS);
    snprintf(c.isa, sizeof c.isa, "generic"); /* the same kernel on every CPU */
    return c;
}

static void start(shm_region *r, uint32_t k, plat_proc *p) {
    shm_worker *w = shm_worker_at(r, k);
    const shm_config *c = &shm_header_of(r)->config;
    farm_voice_share(c->total_voices, c->workers, k, &w->voice_first, &w->voice_count);
    plat_handle inherit[8];
    size_t n = shm_worker_handles(r, k, inherit, 8);
    char fd[24], index[16], parent[24];
    snprintf(fd, sizeof fd, "%ld", (long)plat_child_handle(inherit, 0));
    snprintf(index, sizeof index, "%u", k);
    snprintf(parent, sizeof parent, "%ld", plat_self_pid());
    char *argv[] = {"farm-worker", "--fd", fd, "--index", index, "--parent", parent, NULL};
    cr_assert_eq(plat_spawn(FARM_WORKER_PATH, argv, inherit, n, p), FARM_OK, "%s",
                 farm_error_message());
}

/* Worker k's bank as the worker builds it, rendered here. */
static dsp_bank *reference_bank(const shm_config *c, uint32_t k) {
    uint32_t first, count;
    farm_voice_share(c->total_voices, c->workers, k, &first, &count);
    dsp_bank_desc d = {.voices = count,
                       .channels = CHANNELS,
                       .sample_rate = c->sample_rate,
                       .max_frames = FRAMES,
                       .isa = c->isa};
    dsp_bank *b;
    cr_assert_eq(dsp_bank_create(&d, &b), FARM_OK);
    for (uint32_t v = 0; v < count; v++) {
        dsp_voice_set_freq(b, v, dsp_voice_default_freq(c->seed, first + v, 400, 800), 0);
        dsp_voice_set_feedback(b, v, c->feedback, 0);
        dsp_voice_set_amp(b, v, c->amp, 0);
        dsp_voice_set_pan(b, v, dsp_voice_default_pan(first + v, CHANNELS), 0);
        dsp_voice_play(b, v, 0);
    }
    return b;
}

/* Every worker's blocks summed in worker order, against the same sum made here. */
static void compare(shm_region *r, plat_proc *procs, int with_command) {
    const shm_config *c = &shm_header_of(r)->config;
    dsp_bank *ref[8];
    for (uint32_t k = 0; k < c->workers; k++)
        ref[k] = reference_bank(c, k);
    static float got[FRAMES * CHANNELS], want[FRAMES * CHANNELS], block[FRAMES * CHANNELS];
    for (uint32_t b = 0; b < BLOCKS; b++) {
        for (uint32_t k = 0; k < c->workers; k++) {
            shm_ring *ring = &shm_worker_at(r, k)->audio;
            const float *slot;
            uint64_t deadline = farm_now_ns() + WAIT_NS;
            while ((slot = shm_ring_begin_read(ring, r->base)) == NULL && farm_now_ns() < deadline)
                shm_ring_wait_data(ring, 1, 100 * FARM_NS_PER_MS);
            cr_assert_not_null(slot, "worker %u: no block %u", k, b);
            if (with_command && b == SET_AT)
                for (uint32_t v = 0; v < shm_worker_at(r, k)->voice_count; v++)
                    dsp_voice_set_freq(ref[k], v, NEW_FREQ, 0);
            dsp_bank_render(ref[k], block, FRAMES);
            for (uint32_t i = 0; i < FRAMES * CHANNELS; i++) {
                got[i] = k == 0 ? slot[i] : got[i] + slot[i];
                want[i] = k == 0 ? block[i] : want[i] + block[i];
            }
            shm_ring_release(ring);
        }
        cr_assert_arr_eq(got, want, sizeof got, "block %u differs", b);
    }
    for (uint32_t k = 0; k < c->workers; k++) {
        plat_exit e;
        cr_assert_eq(plat_proc_reap(&procs[k], 1, &e), 1);
        cr_assert(plat_exit_clean(&e), "worker %u: status %d", k, e.code);
        plat_proc_release(&procs[k]);
        dsp_bank_destroy(ref[k]);
    }
}

Test(processes, blocks_arrive_as_the_same_banks_render_here) {
    shm_config c = config(3, 301); /* 101, 100, 100 voices */
    shm_region r;
    cr_assert_eq(shm_create(&c, &r), FARM_OK);
    plat_proc procs[3];
    for (uint32_t k = 0; k < 3; k++)
        start(&r, k, &procs[k]);
    compare(&r, procs, 0);
    shm_close(&r);
}

Test(processes, a_command_lands_on_its_block) {
    shm_config c = config(2, 64);
    shm_region r;
    cr_assert_eq(shm_create(&c, &r), FARM_OK);
    for (uint32_t k = 0; k < 2; k++) { /* before the workers start: waiting in their rings */
        shm_cmd cmd = {.op = SHM_OP_SET_FREQ,
                       .first = 0,
                       .count = 64,
                       .form = SHM_FORM_ONE,
                       .at_block = SET_AT,
                       .value = NEW_FREQ,
                       .id = 1};
        cr_assert_eq(shm_cmd_push(shm_worker_at(&r, k), r.base, &cmd), 1);
    }
    plat_proc procs[2];
    for (uint32_t k = 0; k < 2; k++)
        start(&r, k, &procs[k]);
    compare(&r, procs, 1);
    for (uint32_t k = 0; k < 2; k++)
        cr_assert_eq(atomic_load(&shm_worker_at(&r, k)->last_cmd_block), SET_AT);
    shm_close(&r);
}
