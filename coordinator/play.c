/* farm (playing): the workers render ahead; the audio callback (engine.c) takes one ready block
 * per worker and never waits; a recorder thread drains --record's ring to disk; this thread
 * watches, reports, and stops everything in order. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "coordinator.h"
#include "dsp.h"

#define RECORD_SECONDS 4.0 /* how far the disk may fall behind before frames are dropped */

typedef struct recorder {
    uint32_t slow_us; /* test hook: a disk that falls behind */
    farm_outfile file;
    void *mem;
    shm_ring *ring;
    size_t bytes;
    uint32_t frames_per_slot;
    pthread_t thread;
    int started;
    _Atomic int done;
    int rv;
} recorder;

static void *recorder_main(void *arg) {
    recorder *r = arg;
    for (;;) {
        const float *slot = shm_ring_begin_read(r->ring, r->mem);
        if (slot == NULL) {
            if (atomic_load_explicit(&r->done, memory_order_acquire) && shm_ring_fill(r->ring) == 0)
                break;
            /* Poll rather than sleep on the ring's futex: then the callback, which never sees
             * this side asleep, makes no system call to wake it. The ring holds seconds. */
            struct timespec ts = {0, 10 * 1000 * 1000};
            nanosleep(&ts, NULL);
            continue;
        }
        if (r->rv == FARM_OK)
            r->rv = farm_outfile_write(&r->file, slot, r->frames_per_slot);
        if (r->slow_us && !atomic_load_explicit(&r->done, memory_order_relaxed)) {
            struct timespec ts = {(time_t)(r->slow_us / 1000000u),
                                  (long)(r->slow_us % 1000000u) * 1000};
            nanosleep(&ts, NULL);
        }
        shm_ring_release(r->ring);
    }
    return NULL;
}

static int recorder_open(recorder *r, const farm_options *o) {
    memset(r, 0, sizeof *r);
    int rv = farm_outfile_open(&r->file, o->record, o->format, o->sample_type, o->sample_rate,
                               o->channels, 0);
    if (rv != FARM_OK)
        return rv;
    uint32_t slots = 2;
    while (slots < RECORD_SECONDS * o->sample_rate / o->buffer_frames)
        slots *= 2;
    uint32_t slot_bytes = o->buffer_frames * o->channels * (uint32_t)sizeof(float);
    size_t header = (sizeof(shm_ring) + SHM_CACHE_LINE - 1) / SHM_CACHE_LINE * SHM_CACHE_LINE;
    r->bytes = shm_ring_bytes(slots, slot_bytes);
    /* Private and touched now: no page fault on the real-time path. */
    r->mem = mmap(NULL, r->bytes, PROT_READ | PROT_WRITE,
                  MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    if (r->mem == MAP_FAILED) {
        r->mem = NULL;
        farm_outfile_finish(&r->file, 0);
        return farm_fail(FARM_EFAIL, "cannot allocate the recording buffer: %s", strerror(errno));
    }
    r->ring = r->mem;
    shm_ring_init(r->ring, header, slots, slot_bytes);
    r->frames_per_slot = o->buffer_frames;
    r->slow_us = o->test_slow_record_us;
    return FARM_OK;
}

static int recorder_start(recorder *r) {
    int rv = pthread_create(&r->thread, NULL, recorder_main, r);
    if (rv != 0)
        return farm_fail(FARM_EFAIL, "cannot start the recorder thread: %s", strerror(rv));
    r->started = 1;
    return FARM_OK;
}

/* Drains what is left, closes the file (kept unless it failed). */
static int recorder_finish(recorder *r, int keep) {
    if (r->started) {
        atomic_store_explicit(&r->done, 1, memory_order_release);
        pthread_join(r->thread, NULL);
        r->started = 0;
    }
    int rv = r->rv;
    int frv = farm_outfile_finish(&r->file, keep && rv == FARM_OK);
    if (r->mem)
        munmap(r->mem, r->bytes);
    r->mem = NULL;
    return rv != FARM_OK ? rv : frv;
}

/* ---- reporting ---- */

static double worker_load(const shm_worker *w, double block_s, int peak) {
    uint64_t ns = atomic_load(peak ? &w->render_ns_max : &w->render_ns_last);
    return (double)ns * 1e-9 / block_s;
}

static void status_line(const farm_options *o, shm_region *region, farm_audio *a) {
    shm_header *h = shm_header_of(region);
    const shm_stream_stats *st = &h->stream;
    double block_s = (double)o->buffer_frames / o->sample_rate;
    fprintf(stderr,
            "farm: %7.1f s  late %llu  underflows %llu  clipped %llu  cb p99 %llu us  "
            "cpu %4.1f%%  load",
            (double)atomic_load(&st->frames) / o->sample_rate,
            (unsigned long long)atomic_load(&st->late_blocks),
            (unsigned long long)atomic_load(&st->underflows),
            (unsigned long long)atomic_load(&st->clipped),
            (unsigned long long)(shm_cb_percentile_ns(st, 99) / 1000),
            100 * farm_audio_cpu_load(a));
    for (uint32_t k = 0; k < o->workers && k < 16; k++)
        fprintf(stderr, " %.0f%%", 100 * worker_load(shm_worker_at(region, k), block_s, 0));
    fputc('\n', stderr);
}

static void summary(const farm_options *o, shm_region *region, farm_audio *a, recorder *rec,
                    double cpu_load) {
    shm_header *h = shm_header_of(region);
    const shm_stream_stats *st = &h->stream;
    double block_s = (double)o->buffer_frames / o->sample_rate;
    uint64_t frames = atomic_load(&st->frames);
    printf("farm: played %.2f s on %s, %u Hz, %u frames, %u ch, %u voices on %u workers "
           "(kernel %s)\n",
           (double)frames / o->sample_rate, farm_audio_describe(a), o->sample_rate,
           o->buffer_frames, o->channels, o->total_voices, o->workers, dsp_isa());
    printf("  callbacks %llu, underflows %llu, late blocks %llu, clipped samples %llu, "
           "cpu load %.1f%%\n",
           (unsigned long long)atomic_load(&st->callbacks),
           (unsigned long long)atomic_load(&st->underflows),
           (unsigned long long)atomic_load(&st->late_blocks),
           (unsigned long long)atomic_load(&st->clipped), 100 * cpu_load);
    uint64_t under = atomic_load(&st->underflows);
    if (under > 0) {
        printf("  underflows at callback");
        for (uint64_t i = 0; i < under && i < 8; i++)
            printf(" %llu", (unsigned long long)atomic_load(&st->underflow_at[i]));
        printf("%s of %llu\n", under > 8 ? " ..." : "",
               (unsigned long long)atomic_load(&st->callbacks));
    }
    printf("  callback duration: median %.0f us, p99 %.0f us, max %.1f us (block period %.0f us)\n",
           shm_cb_percentile_ns(st, 50) / 1e3, shm_cb_percentile_ns(st, 99) / 1e3,
           atomic_load(&st->cb_ns_max) / 1e3, block_s * 1e6);
    for (uint32_t k = 0; k < o->workers; k++) {
        shm_worker *w = shm_worker_at(region, k);
        int cpu = atomic_load(&w->cpu);
        uint32_t min_fill = atomic_load(&w->min_fill);
        char cpu_s[16], fill_s[16];
        snprintf(cpu_s, sizeof cpu_s, cpu >= 0 ? "cpu %d" : "unpinned", cpu);
        snprintf(fill_s, sizeof fill_s, min_fill == UINT32_MAX ? "-" : "%u", min_fill);
        printf("  worker %u  %-8s %6u voices  load %5.1f%% (peak %5.1f%%)  late %llu  lowest "
               "ring fill %s/%u\n",
               k, cpu_s, w->voice_count, 100 * worker_load(w, block_s, 0),
               100 * worker_load(w, block_s, 1), (unsigned long long)atomic_load(&w->late_blocks),
               fill_s, o->ring_blocks);
    }
    if (rec != NULL)
        printf("  recorded %.2f s to %s (%llu frames dropped)\n",
               (double)rec->file.frames / o->sample_rate, o->record,
               (unsigned long long)atomic_load(&st->record_dropped));
}

static void sleep_ms(unsigned ms) {
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

typedef struct sched_report {
    int stream_policy, stream_priority; /* the callback thread's, as found */
    int worker_priority;                /* 0: normal scheduling */
    uint32_t refused;                   /* workers that could not be given it */
} sched_report;

static const char *policy_name(int policy) {
    return policy == SCHED_FIFO ? "SCHED_FIFO" : policy == SCHED_RR ? "SCHED_RR" : "normal";
}

/* Workers go one priority step below the thread that runs the callbacks, whoever made it (the
 * null sink's is ours at --rt-priority; JACK's is jackd's): above it, a worker woken on the
 * same core would preempt the callback for a whole render; far below, ordinary processes
 * would delay the workers. Under a callback thread without real-time scheduling they stay
 * normal too. */
static void schedule_workers(const farm_options *o, farm_procs *p, farm_engine *e,
                             sched_report *r) {
    memset(r, 0, sizeof *r);
    r->stream_policy = SCHED_OTHER;
    uint64_t deadline = shm_now_ns() + 1000000000ull;
    while (!atomic_load_explicit(&e->cb_thread_known, memory_order_acquire) &&
           shm_now_ns() < deadline)
        sleep_ms(1);
    if (o->rt_priority == 0 || !atomic_load(&e->cb_thread_known))
        return;
    struct sched_param sp;
    if (pthread_getschedparam(e->cb_thread, &r->stream_policy, &sp) != 0)
        return;
    r->stream_priority = sp.sched_priority;
    if ((r->stream_policy != SCHED_FIFO && r->stream_policy != SCHED_RR) || r->stream_priority < 2)
        return;
    int prio = r->stream_priority - 1;
    for (uint32_t k = 0; k < p->count; k++) {
        struct sched_param wp = {.sched_priority = prio};
        if (sched_setscheduler(p->pid[k], SCHED_FIFO | SCHED_RESET_ON_FORK, &wp) != 0)
            r->refused++;
    }
    r->worker_priority = r->refused == p->count ? 0 : prio;
}

/* One warning for everything real-time that was refused, not one per worker. */
static void warn_refused(const farm_options *o, shm_region *region, int coordinator_locked,
                         const sched_report *s) {
    uint32_t no_lock = 0;
    for (uint32_t k = 0; k < o->workers; k++)
        no_lock += o->lock_memory && !atomic_load(&shm_worker_at(region, k)->mem_locked);
    int no_rt =
        o->rt_priority > 0 &&
        (s->refused > 0 || (s->stream_policy != SCHED_FIFO && s->stream_policy != SCHED_RR));
    int lock = no_lock || (o->lock_memory && !coordinator_locked);
    if (no_rt || lock)
        fprintf(stderr,
                "farm: warning:%s%s%s; running without (grant RLIMIT_RTPRIO / RLIMIT_MEMLOCK, or "
                "pass --rt-priority 0 --no-mlock to silence this)\n",
                no_rt ? " real-time scheduling refused" : "", no_rt && lock ? " and" : "",
                lock ? " memory locking refused" : "");
}

/* Lets the workers fill their rings before the first callback, so the start is not late. */
static void wait_prefill(shm_region *region, uint32_t workers, uint32_t want) {
    uint64_t deadline = shm_now_ns() + 2000000000ull;
    for (uint32_t k = 0; k < workers; k++)
        while (shm_ring_fill(&shm_worker_at(region, k)->audio) < want && shm_now_ns() < deadline &&
               !farm_stop_signal)
            sleep_ms(1);
}

int farm_play(const farm_options *o_in) {
    farm_options opt = *o_in, *o = &opt;
    recorder rec, *recp = NULL;
    int rv;
    if (o->record != NULL) {
        if ((rv = recorder_open(&rec, o)) != FARM_OK)
            return rv;
        recp = &rec;
    }
    /* The device is chosen and checked before any worker starts: a refusal leaves nothing. */
    farm_engine engine;
    memset(&engine, 0, sizeof engine);
    farm_audio *audio = NULL;
    if ((rv = farm_audio_open(&audio, o, &engine)) != FARM_OK) {
        if (recp)
            recorder_finish(recp, 0);
        return rv;
    }
    int locked = o->lock_memory && mlockall(MCL_CURRENT | MCL_FUTURE) == 0;

    farm_procs procs;
    rv = farm_procs_start(&procs, o, 0);
    if (rv == FARM_OK)
        rv = farm_engine_init(&engine, &procs.region, o);
    if (rv == FARM_OK && recp) {
        engine.rec_ring = rec.ring;
        engine.rec_base = rec.mem;
        rv = recorder_start(recp);
    }
    int started = 0;
    sched_report sched = {0};
    if (rv == FARM_OK) {
        wait_prefill(&procs.region, o->workers, o->ring_blocks);
        rv = farm_audio_start(audio);
        started = rv == FARM_OK;
    }
    if (started) {
        schedule_workers(o, &procs, &engine, &sched);
        warn_refused(o, &procs.region, locked, &sched);
    }
    farm_control *control = NULL;
    if (rv == FARM_OK)
        rv = farm_control_start(&control, o, &procs, &engine, audio);
    if (rv == FARM_OK && !o->quiet)
        fprintf(stderr, "farm: playing %u voices on %u workers through %s; Ctrl-C stops\n",
                o->total_voices, o->workers, farm_audio_describe(audio));
    /* even with -q: without it no script could find the farm */
    if (rv == FARM_OK)
        fprintf(stderr, "farm: control %s  telemetry %s\n", farm_control_url(control),
                farm_control_telemetry_url(control));

    shm_header *h = rv == FARM_OK ? shm_header_of(&procs.region) : NULL;
    const uint64_t stop_frames = (uint64_t)(o->duration * o->sample_rate);
    uint64_t next_status = shm_now_ns() + 1000000000ull;
    double cpu_load = 0;
    int warned_dead = 0;
    while (rv == FARM_OK && !farm_stop_signal && !farm_control_quit_requested(control)) {
        sleep_ms(20);
        uint64_t played = atomic_load(&h->stream.frames);
        if (stop_frames && played >= stop_frames)
            break;
        if (!farm_audio_active(audio)) {
            rv = farm_fail(FARM_EFAIL, "the stream on %s stopped by itself",
                           farm_audio_describe(audio));
            break;
        }
        if (!warned_dead && farm_procs_check(&procs) != FARM_OK) {
            /* Like JACK with a dead client: the stream goes on, that worker's voices go silent. */
            fprintf(stderr, "farm: warning: %s; its voices are silent\n", farm_error_message());
            farm_error_clear();
            warned_dead = 1;
        }
        cpu_load = farm_audio_cpu_load(audio);
        atomic_store(&h->stream.cpu_load_permille, (uint32_t)(cpu_load * 1000));
        if (o->verbose && shm_now_ns() >= next_status) {
            status_line(o, &procs.region, audio);
            next_status += 1000000000ull;
        }
    }
    /* Fade out, then stop: the callback ramps to silence and says when it got there. */
    if (h != NULL && farm_audio_active(audio)) {
        atomic_store_explicit(&engine.stop_requested, 1, memory_order_release);
        uint64_t deadline = shm_now_ns() + 500000000ull;
        while (!atomic_load_explicit(&engine.faded_out, memory_order_acquire) &&
               shm_now_ns() < deadline && farm_audio_active(audio))
            sleep_ms(2);
    }
    farm_audio_stop(audio);
    farm_control_stop(control);
    /* A recording of a stream that played is kept even when something failed later: what was
     * heard is not thrown away. One that never started is removed. */
    int rrv = recp ? recorder_finish(recp, started) : FARM_OK;
    if (rv == FARM_OK)
        rv = rrv;
    if (rv == FARM_OK && !o->quiet) {
        summary(o, &procs.region, audio, recp, cpu_load);
        printf("  scheduling: stream thread %s %d, workers %s %d\n",
               policy_name(sched.stream_policy), sched.stream_priority,
               sched.worker_priority ? "SCHED_FIFO" : "normal", sched.worker_priority);
    }
    farm_procs_stop(&procs);
    farm_audio_close(audio);
    farm_engine_free(&engine);
    if (locked)
        munlockall();
    return rv;
}
