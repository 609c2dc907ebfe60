/* The recorder: see recorder.h. */
#include "recorder.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plat.h"

#define RECORD_SECONDS 4.0 /* how far the disk may fall behind before frames are dropped */
#define POLL_NS (10 * FARM_NS_PER_MS)
#define THREAD_STACK (256 * 1024) /* small and explicit: mlockall locks every thread's stack */

static void write_slot(recorder *r, const float *slot) {
    if (atomic_load_explicit(&r->failed, memory_order_relaxed)) {
        atomic_fetch_add_explicit(&r->lost_frames, r->frames_per_slot, memory_order_relaxed);
        return;
    }
    if (farm_outfile_write(&r->file, slot, r->frames_per_slot) == FARM_OK)
        return;
    /* The disk is full or gone: say so now, keep what was written, play on. */
    snprintf(r->error, sizeof r->error, "%s", farm_error_message());
    fprintf(stderr, "farm: recording stopped: %s; playing on\n", r->error);
    atomic_fetch_add_explicit(&r->lost_frames, r->frames_per_slot, memory_order_relaxed);
    atomic_store_explicit(&r->failed, 1, memory_order_release);
}

static void *recorder_main(void *arg) {
    recorder *r = arg;
    for (;;) {
        const float *slot = shm_ring_begin_read(r->ring, r->mem);
        if (slot == NULL) {
            if (atomic_load_explicit(&r->done, memory_order_acquire) && shm_ring_fill(r->ring) == 0)
                break;
            /* Poll rather than sleep on the ring's futex: then the callback, which never sees
             * this side asleep, makes no system call to wake it. The ring holds seconds. */
            farm_sleep_ns(POLL_NS);
            continue;
        }
        write_slot(r, slot);
        if (r->slow_us && !atomic_load_explicit(&r->done, memory_order_relaxed))
            farm_sleep_ns((uint64_t)r->slow_us * FARM_NS_PER_US);
        shm_ring_release(r->ring);
    }
    return NULL;
}

int recorder_open(recorder *r, const farm_options *o) {
    memset(r, 0, sizeof *r);
    int rv = farm_outfile_open(&r->file, o->record, o->format, o->sample_type, o->sample_rate,
                               o->channels, 0);
    if (rv != FARM_OK)
        return rv;
    uint32_t slots = 2;
    while (slots < RECORD_SECONDS * o->sample_rate / o->buffer_frames)
        slots *= 2;
    uint32_t slot_bytes = o->buffer_frames * o->channels * (uint32_t)sizeof(float);
    r->bytes = shm_ring_bytes(slots, slot_bytes);
    /* Private and touched now: no page fault on the real-time path. */
    r->mem = plat_pages_alloc(r->bytes);
    if (r->mem == NULL) {
        rv = farm_fail(FARM_ESYS, "cannot allocate the recording buffer: %s", strerror(errno));
        farm_outfile_finish(&r->file, 0);
        return rv;
    }
    r->ring = shm_ring_make(r->mem, slots, slot_bytes);
    r->frames_per_slot = o->buffer_frames;
    const char *slow = getenv("FARM_TEST_SLOW_RECORD"); /* test hook: microseconds per block */
    r->slow_us = slow ? (uint32_t)strtoul(slow, NULL, 10) : 0;
    return FARM_OK;
}

int recorder_start(recorder *r, farm_engine *e) {
    /* From now on the file is under its own name, its header current: a crash keeps it. */
    int prv = farm_outfile_publish(&r->file);
    if (prv != FARM_OK)
        return prv;
    farm_engine_attach_recorder(e, r->ring, r->mem);
    int rv =
        plat_thread_start(&r->thread, THREAD_STACK, 0, recorder_main, r, "the recorder thread");
    r->started = rv == FARM_OK;
    return rv;
}

int recorder_finish(recorder *r, int keep) {
    if (r->started) {
        atomic_store_explicit(&r->done, 1, memory_order_release);
        pthread_join(r->thread, NULL);
        r->started = 0;
    }
    int failed = atomic_load(&r->failed);
    /* After a failed write what was written is still kept, closed properly. */
    int rv = farm_outfile_finish(&r->file, keep);
    plat_pages_free(r->mem, r->bytes);
    r->mem = NULL;
    if (failed)
        return farm_fail(FARM_EFAIL, "recording stopped early: %s", r->error);
    return rv;
}
