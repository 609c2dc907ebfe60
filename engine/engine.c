/* The audio callback's work. Everything here runs on the real-time thread: no allocation, no
 * lock, no I/O, no wait. The only system call is the futex wake inside shm_ring_release, and
 * only when a worker sleeps on a full ring. */
#define _GNU_SOURCE
#include "engine.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "dsp.h"
#include "shm_layout.h"

#define DEFAULT_FADE_SECONDS 0.01
/* Samples metered side by side, each lane one channel when they divide it. */
#define METER_LANES 8

/* A closed levels window as published: float bits, since atomics of float are not lock-free
 * everywhere. */
typedef struct levels_record {
    _Atomic uint64_t ask, from_block, frames;
    _Atomic uint32_t peak[FARM_ENGINE_MAX_CHANNELS];
    _Atomic uint32_t rms[FARM_ENGINE_MAX_CHANNELS];
} levels_record;

struct farm_engine {
    shm_region *region;
    shm_header *header;
    uint32_t workers, channels, block_frames;
    farm_gain gain;
    const float **ins; /* one per worker, preallocated */
    float *last;       /* [worker][block]: each worker's block as last mixed */
    uint8_t *missing;  /* per worker: its voices are out (dead, stopped or late) */
    float *block;      /* the current mixed block */
    float *silence;    /* a block of zeros for a late worker */
    uint32_t pos;      /* frames of block already handed out */
    /* outside input: a queue of interleaved frames, taken a block at a time */
    float *in_queue, *in_block;
    uint32_t in_cap, in_fill, in_max;
    int in_started;
    _Atomic uint64_t in_short;
    /* fades: in at the start, out when stop is asked for */
    _Atomic int stop_requested;
    _Atomic int faded_out;
    float fade, fade_step;
    /* the thread the callbacks run on, published by the first one (pthread_self is no system
     * call) so the main thread can read its scheduling */
    pthread_t cb_thread;
    _Atomic int cb_thread_known;
    /* master gain from another thread: target, ramp, and the sequence number that publishes
     * them */
    _Atomic uint32_t gain_target_bits; /* a float's bits: atomics of float are not lock-free
                                          everywhere */
    _Atomic uint32_t gain_ramp_frames;
    _Atomic uint64_t gain_at;
    _Atomic uint32_t gain_seq;
    uint32_t gain_seq_applied;
    _Atomic uint64_t blocks_mixed;
    /* recording: blocks go to a ring that a non-real-time thread drains */
    shm_ring *rec_ring;
    void *rec_base;
    /* levels: the open window (the callback's alone) */
    float lv_peak[FARM_ENGINE_MAX_CHANNELS];
    double lv_sumsq[FARM_ENGINE_MAX_CHANNELS];
    uint64_t lv_frames, lv_from, lv_ask_seen, lv_closed;
    /* asks from another thread; and the closed windows, the last two of them: close n goes to
     * lv_pub[n & 1], between lv_writing = n (before) and lv_done = n (after) */
    _Atomic uint64_t lv_ask;
    _Atomic uint64_t lv_writing, lv_done;
    levels_record lv_pub[2];
};

static uint32_t float_bits(float f) {
    uint32_t bits;
    memcpy(&bits, &f, sizeof bits);
    return bits;
}

static float bits_float(uint32_t bits) {
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

int farm_engine_create(farm_engine **out, const farm_engine_desc *d) {
    *out = NULL;
    farm_engine *e = calloc(1, sizeof *e);
    if (e == NULL)
        return farm_fail(FARM_ENOMEM, "out of memory for the engine");
    const shm_config *cfg = &shm_header_of(d->region)->config;
    if (cfg->channels > FARM_ENGINE_MAX_CHANNELS) {
        free(e);
        return farm_fail(FARM_EUSAGE, "%u channels: the engine takes at most %d",
                         (unsigned)cfg->channels, FARM_ENGINE_MAX_CHANNELS);
    }
    e->region = d->region;
    e->header = shm_header_of(d->region);
    e->workers = cfg->workers;
    e->channels = cfg->channels;
    e->block_frames = cfg->block_frames;
    e->gain.value = e->gain.target = d->gain;
    atomic_store(&e->gain_target_bits, float_bits(d->gain));
    size_t samples = (size_t)cfg->block_frames * cfg->channels;
    e->ins = calloc(cfg->workers + 1, sizeof *e->ins);
    if (d->input_frames_max > 0) {
        e->in_max = d->input_frames_max;
        e->in_cap = 2 * (cfg->block_frames + d->input_frames_max);
        e->in_queue = calloc((size_t)e->in_cap * cfg->channels, sizeof(float));
        e->in_block = calloc(samples, sizeof(float));
        if (e->in_queue == NULL || e->in_block == NULL) {
            farm_engine_destroy(e);
            return farm_fail(FARM_ENOMEM, "out of memory for the engine");
        }
    }
    e->last = calloc(samples * cfg->workers, sizeof(float));
    e->missing = calloc(cfg->workers, 1);
    e->block = calloc(samples, sizeof(float));
    e->silence = calloc(samples, sizeof(float));
    if (e->ins == NULL || e->last == NULL || e->missing == NULL || e->block == NULL ||
        e->silence == NULL) {
        farm_engine_destroy(e);
        return farm_fail(FARM_ENOMEM, "out of memory for the engine");
    }
    e->pos = e->block_frames; /* empty: the first callback mixes a block */
    e->fade = 0.0f;           /* fade in from silence */
    double fade_s = d->fade_seconds > 0 ? d->fade_seconds : DEFAULT_FADE_SECONDS;
    e->fade_step = (float)(1.0 / (fade_s * cfg->sample_rate));
    *out = e;
    return FARM_OK;
}

void farm_engine_destroy(farm_engine *e) {
    if (e == NULL)
        return;
    free(e->ins);
    free(e->last);
    free(e->missing);
    free(e->block);
    free(e->silence);
    free(e->in_queue);
    free(e->in_block);
    free(e);
}

void farm_engine_attach_recorder(farm_engine *e, shm_ring *ring, void *base) {
    e->rec_ring = ring;
    e->rec_base = base;
}

/* A new gain from another thread starts ramping at this block. */
static void take_new_gain(farm_engine *e) {
    uint32_t seq = atomic_load_explicit(&e->gain_seq, memory_order_acquire);
    if (seq == e->gain_seq_applied ||
        atomic_load_explicit(&e->gain_at, memory_order_relaxed) >
            atomic_load_explicit(&e->blocks_mixed, memory_order_relaxed))
        return;
    uint32_t ramp = atomic_load_explicit(&e->gain_ramp_frames, memory_order_relaxed);
    e->gain.target = bits_float(atomic_load_explicit(&e->gain_target_bits, memory_order_relaxed));
    e->gain.left = ramp;
    if (ramp == 0)
        e->gain.value = e->gain.target;
    else
        e->gain.step = (e->gain.target - e->gain.value) / (float)ramp;
    e->gain_seq_applied = seq;
}

/* A worker's voices that go missing (late, stopped, dead) do not drop to silence in one sample:
 * its last block is played backwards, which starts on the very sample it ended with, while it
 * fades out. Its return fades in over one block. */
static void fade_out_backwards(float *b, uint32_t frames, uint32_t channels) {
    for (uint32_t i = 0; i < frames / 2; i++)
        for (uint32_t c = 0; c < channels; c++) {
            float t = b[i * channels + c];
            b[i * channels + c] = b[(frames - 1 - i) * channels + c];
            b[(frames - 1 - i) * channels + c] = t;
        }
    for (uint32_t i = 0; i < frames; i++) {
        float g = 1.0f - (float)(i + 1) / (float)frames;
        for (uint32_t c = 0; c < channels; c++)
            b[i * channels + c] *= g;
    }
}

static void copy_fading_in(float *dst, const float *src, uint32_t frames, uint32_t channels) {
    for (uint32_t i = 0; i < frames; i++) {
        float g = (float)(i + 1) / (float)frames;
        for (uint32_t c = 0; c < channels; c++)
            dst[i * channels + c] = src[i * channels + c] * g;
    }
}

/* Worker k's block for this callback, never waited for. */
static const float *take_block(farm_engine *e, uint32_t k) {
    shm_stream_counters *st = &e->header->stream;
    shm_worker *w = shm_worker_at(e->region, k);
    const size_t samples = (size_t)e->block_frames * e->channels;
    float *last = e->last + samples * k;
    uint32_t fill = shm_ring_fill(&w->audio);
    if (fill < atomic_load_explicit(&w->min_fill, memory_order_relaxed))
        atomic_store_explicit(&w->min_fill, fill, memory_order_relaxed);
    const float *b = shm_ring_begin_read(&w->audio, e->region->base);
    if (b == NULL) {
        atomic_fetch_add_explicit(&w->late_blocks, 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&st->late_blocks, 1, memory_order_relaxed);
        if (e->missing[k])
            return e->silence;
        e->missing[k] = 1;
        fade_out_backwards(last, e->block_frames, e->channels);
        return last;
    }
    if (e->missing[k])
        copy_fading_in(last, b, e->block_frames, e->channels);
    else
        memcpy(last, b, samples * sizeof(float));
    e->missing[k] = 0;
    /* Copied: the slot goes back to the worker now, a block earlier than it would. */
    shm_ring_release(&w->audio);
    return last;
}

/* ---- levels ---- */

/* Peak |x| and sum of squares of n samples into lanes accumulators, sample i into lane
 * i % lanes. Inlined with lanes a constant, the lanes are independent chains in registers, not a
 * chain through memory per channel: about 0.3 us a stereo block of 256 frames. */
static inline __attribute__((always_inline)) void
meter_lanes(const float *b, uint32_t n, uint32_t lanes, float *pk, float *sq) {
    uint32_t i = 0;
    for (; i + lanes <= n; i += lanes)
        for (uint32_t l = 0; l < lanes; l++) {
            float v = b[i + l], a = fabsf(v);
            pk[l] = a > pk[l] ? a : pk[l];
            sq[l] += v * v;
        }
    for (uint32_t l = 0; i < n; i++, l++) {
        float v = b[i], a = fabsf(v);
        pk[l] = a > pk[l] ? a : pk[l];
        sq[l] += v * v;
    }
}

/* Publishes the open window as closed by ask, and opens the next at stream block `block`. */
static void close_window(farm_engine *e, uint64_t ask, uint64_t block) {
    uint64_t n = ++e->lv_closed;
    levels_record *r = &e->lv_pub[n & 1];
    /* the record n - 2 left in r is being overwritten: readers of it must read again */
    atomic_store_explicit(&e->lv_writing, n, memory_order_relaxed);
    atomic_thread_fence(memory_order_release);
    atomic_store_explicit(&r->ask, ask, memory_order_relaxed);
    atomic_store_explicit(&r->from_block, e->lv_from, memory_order_relaxed);
    atomic_store_explicit(&r->frames, e->lv_frames, memory_order_relaxed);
    for (uint32_t c = 0; c < e->channels; c++) {
        double rms = e->lv_frames ? sqrt(e->lv_sumsq[c] / (double)e->lv_frames) : 0.0;
        atomic_store_explicit(&r->peak[c], float_bits(e->lv_peak[c]), memory_order_relaxed);
        atomic_store_explicit(&r->rms[c], float_bits((float)rms), memory_order_relaxed);
        e->lv_peak[c] = 0.0f;
        e->lv_sumsq[c] = 0.0;
    }
    atomic_store_explicit(&e->lv_done, n, memory_order_release);
    e->lv_frames = 0;
    e->lv_from = block;
    e->lv_ask_seen = ask;
}

/* The block just mixed (and faded), as it will be played, into the open window; first the
 * window is closed if another thread asked. */
static void meter_block(farm_engine *e) {
    uint64_t ask = atomic_load_explicit(&e->lv_ask, memory_order_relaxed);
    if (ask != e->lv_ask_seen)
        close_window(e, ask, atomic_load_explicit(&e->blocks_mixed, memory_order_relaxed) - 1);
    const uint32_t ch = e->channels, n = e->block_frames * ch;
    float pk[FARM_ENGINE_MAX_CHANNELS] = {0}, sq[FARM_ENGINE_MAX_CHANNELS] = {0};
    /* with channels dividing METER_LANES, lane l holds channel l % ch only */
    uint32_t lanes = METER_LANES % ch == 0 ? METER_LANES : ch;
    if (lanes == METER_LANES)
        meter_lanes(e->block, n, METER_LANES, pk, sq);
    else
        meter_lanes(e->block, n, ch, pk, sq);
    for (uint32_t l = 0; l < lanes; l++) {
        uint32_t c = l % ch;
        e->lv_peak[c] = pk[l] > e->lv_peak[c] ? pk[l] : e->lv_peak[c];
        e->lv_sumsq[c] += sq[l];
    }
    e->lv_frames += e->block_frames;
}

/* The outside input's next block: a whole one from the queue, or silence until one is there
 * (a callback shorter than a block brings its part of the next). */
static const float *take_input(farm_engine *e) {
    const size_t samples = (size_t)e->block_frames * e->channels;
    if (e->in_fill < e->block_frames) {
        if (e->in_started)
            atomic_fetch_add_explicit(&e->in_short, 1, memory_order_relaxed);
        return e->silence;
    }
    e->in_started = 1;
    memcpy(e->in_block, e->in_queue, samples * sizeof(float));
    e->in_fill -= e->block_frames;
    memmove(e->in_queue, e->in_queue + samples, (size_t)e->in_fill * e->channels * sizeof(float));
    return e->in_block;
}

static void queue_input(farm_engine *e, const float *in, uint32_t frames) {
    if (frames > e->in_cap - e->in_fill) { /* cannot happen with frames <= in_max; be safe */
        atomic_fetch_add_explicit(&e->in_short, 1, memory_order_relaxed);
        e->in_fill = 0;
        if (frames > e->in_cap)
            return;
    }
    memcpy(e->in_queue + (size_t)e->in_fill * e->channels, in,
           (size_t)frames * e->channels * sizeof(float));
    e->in_fill += frames;
}

static void mix_next_block(farm_engine *e) {
    shm_stream_counters *st = &e->header->stream;
    for (uint32_t k = 0; k < e->workers; k++)
        e->ins[k] = take_block(e, k);
    uint32_t n = e->workers;
    if (e->in_queue != NULL)
        e->ins[n++] = take_input(e);
    take_new_gain(e);
    farm_mix_stats ms = {0};
    farm_mix(e->block, e->ins, n, e->block_frames, e->channels, &e->gain, &ms);
    atomic_fetch_add_explicit(&e->blocks_mixed, 1, memory_order_release);
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

    meter_block(e);

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

void farm_engine_process(farm_engine *e, float *out, uint32_t frames, int underflow) {
    farm_engine_process_input(e, out, frames, underflow, NULL);
}

uint64_t farm_engine_input_short(farm_engine *e) {
    return atomic_load_explicit(&e->in_short, memory_order_relaxed);
}

void farm_engine_process_input(farm_engine *e, float *out, uint32_t frames, int underflow,
                               const float *in) {
    uint64_t t0 = farm_now_ns(); /* vDSO: no system call */
    dsp_enable_ftz();
    if (!atomic_load_explicit(&e->cb_thread_known, memory_order_relaxed)) {
        e->cb_thread = pthread_self();
        atomic_store_explicit(&e->cb_thread_known, 1, memory_order_release);
    }
    shm_stream_counters *st = &e->header->stream;
    if (underflow) {
        uint64_t n = atomic_fetch_add_explicit(&st->underflows, 1, memory_order_relaxed);
        if (n < SHM_UNDERFLOWS_KEPT)
            atomic_store_explicit(&st->underflow_at[n],
                                  atomic_load_explicit(&st->callbacks, memory_order_relaxed) + 1,
                                  memory_order_relaxed);
    }
    if (in != NULL && e->in_queue != NULL)
        queue_input(e, in, frames);
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
    uint64_t dt = farm_now_ns() - t0;
    atomic_store_explicit(&st->cb_ns_last, dt, memory_order_relaxed);
    farm_store_max(&st->cb_ns_max, dt);
    atomic_fetch_add_explicit(&st->cb_hist[shm_cb_bucket(dt)], 1, memory_order_relaxed);
}

/* ---- calls from other threads ---- */

void farm_engine_set_gain(farm_engine *e, float gain, uint32_t ramp_frames, uint64_t at_block) {
    /* Stores before the release of the sequence number, which the callback acquires. Only one
     * thread (control's) sets the gain, so the fetch_add needs no retry loop. */
    atomic_store_explicit(&e->gain_target_bits, float_bits(gain), memory_order_relaxed);
    atomic_store_explicit(&e->gain_ramp_frames, ramp_frames, memory_order_relaxed);
    atomic_store_explicit(&e->gain_at, at_block, memory_order_relaxed);
    atomic_fetch_add_explicit(&e->gain_seq, 1, memory_order_release);
}

float farm_engine_gain(farm_engine *e) {
    return bits_float(atomic_load_explicit(&e->gain_target_bits, memory_order_relaxed));
}

uint64_t farm_engine_stream_block(farm_engine *e) {
    return atomic_load_explicit(&e->blocks_mixed, memory_order_acquire);
}

void farm_engine_request_stop(farm_engine *e) {
    atomic_store_explicit(&e->stop_requested, 1, memory_order_release);
}

int farm_engine_faded_out(farm_engine *e) {
    return atomic_load_explicit(&e->faded_out, memory_order_acquire);
}

int farm_engine_callback_thread(farm_engine *e, pthread_t *out) {
    if (!atomic_load_explicit(&e->cb_thread_known, memory_order_acquire))
        return 0;
    *out = e->cb_thread;
    return 1;
}

uint64_t farm_engine_ask_levels(farm_engine *e) {
    return atomic_fetch_add_explicit(&e->lv_ask, 1, memory_order_relaxed) + 1;
}

void farm_engine_levels(farm_engine *e, farm_levels *out) {
    memset(out, 0, sizeof *out);
    out->channels = e->channels;
    for (;;) {
        uint64_t n = atomic_load_explicit(&e->lv_done, memory_order_acquire);
        if (n == 0)
            return;
        const levels_record *r = &e->lv_pub[n & 1];
        out->ask = atomic_load_explicit(&r->ask, memory_order_relaxed);
        out->from_block = atomic_load_explicit(&r->from_block, memory_order_relaxed);
        out->frames = atomic_load_explicit(&r->frames, memory_order_relaxed);
        for (uint32_t c = 0; c < e->channels; c++) {
            out->peak[c] = bits_float(atomic_load_explicit(&r->peak[c], memory_order_relaxed));
            out->rms[c] = bits_float(atomic_load_explicit(&r->rms[c], memory_order_relaxed));
        }
        /* Had close n + 2 begun writing into r (its release fence before its stores), a value
         * read from it would make this load see lv_writing >= n + 2. */
        atomic_thread_fence(memory_order_acquire);
        if (atomic_load_explicit(&e->lv_writing, memory_order_relaxed) < n + 2)
            return;
    }
}
