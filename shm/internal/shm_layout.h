/* shm_layout — the layout of the shared mapping: the rings, the workers' slots, the header.
 *
 * Private to the modules that own the real-time paths: shm/, worker/ (the producer of the audio
 * rings, the consumer of the command rings) and engine/ (the callback, the consumer of the audio
 * rings). CMake puts this folder on their include path only (the shm_layout target, linked
 * PRIVATE), so no other module can name a ring's field: they go through shm.h's typed calls.
 * Everything shm.h says about the rings holds here.
 */
#ifndef FARM_SHM_LAYOUT_H
#define FARM_SHM_LAYOUT_H

#include <stdalign.h>
#include <stdatomic.h>

#include "shm.h"

#define SHM_MAGIC 0x6d726166u /* "farm" */
#define SHM_VERSION 5u
#define SHM_CACHE_LINE 64

typedef struct shm_ring {
    /* producer's line */
    alignas(SHM_CACHE_LINE) _Atomic uint64_t write;
    _Atomic uint32_t data_seq;          /* futex word bumped on every publish */
    _Atomic uint32_t consumer_sleeping; /* the consumer sleeps on data_seq */
    _Atomic uint32_t consumer_want;     /* ... until this many slots hold data */
    uint64_t read_cache;                /* producer's last view of read */
    /* consumer's line */
    alignas(SHM_CACHE_LINE) _Atomic uint64_t read;
    _Atomic uint32_t space_seq;         /* futex word bumped on every release */
    _Atomic uint32_t producer_sleeping; /* the producer sleeps on space_seq */
    _Atomic uint32_t producer_want;     /* ... until this many slots are free */
    uint64_t write_cache;               /* consumer's last view of write */
    /* fixed at creation */
    alignas(SHM_CACHE_LINE) uint64_t slots_offset; /* from the mapping's start */
    uint32_t slot_count;                           /* a power of two */
    uint32_t slot_bytes;
    uint64_t data_wake, space_wake; /* plat_wake_create's ids: 0 on Linux, events on Windows */
} shm_ring;

/* How a command gives its voices their values: one for all, or one each (lists, spreads and
 * vectors alike: the coordinator computes them, so what it reports is what the voices got). */
typedef enum shm_form {
    SHM_FORM_ONE = 0, /* value, for every voice */
    SHM_FORM_VALUES,  /* one float per voice of this worker's, in its value ring */
} shm_form;

/* first and count name the whole selection (global voice indices); each worker applies it to
 * the voices it holds. */
typedef struct shm_cmd {
    uint32_t op;          /* shm_op */
    uint32_t first;       /* first voice, global index */
    uint32_t count;       /* voices from first */
    uint32_t ramp_frames; /* 0 applies at once */
    uint32_t form;        /* shm_form */
    uint32_t pad;
    uint64_t at_block; /* applied at the start of this block of the worker's ring, not before */
    double value;
    uint64_t values_at;  /* SHM_FORM_VALUES: where this worker's first value is in its ring */
    uint64_t values_end; /* the value ring's read position once this command is released */
    uint64_t id;         /* the coordinator's sequence number, echoed in counters */
} shm_cmd;

/* Floats for commands that carry a value per voice (coordinator -> worker), released with
 * the commands that use them. Free-running counters in floats; a command's values never wrap
 * (the writer skips to the start instead). */
typedef struct shm_values {
    alignas(SHM_CACHE_LINE) _Atomic uint64_t write;
    alignas(SHM_CACHE_LINE) _Atomic uint64_t read;
    alignas(SHM_CACHE_LINE) uint64_t data_offset; /* fixed at creation */
    uint64_t capacity;                            /* floats */
} shm_values;

/* A snapshot of a worker's voices as they are at the start of block `block` (the audio ring's
 * index), with the command ring's read position that goes with them. A worker writes block k+1's
 * snapshot into slot (k+1) % 2 after rendering block k and before publishing it, and releases
 * the commands it applied only after that, so whatever moment it dies at, the slot for the
 * ring's write position is whole and the commands after it are still in their ring. */
typedef struct shm_snapshot {
    _Atomic uint64_t block; /* SHM_NO_SNAPSHOT while being written */
    uint64_t cmd_read;
    uint64_t values_read;
    uint64_t data_offset; /* fixed at creation: from the mapping's start */
} shm_snapshot;
#define SHM_NO_SNAPSHOT UINT64_MAX

typedef struct shm_worker {
    shm_ring audio;    /* worker -> coordinator, slots of block_frames * channels floats */
    shm_ring cmds;     /* coordinator -> worker, slots of shm_cmd */
    shm_values values; /* coordinator -> worker, the values of per-voice commands */
    alignas(SHM_CACHE_LINE) _Atomic uint32_t state;
    _Atomic int32_t pid;
    _Atomic int32_t cpu; /* the core it pinned itself to, -1 when pinning failed */
    /* written by the worker only, read by anyone */
    alignas(SHM_CACHE_LINE) _Atomic uint64_t blocks_rendered;
    _Atomic uint64_t render_ns_last;
    _Atomic uint64_t render_ns_max;
    _Atomic uint64_t render_ns_total;
    _Atomic uint64_t last_cmd_id;
    _Atomic uint64_t last_cmd_block; /* the block (ring index) that command first shaped */
    _Atomic uint32_t voices_playing;
    _Atomic uint32_t mem_locked; /* mlockall succeeded */
    /* written by the stream callback only (the ring's consumer) */
    alignas(SHM_CACHE_LINE) _Atomic uint64_t late_blocks; /* callbacks that found no block */
    _Atomic uint32_t min_fill;                            /* lowest ring fill a callback saw */
    /* written by the coordinator's supervisor */
    alignas(SHM_CACHE_LINE) _Atomic uint32_t restarts; /* times it was replaced */
    /* the worker's voices, twice (see shm_snapshot) */
    alignas(SHM_CACHE_LINE) shm_snapshot snap[2];
    /* fixed at creation: global voice numbers, config.first_voice counted in */
    alignas(SHM_CACHE_LINE) uint32_t voice_first;
    uint32_t voice_count;
} shm_worker;

/* Histogram of callback durations: 1 us buckets below 256 us, then 64 us buckets; the last
 * bucket holds everything longer. */
#define SHM_CB_BUCKETS 512
uint32_t shm_cb_bucket(uint64_t ns);
uint64_t shm_cb_bucket_upper_ns(uint32_t bucket);

/* The stream's live counters: written by the audio callback (and the recorder and the main
 * thread where noted), read by anyone. */
typedef struct shm_stream_counters {
    alignas(SHM_CACHE_LINE) _Atomic uint64_t callbacks;
    _Atomic uint64_t frames;
    _Atomic uint64_t underflows; /* PortAudio's output underflow flags */
    _Atomic uint64_t clipped;    /* samples the limiter clamped */
    _Atomic uint64_t late_blocks;
    _Atomic uint64_t record_dropped; /* frames the recorder's ring had no room for */
    _Atomic uint64_t cb_ns_last;
    _Atomic uint64_t cb_ns_max;
    _Atomic uint32_t cpu_load_permille; /* PortAudio's estimate, written by the main thread */
    _Atomic uint64_t underflow_at[SHM_UNDERFLOWS_KEPT]; /* callback numbers of the first ones */
    _Atomic uint64_t cb_hist[SHM_CB_BUCKETS];
} shm_stream_counters;

/* Percentile (0..100) of callback duration from the histogram, in ns (a bucket's upper edge). */
uint64_t shm_cb_percentile_ns(const shm_stream_counters *s, double pct);

typedef struct shm_header {
    uint32_t magic;
    uint32_t version;
    uint64_t size;
    shm_config config;
    uint64_t workers_offset;
    alignas(SHM_CACHE_LINE) _Atomic uint32_t quit; /* every worker exits at its next block */
    shm_stream_counters stream;
} shm_header;

shm_header *shm_header_of(const shm_region *r);
shm_worker *shm_worker_at(const shm_region *r, uint32_t index);

/* A ring at slots_offset from base: slot_count a power of two. */
void shm_ring_init(shm_ring *ring, uint64_t slots_offset, uint32_t slot_count, uint32_t slot_bytes);

/* Convenience for the command ring: 1 pushed, 0 full. */
int shm_cmd_push(shm_worker *w, void *base, const shm_cmd *cmd);
int shm_cmd_pop(shm_worker *w, void *base, shm_cmd *cmd); /* 1 popped, 0 empty */
/* The worker's side when it must not lose commands: the i-th command not yet released (1), or
 * none (0); then release n of them once their effect is safe in a snapshot. */
int shm_cmd_peek(shm_worker *w, void *base, uint32_t i, shm_cmd *cmd);
void shm_cmd_release(shm_worker *w, uint32_t n);

/* The coordinator's side of the value ring: room for n floats in one piece, or NULL; *at gets
 * the counter to put in the command. Then commit. */
float *shm_values_reserve(shm_worker *w, void *base, uint32_t n, uint64_t *at);
void shm_values_commit(shm_worker *w, uint64_t end);
/* The worker's side: the floats of a command, from counter at. */
const float *shm_values_at(const shm_worker *w, const void *base, uint64_t at);

/* The snapshot data of slot i (0 or 1), state_bytes long. */
void *shm_snapshot_data(const shm_region *r, const shm_worker *w, uint32_t i);

#endif
