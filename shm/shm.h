/* shm — the one mapping that the coordinator and its workers share.
 *
 * Contract
 * - The coordinator creates the mapping (plat_map_create: an anonymous, sealed memfd, nothing in
 *   /dev/shm, and it disappears when the last process holding it exits) and fills in the
 * configuration before any worker starts. Workers attach by the inherited file descriptor.
 * - Inside there are no pointers, only offsets from the mapping's start, so every process may
 *   map it at a different address.
 * - Per worker: a ring of whole audio blocks (worker -> coordinator), a ring of commands
 *   (coordinator -> worker), a state word and counters, each side's hot words on cache lines of
 *   their own, and two snapshots of its voices' state (dsp_bank_save), so that a replacement
 *   continues where a dead worker was: the snapshot for the block at the audio ring's write
 *   position is always whole (see shm_snapshot).
 * - Rings are single producer, single consumer: free-running 64-bit counters, release stores to
 *   publish and acquire loads to observe (PipeWire's SPA ring is the model). Non-blocking calls are
 *   real-time safe. The wait calls sleep on a process-shared futex (plat_wait; an event per
 *   direction on Windows) and always have a deadline;
 *   the side that frees space or publishes data wakes the other only when it is asleep.
 * - This header is the mapping's whole public face: the configuration, and typed calls for the
 *   coordinator's non-real-time side (control, supervisor, reports, the offline render). The
 *   layout itself (rings, counters, snapshots) is in internal/shm_layout.h, which only shm/,
 *   worker/ and engine/ can include (CMake: the shm_layout target); the real-time paths use it
 *   directly.
 * - Errors as everywhere in farm (base.h): FARM_OK or a farm_status code with the calling
 *   thread's message. The ring calls cannot fail: full and empty are answers, not errors.
 */
#ifndef FARM_SHM_H
#define FARM_SHM_H

#include <stddef.h>
#include <stdint.h>

#include "base.h"
#include "plat.h"

#define SHM_MAX_WORKERS 256
#define SHM_UNDERFLOWS_KEPT 8 /* where the first underflows fell tells start-up from overload */

/* A ring of slots, single producer and single consumer (its layout is shm_layout.h's). */
typedef struct shm_ring shm_ring;

/* The commands a coordinator sends a worker; applied at the start of a block. */
typedef enum shm_op {
    SHM_OP_SET_FREQ = 1,
    SHM_OP_SET_FEEDBACK,
    SHM_OP_SET_AMP,
    SHM_OP_SET_PAN,
    SHM_OP_VOICE_PLAY,
    SHM_OP_VOICE_STOP,
} shm_op;

typedef enum shm_worker_state {
    SHM_WORKER_STARTING = 0,
    SHM_WORKER_RUNNING,
    SHM_WORKER_STOPPED,
    SHM_WORKER_FAILED, /* could not set itself up; the reason is on its stderr */
} shm_worker_state;

typedef enum shm_oscillator {
    SHM_OSC_SINELOOP = 0, /* pyo's SineLoop */
    SHM_OSC_SINE = 1,     /* pyo's Sine: SineLoop without feedback */
} shm_oscillator;

/* Configuration: written by the coordinator before spawning, read-only afterwards. */
typedef struct shm_config {
    uint32_t workers;
    uint32_t channels;
    uint32_t block_frames;
    uint32_t ring_blocks;
    uint32_t total_voices;
    uint32_t first_voice; /* global number of the farm's first voice (--first-voice) */
    uint32_t oscillator;  /* shm_oscillator */
    double sample_rate;
    double freq_min, freq_max;
    double feedback, amp;
    double ramp_seconds;
    uint64_t seed;
    uint64_t block_limit; /* workers stop after this many blocks; 0 = unlimited */
    uint32_t lock_memory; /* workers mlockall */
    uint32_t wake_batch;  /* a worker whose ring is full sleeps until this many slots are free:
                             1 when playing (keep the ring full), half the ring for render */
    uint32_t state_bytes; /* room for one snapshot of a worker's voices (dsp_state_bytes) */
    char isa[16];         /* the kernel every worker renders with (dsp_isa_for_bank); "" best */
} shm_config;

typedef struct shm_region {
    void *base;
    size_t size;
    plat_handle handle; /* plat.h: the mapping's descriptor or HANDLE */
    int owner;          /* made by shm_create: shm_close destroys the wake-ups too */
} shm_region;

/* ---- the mapping ---- */

/* Creates the mapping for cfg (workers, channels, block_frames, ring_blocks set; ring_blocks a
 * power of two), lays out the header, the workers and their rings, and shares the voices out in
 * order (base.h's farm_voice_share; each worker's numbered globally, from first_voice).
 * FARM_EINVAL for a cfg out of range, FARM_ESYS when the system refuses the memory. */
int shm_create(const shm_config *cfg, shm_region *out);
/* Maps an existing region from an inherited descriptor and checks its header: FARM_ESYS when it
 * cannot be mapped, FARM_EINVAL when it is not a farm mapping of this version. */
int shm_attach(plat_handle handle, shm_region *out);
/* The handles worker k's process must inherit: the mapping first, then its rings' wake-ups
 * where they are handles (Windows). Returns how many (at most max). */
size_t shm_worker_handles(const shm_region *r, uint32_t k, plat_handle *out, size_t max);
void shm_close(shm_region *r);

/* The configuration the mapping was made with. */
const shm_config *shm_config_of(const shm_region *r);
/* Every worker exits at its next block; one asleep on a full ring is woken. */
void shm_request_quit(shm_region *r);

/* The values a voice starts with (the workers' banks, the control server's shadow): its
 * frequency from the seed and its global number, the configured feedback (none for Sine),
 * amplitude, and its pan by its number. */
typedef struct shm_voice_values {
    double freq, feedback, amp, pan;
} shm_voice_values;
void shm_voice_defaults(const shm_config *cfg, uint64_t voice, shm_voice_values *out);

/* ---- a worker, from the coordinator's side (any non-real-time thread) ---- */

/* Worker k's voices: global numbers first .. first + count - 1. */
void shm_worker_voices(const shm_region *r, uint32_t k, uint32_t *first, uint32_t *count);

/* What worker k and the stream's consumer of its ring report, read at once (each field atomic on
 * its own, not all together). */
typedef struct shm_worker_stats {
    uint32_t state; /* shm_worker_state */
    int32_t pid;
    int32_t cpu; /* the core it pinned itself to, -1 unpinned */
    uint32_t voice_first, voice_count, voices_playing;
    uint32_t mem_locked; /* mlockall succeeded */
    uint32_t restarts;   /* times it was replaced */
    uint64_t blocks_rendered;
    uint64_t render_ns_last, render_ns_max, render_ns_total;
    uint64_t last_cmd_id, last_cmd_block; /* the last command applied, and its block */
    uint64_t late_blocks;                 /* callbacks that found no block of its */
    uint32_t min_fill;                    /* lowest ring fill a callback saw; UINT32_MAX none */
    uint32_t ring_blocks, ring_fill;      /* its audio ring: slots, and those holding blocks */
    uint64_t ring_read, ring_write;       /* blocks taken from it, and published into it */
} shm_worker_stats;
void shm_worker_stats_read(const shm_region *r, uint32_t k, shm_worker_stats *out);

/* A worker's load: render time over the block period, of its last block or (peak) the longest
 * since it started; the average is all render time over the audio time rendered. */
double shm_worker_load(const shm_worker_stats *s, double block_seconds, int peak);
double shm_worker_load_average(const shm_worker_stats *s, double block_seconds);

/* The supervisor's writes: the state it starts or leaves a worker in, its process, one more
 * replacement (returns how many now). */
void shm_worker_set_state(shm_region *r, uint32_t k, shm_worker_state state);
void shm_worker_set_pid(shm_region *r, uint32_t k, long pid);
uint32_t shm_worker_add_restart(shm_region *r, uint32_t k);

/* Worker k's audio ring, read by a consumer that may wait (farm render; the real-time callback
 * is the engine's): its oldest block or NULL, then release it; wait (1 ready, 0 timeout) until
 * want blocks are ready; wake it so it checks quit now. */
const float *shm_audio_peek(shm_region *r, uint32_t k);
void shm_audio_release(shm_region *r, uint32_t k);
int shm_audio_wait(shm_region *r, uint32_t k, uint32_t want, uint64_t timeout_ns);
void shm_worker_wake(shm_region *r, uint32_t k);

/* ---- commands, from one thread at a time (the control server's, under its lock) ---- */

/* The earliest stream block a command sent to worker k now can start in: one after the block
 * it renders next (it may be inside that one already), counted in stream blocks, i.e. with the
 * blocks it was late (each put its ring one behind the stream). */
uint64_t shm_worker_next_block(const shm_region *r, uint32_t k);

/* 1 when worker k's queues take cmds more commands that carry floats per-voice values in all
 * (room for their wrapping counted in), 0 when not. */
int shm_cmd_room(const shm_region *r, uint32_t k, uint32_t cmds, uint64_t floats);
/* Commands sent to worker k that it has not released yet. */
uint32_t shm_cmd_waiting(const shm_region *r, uint32_t k);

/* One change, for the voices first .. first + count - 1 (global numbers: each worker applies
 * it to those it holds). With fill, every voice gets its own value: shm_cmd_send asks fill for
 * worker k's share, dst[i] for the selection's voice from + i, written straight into the value
 * ring; without, every voice gets value. */
typedef struct shm_change {
    shm_op op;
    uint32_t first, count;
    uint32_t ramp_frames; /* 0 applies at once */
    double value;
    void (*fill)(const void *arg, uint32_t from, uint32_t n, float *dst);
    const void *fill_arg;
    uint64_t id; /* the sender's sequence number, echoed in last_cmd_id */
} shm_change;

/* Sends worker k its share of c, applied at the start of stream block stream_block (or the
 * earliest the worker can still reach, when that is later). No wake-up: a worker asleep on a
 * full ring applies it at its next block, the soonest it could be heard anyway. 1 sent; 0 when
 * worker k holds none of the voices or its queues are full (shm_cmd_room says beforehand). */
int shm_cmd_send(shm_region *r, uint32_t k, const shm_change *c, uint64_t stream_block);

/* ---- the stream's counters (written by the engine) ---- */

typedef struct shm_stream_stats {
    uint64_t callbacks;
    uint64_t frames;
    uint64_t underflows; /* the host's output underflow flags */
    uint64_t clipped;    /* samples the limiter clamped */
    uint64_t late_blocks;
    uint64_t record_dropped; /* frames the recorder's ring had no room for */
    uint64_t cb_ns_last, cb_ns_max;
    uint64_t cb_ns_median, cb_ns_p99; /* from the histogram: a bucket's upper edge */
    double cpu_load;                  /* the host's estimate, 0..1 (shm_stream_set_cpu_load) */
    uint64_t underflow_at[SHM_UNDERFLOWS_KEPT]; /* callback numbers of the first ones */
} shm_stream_stats;
void shm_stream_stats_read(const shm_region *r, shm_stream_stats *out);
/* Frames played so far: the one counter a watching loop reads often. */
uint64_t shm_stream_frames(const shm_region *r);
/* The main thread's: the audio host's load estimate, for the reports. */
void shm_stream_set_cpu_load(shm_region *r, double load);

/* ---- a ring of its own (the recorder's; tests and benchmarks) ---- */

/* Bytes for a ring of slot_count slots (a power of two) of slot_bytes, and the ring laid out at
 * the start of mem (that many bytes): its slots are at mem too, so base is mem below. */
size_t shm_ring_bytes(uint32_t slot_count, uint32_t slot_bytes);
shm_ring *shm_ring_make(void *mem, uint32_t slot_count, uint32_t slot_bytes);

/* Producer side. base is the mapping's start. Returns the slot to fill, or NULL when full. */
void *shm_ring_begin_write(shm_ring *ring, void *base);
void shm_ring_publish(shm_ring *ring);
/* Consumer side. Returns the oldest published slot, or NULL when empty. */
const void *shm_ring_begin_read(shm_ring *ring, void *base);
void shm_ring_release(shm_ring *ring);
uint32_t shm_ring_fill(const shm_ring *ring);

/* Sleep until at least `want` slots are free / hold data (clamped to 1..slot_count), or
 * timeout_ns passes. Returns 1 when ready, 0 on timeout. The other side wakes the sleeper only
 * once that many are there: a batch of slots per wake-up instead of one (farm render asks for
 * half its ring; a real-time consumer asks for 1). */
int shm_ring_wait_space(shm_ring *ring, uint32_t want, uint64_t timeout_ns);
int shm_ring_wait_data(shm_ring *ring, uint32_t want, uint64_t timeout_ns);

/* Wakes whichever side sleeps on the ring, so it re-checks its conditions (quit) now. */
void shm_ring_wake(shm_ring *ring);

#endif
