/* Status replies and telemetry: the configuration and the live counters, as JSON. */
#define _GNU_SOURCE
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>

#include "control_internal.h"
#include "dsp.h"
#include "nodes.h"

double farm_control_block_seconds(const farm_control *c) {
    return (double)c->cfg->block_frames / c->cfg->sample_rate;
}

/* Where the workers run: the machine as the placement saw it (the allowed part) and how. Each
 * worker's own CPU is in the workers array. */
static void add_topology(farm_control *c, cJSON *root) {
    const farm_placement *pl = farm_procs_placement(c->procs);
    cJSON *t = cJSON_AddObjectToObject(root, "topology");
    cJSON_AddNumberToObject(t, "packages", pl->packages);
    cJSON_AddNumberToObject(t, "cores", pl->cores);
    cJSON_AddNumberToObject(t, "pus", pl->pus);
    cJSON_AddNumberToObject(t, "l3_domains", pl->l3_domains);
    cJSON_AddStringToObject(t, "policy", pl->policy);
    cJSON *audio = cJSON_AddArrayToObject(t, "audio_cpus");
    for (int cpu = 0; cpu < PLAT_CPU_SETSIZE; cpu++)
        if (plat_cpuset_has(&pl->audio, cpu))
            cJSON_AddItemToArray(audio, cJSON_CreateNumber(cpu));
}

void farm_control_add_config(farm_control *c, cJSON *root) {
    const shm_config *cfg = c->cfg;
    cJSON *out = cJSON_AddObjectToObject(root, "config");
    cJSON_AddNumberToObject(out, "workers", cfg->workers);
    /* voices: the whole farm's, its nodes' included; local_voices: this host's */
    cJSON_AddNumberToObject(out, "voices", farm_control_total_voices(c));
    cJSON_AddNumberToObject(out, "local_voices", cfg->total_voices);
    cJSON_AddNumberToObject(out, "first_voice", cfg->first_voice);
    cJSON_AddNumberToObject(out, "sample_rate", cfg->sample_rate);
    cJSON_AddNumberToObject(out, "buffersize", cfg->block_frames);
    cJSON_AddNumberToObject(out, "channels", cfg->channels);
    cJSON_AddNumberToObject(out, "ring_blocks", cfg->ring_blocks);
    cJSON_AddNumberToObject(out, "seed", (double)cfg->seed);
    cJSON_AddNumberToObject(out, "freq_min", cfg->freq_min);
    cJSON_AddNumberToObject(out, "freq_max", cfg->freq_max);
    cJSON_AddNumberToObject(out, "feedback", cfg->feedback);
    cJSON_AddNumberToObject(out, "amp", cfg->amp);
    cJSON_AddNumberToObject(out, "ramp_s", cfg->ramp_seconds);
    cJSON_AddStringToObject(out, "oscillator",
                            cfg->oscillator == SHM_OSC_SINE ? "sine" : "sineloop");
    cJSON_AddStringToObject(out, "kernel", cfg->isa);
    cJSON_AddStringToObject(out, "output", farm_audio_describe(c->audio));
    cJSON_AddBoolToObject(out, "exclusive", farm_audio_exclusive(c->audio));
    cJSON_AddStringToObject(out, "control", c->control_url);
    cJSON_AddStringToObject(out, "telemetry", c->telemetry_url);
    if (c->osc_url[0])
        cJSON_AddStringToObject(out, "osc", c->osc_url);
    else
        cJSON_AddNullToObject(out, "osc");
    cJSON_AddNumberToObject(out, "gain", farm_engine_gain(c->engine));
    add_topology(c, root);
}

static void add_stream(farm_control *c, cJSON *root) {
    shm_stream_stats st;
    shm_stream_stats_read(c->region, &st);
    cJSON *s = cJSON_AddObjectToObject(root, "stream");
    cJSON_AddNumberToObject(s, "seconds", (double)st.frames / c->cfg->sample_rate);
    cJSON_AddNumberToObject(s, "block", (double)farm_engine_stream_block(c->engine));
    cJSON_AddNumberToObject(s, "callbacks", (double)st.callbacks);
    cJSON_AddNumberToObject(s, "underflows", (double)st.underflows);
    cJSON_AddNumberToObject(s, "late_blocks", (double)st.late_blocks);
    cJSON_AddNumberToObject(s, "clipped", (double)st.clipped);
    cJSON_AddNumberToObject(s, "record_dropped", (double)st.record_dropped);
    cJSON_AddNumberToObject(s, "cpu_load", st.cpu_load);
    cJSON_AddNumberToObject(s, "replies_dropped", (double)atomic_load(&c->replies_dropped));
    cJSON_AddNumberToObject(s, "requests_waiting", (double)atomic_load(&c->requests_waiting));
    cJSON_AddNumberToObject(s, "telemetry_dropped", (double)atomic_load(&c->telemetry_dropped));
    cJSON *cb = cJSON_AddObjectToObject(s, "callback_us");
    cJSON_AddNumberToObject(cb, "median", st.cb_ns_median / 1e3);
    cJSON_AddNumberToObject(cb, "p99", st.cb_ns_p99 / 1e3);
    cJSON_AddNumberToObject(cb, "max", st.cb_ns_max / 1e3);
    cJSON_AddNumberToObject(cb, "period", farm_control_block_seconds(c) * 1e6);
}

static const char *worker_state(farm_control *c, uint32_t k, const shm_worker_stats *ws) {
    static const char *const states[] = {"starting", "running", "stopped", "failed"};
    uint32_t st = ws->state;
    switch (farm_procs_health(c->procs, k)) {
    case FARM_WORKER_GIVEN_UP:
        return "dead";
    case FARM_WORKER_REPLACING:
        return "replacing";
    case FARM_WORKER_DONE:
        return "stopped";
    case FARM_WORKER_UP:
        break;
    }
    if (st == SHM_WORKER_RUNNING && farm_procs_stalled(c->procs, k))
        return "stalled";
    return st < sizeof states / sizeof states[0] ? states[st] : "unknown";
}

static void add_workers(farm_control *c, cJSON *root) {
    const double block_s = farm_control_block_seconds(c);
    cJSON *ws = cJSON_AddArrayToObject(root, "workers");
    for (uint32_t k = 0; k < farm_procs_count(c->procs); k++) {
        shm_worker_stats w;
        shm_worker_stats_read(c->region, k, &w);
        cJSON *o = cJSON_CreateObject();
        uint32_t min_fill = w.min_fill;
        cJSON_AddNumberToObject(o, "id", k);
        cJSON_AddNumberToObject(o, "pid", w.pid);
        cJSON_AddNumberToObject(o, "cpu", w.cpu);
        cJSON_AddStringToObject(o, "state", worker_state(c, k, &w));
        cJSON_AddNumberToObject(o, "restarts", farm_procs_restarts(c->procs, k));
        cJSON_AddNumberToObject(o, "blocks_missed", (double)farm_procs_blocks_missed(c->procs, k));
        cJSON_AddNumberToObject(o, "voices", w.voice_count);
        cJSON_AddNumberToObject(o, "voices_playing", w.voices_playing);
        cJSON_AddNumberToObject(o, "first_voice", w.voice_first);
        cJSON_AddNumberToObject(o, "load", shm_worker_load(&w, block_s, 0));
        cJSON_AddNumberToObject(o, "load_peak", shm_worker_load(&w, block_s, 1));
        cJSON_AddNumberToObject(o, "late_blocks", (double)w.late_blocks);
        cJSON_AddNumberToObject(o, "lowest_ring_fill",
                                min_fill == UINT32_MAX ? -1.0 : (double)min_fill);
        cJSON_AddNumberToObject(o, "blocks_rendered", (double)w.blocks_rendered);
        cJSON_AddItemToArray(ws, o);
    }
}

/* x to 6 significant digits, so the JSON says 0.353553 and not 0.35355338454246521. */
static double short_number(float x) {
    char text[32];
    snprintf(text, sizeof text, "%.6g", (double)x);
    return strtod(text, NULL);
}

/* The levels of the last window the engine closed (telemetry closes one before each message). */
static void add_levels(farm_control *c, cJSON *root) {
    farm_levels lv;
    farm_engine_levels(c->engine, &lv);
    cJSON *o = cJSON_AddObjectToObject(root, "levels");
    cJSON_AddNumberToObject(o, "from_block", (double)lv.from_block);
    cJSON_AddNumberToObject(o, "frames", (double)lv.frames);
    cJSON *peak = cJSON_AddArrayToObject(o, "peak");
    cJSON *rms = cJSON_AddArrayToObject(o, "rms");
    for (uint32_t ch = 0; ch < lv.channels; ch++) {
        cJSON_AddItemToArray(peak, cJSON_CreateNumber(short_number(lv.peak[ch])));
        cJSON_AddItemToArray(rms, cJSON_CreateNumber(short_number(lv.rms[ch])));
    }
}

/* The nodes as last polled (nodes.h), only when there are any. */
static void add_nodes(farm_control *c, cJSON *root) {
    uint32_t n = farm_nodes_count(c->desc.nodes);
    if (n == 0)
        return;
    cJSON *arr = cJSON_AddArrayToObject(root, "nodes");
    for (uint32_t k = 0; k < n; k++) {
        farm_node_info in;
        farm_nodes_info(c->desc.nodes, k, &in);
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "name", in.name);
        cJSON_AddStringToObject(o, "url", in.url);
        cJSON_AddStringToObject(o, "state", in.state);
        if (in.known) {
            cJSON_AddNumberToObject(o, "first_voice", in.first_voice);
            cJSON_AddNumberToObject(o, "voices", in.voices);
        } else {
            cJSON_AddNullToObject(o, "first_voice");
            cJSON_AddNullToObject(o, "voices");
        }
        cJSON_AddNumberToObject(o, "workers", in.workers);
        cJSON_AddNumberToObject(o, "load", in.load);
        cJSON_AddNumberToObject(o, "late_blocks", (double)in.late_blocks);
        cJSON_AddNumberToObject(o, "underflows", (double)in.underflows);
        cJSON_AddNumberToObject(o, "ports_connected", in.ports);
        cJSON_AddNumberToObject(o, "polls_answered", (double)in.answers);
        cJSON_AddNumberToObject(o, "polls_missed", (double)in.misses);
        if (in.problem[0])
            cJSON_AddStringToObject(o, "problem", in.problem);
        cJSON_AddItemToArray(arr, o);
    }
}

/* The live counters, for status replies and telemetry alike. */
void farm_control_add_counters(farm_control *c, cJSON *root) {
    add_stream(c, root);
    add_workers(c, root);
    add_levels(c, root);
    add_nodes(c, root);
}
