/* The audio callback's work. Everything here runs on the real-time thread: no allocation, no
 * lock, no I/O, no wait. The only system call is the futex wake inside shm_ring_release, and
 * only when a worker sleeps on a full ring. */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "coordinator.h"
#include "dsp.h"

#define FADE_SECONDS 0.01

int farm_engine_init(farm_engine *e, shm_region *region, const farm_options *o) {
    memset(e, 0, sizeof *e);
    e->region = region;
    e->header = shm_header_of(region);
    e->workers = o->workers;
    e->channels = o->channels;
    e->block_frames = o->buffer_frames;
    e->gain.value = e->gain.target = (float)o->gain;
    uint32_t bits;
    memcpy(&bits, &e->gain.value, sizeof bits);
    atomic_store(&e->gain_target_bits, bits);
    size_t samples = (size_t)o->buffer_frames * o->channels;
    e->ins = calloc(o->workers, sizeof *e->ins);
    e->block = calloc(samples, sizeof(float));
    e->silence = calloc(samples, sizeof(float));
    if (e->ins == NULL || e->block == NULL || e->silence == NULL) {
        farm_engine_free(e);
        return farm_fail(FARM_EFAIL, "out of memory");
    }
    e->pos = e->block_frames; /* empty: the first callback mixes a block */
    e->fade = 0.0f;           /* fade in from silence */
    e->fade_step = (float)(1.0 / (FADE_SECONDS * o->sample_rate));
    return FARM_OK;
}

void farm_engine_free(farm_engine *e) {
    free(e->ins);
    free(e->block);
    free(e->silence);
    e->ins = NULL;
    e->block = e->silence = NULL;
}

static void count_max(_Atomic uint64_t *slot, uint64_t v) {
    if (v > atomic_load_explicit(slot, memory_order_relaxed))
        atomic_store_explicit(slot, v, memory_order_relaxed);
}

static void mix_next_block(farm_engine *e) {
    shm_stream_stats *st = &e->header->stream;
    for (uint32_t k = 0; k < e->workers; k++) {
        shm_worker *w = shm_worker_at(e->region, k);
        uint32_t fill = shm_ring_fill(&w->audio);
        if (fill < atomic_load_explicit(&w->min_fill, memory_order_relaxed))
            atomic_store_explicit(&w->min_fill, fill, memory_order_relaxed);
        const float *b = shm_ring_begin_read(&w->audio, e->region->base);
        if (b == NULL) {
            /* Never wait for a worker: its voices are silent for this block. */
            e->ins[k] = e->silence;
            atomic_fetch_add_explicit(&w->late_blocks, 1, memory_order_relaxed);
            atomic_fetch_add_explicit(&st->late_blocks, 1, memory_order_relaxed);
        } else {
            e->ins[k] = b;
        }
    }
    /* A new gain from the control thread starts ramping at this block. */
    uint32_t seq = atomic_load_explicit(&e->gain_seq, memory_order_acquire);
    if (seq != e->gain_seq_applied) {
        uint32_t bits = atomic_load_explicit(&e->gain_target_bits, memory_order_relaxed);
        uint32_t ramp = atomic_load_explicit(&e->gain_ramp_frames, memory_order_relaxed);
        memcpy(&e->gain.target, &bits, sizeof bits);
        e->gain.left = ramp;
        if (ramp == 0)
            e->gain.value = e->gain.target;
        else
            e->gain.step = (e->gain.target - e->gain.value) / (float)ramp;
        e->gain_seq_applied = seq;
        atomic_store_explicit(&e->gain_block, e->blocks_mixed, memory_order_relaxed);
        atomic_store_explicit(&e->gain_seq_seen, seq, memory_order_release);
    }
    farm_mix_stats ms = {0};
    farm_mix(e->block, e->ins, e->workers, e->block_frames, e->channels, &e->gain, &ms);
    e->blocks_mixed++;
    for (uint32_t k = 0; k < e->workers; k++)
        if (e->ins[k] != e->silence)
            shm_ring_release(&shm_worker_at(e->region, k)->audio);
    if (ms.clipped)
        atomic_fetch_add_explicit(&st->clipped, ms.clipped, memory_order_relaxed);

    /* Fades, per frame, so starting and stopping never click. */
    int stopping = atomic_load_explicit(&e->stop_requested, memory_order_acquire);
    if (stopping || e->fade < 1.0f) {
        for (uint32_t i = 0; i < e->block_frames; i++) {
            if (stopping)
                e->fade = e->fade > e->fade_step ? e->fade - e->fade_step : 0.0f;
            else
                e->fade = e->fade + e->fade_step < 1.0f ? e->fade + e->fade_step : 1.0f;
            for (uint32_t c = 0; c < e->channels; c++)
                e->block[i * e->channels + c] *= e->fade;
        }
        if (stopping && e->fade == 0.0f)
            atomic_store_explicit(&e->faded_out, 1, memory_order_release);
    }

    if (e->rec_ring != NULL) {
        float *slot = shm_ring_begin_write(e->rec_ring, e->rec_base);
        if (slot == NULL) {
            atomic_fetch_add_explicit(&st->record_dropped, e->block_frames, memory_order_relaxed);
        } else {
            memcpy(slot, e->block, (size_t)e->block_frames * e->channels * sizeof(float));
            shm_ring_publish(e->rec_ring);
        }
    }
    e->pos = 0;
}

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts); /* vDSO: no system call */
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void farm_engine_process(farm_engine *e, float *out, uint32_t frames, int underflow) {
    uint64_t t0 = now_ns();
    dsp_enable_ftz();
    if (!atomic_load_explicit(&e->cb_thread_known, memory_order_relaxed)) {
        e->cb_thread = pthread_self();
        atomic_store_explicit(&e->cb_thread_known, 1, memory_order_release);
    }
    shm_stream_stats *st = &e->header->stream;
    if (underflow) {
        uint64_t n = atomic_fetch_add_explicit(&st->underflows, 1, memory_order_relaxed);
        if (n < 8) /* where they happen tells start-up hiccups from overload */
            atomic_store_explicit(&st->underflow_at[n],
                                  atomic_load_explicit(&st->callbacks, memory_order_relaxed) + 1,
                                  memory_order_relaxed);
    }
    uint32_t done = 0;
    while (done < frames) {
        if (e->pos == e->block_frames)
            mix_next_block(e);
        uint32_t n = e->block_frames - e->pos;
        if (n > frames - done)
            n = frames - done;
        memcpy(out + (size_t)done * e->channels, e->block + (size_t)e->pos * e->channels,
               (size_t)n * e->channels * sizeof(float));
        e->pos += n;
        done += n;
    }
    atomic_fetch_add_explicit(&st->callbacks, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&st->frames, frames, memory_order_relaxed);
    uint64_t dt = now_ns() - t0;
    atomic_store_explicit(&st->cb_ns_last, dt, memory_order_relaxed);
    count_max(&st->cb_ns_max, dt);
    atomic_fetch_add_explicit(&st->cb_hist[shm_cb_bucket(dt)], 1, memory_order_relaxed);
}
