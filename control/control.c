/* The control server: see control.h for its contract and CONTROL.md for the protocol. */
#define _GNU_SOURCE
#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <nng/nng.h>
#include <nng/protocol/pubsub0/pub.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/supplemental/tls/tls.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "control.h"
#include "dsp.h"
#include "proto.h"

#define THREAD_STACK (256 * 1024) /* small and explicit: mlockall locks every thread's stack */
#define RECV_POLL_MS 100          /* how soon the REP thread notices a stop */
#define TELEMETRY_STOP_CHECK_NS (50 * FARM_NS_PER_MS)
/* How long a set request waits for its workers to apply it: the ring's depth in blocks, a few
 * blocks more for a worker the scheduler delayed, and a margin for the machine's stalls. */
#define APPLY_WAIT_EXTRA_BLOCKS 4
#define APPLY_WAIT_MARGIN_NS (50 * FARM_NS_PER_MS)
#define GAIN_WAIT_NS (500 * FARM_NS_PER_MS)
#define TLS_FILE_MAX (1 << 20)
#define REPLY_WAIT_MS 100 /* see send_reply */
#define DEAF_PIPES 64

struct farm_control {
    farm_control_desc desc;
    const shm_config *cfg;
    farm_procs *procs;
    farm_engine *engine;
    farm_audio *audio;
    nng_socket rep, pub;
    int rep_open, pub_open;
    nng_tls_config *tls;
    pthread_t rep_thread, pub_thread;
    int rep_started, pub_started;
    _Atomic int stopping;
    _Atomic int quit;
    uint64_t next_id;
    _Atomic uint64_t replies_dropped;   /* to clients that did not read them */
    _Atomic uint64_t telemetry_dropped; /* messages the PUB socket could not take */
    char control_url[512];
    char telemetry_url[512];
    char ipc_paths[2][512];    /* socket files to remove at the end */
    uint32_t deaf[DEAF_PIPES]; /* pipes of clients that do not read their replies */
    uint32_t deaf_next;
};

/* ---- URLs: private by default, the network only when asked ---- */

static int is_socket(const char *path) {
    struct stat st;
    return lstat(path, &st) == 0 && S_ISSOCK(st.st_mode);
}

/* A farm killed with SIGKILL cannot remove its sockets; the next one clears what dead farms
 * left: sockets named PID.control or PID.telemetry whose PID is gone, and nothing else. */
static void remove_stale_sockets(const char *dir) {
    DIR *d = opendir(dir);
    if (d == NULL)
        return;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        long pid = farm_socket_pid(de->d_name, FARM_CONTROL_SUFFIX);
        if (pid < 0)
            pid = farm_socket_pid(de->d_name, FARM_TELEMETRY_SUFFIX);
        if (pid <= 0 || kill((pid_t)pid, 0) == 0 || errno == EPERM)
            continue;
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        if (is_socket(path))
            unlink(path);
    }
    closedir(d);
}

/* The runtime directory, created private, or refused when someone else could enter it. */
static int make_runtime_dir(char *out, size_t size) {
    farm_runtime_dir(out, size);
    if (mkdir(out, 0700) != 0 && errno != EEXIST)
        return farm_fail(FARM_EFAIL, "cannot create %s: %s", out, strerror(errno));
    struct stat st;
    if (lstat(out, &st) != 0 || !S_ISDIR(st.st_mode) || st.st_uid != getuid() ||
        (st.st_mode & 077) != 0)
        return farm_fail(FARM_EFAIL, "%s must be a directory that only you can enter", out);
    remove_stale_sockets(out);
    return FARM_OK;
}

static int is_loopback_host(const char *host, size_t n) {
    static const char *const names[] = {"localhost", "127.0.0.1", "[::1]", "::1"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strlen(names[i]) == n && strncmp(host, names[i], n) == 0)
            return 1;
    if (n <= 4 || strncmp(host, "127.", 4) != 0)
        return 0;
    for (size_t i = 4; i < n; i++) /* 127.x.y.z, not a name that starts with "127." */
        if (!(host[i] == '.' || (host[i] >= '0' && host[i] <= '9')))
            return 0;
    return 1;
}

/* ipc:// and inproc:// stay on the machine; tcp, ws and tls on a loopback address too. */
static int check_exposure(const char *url, int anywhere, const char *which) {
    const char *sep = strstr(url, "://");
    if (sep == NULL)
        return farm_fail(FARM_EUSAGE,
                         "%s '%s' is not a URL (like ipc:///path or tcp://127.0.0.1:5555)", which,
                         url);
    size_t scheme = (size_t)(sep - url);
    static const char *const local[] = {"ipc", "inproc", "abstract"};
    static const char *const network[] = {"tcp", "tcp4", "tcp6",    "ws",       "ws4",
                                          "ws6", "wss",  "tls+tcp", "tls+tcp4", "tls+tcp6"};
    for (size_t i = 0; i < sizeof local / sizeof local[0]; i++)
        if (strlen(local[i]) == scheme && strncmp(url, local[i], scheme) == 0)
            return FARM_OK;
    int known = 0;
    for (size_t i = 0; i < sizeof network / sizeof network[0]; i++)
        known |= strlen(network[i]) == scheme && strncmp(url, network[i], scheme) == 0;
    if (!known)
        return farm_fail(FARM_EUSAGE,
                         "%s %s: unknown scheme '%.*s' (ipc://, tcp://, ws://, tls+tcp:// ...)",
                         which, url, (int)scheme, url);
    const char *host = sep + 3;
    const char *end = host;
    if (*host == '[')
        end = strchr(host, ']') ? strchr(host, ']') + 1 : host + strlen(host);
    else
        while (*end && *end != ':' && *end != '/')
            end++;
    if (is_loopback_host(host, (size_t)(end - host)))
        return FARM_OK;
    if (!anywhere)
        return farm_fail(FARM_EUSAGE,
                         "%s %s would listen beyond this machine: add --listen-anywhere if "
                         "that is meant",
                         which, url);
    fprintf(stderr,
            "farm: warning: %s %s listens beyond this machine; anyone who can reach it "
            "controls the farm\n",
            which, url);
    return FARM_OK;
}

static int read_file(const char *path, char **out) {
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return farm_fail(FARM_EUSAGE, "cannot read %s: %s", path, strerror(errno));
    char *buf = malloc(TLS_FILE_MAX);
    size_t n = buf ? fread(buf, 1, TLS_FILE_MAX - 1, f) : 0;
    fclose(f);
    if (buf == NULL)
        return farm_fail(FARM_ENOMEM, "out of memory");
    buf[n] = '\0';
    *out = buf;
    return FARM_OK;
}

static int make_tls(farm_control *c) {
    const farm_control_desc *o = &c->desc;
    if (o->tls_cert == NULL && o->tls_key == NULL)
        return FARM_OK;
    if (o->tls_cert == NULL || o->tls_key == NULL)
        return farm_fail(FARM_EUSAGE, "--tls-cert and --tls-key go together");
    int rv = nng_tls_config_alloc(&c->tls, NNG_TLS_MODE_SERVER);
    if (rv != 0)
        return farm_fail(FARM_EUSAGE, "TLS is not available in this NNG: %s", nng_strerror(rv));
    char *cert = NULL, *key = NULL;
    int frv = read_file(o->tls_cert, &cert);
    if (frv == FARM_OK)
        frv = read_file(o->tls_key, &key);
    if (frv == FARM_OK && (rv = nng_tls_config_own_cert(c->tls, cert, key, NULL)) != 0)
        frv = farm_fail(FARM_EUSAGE, "--tls-cert/--tls-key: %s", nng_strerror(rv));
    free(cert);
    free(key);
    return frv;
}

/* An ipc:// path must be free or a stale socket: NNG would replace anything there. */
static int check_ipc_path(const char *url, const char *which) {
    if (strncmp(url, "ipc://", 6) != 0)
        return FARM_OK;
    const char *path = url + 6;
    struct stat st;
    if (lstat(path, &st) != 0)
        return FARM_OK;
    if (!S_ISSOCK(st.st_mode))
        return farm_fail(FARM_EUSAGE, "%s %s: %s is not a socket; farm will not replace it", which,
                         url, path);
    return FARM_OK;
}

/* Listens on url; where it asked for port 0, rewrites url with the port it was given, so what
 * farm prints and reports is where clients can reach it. */
static int listen_on(farm_control *c, nng_socket s, char *url, size_t size, const char *which) {
    nng_listener l;
    int rv = check_ipc_path(url, which);
    if (rv != FARM_OK)
        return rv;
    rv = nng_listener_create(&l, s, url);
    if (rv == 0 && c->tls != NULL && strncmp(url, "tls+", 4) == 0)
        rv = nng_listener_set_ptr(l, NNG_OPT_TLS_CONFIG, c->tls);
    if (rv == 0)
        rv = nng_listener_start(l, 0);
    if (rv != 0)
        return farm_fail(FARM_EUSAGE, "%s %s: %s", which, url, nng_strerror(rv));
    size_t n = strlen(url);
    if (n > 2 && strcmp(url + n - 2, ":0") == 0) {
        int port = -1;
        if (nng_listener_get_int(l, NNG_OPT_TCP_BOUND_PORT, &port) == 0 && port > 0)
            snprintf(url + n - 1, size - (n - 1), "%d", port);
    }
    return FARM_OK;
}

/* ---- applying requests ---- */

static double block_seconds(const farm_control *c) {
    return (double)c->cfg->block_frames / c->cfg->sample_rate;
}

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

/* The workers that hold some of voices [lo, hi), after checking each has room in its command
 * ring: a request applies whole or not at all. A worker left dead (it died too often) gets
 * nothing: its voices are silent, and its ring would only fill; it is named in *dead. */
static int find_targets(farm_control *c, uint64_t lo, uint64_t hi, uint32_t *targets, uint32_t *n,
                        uint32_t *dead, uint32_t *n_dead) {
    farm_procs *p = c->procs;
    *n = *n_dead = 0;
    for (uint32_t k = 0; k < p->count; k++) {
        shm_worker *w = shm_worker_at(&p->region, k);
        if (w->voice_first >= hi || w->voice_first + (uint64_t)w->voice_count <= lo)
            continue;
        if (farm_procs_health(p, k) == FARM_WORKER_GIVEN_UP) {
            dead[(*n_dead)++] = k;
            continue;
        }
        if (shm_ring_fill(&w->cmds) >= w->cmds.slot_count)
            return farm_fail(FARM_EUSAGE, "busy: worker %u has %u commands waiting; try again", k,
                             w->cmds.slot_count);
        targets[(*n)++] = k;
    }
    return FARM_OK;
}

typedef struct applied {
    int all;             /* every live worker applied it */
    uint64_t from_block; /* the stream block it first sounds in */
    uint64_t latency;    /* blocks from the request to then */
} applied;

/* Waits (bounded: the ring's depth and a little more) until each worker has applied command id,
 * to say from which stream block it sounds. Dead workers are not waited for. */
static applied wait_applied(farm_control *c, const uint32_t *targets, uint32_t n, uint64_t id,
                            uint64_t stream_at_request) {
    const double block_s = block_seconds(c);
    uint64_t deadline = farm_now_ns() +
                        (uint64_t)((c->cfg->ring_blocks + APPLY_WAIT_EXTRA_BLOCKS) * block_s *
                                   (double)FARM_NS_PER_S) +
                        APPLY_WAIT_MARGIN_NS;
    applied a = {.all = 1};
    for (uint32_t i = 0; i < n; i++) {
        shm_worker *w = shm_worker_at(&c->procs->region, targets[i]);
        /* Not for one that is being replaced or is stopped: it applies the command when it
         * plays again, and the reply says so at once. */
        while (atomic_load(&w->last_cmd_id) < id && farm_now_ns() < deadline &&
               farm_procs_health(c->procs, targets[i]) == FARM_WORKER_UP &&
               !farm_procs_stalled(c->procs, targets[i]))
            farm_sleep_ns(200 * FARM_NS_PER_US);
        if (atomic_load(&w->last_cmd_id) < id) {
            a.all = 0;
            continue;
        }
        /* in stream blocks: each late block put this worker's ring one block behind */
        uint64_t from = atomic_load(&w->last_cmd_block) + atomic_load(&w->late_blocks);
        a.from_block = from > a.from_block ? from : a.from_block;
    }
    a.latency = a.from_block > stream_at_request ? a.from_block - stream_at_request : 0;
    return a;
}

static int dispatch(farm_control *c, const farm_request *r, cJSON *reply) {
    farm_procs *p = c->procs;
    uint64_t lo = r->first, hi = (uint64_t)r->first + r->count;
    if (r->whole_worker) {
        shm_worker *w = shm_worker_at(&p->region, r->worker);
        lo = w->voice_first;
        hi = lo + w->voice_count;
    }
    uint32_t targets[SHM_MAX_WORKERS], n, dead[SHM_MAX_WORKERS], n_dead;
    int rv = find_targets(c, lo, hi, targets, &n, dead, &n_dead);
    if (rv != FARM_OK)
        return rv;
    uint64_t id = ++c->next_id;
    shm_cmd cmd = {.op = (uint32_t)op_of(r),
                   .first = (uint32_t)lo,
                   .count = (uint32_t)(hi - lo),
                   .ramp_frames = ramp_frames(c, r->ramp),
                   .value = r->value,
                   .id = id};
    uint64_t stream_at_request = farm_engine_stream_block(c->engine);
    /* No wake-up: a worker asleep on a full ring applies it at its next block, which is the
     * soonest it could be heard anyway. find_targets saw room, and only this thread pushes. */
    for (uint32_t i = 0; i < n; i++)
        (void)shm_cmd_push(shm_worker_at(&p->region, targets[i]), p->region.base, &cmd);
    applied a = wait_applied(c, targets, n, id, stream_at_request);
    cJSON_AddNumberToObject(reply, "id", (double)id);
    cJSON_AddNumberToObject(reply, "voices", (double)(hi - lo));
    cJSON *ws = cJSON_AddArrayToObject(reply, "workers");
    for (uint32_t i = 0; i < n; i++)
        cJSON_AddItemToArray(ws, cJSON_CreateNumber(targets[i]));
    if (n_dead > 0) {
        cJSON *ds = cJSON_AddArrayToObject(reply, "dead_workers");
        for (uint32_t i = 0; i < n_dead; i++)
            cJSON_AddItemToArray(ds, cJSON_CreateNumber(dead[i]));
    }
    if (a.all) {
        cJSON_AddNumberToObject(reply, "from_block", (double)a.from_block);
        cJSON_AddNumberToObject(reply, "latency_blocks", (double)a.latency);
        cJSON_AddNumberToObject(reply, "latency_ms", 1000.0 * (double)a.latency * block_seconds(c));
    } else {
        cJSON_AddStringToObject(reply, "pending",
                                "not applied yet: a worker is being replaced, stalled or slow; "
                                "it applies the change when it plays again");
    }
    return FARM_OK;
}

static int set_gain(farm_control *c, const farm_request *r, cJSON *reply) {
    uint32_t ticket = farm_engine_set_gain(c->engine, (float)r->value, ramp_frames(c, r->ramp));
    uint64_t deadline = farm_now_ns() + GAIN_WAIT_NS, block;
    while (!farm_engine_gain_applied(c->engine, ticket, &block) && farm_now_ns() < deadline)
        farm_sleep_ns(200 * FARM_NS_PER_US);
    if (farm_engine_gain_applied(c->engine, ticket, &block))
        cJSON_AddNumberToObject(reply, "from_block", (double)block);
    return FARM_OK;
}

/* ---- status and telemetry ---- */

static void add_config(farm_control *c, cJSON *root) {
    const shm_config *o = c->cfg;
    cJSON *cfg = cJSON_AddObjectToObject(root, "config");
    cJSON_AddNumberToObject(cfg, "workers", o->workers);
    cJSON_AddNumberToObject(cfg, "voices", o->total_voices);
    cJSON_AddNumberToObject(cfg, "sample_rate", o->sample_rate);
    cJSON_AddNumberToObject(cfg, "buffersize", o->block_frames);
    cJSON_AddNumberToObject(cfg, "channels", o->channels);
    cJSON_AddNumberToObject(cfg, "ring_blocks", o->ring_blocks);
    cJSON_AddNumberToObject(cfg, "seed", (double)o->seed);
    cJSON_AddNumberToObject(cfg, "freq_min", o->freq_min);
    cJSON_AddNumberToObject(cfg, "freq_max", o->freq_max);
    cJSON_AddNumberToObject(cfg, "feedback", o->feedback);
    cJSON_AddNumberToObject(cfg, "amp", o->amp);
    cJSON_AddNumberToObject(cfg, "ramp_s", o->ramp_seconds);
    cJSON_AddStringToObject(cfg, "oscillator", o->oscillator == SHM_OSC_SINE ? "sine" : "sineloop");
    cJSON_AddStringToObject(cfg, "kernel", dsp_isa());
    cJSON_AddStringToObject(cfg, "output", farm_audio_describe(c->audio));
    cJSON_AddStringToObject(cfg, "control", c->control_url);
    cJSON_AddStringToObject(cfg, "telemetry", c->telemetry_url);
    cJSON_AddNumberToObject(cfg, "gain", farm_engine_gain(c->engine));
}

static void add_stream(farm_control *c, cJSON *root) {
    const shm_stream_stats *st = &shm_header_of(&c->procs->region)->stream;
    cJSON *s = cJSON_AddObjectToObject(root, "stream");
    cJSON_AddNumberToObject(s, "seconds", (double)atomic_load(&st->frames) / c->cfg->sample_rate);
    cJSON_AddNumberToObject(s, "block", (double)farm_engine_stream_block(c->engine));
    cJSON_AddNumberToObject(s, "callbacks", (double)atomic_load(&st->callbacks));
    cJSON_AddNumberToObject(s, "underflows", (double)atomic_load(&st->underflows));
    cJSON_AddNumberToObject(s, "late_blocks", (double)atomic_load(&st->late_blocks));
    cJSON_AddNumberToObject(s, "clipped", (double)atomic_load(&st->clipped));
    cJSON_AddNumberToObject(s, "record_dropped", (double)atomic_load(&st->record_dropped));
    cJSON_AddNumberToObject(s, "cpu_load", atomic_load(&st->cpu_load_permille) / 1000.0);
    cJSON_AddNumberToObject(s, "replies_dropped", (double)atomic_load(&c->replies_dropped));
    cJSON_AddNumberToObject(s, "telemetry_dropped", (double)atomic_load(&c->telemetry_dropped));
    cJSON *cb = cJSON_AddObjectToObject(s, "callback_us");
    cJSON_AddNumberToObject(cb, "median", shm_cb_percentile_ns(st, 50) / 1e3);
    cJSON_AddNumberToObject(cb, "p99", shm_cb_percentile_ns(st, 99) / 1e3);
    cJSON_AddNumberToObject(cb, "max", atomic_load(&st->cb_ns_max) / 1e3);
    cJSON_AddNumberToObject(cb, "period", block_seconds(c) * 1e6);
}

static const char *worker_state(farm_control *c, uint32_t k) {
    static const char *const states[] = {"starting", "running", "stopped", "failed"};
    uint32_t st = atomic_load(&shm_worker_at(&c->procs->region, k)->state);
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
    const double block_s = block_seconds(c);
    cJSON *ws = cJSON_AddArrayToObject(root, "workers");
    for (uint32_t k = 0; k < c->procs->count; k++) {
        shm_worker *w = shm_worker_at(&c->procs->region, k);
        cJSON *o = cJSON_CreateObject();
        uint32_t min_fill = atomic_load(&w->min_fill);
        cJSON_AddNumberToObject(o, "id", k);
        cJSON_AddNumberToObject(o, "pid", atomic_load(&w->pid));
        cJSON_AddNumberToObject(o, "cpu", atomic_load(&w->cpu));
        cJSON_AddStringToObject(o, "state", worker_state(c, k));
        cJSON_AddNumberToObject(o, "restarts", farm_procs_restarts(c->procs, k));
        cJSON_AddNumberToObject(o, "blocks_missed", (double)farm_procs_blocks_missed(c->procs, k));
        cJSON_AddNumberToObject(o, "voices", w->voice_count);
        cJSON_AddNumberToObject(o, "voices_playing", atomic_load(&w->voices_playing));
        cJSON_AddNumberToObject(o, "first_voice", w->voice_first);
        cJSON_AddNumberToObject(o, "load", shm_worker_load(w, block_s, 0));
        cJSON_AddNumberToObject(o, "load_peak", shm_worker_load(w, block_s, 1));
        cJSON_AddNumberToObject(o, "late_blocks", (double)atomic_load(&w->late_blocks));
        cJSON_AddNumberToObject(o, "lowest_ring_fill",
                                min_fill == UINT32_MAX ? -1.0 : (double)min_fill);
        cJSON_AddNumberToObject(o, "blocks_rendered", (double)atomic_load(&w->blocks_rendered));
        cJSON_AddItemToArray(ws, o);
    }
}

/* The live counters, for status replies and telemetry alike. */
static void add_counters(farm_control *c, cJSON *root) {
    add_stream(c, root);
    add_workers(c, root);
}

/* ---- one request in, one JSON reply out ---- */

static const char *applied_text(const farm_request *r, char *buf, size_t size) {
    switch (r->kind) {
    case FARM_REQ_GAIN:
        snprintf(buf, size, "gain %g", r->value);
        break;
    case FARM_REQ_SET:
        snprintf(buf, size, "%s %g", farm_params[r->param].name, r->value);
        break;
    case FARM_REQ_VOICE:
        snprintf(buf, size, "%s", r->play ? "play" : "stop");
        break;
    case FARM_REQ_QUIT:
        snprintf(buf, size, "quit: fading out and stopping");
        break;
    case FARM_REQ_STATUS:
    case FARM_REQ_HELP:
        buf[0] = '\0';
        break;
    }
    return buf;
}

static int run_request(farm_control *c, const farm_request *r, cJSON *reply) {
    char what[160], help[512];
    if (applied_text(r, what, sizeof what)[0])
        cJSON_AddStringToObject(reply, "applied", what);
    switch (r->kind) {
    case FARM_REQ_STATUS:
        add_config(c, reply);
        add_counters(c, reply);
        return FARM_OK;
    case FARM_REQ_HELP:
        farm_help_line(help, sizeof help);
        cJSON_AddStringToObject(reply, "help", help);
        return FARM_OK;
    case FARM_REQ_QUIT:
        atomic_store(&c->quit, 1);
        return FARM_OK;
    case FARM_REQ_GAIN:
        return set_gain(c, r, reply);
    case FARM_REQ_SET:
    case FARM_REQ_VOICE:
        break;
    }
    return dispatch(c, r, reply);
}

static char *handle(farm_control *c, const char *text, size_t len) {
    farm_request_limits lim = {.voices = c->cfg->total_voices,
                               .workers = c->cfg->workers,
                               .channels = c->cfg->channels,
                               .sample_rate = c->cfg->sample_rate};
    farm_request r;
    cJSON *reply = cJSON_CreateObject();
    cJSON_AddBoolToObject(reply, "ok", 1); /* first, so the verdict reads at a glance */
    farm_error_clear();
    int rv = farm_request_parse(text, len, &lim, &r);
    if (rv == FARM_OK)
        rv = run_request(c, &r, reply);
    if (rv == FARM_OK &&
        (r.kind == FARM_REQ_SET || r.kind == FARM_REQ_VOICE || r.kind == FARM_REQ_GAIN))
        cJSON_AddNumberToObject(reply, "ramp_s", r.ramp < 0 ? c->cfg->ramp_seconds : r.ramp);
    if (rv != FARM_OK) {
        cJSON_Delete(reply);
        reply = cJSON_CreateObject();
        cJSON_AddBoolToObject(reply, "ok", 0);
        cJSON_AddStringToObject(reply, "error", farm_error_message());
    }
    char *out = cJSON_PrintUnformatted(reply);
    cJSON_Delete(reply);
    return out;
}

/* ---- threads ---- */

/* A client that sends and never reads would block the REP thread in its send, and every other
 * client with it. A reply gets REPLY_WAIT_MS to leave (a client that reads takes it at once;
 * the wait only covers NNG finishing the previous reply on that pipe); one that does not leave
 * is dropped, counted, and its pipe marked deaf: until a reply to it leaves at once again, its
 * replies are dropped without waiting. */
static int is_deaf(const farm_control *c, uint32_t pipe) {
    for (int i = 0; i < DEAF_PIPES; i++)
        if (c->deaf[i] == pipe)
            return 1;
    return 0;
}

static void set_deaf(farm_control *c, uint32_t pipe, int deaf) {
    for (int i = 0; i < DEAF_PIPES; i++)
        if (c->deaf[i] == pipe)
            c->deaf[i] = 0;
    if (deaf)
        c->deaf[c->deaf_next++ % DEAF_PIPES] = pipe;
}

static void send_reply(farm_control *c, nng_msg *req, const char *reply) {
    uint32_t pipe = nng_pipe_id(nng_msg_get_pipe(req));
    int deaf = is_deaf(c, pipe);
    nng_msg_clear(req); /* the request's message carries the reply: NNG routes it back */
    if (reply == NULL || nng_msg_append(req, reply, strlen(reply)) != 0) {
        nng_msg_free(req);
        atomic_fetch_add(&c->replies_dropped, 1);
        return;
    }
    int rv = nng_sendmsg(c->rep, req, deaf ? NNG_FLAG_NONBLOCK : 0);
    if (rv != 0) {
        nng_msg_free(req);
        atomic_fetch_add(&c->replies_dropped, 1);
    }
    if ((rv != 0) != deaf)
        set_deaf(c, pipe, rv != 0);
}

static void *rep_main(void *arg) {
    farm_control *c = arg;
    while (!atomic_load(&c->stopping)) {
        nng_msg *req = NULL;
        int rv = nng_recvmsg(c->rep, &req, 0);
        if (rv == NNG_ETIMEDOUT)
            continue;
        if (rv != 0)
            break; /* closed */
        char *reply = handle(c, nng_msg_body(req), nng_msg_len(req));
        send_reply(c, req, reply);
        free(reply);
    }
    return NULL;
}

static void publish(farm_control *c) {
    cJSON *root = cJSON_CreateObject();
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    cJSON_AddNumberToObject(root, "time", (double)ts.tv_sec + ts.tv_nsec * 1e-9);
    add_counters(c, root);
    char *json = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    size_t n = json ? strlen(json) : 0;
    char *msg = json ? malloc(FARM_TELEMETRY_TOPIC_LEN + n + 1) : NULL;
    int sent = 0;
    if (msg != NULL) {
        memcpy(msg, FARM_TELEMETRY_TOPIC, FARM_TELEMETRY_TOPIC_LEN);
        memcpy(msg + FARM_TELEMETRY_TOPIC_LEN, json, n + 1);
        sent = nng_send(c->pub, msg, FARM_TELEMETRY_TOPIC_LEN + n, NNG_FLAG_NONBLOCK) == 0;
    }
    if (!sent)
        atomic_fetch_add(&c->telemetry_dropped, 1);
    free(msg);
    free(json);
}

static void *pub_main(void *arg) {
    farm_control *c = arg;
    const uint64_t period = (uint64_t)(1e9 / c->desc.telemetry_rate);
    uint64_t next = farm_now_ns();
    while (!atomic_load(&c->stopping)) {
        next += period;
        /* sleep in short steps to the next deadline, so a stop is noticed within 50 ms */
        uint64_t now;
        while ((now = farm_now_ns()) < next && !atomic_load(&c->stopping)) {
            uint64_t left = next - now;
            farm_sleep_ns(left > TELEMETRY_STOP_CHECK_NS ? TELEMETRY_STOP_CHECK_NS : left);
        }
        if (atomic_load(&c->stopping))
            break;
        if (now > next + period)
            next = now; /* fell behind (suspended?): do not burst to catch up */
        publish(c);
    }
    return NULL;
}

static void remember_ipc(farm_control *c, int i, const char *url) {
    if (strncmp(url, "ipc://", 6) == 0)
        snprintf(c->ipc_paths[i], sizeof c->ipc_paths[i], "%s", url + 6);
}

static int choose_urls(farm_control *c) {
    const farm_control_desc *o = &c->desc;
    char dir[400];
    int rv;
    if ((o->control_url == NULL || o->telemetry_url == NULL) &&
        (rv = make_runtime_dir(dir, sizeof dir)) != FARM_OK)
        return rv;
    if (o->control_url)
        snprintf(c->control_url, sizeof c->control_url, "%s", o->control_url);
    else
        snprintf(c->control_url, sizeof c->control_url, "ipc://%s/%ld%s", dir, (long)getpid(),
                 FARM_CONTROL_SUFFIX);
    if (o->telemetry_url)
        snprintf(c->telemetry_url, sizeof c->telemetry_url, "%s", o->telemetry_url);
    else
        snprintf(c->telemetry_url, sizeof c->telemetry_url, "ipc://%s/%ld%s", dir, (long)getpid(),
                 FARM_TELEMETRY_SUFFIX);
    if ((rv = check_exposure(c->control_url, o->listen_anywhere, "--control")) != FARM_OK)
        return rv;
    return check_exposure(c->telemetry_url, o->listen_anywhere, "--telemetry");
}

static int open_sockets(farm_control *c) {
    int e, rv;
    if ((e = nng_rep0_open(&c->rep)) != 0)
        return farm_fail(FARM_EFAIL, "cannot open the control socket: %s", nng_strerror(e));
    c->rep_open = 1;
    if ((e = nng_pub0_open(&c->pub)) != 0)
        return farm_fail(FARM_EFAIL, "cannot open the telemetry socket: %s", nng_strerror(e));
    c->pub_open = 1;
    /* Requests over FARM_REQUEST_MAX get an error reply; NNG drops what is over this. */
    if ((e = nng_socket_set_size(c->rep, NNG_OPT_RECVMAXSZ, FARM_RECV_MAX)) != 0 ||
        (e = nng_socket_set_ms(c->rep, NNG_OPT_RECVTIMEO, RECV_POLL_MS)) != 0 ||
        (e = nng_socket_set_ms(c->rep, NNG_OPT_SENDTIMEO, REPLY_WAIT_MS)) != 0)
        return farm_fail(FARM_EFAIL, "cannot set up the control socket: %s", nng_strerror(e));
    if ((rv = listen_on(c, c->rep, c->control_url, sizeof c->control_url, "--control")) != FARM_OK)
        return rv;
    remember_ipc(c, 0, c->control_url);
    if ((rv = listen_on(c, c->pub, c->telemetry_url, sizeof c->telemetry_url, "--telemetry")) !=
        FARM_OK)
        return rv;
    remember_ipc(c, 1, c->telemetry_url);
    return FARM_OK;
}

static int start_threads(farm_control *c) {
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, THREAD_STACK);
    c->rep_started = pthread_create(&c->rep_thread, &attr, rep_main, c) == 0;
    c->pub_started = pthread_create(&c->pub_thread, &attr, pub_main, c) == 0;
    pthread_attr_destroy(&attr);
    if (!c->rep_started || !c->pub_started)
        return farm_fail(FARM_EFAIL, "cannot start the control threads");
    return FARM_OK;
}

int farm_control_start(farm_control **out, const farm_control_desc *desc, farm_procs *procs,
                       farm_engine *engine, farm_audio *audio) {
    *out = NULL;
    farm_control *c = calloc(1, sizeof *c);
    if (c == NULL)
        return farm_fail(FARM_ENOMEM, "out of memory");
    c->desc = *desc;
    c->cfg = &shm_header_of(&procs->region)->config;
    c->procs = procs;
    c->engine = engine;
    c->audio = audio;
    int rv;
    if ((rv = choose_urls(c)) != FARM_OK || (rv = make_tls(c)) != FARM_OK ||
        (rv = open_sockets(c)) != FARM_OK || (rv = start_threads(c)) != FARM_OK) {
        farm_control_stop(c);
        return rv;
    }
    *out = c;
    return FARM_OK;
}

const char *farm_control_url(const farm_control *c) {
    return c->control_url;
}

const char *farm_control_telemetry_url(const farm_control *c) {
    return c->telemetry_url;
}

int farm_control_quit_requested(const farm_control *c) {
    return c != NULL && atomic_load(&c->quit);
}

void farm_control_stop(farm_control *c) {
    if (c == NULL)
        return;
    atomic_store(&c->stopping, 1);
    if (c->rep_open)
        nng_close(c->rep); /* wakes the thread's nng_recv */
    if (c->pub_open)
        nng_close(c->pub);
    if (c->rep_started)
        pthread_join(c->rep_thread, NULL);
    if (c->pub_started)
        pthread_join(c->pub_thread, NULL);
    if (c->tls)
        nng_tls_config_free(c->tls);
    for (int i = 0; i < 2; i++)
        if (c->ipc_paths[i][0] && is_socket(c->ipc_paths[i]))
            unlink(c->ipc_paths[i]);
    free(c);
}
