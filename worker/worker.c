#define _GNU_SOURCE
#include "worker.h"

#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "dsp.h"

static int pin_to(int cpu) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    return sched_setaffinity(0, sizeof set, &set);
}

static void apply(dsp_bank *bank, const shm_worker *w, const shm_cmd *c) {
    /* Commands name global voices; this bank holds voice_first .. voice_first + count - 1. */
    uint64_t lo = c->first, hi = (uint64_t)c->first + c->count;
    uint64_t mine_lo = w->voice_first, mine_hi = (uint64_t)w->voice_first + w->voice_count;
    if (lo < mine_lo)
        lo = mine_lo;
    if (hi > mine_hi)
        hi = mine_hi;
    for (uint64_t g = lo; g < hi; g++) {
        uint32_t v = (uint32_t)(g - mine_lo);
        switch ((shm_op)c->op) {
        case SHM_OP_SET_FREQ:
            dsp_voice_set_freq(bank, v, c->value, c->ramp_frames);
            break;
        case SHM_OP_SET_FEEDBACK:
            dsp_voice_set_feedback(bank, v, c->value, c->ramp_frames);
            break;
        case SHM_OP_SET_AMP:
            dsp_voice_set_amp(bank, v, c->value, c->ramp_frames);
            break;
        case SHM_OP_SET_PAN:
            dsp_voice_set_pan(bank, v, c->value, c->ramp_frames);
            break;
        case SHM_OP_VOICE_PLAY:
            dsp_voice_play(bank, v, c->ramp_frames);
            break;
        case SHM_OP_VOICE_STOP:
            dsp_voice_stop(bank, v, c->ramp_frames);
            break;
        }
    }
}

/* Test hook, out of the shared layout: FARM_TEST_SLOW_WORKER=K:US makes worker K sleep US
 * microseconds after every block, a worker that cannot keep up. Read once, before rendering. */
static uint32_t slow_us_for(uint32_t index) {
    const char *env = getenv("FARM_TEST_SLOW_WORKER");
    unsigned k, us;
    char extra;
    if (env == NULL || sscanf(env, "%u:%u%c", &k, &us, &extra) != 2 || k != index)
        return 0;
    return us;
}

static int build_bank(const shm_config *cfg, const shm_worker *w, dsp_bank **out) {
    dsp_bank_desc desc = {.voices = w->voice_count,
                          .channels = cfg->channels,
                          .sample_rate = cfg->sample_rate,
                          .max_frames = cfg->block_frames};
    int rv = dsp_bank_create(&desc, out);
    if (rv != FARM_OK)
        return rv;
    const double fb = cfg->oscillator == SHM_OSC_SINE ? 0.0 : cfg->feedback;
    for (uint32_t v = 0; v < w->voice_count; v++) {
        uint64_t g = (uint64_t)w->voice_first + v;
        dsp_voice_set_freq(*out, v,
                           dsp_voice_default_freq(cfg->seed, g, cfg->freq_min, cfg->freq_max), 0);
        dsp_voice_set_feedback(*out, v, fb, 0);
        dsp_voice_set_amp(*out, v, cfg->amp, 0);
        dsp_voice_set_pan(*out, v, dsp_voice_default_pan(g, cfg->channels), 0);
        dsp_voice_play(*out, v, 0);
    }
    return FARM_OK;
}

/* Pins, enables flush-to-zero, locks memory when asked. What the system refuses is reported:
 * pinning here, on stderr; memory locking through mem_locked, which the coordinator reads and
 * warns about once for all workers. */
static void prepare_process(const shm_config *cfg, shm_worker *w, uint32_t index, int cpu) {
    if (cpu >= 0) {
        if (pin_to(cpu) == 0)
            atomic_store(&w->cpu, cpu);
        else
            fprintf(stderr, "farm: warning: worker %u could not pin itself to cpu %d: %s\n", index,
                    cpu, strerror(errno));
    }
    dsp_enable_ftz();
    /* Real-time scheduling is the coordinator's to give: it sets each worker just below the
     * stream's thread once it knows that thread's priority. */
    if (cfg->lock_memory && mlockall(MCL_CURRENT | MCL_FUTURE) == 0)
        atomic_store(&w->mem_locked, 1);
}

static void apply_commands(shm_region *region, dsp_bank *bank, shm_worker *w) {
    shm_cmd c;
    while (shm_cmd_pop(w, region->base, &c)) {
        apply(bank, w, &c);
        atomic_store_explicit(&w->last_cmd_block,
                              atomic_load_explicit(&w->audio.write, memory_order_relaxed),
                              memory_order_relaxed);
        atomic_store_explicit(&w->last_cmd_id, c.id, memory_order_release);
    }
}

/* The render loop: allocates nothing, takes no lock, does no I/O; its only waits are on the
 * ring's futex, with a deadline so that quit and a dead parent are noticed. */
static void render_loop(shm_region *region, dsp_bank *bank, shm_worker *w, uint32_t slow_us) {
    shm_header *h = shm_header_of(region);
    const shm_config *cfg = &h->config;
    const uint64_t wait_ns = 50 * FARM_NS_PER_MS; /* how soon quit or a dead parent is noticed */
    uint64_t blocks = 0;
    while (!atomic_load_explicit(&h->quit, memory_order_acquire)) {
        if (cfg->block_limit != 0 && blocks >= cfg->block_limit)
            break;
        float *slot = shm_ring_begin_write(&w->audio, region->base);
        if (slot == NULL) {
            shm_ring_wait_space(&w->audio, wait_ns);
            continue;
        }
        uint64_t t0 = farm_now_ns();
        apply_commands(region, bank, w);
        dsp_bank_render(bank, slot, cfg->block_frames);
        if (slow_us)
            usleep(slow_us);
        uint64_t dt = farm_now_ns() - t0;
        shm_ring_publish(&w->audio);
        blocks++;
        atomic_store_explicit(&w->render_ns_last, dt, memory_order_relaxed);
        farm_store_max(&w->render_ns_max, dt);
        atomic_fetch_add_explicit(&w->render_ns_total, dt, memory_order_relaxed);
        atomic_store_explicit(&w->blocks_rendered, blocks, memory_order_release);
        atomic_store_explicit(&w->voices_playing, dsp_bank_playing(bank), memory_order_relaxed);
    }
}

int worker_run(shm_region *region, uint32_t index, int cpu) {
    shm_header *h = shm_header_of(region);
    const shm_config *cfg = &h->config;
    if (index >= cfg->workers) {
        fprintf(stderr, "farm-worker: index %u is beyond the %u workers of this farm\n", index,
                cfg->workers);
        return 1;
    }
    shm_worker *w = shm_worker_at(region, index);
    atomic_store(&w->pid, (int32_t)getpid());
    prepare_process(cfg, w, index, cpu);
    dsp_bank *bank;
    if (build_bank(cfg, w, &bank) != FARM_OK) {
        fprintf(stderr, "farm-worker %u: cannot create its bank of %u voices: %s\n", index,
                w->voice_count, farm_error_message());
        atomic_store(&w->state, SHM_WORKER_FAILED);
        return 1;
    }
    atomic_store(&w->voices_playing, dsp_bank_playing(bank));
    uint32_t slow_us = slow_us_for(index);
    atomic_store_explicit(&w->state, SHM_WORKER_RUNNING, memory_order_release);
    render_loop(region, bank, w, slow_us);
    atomic_store_explicit(&w->state, SHM_WORKER_STOPPED, memory_order_release);
    dsp_bank_destroy(bank);
    return 0;
}
