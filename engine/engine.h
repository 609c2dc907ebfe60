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
 * - any other thread (control): set_gain, gain, stream_block, faded_out,
 *   callback_thread, levels; ask_levels from one thread at a time (telemetry's). Each is a few
 *   atomic loads or stores; none waits.
 *
 * Errors as everywhere in farm (base.h). Only farm_engine_create can fail.
 */
#ifndef FARM_ENGINE_H
#define FARM_ENGINE_H

#include <pthread.h>
#include <stdint.h>

#include "shm.h"

typedef struct farm_engine farm_engine;

#define FARM_ENGINE_MAX_CHANNELS 32 /* the most output channels the engine takes (and meters) */

typedef struct farm_engine_desc {
    shm_region *region;  /* the workers' rings and the stream counters; outlives the engine */
    float gain;          /* the master gain at the start */
    double fade_seconds; /* 0: 10 ms */
    /* Audio from outside the farm (NetJACK2 nodes), mixed with the workers' blocks before the
     * gain and the limiter: the most frames one callback brings, 0 for none. */
    uint32_t input_frames_max;
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

/* out = the sum of blocks[0..n-1], samples samples each, in that order: no gain, no limiter
 * (what a part of a render holds). Real-time safe; any thread. */
void farm_sum(float *out, const float *const *blocks, uint32_t n, uint32_t samples);

/* out = limit(gain * sum of blocks[0..n-1], in that order), samples clamped to [-1, 1] and
 * counted; the gain steps once per frame. Real-time safe; any thread. */
void farm_mix(float *out, const float *const *blocks, uint32_t n, uint32_t frames,
              uint32_t channels, farm_gain *gain, farm_mix_stats *stats);

/* ---- the engine ---- */

/* main thread. Allocates everything the callback will touch. FARM_ENOMEM; FARM_EUSAGE for more
 * than FARM_ENGINE_MAX_CHANNELS channels. */
int farm_engine_create(farm_engine **out, const farm_engine_desc *desc);
/* main thread, after the stream has stopped. */
void farm_engine_destroy(farm_engine *e);
/* main thread, before the stream starts: blocks also go to ring (in memory at base), which a
 * non-real-time thread drains; a block that finds the ring full is counted as dropped. */
void farm_engine_attach_recorder(farm_engine *e, shm_ring *ring, void *base);

/* callback thread only: fills out with frames interleaved frames. underflow: the host said the
 * device ran dry before this callback. */
void farm_engine_process(farm_engine *e, float *out, uint32_t frames, int underflow);
/* callback thread only: the same, with frames interleaved frames of outside audio in (NULL:
 * none), which join the mix as one more block. They are queued and taken a whole block at a
 * time, so they play without delay when callbacks are blocks and one block later otherwise;
 * a block mixed before enough input arrived has none (counted in input_short). Needs
 * input_frames_max >= frames. */
void farm_engine_process_input(farm_engine *e, float *out, uint32_t frames, int underflow,
                               const float *in);
/* any thread: blocks mixed without (whole) outside input since the start. */
uint64_t farm_engine_input_short(farm_engine *e);

/* any thread: a new master gain target, ramped over ramp_frames from stream block at_block (or
 * the next block mixed, when that is later). */
void farm_engine_set_gain(farm_engine *e, float gain, uint32_t ramp_frames, uint64_t at_block);
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

/* ---- levels: what is played, metered ----
 * The callback meters every block it mixes as it is played (after the gain, the limiter and the
 * fades): per channel the peak |x| and the sum of squares, into a window that stays open until
 * it is asked to close. At its first block after an ask, the callback closes the window (before
 * metering that block, which opens the next one) and publishes its levels; any thread reads the
 * last window closed. No lock and no allocation: the callback's cost is one pass over the block,
 * and a few dozen atomic stores when it closes a window. */

typedef struct farm_levels {
    uint64_t ask;        /* the ask that closed the window; 0: none closed yet (all else 0) */
    uint64_t from_block; /* the window's first stream block */
    uint64_t frames;     /* frames in it: its blocks times the block size */
    uint32_t channels;   /* the stream's: peak and rms hold this many */
    float peak[FARM_ENGINE_MAX_CHANNELS]; /* the largest |sample| per channel, 1 = full scale */
    float rms[FARM_ENGINE_MAX_CHANNELS];  /* the root mean square per channel */
} farm_levels;

/* one thread at a time (telemetry's): asks the callback to close the open window at its next
 * block. Returns the ask's number, which farm_engine_levels reports as ask once that window is
 * the last closed (within a block period while the stream plays). Never waits. */
uint64_t farm_engine_ask_levels(farm_engine *e);
/* any thread: the levels of the last window closed, into *out. Never waits (it reads again only
 * when two windows closed while it read). */
void farm_engine_levels(farm_engine *e, farm_levels *out);

#endif
