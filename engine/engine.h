/* engine — the real-time side of the coordinator: what the audio callback runs. Each callback
 * takes one ready block from every worker's ring (never waiting: a worker with none ready is
 * silence and a late block), sums them in worker order, applies the master gain and the
 * [-1, 1] limiter, fades in at the start and out when asked, and hands the block to the
 * recorder's ring. The engine is the only code that consumes the workers' audio rings.
 *
 * Threads
 * - main: create, attach_recorder, destroy, and the stop/fade calls.
 * - callback: farm_engine_process only, from whatever thread the audio backend runs (PortAudio's,
 *   JACK's, the null sink's). It never allocates, locks, prints, does I/O or waits; its only
 *   system call is the futex wake of a worker asleep on a full ring.
 * - any other thread (control): set_gain, gain_applied, gain, stream_block, faded_out,
 *   callback_thread. Each is a few atomic loads or stores; none waits.
 *
 * Errors as everywhere in farm (base.h). Only farm_engine_create can fail.
 */
#ifndef FARM_ENGINE_H
#define FARM_ENGINE_H

#include <pthread.h>
#include <stdint.h>

#include "shm.h"

typedef struct farm_engine farm_engine;

typedef struct farm_engine_desc {
    shm_region *region;  /* the workers' rings and the stream counters; outlives the engine */
    float gain;          /* the master gain at the start */
    double fade_seconds; /* 0: 10 ms */
} farm_engine_desc;

/* ---- mixing, shared with the offline render ---- */

typedef struct farm_mix_stats {
    uint64_t clipped;
} farm_mix_stats;

/* The master gain, ramping linearly towards target while left > 0 (frames). */
typedef struct farm_gain {
    float value, target, step;
    uint32_t left;
} farm_gain;

/* out = limit(gain * sum of blocks[0..n-1], in that order), samples clamped to [-1, 1] and
 * counted; the gain steps once per frame. Real-time safe; any thread. */
void farm_mix(float *out, const float *const *blocks, uint32_t n, uint32_t frames,
              uint32_t channels, farm_gain *gain, farm_mix_stats *stats);

/* ---- the engine ---- */

/* main thread. Allocates everything the callback will touch. FARM_ENOMEM. */
int farm_engine_create(farm_engine **out, const farm_engine_desc *desc);
/* main thread, after the stream has stopped. */
void farm_engine_destroy(farm_engine *e);
/* main thread, before the stream starts: blocks also go to ring (in memory at base), which a
 * non-real-time thread drains; a block that finds the ring full is counted as dropped. */
void farm_engine_attach_recorder(farm_engine *e, shm_ring *ring, void *base);

/* callback thread only: fills out with frames interleaved frames. underflow: the host said the
 * device ran dry before this callback. */
void farm_engine_process(farm_engine *e, float *out, uint32_t frames, int underflow);

/* any thread: a new master gain target, ramped over ramp_frames from stream block at_block (or
 * the next block mixed, when that is later). Returns a ticket for farm_engine_gain_applied. */
uint32_t farm_engine_set_gain(farm_engine *e, float gain, uint32_t ramp_frames, uint64_t at_block);
/* any thread: 1 when the callback has taken the ticket's gain, with the stream block it starts
 * at in *block; 0 while not yet. */
int farm_engine_gain_applied(farm_engine *e, uint32_t ticket, uint64_t *block);
/* any thread: the gain last asked for. */
float farm_engine_gain(farm_engine *e);
/* any thread: blocks the callback has mixed, i.e. the stream block that plays next. */
uint64_t farm_engine_stream_block(farm_engine *e);

/* any thread: fade to silence over the fade time, then keep playing silence. */
void farm_engine_request_stop(farm_engine *e);
/* any thread: 1 once the fade asked for has reached silence. */
int farm_engine_faded_out(farm_engine *e);
/* any thread: the thread the callbacks run on, once one has run (1), else 0. */
int farm_engine_callback_thread(farm_engine *e, pthread_t *out);

#endif
