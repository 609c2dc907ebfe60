/* This farm's part of a message (dispatch.c parsed it; route.c may have split it): checked whole
 * (every worker's queues have room), then given one stream block to start at and pushed to the
 * workers' command rings, their per-voice values into the workers' value rings. The reply never
 * waits for a worker: the block a change lands in is known when it is sent, since a worker
 * applies a command at the block it names, not before. The shadow keeps what every voice is set
 * to, for get; status, help and quit are answered here too. */
#define _GNU_SOURCE
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "control_internal.h"

/* ---- the shadow ---- */

int farm_control_apply_init(farm_control *c) {
    const shm_config *cfg = c->cfg;
    const uint32_t n = cfg->total_voices;
    uint32_t most = (n + cfg->workers - 1) / cfg->workers;
    c->batch = calloc(2 * FARM_BATCH_MAX, sizeof *c->batch); /* a batch, and its changes */
    c->scratch = calloc(most, sizeof(float));
    c->shadow.playing = malloc(n);
    int ok = c->batch && c->scratch && c->shadow.playing;
    for (int p = 0; p < FARM_PARAM_COUNT; p++)
        ok &= (c->shadow.param[p] = malloc(n * sizeof(float))) != NULL;
    if (!ok)
        return farm_fail(FARM_ENOMEM, "out of memory for the state of %u voices", n);
    for (uint32_t v = 0; v < n; v++) { /* as the workers start their voices */
        shm_voice_values d;
        shm_voice_defaults(cfg, (uint64_t)cfg->first_voice + v, &d);
        c->shadow.param[FARM_PARAM_FREQ][v] = (float)d.freq;
        c->shadow.param[FARM_PARAM_FEEDBACK][v] = (float)d.feedback;
        c->shadow.param[FARM_PARAM_AMP][v] = (float)d.amp;
        c->shadow.param[FARM_PARAM_PAN][v] = (float)d.pan;
        c->shadow.playing[v] = 1;
    }
    return FARM_OK;
}

void farm_control_apply_free(farm_control *c) {
    free(c->batch);
    free(c->scratch);
    free(c->shadow.playing);
    for (int p = 0; p < FARM_PARAM_COUNT; p++)
        free(c->shadow.param[p]);
}

/* The shadow holds the farm's voices from index 0; requests name them globally. */
static uint32_t shadow_index(const farm_control *c, uint32_t voice) {
    return voice - c->cfg->first_voice;
}

static void shadow_update(farm_control *c, const farm_request *r) {
    const uint32_t first = shadow_index(c, r->first);
    if (r->kind == FARM_REQ_VOICE) {
        memset(c->shadow.playing + first, r->play, r->count);
        return;
    }
    float *dst = c->shadow.param[r->param] + first;
    if (r->form == FARM_FORM_ONE)
        for (uint32_t k = 0; k < r->count; k++)
            dst[k] = (float)r->value;
    else
        farm_request_values(r, 0, r->count, dst);
}

/* ---- planning: which workers, which block ---- */

static uint32_t ramp_frames(const farm_control *c, double seconds) {
    if (seconds < 0)
        seconds = c->cfg->ramp_seconds;
    return (uint32_t)(seconds * c->cfg->sample_rate + 0.5);
}

static shm_op op_of(const farm_request *r) {
    static const shm_op set_ops[FARM_PARAM_COUNT] = {
        [FARM_PARAM_FREQ] = SHM_OP_SET_FREQ,
        [FARM_PARAM_FEEDBACK] = SHM_OP_SET_FEEDBACK,
        [FARM_PARAM_AMP] = SHM_OP_SET_AMP,
        [FARM_PARAM_PAN] = SHM_OP_SET_PAN,
    };
    if (r->kind == FARM_REQ_VOICE)
        return r->play ? SHM_OP_VOICE_PLAY : SHM_OP_VOICE_STOP;
    return set_ops[r->param];
}

static int changes_voices(const farm_request *r) {
    return r->kind == FARM_REQ_SET || r->kind == FARM_REQ_VOICE;
}

/* Worker k's share of request r: its voices among the selected, as [lo, hi). */
static int share_of(farm_control *c, uint32_t k, const farm_request *r, uint64_t *lo,
                    uint64_t *hi) {
    uint32_t first, count;
    shm_worker_voices(c->region, k, &first, &count);
    uint64_t a = r->first, b = (uint64_t)r->first + r->count;
    uint64_t wa = first, wb = (uint64_t)first + count;
    *lo = a > wa ? a : wa;
    *hi = b < wb ? b : wb;
    return *lo < *hi;
}

static int per_voice(const farm_request *r) {
    return r->kind == FARM_REQ_SET && r->form != FARM_FORM_ONE;
}

/* Every worker's queues must take its part of every line, or nothing is sent. A worker left
 * dead gets nothing: it would only fill its queues. */
static int check_room(farm_control *c, const farm_request *reqs, size_t n) {
    farm_procs *p = c->procs;
    for (uint32_t k = 0; k < farm_procs_count(p); k++) {
        if (farm_procs_health(p, k) == FARM_WORKER_GIVEN_UP)
            continue;
        uint32_t cmds = 0;
        uint64_t floats = 0, lo, hi;
        for (size_t i = 0; i < n; i++)
            if (changes_voices(&reqs[i]) && share_of(c, k, &reqs[i], &lo, &hi)) {
                cmds++;
                floats += per_voice(&reqs[i]) ? hi - lo : 0;
            }
        if (!shm_cmd_room(c->region, k, cmds, floats))
            return farm_fail(FARM_EBUSY, "busy: worker %u has %u commands waiting; try again", k,
                             shm_cmd_waiting(c->region, k));
    }
    return FARM_OK;
}

/* The earliest stream block every line can start at: one after the block each worker it
 * touches renders next (a worker may be inside that block already), and for the gain the
 * block after the one the callback mixes next. */
static uint64_t earliest_block(farm_control *c, const farm_request *reqs, size_t n) {
    farm_procs *p = c->procs;
    uint64_t s = farm_engine_stream_block(c->engine) + 1, lo, hi;
    for (uint32_t k = 0; k < farm_procs_count(p); k++) {
        if (farm_procs_health(p, k) == FARM_WORKER_GIVEN_UP)
            continue;
        int touched = 0;
        for (size_t i = 0; i < n && !touched; i++)
            touched = changes_voices(&reqs[i]) && share_of(c, k, &reqs[i], &lo, &hi);
        if (!touched)
            continue;
        uint64_t b = shm_worker_next_block(c->region, k);
        s = b > s ? b : s;
    }
    return s;
}

/* The block a batch starts at: the earliest, or the one its lines name (all the same one). */
static int choose_block(farm_control *c, const farm_request *reqs, size_t n, uint64_t *block) {
    uint64_t earliest = earliest_block(c, reqs, n), at = 0;
    int named = 0;
    for (size_t i = 0; i < n; i++) {
        if (!reqs[i].has_at)
            continue;
        if (named && reqs[i].at != at)
            return farm_fail(FARM_EUSAGE,
                             "a batch starts in one block: its lines name blocks "
                             "%llu and %llu",
                             (unsigned long long)at, (unsigned long long)reqs[i].at);
        named = 1;
        at = reqs[i].at;
    }
    if (named && at < earliest)
        return farm_fail(FARM_EUSAGE,
                         "at %llu: that block is too soon to reach; the earliest is %llu",
                         (unsigned long long)at, (unsigned long long)earliest);
    *block = named ? at : earliest;
    return FARM_OK;
}

/* ---- sending ---- */

/* Worker k's per-voice values, from the selection's voice from on, into the value ring. */
static void fill_values(const void *arg, uint32_t from, uint32_t n, float *dst) {
    farm_request_values(arg, from, n, dst);
}

static void push_share(farm_control *c, uint32_t k, const farm_request *r, uint64_t block,
                       uint64_t id) {
    shm_change ch = {.op = op_of(r),
                     .first = r->first,
                     .count = r->count,
                     .ramp_frames = ramp_frames(c, r->ramp),
                     .value = r->value,
                     .fill = per_voice(r) ? fill_values : NULL,
                     .fill_arg = r,
                     .id = id};
    /* check_room saw room for it, and only the holder of c->lock sends */
    (void)shm_cmd_send(c->region, k, &ch, block);
}

/* One line's effect: its commands (or the gain), its shadow, and its part of the reply. */
static void send_line(farm_control *c, const farm_request *r, uint64_t block, cJSON *out) {
    farm_procs *p = c->procs;
    if (r->kind == FARM_REQ_GAIN) {
        farm_engine_set_gain(c->engine, (float)r->value, ramp_frames(c, r->ramp), block);
        return;
    }
    uint64_t id = ++c->next_id, lo, hi;
    cJSON *ws = cJSON_AddArrayToObject(out, "workers"), *dead = NULL;
    for (uint32_t k = 0; k < farm_procs_count(p); k++) {
        if (!share_of(c, k, r, &lo, &hi))
            continue;
        if (farm_procs_health(p, k) == FARM_WORKER_GIVEN_UP) {
            if (dead == NULL)
                dead = cJSON_AddArrayToObject(out, "dead_workers");
            cJSON_AddItemToArray(dead, cJSON_CreateNumber(k));
            continue;
        }
        push_share(c, k, r, block, id);
        cJSON_AddItemToArray(ws, cJSON_CreateNumber(k));
    }
    shadow_update(c, r);
    cJSON_AddNumberToObject(out, "id", (double)id);
    cJSON_AddNumberToObject(out, "voices", r->count);
}

/* ---- replies ---- */

static const char *applied_text(const farm_request *r, char *buf, size_t size) {
    static const char *const forms[] = {[FARM_FORM_LIST] = "list",
                                        [FARM_FORM_LIN] = "lin",
                                        [FARM_FORM_EXP] = "exp",
                                        [FARM_FORM_HARMONIC] = "harmonic",
                                        [FARM_FORM_VECTOR] = "vector"};
    buf[0] = '\0';
    if (r->kind == FARM_REQ_GAIN)
        snprintf(buf, size, "gain %g", r->value);
    else if (r->kind == FARM_REQ_VOICE)
        snprintf(buf, size, "%s", r->play ? "play" : "stop");
    else if (r->kind == FARM_REQ_QUIT)
        snprintf(buf, size, "quit: fading out and stopping");
    else if (r->kind == FARM_REQ_SET && r->form == FARM_FORM_ONE)
        snprintf(buf, size, "%s %g", farm_params[r->param].name, r->value);
    else if (r->kind == FARM_REQ_SET)
        snprintf(buf, size, "%s %s", farm_params[r->param].name, forms[r->form]);
    return buf;
}

static void add_timing(farm_control *c, cJSON *o, uint64_t block) {
    uint64_t now = farm_engine_stream_block(c->engine);
    uint64_t ahead = block > now ? block - now : 0;
    cJSON_AddNumberToObject(o, "from_block", (double)block);
    cJSON_AddNumberToObject(o, "latency_blocks", (double)ahead);
    cJSON_AddNumberToObject(o, "latency_ms", 1e3 * (double)ahead * farm_control_block_seconds(c));
}

static void add_line(farm_control *c, const farm_request *r, uint64_t block, cJSON *o) {
    char what[160];
    if (applied_text(r, what, sizeof what)[0])
        cJSON_AddStringToObject(o, "applied", what);
    send_line(c, r, block, o);
    add_timing(c, o, block);
    cJSON_AddNumberToObject(o, "ramp_s", r->ramp < 0 ? c->cfg->ramp_seconds : r->ramp);
}

/* Lines that change things (set, setv, voice, worker, gain), all from one block. */
static int apply_lines(farm_control *c, const farm_request *reqs, size_t n, cJSON *reply) {
    uint64_t block = 0;
    int rv;
    if ((rv = check_room(c, reqs, n)) != FARM_OK ||
        (rv = choose_block(c, reqs, n, &block)) != FARM_OK)
        return rv;
    if (n == 1) {
        add_line(c, &reqs[0], block, reply);
        return FARM_OK;
    }
    cJSON *lines = cJSON_AddArrayToObject(reply, "results");
    for (size_t i = 0; i < n; i++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddBoolToObject(o, "ok", 1);
        add_line(c, &reqs[i], block, o);
        cJSON_AddItemToArray(lines, o);
    }
    cJSON_AddNumberToObject(reply, "from_block", (double)block);
    return FARM_OK;
}

static void add_get(farm_control *c, const farm_request *r, cJSON *o) {
    cJSON_AddStringToObject(o, "param",
                            r->get_playing ? FARM_PLAYING_NAME : farm_params[r->param].name);
    cJSON_AddNumberToObject(o, "first", r->first);
    cJSON *values = cJSON_AddArrayToObject(o, "values");
    for (uint32_t k = 0; k < r->count; k++) {
        uint32_t v = shadow_index(c, r->first) + k;
        cJSON_AddItemToArray(values, r->get_playing
                                         ? cJSON_CreateBool(c->shadow.playing[v])
                                         : cJSON_CreateNumber(c->shadow.param[r->param][v]));
    }
}

/* A line that only reads or asks (status, get, help, quit) in the reply object o. */
static void answer(farm_control *c, const farm_request *r, cJSON *o) {
    char help[1024], what[64];
    switch (r->kind) {
    case FARM_REQ_STATUS:
        farm_control_add_config(c, o);
        farm_control_add_counters(c, o);
        return;
    case FARM_REQ_GET:
        add_get(c, r, o);
        return;
    case FARM_REQ_HELP:
        farm_help_line(help, sizeof help);
        cJSON_AddStringToObject(o, "help", help);
        return;
    case FARM_REQ_QUIT:
        atomic_store(&c->quit, 1);
        cJSON_AddStringToObject(o, "applied", applied_text(r, what, sizeof what));
        return;
    case FARM_REQ_SET:
    case FARM_REQ_VOICE:
    case FARM_REQ_GAIN:
        break;
    }
}

static int is_change(const farm_request *r) {
    return r->kind == FARM_REQ_SET || r->kind == FARM_REQ_VOICE || r->kind == FARM_REQ_GAIN;
}

/* A batch may mix reading and changing lines: the changes go first, all together; the reply
 * lists every line in order. */
int farm_control_run_message(farm_control *c, const farm_request *reqs, size_t n, cJSON *reply) {
    size_t changes = 0;
    for (size_t i = 0; i < n; i++)
        changes += is_change(&reqs[i]);
    if (n == 1 && changes == 0) {
        answer(c, &reqs[0], reply);
        return FARM_OK;
    }
    if (changes == n)
        return apply_lines(c, reqs, n, reply);
    farm_request *ch = c->batch + FARM_BATCH_MAX; /* the second half holds the changes */
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (is_change(&reqs[i]))
            ch[m++] = reqs[i];
    cJSON *tmp = cJSON_CreateObject();
    cJSON_AddBoolToObject(tmp, "ok", 1); /* a single change's result is tmp itself */
    int rv = m ? apply_lines(c, ch, m, tmp) : FARM_OK;
    if (rv == FARM_OK) {
        cJSON *block = cJSON_GetObjectItem(tmp, "from_block");
        if (block != NULL)
            cJSON_AddNumberToObject(reply, "from_block", block->valuedouble);
        cJSON *results = cJSON_AddArrayToObject(reply, "results");
        cJSON *done = m > 1 ? cJSON_GetObjectItem(tmp, "results") : NULL;
        for (size_t i = 0, j = 0; i < n; i++) {
            cJSON *o;
            if (is_change(&reqs[i]))
                o = m > 1 ? cJSON_Duplicate(cJSON_GetArrayItem(done, (int)j++), 1)
                          : cJSON_Duplicate(tmp, 1);
            else {
                o = cJSON_CreateObject();
                cJSON_AddBoolToObject(o, "ok", 1);
                answer(c, &reqs[i], o);
            }
            cJSON_AddItemToArray(results, o);
        }
    }
    cJSON_Delete(tmp);
    return rv;
}
