/* The recorder: --record's file, fed by the engine through a ring that a thread of its own
 * drains to disk (JACK's capture_client shape), so the callback never waits for the disk.
 * Internal to the coordinator. */
#ifndef FARM_RECORDER_H
#define FARM_RECORDER_H

#include <pthread.h>
#include <stdatomic.h>

#include "coordinator.h"
#include "engine.h"
#include "outfile.h"
#include "shm.h"

typedef struct recorder {
    uint32_t slow_us; /* test hook ($FARM_TEST_SLOW_RECORD): a disk that falls behind */
    farm_outfile file;
    void *mem;
    shm_ring *ring;
    size_t bytes;
    uint32_t frames_per_slot;
    pthread_t thread;
    int started;
    _Atomic int done;
    _Atomic int failed;           /* writing stopped; the thread keeps draining the ring */
    _Atomic uint64_t lost_frames; /* drained after a failure, never written */
    char error[512];              /* the recorder thread's message, once failed */
} recorder;

/* Opens the file (FARM_EUSAGE names what was wrong) and a ring of a few seconds. */
int recorder_open(recorder *r, const farm_options *o);
/* The engine feeds it from now; the thread starts draining. */
int recorder_start(recorder *r, farm_engine *e);
/* Drains what is left and closes the file: kept when keep, else removed. A write failure
 * (said on stderr when it happened) is FARM_EFAIL here, with the file kept readable. */
int recorder_finish(recorder *r, int keep);

#endif
