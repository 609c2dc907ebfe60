/* The null sink: the engine's callback on a thread of its own, paced by CLOCK_MONOTONIC, at
 * SCHED_FIFO when allowed. What machines without an output device play into, and the tests. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audio_internal.h"
#include "plat.h"

#define THREAD_STACK (256 * 1024) /* small and explicit: mlockall locks every thread's stack */

typedef struct null_backend {
    farm_audio base;
    pthread_t thread;
    int thread_started;
    _Atomic int running;
    uint32_t frames;
    double sample_rate;
    uint32_t rt_priority;
    float *buffer;
    uint64_t busy_ns, wall_ns0; /* for the load estimate: written by its thread only */
} null_backend;

static void *null_sink_main(void *arg) {
    null_backend *a = arg;
    const uint64_t period = (uint64_t)(1e9 * a->frames / a->sample_rate);
    uint64_t next = farm_now_ns();
    a->wall_ns0 = next;
    while (atomic_load_explicit(&a->running, memory_order_acquire)) {
        uint64_t t0 = farm_now_ns();
        farm_engine_process(a->base.engine, a->buffer, a->frames, 0);
        a->busy_ns += farm_now_ns() - t0;
        next += period;
        farm_sleep_until_ns(next);
    }
    return NULL;
}

static int null_start(farm_audio *base) {
    null_backend *a = (null_backend *)base;
    atomic_store(&a->running, 1);
    /* real-time refused: normal priority; play.c's single warning reports it */
    int rv = plat_thread_start(&a->thread, THREAD_STACK, (int)a->rt_priority, null_sink_main, a,
                               "the null sink");
    if (rv != FARM_OK)
        return rv;
    a->thread_started = 1;
    return FARM_OK;
}

static void null_stop(farm_audio *base) {
    null_backend *a = (null_backend *)base;
    atomic_store(&a->running, 0);
    if (a->thread_started) {
        pthread_join(a->thread, NULL);
        a->thread_started = 0;
    }
}

static void null_close(farm_audio *base) {
    null_backend *a = (null_backend *)base;
    null_stop(base);
    free(a->buffer);
    free(a);
}

static int null_active(farm_audio *base) {
    return atomic_load(&((null_backend *)base)->running);
}

static double null_cpu_load(farm_audio *base) {
    null_backend *a = (null_backend *)base;
    uint64_t wall = farm_now_ns() - a->wall_ns0;
    return wall > 0 && a->wall_ns0 ? (double)a->busy_ns / (double)wall : 0.0;
}

static const farm_audio_ops null_ops = {.start = null_start,
                                        .stop = null_stop,
                                        .close = null_close,
                                        .active = null_active,
                                        .cpu_load = null_cpu_load};

int farm_null_sink_open(farm_audio **out, const farm_audio_desc *o, farm_engine *e) {
    null_backend *a = calloc(1, sizeof *a);
    float *buffer = calloc((size_t)o->buffer_frames * o->channels, sizeof(float));
    if (a == NULL || buffer == NULL) {
        free(a);
        free(buffer);
        return farm_fail(FARM_ENOMEM, "out of memory");
    }
    a->base.ops = &null_ops;
    a->base.engine = e;
    a->frames = o->buffer_frames;
    a->sample_rate = o->sample_rate;
    a->rt_priority = o->rt_priority;
    a->buffer = buffer;
    snprintf(a->base.description, sizeof a->base.description, "the null sink (paced by the clock)");
    *out = &a->base;
    return FARM_OK;
}
