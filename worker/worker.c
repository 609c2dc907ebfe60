#include "worker.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dsp.h"
#include "plat.h"
#include "shm_layout.h"

static void apply(const shm_region *region, dsp_bank *bank, const shm_worker *w, const shm_cmd *c) {
    /* Commands name global voices; this bank holds voice_first .. voice_first + count - 1. */
    uint64_t lo = c->first, hi = (uint64_t)c->first + c->count;
    uint64_t mine_lo = w->voice_first, mine_hi = (uint64_t)w->voice_first + w->voice_count;
    if (lo < mine_lo)
        lo = mine_lo;
    if (hi > mine_hi)
        hi = mine_hi;
    const float *values =
        c->form == SHM_FORM_VALUES ? shm_values_at(w, region->base, c->values_at) : NULL;
    for (uint64_t g = lo; g < hi; g++) {
        uint32_t v = (uint32_t)(g - mine_lo);
        double value = values ? (double)values[g - lo] : c->value;
        switch ((shm_op)c->op) {
        case SHM_OP_SET_FREQ:
            dsp_voice_set_freq(bank, v, value, c->ramp_frames);
            break;
        case SHM_OP_SET_FEEDBACK:
            dsp_voice_set_feedback(bank, v, value, c->ramp_frames);
            break;
        case SHM_OP_SET_AMP:
            dsp_voice_set_amp(bank, v, value, c->ramp_frames);
            break;
        case SHM_OP_SET_PAN:
            dsp_voice_set_pan(bank, v, value, c->ramp_frames);
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
                          .max_frames = cfg->block_frames,
                          .isa = cfg->isa[0] ? cfg->isa : NULL};
    int rv = dsp_bank_create(&desc, out);
    if (rv != FARM_OK)
        return rv;
    for (uint32_t v = 0; v < w->voice_count; v++) {
        shm_voice_values d;
        shm_voice_defaults(cfg, (uint64_t)w->voice_first + v, &d);
        dsp_voice_set_freq(*out, v, d.freq, 0);
        dsp_voice_set_feedback(*out, v, d.feedback, 0);
        dsp_voice_set_amp(*out, v, d.amp, 0);
        dsp_voice_set_pan(*out, v, d.pan, 0);
        dsp_voice_play(*out, v, 0);
    }
    return FARM_OK;
}

/* Pins, enables flush-to-zero, locks memory when asked. What the system refuses is reported:
 * pinning here, on stderr; memory locking through mem_locked, which the coordinator reads and
 * warns about once for all workers. */
static void prepare_process(const shm_config *cfg, shm_worker *w, uint32_t index, int cpu) {
    if (cpu >= 0) {
        if (plat_pin_self(cpu))
            atomic_store(&w->cpu, cpu);
        else
            fprintf(stderr, "farm: warning: worker %u could not pin itself to cpu %d: %s\n", index,
                    cpu, strerror(errno));
    }
    dsp_enable_ftz();
    /* Real-time scheduling is the coordinator's to give: it sets each worker just below the
     * stream's thread once it knows that thread's priority. */
    if (cfg->lock_memory && plat_lock_memory())
        atomic_store(&w->mem_locked, 1);
}

/* Test hook, out of the shared layout: FARM_TEST_CRASH_WORKER=K:BLOCK:SIGNAL[:every] makes worker
 * K raise SIGNAL inside itself (a crash, not a kill from outside: plat_crash_self, an access
 * violation on Windows for 11) when its ring reaches BLOCK; with :every, every replacement does
 * so BLOCK blocks after it starts (a crash loop). */
typedef struct crash_hook {
    uint64_t block;
    int signal, every;
} crash_hook;

static crash_hook crash_hook_for(uint32_t index, uint32_t restarts) {
    crash_hook h = {0};
    const char *env = getenv("FARM_TEST_CRASH_WORKER");
    unsigned k, sig;
    unsigned long long block;
    char every[8] = "";
    if (env == NULL || sscanf(env, "%u:%llu:%u:%7s", &k, &block, &sig, every) < 3 || k != index)
        return h;
    h.every = strcmp(every, "every") == 0;
    if (restarts > 0 && !h.every)
        return h;
    h.block = block;
    h.signal = (int)sig;
    return h;
}

/* Applies the commands due at this block, in order, without releasing them: they are released
 * only once a snapshot holds their effect, so a worker that dies in between leaves them to its
 * replacement. A command for a later block waits, and the ones behind it with it. Returns how
 * many; *values_end gets where the value ring's read position goes once they are released. */
static uint32_t apply_commands(shm_region *region, dsp_bank *bank, shm_worker *w, uint64_t block,
                               uint64_t *values_end) {
    shm_cmd c;
    uint32_t n = 0;
    while (shm_cmd_peek(w, region->base, n, &c) && c.at_block <= block) {
        apply(region, bank, w, &c);
        n++;
        *values_end = c.values_end;
        atomic_store_explicit(&w->last_cmd_block, block, memory_order_relaxed);
        atomic_store_explicit(&w->last_cmd_id, c.id, memory_order_release);
    }
    return n;
}

/* The state for block `block` into its slot, whole before the slot names it. */
static void save_snapshot(shm_region *region, shm_worker *w, dsp_bank *bank, uint64_t block,
                          uint64_t cmd_read, uint64_t values_read, uint64_t writer) {
    shm_snapshot *s = &w->snap[block % 2];
    atomic_store_explicit(&s->block, SHM_NO_SNAPSHOT, memory_order_relaxed);
    atomic_thread_fence(memory_order_release);
    dsp_bank_save(bank, shm_snapshot_data(region, w, (uint32_t)(block % 2)), writer);
    s->cmd_read = cmd_read;
    s->values_read = values_read;
    atomic_store_explicit(&s->block, block, memory_order_release);
}

typedef struct loop_ctx {
    shm_region *region;
    shm_worker *w;
    dsp_bank *bank;
    uint32_t slow_us;
    uint64_t writer;
    crash_hook crash;
} loop_ctx;

/* One block: commands, render, snapshot of the state after it, publish, release commands. */
static void render_block(loop_ctx *x, float *slot, uint64_t k, uint64_t started_at) {
    shm_worker *w = x->w;
    const shm_config *cfg = &shm_header_of(x->region)->config;
    uint64_t t0 = farm_now_ns();
    uint64_t values_read = atomic_load_explicit(&w->values.read, memory_order_relaxed);
    uint32_t n = apply_commands(x->region, x->bank, w, k, &values_read);
    dsp_bank_render(x->bank, slot, cfg->block_frames);
    if (x->slow_us)
        farm_sleep_ns(x->slow_us * FARM_NS_PER_US);
    uint64_t cmd_read = atomic_load_explicit(&w->cmds.read, memory_order_relaxed) + n;
    save_snapshot(x->region, w, x->bank, k + 1, cmd_read, values_read, x->writer);
    if (x->crash.signal && k + 1 - (x->crash.every ? started_at : 0) >= x->crash.block)
        plat_crash_self(x->crash.signal);
    uint64_t dt = farm_now_ns() - t0;
    shm_ring_publish(&w->audio);
    shm_cmd_release(w, n);
    atomic_store_explicit(&w->values.read, values_read, memory_order_release);
    atomic_store_explicit(&w->render_ns_last, dt, memory_order_relaxed);
    farm_store_max(&w->render_ns_max, dt);
    atomic_fetch_add_explicit(&w->render_ns_total, dt, memory_order_relaxed);
    atomic_store_explicit(&w->blocks_rendered, k + 1, memory_order_release);
    atomic_store_explicit(&w->voices_playing, dsp_bank_playing(x->bank), memory_order_relaxed);
}

/* The render loop: allocates nothing, takes no lock, does no I/O; its only waits are on the
 * ring's futex, with a deadline so that quit and a dead parent are noticed. Blocks are counted
 * by the ring's write position, which a replacement continues. */
static void render_loop(loop_ctx *x) {
    shm_header *h = shm_header_of(x->region);
    const shm_config *cfg = &h->config;
    shm_worker *w = x->w;
    const uint64_t wait_ns = 50 * FARM_NS_PER_MS; /* how soon quit or a dead parent is noticed */
    const uint64_t started_at = atomic_load_explicit(&w->audio.write, memory_order_relaxed);
    while (!atomic_load_explicit(&h->quit, memory_order_acquire)) {
        uint64_t k = atomic_load_explicit(&w->audio.write, memory_order_relaxed);
        if (cfg->block_limit != 0 && k >= cfg->block_limit)
            break;
        float *slot = shm_ring_begin_write(&w->audio, x->region->base);
        if (slot == NULL) {
            shm_ring_wait_space(&w->audio, cfg->wake_batch, wait_ns);
            continue;
        }
        render_block(x, slot, k, started_at);
    }
}

/* A replacement takes over where its predecessor was: the snapshot for the ring's write
 * position, and the command ring from there. A worker that is first in its slot, or one whose
 * predecessor died before its first block, starts from the configuration. */
static int resume(shm_region *region, shm_worker *w, dsp_bank *bank) {
    uint64_t next = atomic_load_explicit(&w->audio.write, memory_order_acquire);
    /* the audio ring's producer is this process now: its predecessor may have slept */
    atomic_store_explicit(&w->audio.producer_sleeping, 0, memory_order_relaxed);
    for (uint32_t i = 0; i < 2; i++) {
        if (atomic_load_explicit(&w->snap[i].block, memory_order_acquire) != next)
            continue;
        int rv = dsp_bank_load(bank, shm_snapshot_data(region, w, i));
        if (rv != FARM_OK)
            return rv;
        uint64_t read = atomic_load_explicit(&w->cmds.read, memory_order_relaxed);
        if (w->snap[i].cmd_read > read) { /* it died between its snapshot and the release */
            shm_cmd_release(w, (uint32_t)(w->snap[i].cmd_read - read));
            atomic_store_explicit(&w->values.read, w->snap[i].values_read, memory_order_release);
        }
        return FARM_OK;
    }
    if (next == 0)
        return FARM_OK;
    return farm_fail(FARM_EINVAL, "no snapshot of its voices for block %llu",
                     (unsigned long long)next);
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
    atomic_store(&w->pid, (int32_t)plat_self_pid());
    prepare_process(cfg, w, index, cpu);
    dsp_bank *bank;
    if (build_bank(cfg, w, &bank) != FARM_OK || resume(region, w, bank) != FARM_OK) {
        fprintf(stderr, "farm-worker %u: cannot set up its bank of %u voices: %s\n", index,
                w->voice_count, farm_error_message());
        atomic_store(&w->state, SHM_WORKER_FAILED);
        return 1;
    }
    atomic_store(&w->voices_playing, dsp_bank_playing(bank));
    uint32_t restarts = atomic_load(&w->restarts);
    loop_ctx x = {.region = region,
                  .w = w,
                  .bank = bank,
                  .slow_us = slow_us_for(index),
                  .writer = ((uint64_t)restarts << 32) | (uint32_t)plat_self_pid(),
                  .crash = crash_hook_for(index, restarts)};
    atomic_store_explicit(&w->state, SHM_WORKER_RUNNING, memory_order_release);
    render_loop(&x);
    atomic_store_explicit(&w->state, SHM_WORKER_STOPPED, memory_order_release);
    dsp_bank_destroy(bank);
    return 0;
}
