/* farm (playing): the workers render ahead; the audio callback (engine/) takes one ready block
 * per worker and never waits; the recorder drains --record's ring to disk; this thread starts
 * everything, watches, reports, and stops everything in order: a session of start, run, stop. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audio.h"
#include "control.h"
#include "coordinator.h"
#include "dsp.h"
#include "engine.h"
#include "nodes.h"
#include "plat.h"
#include "recorder.h"
#include "shm.h"
#include "supervisor.h"

#define WATCH_NS (20 * FARM_NS_PER_MS)          /* how often the main thread looks */
#define CALLBACK_WAIT_NS FARM_NS_PER_S          /* for the first callback, to read its thread */
#define PREFILL_WAIT_NS (2 * FARM_NS_PER_S)     /* for the workers to fill their rings */
#define FADE_OUT_WAIT_NS (500 * FARM_NS_PER_MS) /* for the engine's fade to silence */

/* ---- reporting ---- */

static void status_line(const farm_options *o, shm_region *region, farm_audio *a) {
    shm_stream_stats st;
    shm_stream_stats_read(region, &st);
    double block_s = (double)o->buffer_frames / o->sample_rate;
    fprintf(stderr,
            "farm: %7.1f s  late %llu  underflows %llu  clipped %llu  cb p99 %llu us  "
            "cpu %4.1f%%  load",
            (double)st.frames / o->sample_rate, (unsigned long long)st.late_blocks,
            (unsigned long long)st.underflows, (unsigned long long)st.clipped,
            (unsigned long long)(st.cb_ns_p99 / 1000), 100 * farm_audio_cpu_load(a));
    for (uint32_t k = 0; k < o->workers && k < 16; k++) {
        shm_worker_stats ws;
        shm_worker_stats_read(region, k, &ws);
        fprintf(stderr, " %.0f%%", 100 * shm_worker_load(&ws, block_s, 0));
    }
    fputc('\n', stderr);
}

static void summary_stream(const farm_options *o, const shm_stream_stats *st, farm_audio *a,
                           const char *isa, double cpu_load) {
    double block_s = (double)o->buffer_frames / o->sample_rate;
    printf("farm: played %.2f s on %s, %u Hz, %u frames, %u ch, %u voices on %u workers "
           "(kernel %s)\n",
           (double)st->frames / o->sample_rate, farm_audio_describe(a), o->sample_rate,
           o->buffer_frames, o->channels, o->total_voices, o->workers, isa);
    printf("  callbacks %llu, underflows %llu, late blocks %llu, clipped samples %llu, "
           "cpu load %.1f%%\n",
           (unsigned long long)st->callbacks, (unsigned long long)st->underflows,
           (unsigned long long)st->late_blocks, (unsigned long long)st->clipped, 100 * cpu_load);
    if (st->underflows > 0) {
        printf("  underflows at callback");
        for (uint64_t i = 0; i < st->underflows && i < SHM_UNDERFLOWS_KEPT; i++)
            printf(" %llu", (unsigned long long)st->underflow_at[i]);
        printf("%s of %llu\n", st->underflows > SHM_UNDERFLOWS_KEPT ? " ..." : "",
               (unsigned long long)st->callbacks);
    }
    printf("  callback duration: median %.0f us, p99 %.0f us, max %.1f us (block period %.0f us)\n",
           st->cb_ns_median / 1e3, st->cb_ns_p99 / 1e3, st->cb_ns_max / 1e3, block_s * 1e6);
}

static void summary(const farm_options *o, shm_region *region, farm_procs *p, farm_audio *a,
                    recorder *rec, double cpu_load) {
    shm_stream_stats st;
    shm_stream_stats_read(region, &st);
    double block_s = (double)o->buffer_frames / o->sample_rate;
    summary_stream(o, &st, a, shm_config_of(region)->isa, cpu_load);
    for (uint32_t k = 0; k < o->workers; k++) {
        shm_worker_stats ws;
        shm_worker_stats_read(region, k, &ws);
        char cpu_s[16], fill_s[16];
        farm_cpu_text(ws.cpu, cpu_s, sizeof cpu_s);
        snprintf(fill_s, sizeof fill_s, ws.min_fill == UINT32_MAX ? "-" : "%u", ws.min_fill);
        printf("  worker %u  %-8s %6u voices  load %5.1f%% (peak %5.1f%%)  late %llu  lowest "
               "ring fill %s/%u",
               k, cpu_s, ws.voice_count, 100 * shm_worker_load(&ws, block_s, 0),
               100 * shm_worker_load(&ws, block_s, 1), (unsigned long long)ws.late_blocks, fill_s,
               o->ring_blocks);
        uint32_t restarts = farm_procs_restarts(p, k);
        if (restarts > 0 || farm_procs_health(p, k) == FARM_WORKER_GIVEN_UP)
            printf("  restarts %u  blocks lost %llu%s", restarts,
                   (unsigned long long)farm_procs_blocks_missed(p, k),
                   farm_procs_health(p, k) == FARM_WORKER_GIVEN_UP ? "  (left dead)" : "");
        putchar('\n');
    }
    if (rec != NULL)
        printf("  recorded %.2f s to %s (%llu frames dropped, %llu not written)\n",
               (double)rec->file.frames / o->sample_rate, o->record,
               (unsigned long long)st.record_dropped,
               (unsigned long long)atomic_load(&rec->lost_frames));
}

typedef struct sched_report {
    const char *stream_policy; /* the callback thread's, as found: "normal", "SCHED_FIFO" ... */
    int stream_priority;       /* its real-time priority, 0 when it has none */
    int worker_priority;       /* 0: normal scheduling */
    uint32_t refused;          /* workers that could not be given it */
} sched_report;

/* Workers go one priority step below the thread that runs the callbacks, whoever made it (the
 * null sink's is ours at --rt-priority; JACK's is jackd's): above it, a worker woken on the
 * same core would preempt the callback for a whole render; far below, ordinary processes
 * would delay the workers. Under a callback thread without real-time scheduling they stay
 * normal too. */
static void schedule_workers(const farm_options *o, farm_procs *p, farm_engine *e,
                             sched_report *r) {
    memset(r, 0, sizeof *r);
    r->stream_policy = "normal";
    uint64_t deadline = farm_now_ns() + CALLBACK_WAIT_NS;
    pthread_t cb;
    int known;
    while (!(known = farm_engine_callback_thread(e, &cb)) && farm_now_ns() < deadline)
        farm_sleep_ns(FARM_NS_PER_MS);
    if (o->rt_priority == 0 || !known)
        return;
    r->stream_priority = plat_thread_priority(cb, &r->stream_policy);
    if (r->stream_priority < 2)
        return;
    int prio = r->stream_priority - 1;
    r->refused = farm_procs_set_priority(p, prio);
    r->worker_priority = r->refused == farm_procs_count(p) ? 0 : prio;
}

/* One warning for everything real-time that was refused, not one per worker. */
static void warn_refused(const farm_options *o, shm_region *region, int coordinator_locked,
                         const sched_report *s) {
    uint32_t no_lock = 0;
    for (uint32_t k = 0; k < o->workers; k++) {
        shm_worker_stats ws;
        shm_worker_stats_read(region, k, &ws);
        no_lock += o->lock_memory && !ws.mem_locked;
    }
    int no_rt = o->rt_priority > 0 && (s->refused > 0 || s->stream_priority == 0);
    int lock = no_lock || (o->lock_memory && !coordinator_locked);
    if (no_rt || lock)
        fprintf(stderr,
                "farm: warning:%s%s%s; running without (" PLAT_RT_REFUSED_HINT ", or pass "
                "--rt-priority 0 --no-mlock to silence this)\n",
                no_rt ? " real-time scheduling refused" : "", no_rt && lock ? " and" : "",
                lock ? " memory locking refused" : "");
}

/* Lets the workers fill their rings before the first callback, so the start is not late. */
static void wait_prefill(shm_region *region, uint32_t workers, uint32_t want) {
    uint64_t deadline = farm_now_ns() + PREFILL_WAIT_NS;
    for (uint32_t k = 0; k < workers; k++)
        for (;;) {
            shm_worker_stats ws;
            shm_worker_stats_read(region, k, &ws);
            if (ws.ring_fill >= want || farm_now_ns() >= deadline || farm_stop_signal)
                break;
            farm_sleep_ns(FARM_NS_PER_MS);
        }
}

typedef struct session {
    farm_options opt;
    recorder rec, *recp;
    farm_audio *audio;
    farm_engine *engine;
    shm_region region; /* the workers' mapping: the coordinator's, handed to the others */
    farm_procs *procs;
    farm_control *control;
    farm_nodes *nodes;
    char node_names[FARM_LIST_MAX][FARM_NODE_NAME_MAX];
    const char *node_name_ptrs[FARM_LIST_MAX];
    int locked, started;
    sched_report sched;
    double cpu_load;
} session;

static farm_audio_desc audio_desc(session *s) {
    const farm_options *o = &s->opt;
    for (uint32_t k = 0; k < o->nodes.count; k++) { /* NAME=URL: checked by the options */
        const char *spec = o->nodes.items[k];
        snprintf(s->node_names[k], FARM_NODE_NAME_MAX, "%.*s", (int)strcspn(spec, "="), spec);
        s->node_name_ptrs[k] = s->node_names[k];
    }
    return (farm_audio_desc){.host = o->host,
                             .device = o->device,
                             .latency = o->latency,
                             .null_sink = o->null_sink,
                             .exclusive = o->exclusive,
                             .verbose = o->verbose,
                             .sample_rate = o->sample_rate,
                             .buffer_frames = o->buffer_frames,
                             .channels = o->channels,
                             .rt_priority = o->rt_priority,
                             .jack_name = o->jack_name,
                             .connect = o->connect,
                             .node_names = s->node_name_ptrs,
                             .node_count = o->nodes.count};
}

static farm_control_desc control_desc(const farm_options *o, farm_nodes *nodes) {
    return (farm_control_desc){.control_url = o->control_url,
                               .telemetry_url = o->telemetry_url,
                               .listen_anywhere = o->listen_anywhere,
                               .telemetry_rate = o->telemetry_rate,
                               .tls_cert = o->tls_cert,
                               .tls_key = o->tls_key,
                               .osc_url = o->osc_url,
                               .nodes = nodes};
}

/* What can be refused is checked before any worker starts: the recording's path, then the
 * device. A refusal leaves nothing. */
static int open_outputs(session *s) {
    int rv;
    if (s->opt.record != NULL) {
        if ((rv = recorder_open(&s->rec, &s->opt)) != FARM_OK)
            return rv;
        s->recp = &s->rec;
    }
    farm_audio_desc ad = audio_desc(s);
    /* The engine does not exist yet; the backend reaches it through this slot. */
    return farm_audio_open(&s->audio, &ad, NULL);
}

static int start_workers(session *s) {
    const farm_options *o = &s->opt;
    int rv = farm_coordinator_start_workers(o, 0, &s->region, &s->procs);
    if (rv != FARM_OK)
        return rv;
    farm_engine_desc ed = {.region = &s->region,
                           .gain = (float)o->gain,
                           .input_frames_max = farm_audio_input_frames_max(s->audio)};
    if ((rv = farm_engine_create(&s->engine, &ed)) != FARM_OK)
        return rv;
    farm_audio_set_engine(s->audio, s->engine);
    if (s->recp && (rv = recorder_start(s->recp, s->engine)) != FARM_OK)
        return rv;
    return FARM_OK;
}

static int start_stream(session *s) {
    const farm_options *o = &s->opt;
    wait_prefill(&s->region, o->workers, o->ring_blocks);
    int rv = farm_audio_start(s->audio);
    if (rv != FARM_OK)
        return rv;
    s->started = 1;
    schedule_workers(o, s->procs, s->engine, &s->sched);
    pthread_t cb;
    if (farm_engine_callback_thread(s->engine, &cb))
        farm_coordinator_place(o, s->procs, cb, 1, "farm");
    warn_refused(o, &s->region, s->locked, &s->sched);
    if (o->nodes.count > 0) {
        farm_nodes_desc nd = {.specs = o->nodes.items,
                              .count = o->nodes.count,
                              .audio = s->audio,
                              .tls_ca = o->tls_ca,
                              .channels = o->channels,
                              .sample_rate = o->sample_rate};
        if ((rv = farm_nodes_start(&s->nodes, &nd)) != FARM_OK)
            return rv;
    }
    farm_control_desc cd = control_desc(o, s->nodes);
    if ((rv = farm_control_start(&s->control, &cd, &s->region, s->procs, s->engine, s->audio)) !=
        FARM_OK)
        return rv;
    if (!o->quiet)
        fprintf(stderr, "farm: playing %u voices on %u workers through %s; Ctrl-C stops\n",
                o->total_voices, o->workers, farm_audio_describe(s->audio));
    /* even with -q: without it no script could find the farm */
    const char *osc = farm_control_osc_url(s->control);
    fprintf(stderr, "farm: control %s  telemetry %s%s%s\n", farm_control_url(s->control),
            farm_control_telemetry_url(s->control), osc ? "  osc " : "", osc ? osc : "");
    return FARM_OK;
}

static int session_start(session *s) {
    int rv;
    if ((rv = open_outputs(s)) != FARM_OK)
        return rv;
    s->locked = s->opt.lock_memory && plat_lock_memory();
    if ((rv = start_workers(s)) != FARM_OK)
        return rv;
    return start_stream(s);
}

/* Until Ctrl-C, quit, --duration, or the stream failing. */
static int session_run(session *s) {
    const farm_options *o = &s->opt;
    const uint64_t stop_frames = (uint64_t)(o->duration * o->sample_rate);
    /* -v: a line for each second of audio played, timed by the stream's own clock, so each
     * line says what one more second did, whatever the machine's stalls did to the wall clock */
    uint64_t next_status = o->sample_rate;
    while (!farm_stop_signal && !farm_control_quit_requested(s->control)) {
        farm_sleep_ns(WATCH_NS);
        if (stop_frames && shm_stream_frames(&s->region) >= stop_frames)
            break;
        if (!farm_audio_active(s->audio))
            return farm_fail(FARM_EFAIL, "the stream on %s stopped by itself",
                             farm_audio_describe(s->audio));
        s->cpu_load = farm_audio_cpu_load(s->audio);
        shm_stream_set_cpu_load(&s->region, s->cpu_load);
        if (o->verbose && shm_stream_frames(&s->region) >= next_status) {
            status_line(o, &s->region, s->audio);
            next_status += o->sample_rate;
        }
    }
    return FARM_OK;
}

/* Fades out, then stops everything in order. rv: how the session went so far. */
static int session_stop(session *s, int rv) {
    if (s->started && farm_audio_active(s->audio)) {
        farm_engine_request_stop(s->engine);
        uint64_t deadline = farm_now_ns() + FADE_OUT_WAIT_NS;
        while (!farm_engine_faded_out(s->engine) && farm_now_ns() < deadline &&
               farm_audio_active(s->audio))
            farm_sleep_ns(2 * FARM_NS_PER_MS);
    }
    if (s->audio)
        farm_audio_stop(s->audio);
    farm_control_stop(s->control);
    farm_nodes_stop(s->nodes);
    /* A recording of a stream that played is kept even when something failed later: what was
     * heard is not thrown away. One that never started is removed. */
    int rrv = s->recp ? recorder_finish(s->recp, s->started) : FARM_OK;
    if (s->started && !s->opt.quiet && (rv == FARM_OK || rrv != FARM_OK)) {
        summary(&s->opt, &s->region, s->procs, s->audio, s->recp, s->cpu_load);
        printf("  scheduling: stream thread %s %d, workers %s %d\n", s->sched.stream_policy,
               s->sched.stream_priority, s->sched.worker_priority ? PLAT_RT_POLICY : "normal",
               s->sched.worker_priority);
    }
    if (rv == FARM_OK)
        rv = rrv;
    if (s->procs != NULL)
        farm_coordinator_stop_workers(&s->region, s->procs);
    farm_audio_close(s->audio);
    farm_engine_destroy(s->engine);
    if (s->locked)
        plat_unlock_memory();
    return rv;
}

int farm_play(const farm_options *o) {
    session s;
    memset(&s, 0, sizeof s);
    s.opt = *o;
    int rv = session_start(&s);
    if (rv == FARM_OK)
        rv = session_run(&s);
    return session_stop(&s, rv);
}
