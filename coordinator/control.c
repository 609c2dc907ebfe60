/* Control over NNG: a REP socket takes one-line requests (request.c parses them) and a PUB
 * socket publishes the live counters. Both live on threads of their own, never on the audio
 * callback: a request becomes fixed-size commands in the workers' command rings (applied at
 * their next block, ramped) or a new gain target for the callback; a full ring is refused
 * with an error reply, never met by allocating. See CONTROL.md for the protocol. */
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

#include "coordinator.h"
#include "dsp.h"

struct farm_control {
    const farm_options *opt;
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
    char control_url[512];
    char telemetry_url[512];
    char ipc_paths[2][512]; /* socket files to remove at the end */
};

/* ---- URLs: private by default, the network only when asked ---- */

/* A farm killed with SIGKILL cannot remove its sockets; the next one clears what dead farms
 * left (PID.control, PID.telemetry whose PID is gone). */
static void remove_stale_sockets(const char *dir) {
    DIR *d = opendir(dir);
    if (d == NULL)
        return;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        char *end;
        long pid = strtol(de->d_name, &end, 10);
        if (pid <= 0 || (strcmp(end, ".control") != 0 && strcmp(end, ".telemetry") != 0))
            continue;
        if (kill((pid_t)pid, 0) == 0 || errno == EPERM)
            continue;
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        unlink(path);
    }
    closedir(d);
}

static int runtime_dir(char *out, size_t size) {
    const char *xdg = getenv("XDG_RUNTIME_DIR");
    if (xdg != NULL && xdg[0] == '/')
        snprintf(out, size, "%s/farm", xdg);
    else
        snprintf(out, size, "/tmp/farm-%ld", (long)getuid());
    if (mkdir(out, 0700) != 0 && errno != EEXIST)
        return farm_fail(FARM_EFAIL, "cannot create %s: %s", out, strerror(errno));
    struct stat st;
    if (lstat(out, &st) != 0 || !S_ISDIR(st.st_mode) || st.st_uid != getuid() ||
        (st.st_mode & 077) != 0)
        return farm_fail(FARM_EFAIL, "%s must be a directory that only you can enter", out);
    remove_stale_sockets(out);
    return FARM_OK;
}

int farm_control_dir(char *out, size_t size) {
    return runtime_dir(out, size);
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
    if ((scheme == 3 && strncmp(url, "ipc", 3) == 0) ||
        (scheme == 6 && strncmp(url, "inproc", 6) == 0) ||
        (scheme == 8 && strncmp(url, "abstract", 8) == 0))
        return FARM_OK;
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
    char *buf = malloc(1 << 20);
    size_t n = buf ? fread(buf, 1, (1 << 20) - 1, f) : 0;
    fclose(f);
    if (buf == NULL)
        return farm_fail(FARM_EFAIL, "out of memory");
    buf[n] = '\0';
    *out = buf;
    return FARM_OK;
}

static int make_tls(farm_control *c) {
    const farm_options *o = c->opt;
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

/* Listens on url; where it asked for port 0, rewrites url with the port it was given, so what
 * farm prints and reports is where clients can reach it. */
static int listen_on(farm_control *c, nng_socket s, char *url, size_t size, const char *which) {
    nng_listener l;
    int rv = nng_listener_create(&l, s, url);
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

static uint32_t ramp_frames(const farm_control *c, double seconds) {
    if (seconds < 0)
        seconds = c->opt->ramp;
    return (uint32_t)(seconds * c->opt->sample_rate + 0.5);
}

static const char *param_name(farm_param p) {
    static const char *const names[] = {"freq", "feedback", "amp", "pan"};
    return names[p];
}

static void sleep_us(unsigned us) {
    struct timespec ts = {0, (long)us * 1000L};
    nanosleep(&ts, NULL);
}

/* Pushes one command per worker that holds some of the voices, after checking every one of
 * those rings has room: a request applies whole or not at all. */
static int dispatch(farm_control *c, const farm_request *r, cJSON *reply, char *err, size_t esize) {
    farm_procs *p = c->procs;
    shm_op op;
    if (r->kind == FARM_REQ_VOICE)
        op = r->play ? SHM_OP_VOICE_PLAY : SHM_OP_VOICE_STOP;
    else
        op = (shm_op[]){SHM_OP_SET_FREQ, SHM_OP_SET_FEEDBACK, SHM_OP_SET_AMP,
                        SHM_OP_SET_PAN}[r->param];
    uint64_t lo = r->first, hi = (uint64_t)r->first + r->count;
    if (r->whole_worker) {
        shm_worker *w = shm_worker_at(&p->region, r->worker);
        lo = w->voice_first;
        hi = lo + w->voice_count;
    }
    uint32_t targets[SHM_MAX_WORKERS], n = 0;
    for (uint32_t k = 0; k < p->count; k++) {
        shm_worker *w = shm_worker_at(&p->region, k);
        if (w->voice_first < hi && w->voice_first + (uint64_t)w->voice_count > lo) {
            if (shm_ring_fill(&w->cmds) >= w->cmds.slot_count) {
                snprintf(err, esize, "busy: worker %u has %u commands waiting; try again", k,
                         w->cmds.slot_count);
                return -1;
            }
            targets[n++] = k;
        }
    }
    uint64_t id = ++c->next_id;
    shm_cmd cmd = {.op = (uint32_t)op,
                   .first = (uint32_t)lo,
                   .count = (uint32_t)(hi - lo),
                   .ramp_frames = ramp_frames(c, r->ramp),
                   .value = r->value,
                   .id = id};
    uint64_t heard_at_request[SHM_MAX_WORKERS];
    for (uint32_t i = 0; i < n; i++) {
        shm_worker *w = shm_worker_at(&p->region, targets[i]);
        heard_at_request[i] = atomic_load(&w->audio.read);
        /* no wake-up: a worker asleep on a full ring applies it at its next block, which is
         * the soonest it could be heard anyway */
        shm_cmd_push(w, p->region.base, &cmd);
    }
    /* Wait (bounded: the ring's depth and a little more) until each worker has applied it,
     * to say from which block it sounds. */
    const double block_s = (double)c->opt->buffer_frames / c->opt->sample_rate;
    uint64_t deadline =
        shm_now_ns() + (uint64_t)((c->opt->ring_blocks + 4) * block_s * 1e9) + 50000000u;
    uint64_t from = 0, latency = 0;
    int all_applied = 1;
    for (uint32_t i = 0; i < n; i++) {
        shm_worker *w = shm_worker_at(&p->region, targets[i]);
        while (atomic_load(&w->last_cmd_id) < id && shm_now_ns() < deadline)
            sleep_us(200);
        if (atomic_load(&w->last_cmd_id) < id) {
            all_applied = 0;
            continue;
        }
        uint64_t b = atomic_load(&w->last_cmd_block);
        /* in stream blocks, like gain's: each late block put this worker's ring one block
         * behind the stream */
        uint64_t stream_block = b + atomic_load(&w->late_blocks);
        from = stream_block > from ? stream_block : from;
        uint64_t l = b > heard_at_request[i] ? b - heard_at_request[i] : 0;
        latency = l > latency ? l : latency;
    }
    cJSON_AddNumberToObject(reply, "id", (double)id);
    cJSON_AddNumberToObject(reply, "voices", (double)(hi - lo));
    cJSON *ws = cJSON_AddArrayToObject(reply, "workers");
    for (uint32_t i = 0; i < n; i++)
        cJSON_AddItemToArray(ws, cJSON_CreateNumber(targets[i]));
    if (all_applied) {
        cJSON_AddNumberToObject(reply, "from_block", (double)from);
        cJSON_AddNumberToObject(reply, "latency_blocks", (double)latency);
        cJSON_AddNumberToObject(reply, "latency_ms", 1000.0 * (double)latency * block_s);
    } else {
        cJSON_AddStringToObject(reply, "pending", "not applied yet (a worker is stopped or slow)");
    }
    return 0;
}

static int set_gain(farm_control *c, const farm_request *r, cJSON *reply) {
    farm_engine *e = c->engine;
    uint32_t seq = atomic_load(&e->gain_seq) + 1;
    float g = (float)r->value;
    uint32_t bits;
    memcpy(&bits, &g, sizeof bits);
    atomic_store(&e->gain_target_bits, bits);
    atomic_store(&e->gain_ramp_frames, ramp_frames(c, r->ramp));
    atomic_store_explicit(&e->gain_seq, seq, memory_order_release);
    uint64_t deadline = shm_now_ns() + 500000000u;
    while (atomic_load(&e->gain_seq_seen) != seq && shm_now_ns() < deadline)
        sleep_us(200);
    if (atomic_load(&e->gain_seq_seen) == seq)
        cJSON_AddNumberToObject(reply, "from_block", (double)atomic_load(&e->gain_block));
    return 0;
}

static void status_json(farm_control *c, cJSON *root) {
    const farm_options *o = c->opt;
    cJSON *cfg = cJSON_AddObjectToObject(root, "config");
    cJSON_AddNumberToObject(cfg, "workers", o->workers);
    cJSON_AddNumberToObject(cfg, "voices", o->total_voices);
    cJSON_AddNumberToObject(cfg, "sample_rate", o->sample_rate);
    cJSON_AddNumberToObject(cfg, "buffersize", o->buffer_frames);
    cJSON_AddNumberToObject(cfg, "channels", o->channels);
    cJSON_AddNumberToObject(cfg, "ring_blocks", o->ring_blocks);
    cJSON_AddNumberToObject(cfg, "seed", (double)o->seed);
    cJSON_AddNumberToObject(cfg, "freq_min", o->freq_min);
    cJSON_AddNumberToObject(cfg, "freq_max", o->freq_max);
    cJSON_AddNumberToObject(cfg, "feedback", o->feedback);
    cJSON_AddNumberToObject(cfg, "amp", o->amp);
    cJSON_AddNumberToObject(cfg, "ramp_s", o->ramp);
    cJSON_AddStringToObject(cfg, "oscillator", o->oscillator ? "sine" : "sineloop");
    cJSON_AddStringToObject(cfg, "kernel", dsp_isa());
    cJSON_AddStringToObject(cfg, "output", farm_audio_describe(c->audio));
    cJSON_AddStringToObject(cfg, "control", c->control_url);
    cJSON_AddStringToObject(cfg, "telemetry", c->telemetry_url);
    float gain;
    uint32_t bits = atomic_load(&c->engine->gain_target_bits);
    memcpy(&gain, &bits, sizeof gain);
    cJSON_AddNumberToObject(cfg, "gain", gain);
    farm_control_counters(c, root);
}

/* The live counters, for status replies and telemetry alike. */
void farm_control_counters(farm_control *c, cJSON *root) {
    const farm_options *o = c->opt;
    shm_region *region = &c->procs->region;
    const shm_stream_stats *st = &shm_header_of(region)->stream;
    double block_s = (double)o->buffer_frames / o->sample_rate;
    cJSON *s = cJSON_AddObjectToObject(root, "stream");
    cJSON_AddNumberToObject(s, "seconds", (double)atomic_load(&st->frames) / o->sample_rate);
    cJSON_AddNumberToObject(s, "callbacks", (double)atomic_load(&st->callbacks));
    cJSON_AddNumberToObject(s, "underflows", (double)atomic_load(&st->underflows));
    cJSON_AddNumberToObject(s, "late_blocks", (double)atomic_load(&st->late_blocks));
    cJSON_AddNumberToObject(s, "clipped", (double)atomic_load(&st->clipped));
    cJSON_AddNumberToObject(s, "record_dropped", (double)atomic_load(&st->record_dropped));
    cJSON_AddNumberToObject(s, "cpu_load", atomic_load(&st->cpu_load_permille) / 1000.0);
    cJSON *cb = cJSON_AddObjectToObject(s, "callback_us");
    cJSON_AddNumberToObject(cb, "median", shm_cb_percentile_ns(st, 50) / 1e3);
    cJSON_AddNumberToObject(cb, "p99", shm_cb_percentile_ns(st, 99) / 1e3);
    cJSON_AddNumberToObject(cb, "max", atomic_load(&st->cb_ns_max) / 1e3);
    cJSON_AddNumberToObject(cb, "period", block_s * 1e6);
    cJSON *ws = cJSON_AddArrayToObject(root, "workers");
    for (uint32_t k = 0; k < c->procs->count; k++) {
        shm_worker *w = shm_worker_at(region, k);
        cJSON *o2 = cJSON_CreateObject();
        uint32_t st_w = atomic_load(&w->state);
        static const char *const states[] = {"starting", "running", "stopped", "failed"};
        uint32_t min_fill = atomic_load(&w->min_fill);
        cJSON_AddNumberToObject(o2, "id", k);
        cJSON_AddNumberToObject(o2, "pid", atomic_load(&w->pid));
        cJSON_AddNumberToObject(o2, "cpu", atomic_load(&w->cpu));
        cJSON_AddStringToObject(o2, "state",
                                c->procs->reaped[k] ? "dead"
                                : st_w < 4          ? states[st_w]
                                                    : "unknown");
        cJSON_AddNumberToObject(o2, "voices", w->voice_count);
        cJSON_AddNumberToObject(o2, "voices_playing", atomic_load(&w->voices_playing));
        cJSON_AddNumberToObject(o2, "first_voice", w->voice_first);
        cJSON_AddNumberToObject(o2, "load", atomic_load(&w->render_ns_last) * 1e-9 / block_s);
        cJSON_AddNumberToObject(o2, "load_peak", atomic_load(&w->render_ns_max) * 1e-9 / block_s);
        cJSON_AddNumberToObject(o2, "late_blocks", (double)atomic_load(&w->late_blocks));
        cJSON_AddNumberToObject(o2, "lowest_ring_fill",
                                min_fill == UINT32_MAX ? -1.0 : (double)min_fill);
        cJSON_AddNumberToObject(o2, "blocks_rendered", (double)atomic_load(&w->blocks_rendered));
        cJSON_AddItemToArray(ws, o2);
    }
}

static const char help_text[] =
    "status | set SELECTOR PARAM VALUE [ramp SECONDS] | voice SELECTOR play|stop [ramp SECONDS] "
    "| worker K play|stop [ramp SECONDS] | gain VALUE [ramp SECONDS] | quit | help; SELECTOR is "
    "all, N, A-B or worker:K; PARAM is freq, feedback, amp or pan";

/* One request in, one JSON reply out (caller frees). */
char *farm_control_handle(farm_control *c, const char *text, size_t len) {
    farm_request_limits lim = {.voices = c->opt->total_voices,
                               .workers = c->opt->workers,
                               .channels = c->opt->channels,
                               .sample_rate = c->opt->sample_rate};
    farm_request r;
    char err[256];
    cJSON *reply = cJSON_CreateObject();
    cJSON_AddBoolToObject(reply, "ok", 1); /* first, so the verdict reads at a glance */
    int rv = farm_request_parse(text, len, &lim, &r, err, sizeof err);
    if (rv == 0) {
        switch (r.kind) {
        case FARM_REQ_STATUS:
            status_json(c, reply);
            break;
        case FARM_REQ_HELP:
            cJSON_AddStringToObject(reply, "help", help_text);
            break;
        case FARM_REQ_QUIT:
            atomic_store(&c->quit, 1);
            cJSON_AddStringToObject(reply, "applied", "quit: fading out and stopping");
            break;
        case FARM_REQ_GAIN: {
            char what[96];
            snprintf(what, sizeof what, "gain %g", r.value);
            cJSON_AddStringToObject(reply, "applied", what);
            rv = set_gain(c, &r, reply);
            break;
        }
        case FARM_REQ_SET:
        case FARM_REQ_VOICE: {
            char what[160];
            if (r.kind == FARM_REQ_SET)
                snprintf(what, sizeof what, "%s %g", param_name(r.param), r.value);
            else
                snprintf(what, sizeof what, "%s", r.play ? "play" : "stop");
            cJSON_AddStringToObject(reply, "applied", what);
            rv = dispatch(c, &r, reply, err, sizeof err);
            break;
        }
        }
        if (r.kind != FARM_REQ_STATUS && r.kind != FARM_REQ_HELP && r.kind != FARM_REQ_QUIT &&
            rv == 0) {
            double secs = r.ramp < 0 ? c->opt->ramp : r.ramp;
            cJSON_AddNumberToObject(reply, "ramp_s", secs);
        }
    }
    if (rv != 0) {
        cJSON_Delete(reply);
        reply = cJSON_CreateObject();
        cJSON_AddBoolToObject(reply, "ok", 0);
        cJSON_AddStringToObject(reply, "error", err);
    }
    char *out = cJSON_PrintUnformatted(reply);
    cJSON_Delete(reply);
    return out;
}

/* ---- threads ---- */

static void *rep_main(void *arg) {
    farm_control *c = arg;
    while (!atomic_load(&c->stopping)) {
        char *buf = NULL;
        size_t size = 0;
        int rv = nng_recv(c->rep, &buf, &size, NNG_FLAG_ALLOC);
        if (rv == NNG_ETIMEDOUT)
            continue;
        if (rv != 0)
            break; /* closed */
        char *reply = farm_control_handle(c, buf, size);
        nng_free(buf, size);
        if (reply != NULL) {
            nng_send(c->rep, reply, strlen(reply), 0);
            free(reply);
        }
    }
    return NULL;
}

static void *pub_main(void *arg) {
    farm_control *c = arg;
    const uint64_t period = (uint64_t)(1e9 / c->opt->telemetry_rate);
    uint64_t next = shm_now_ns();
    while (!atomic_load(&c->stopping)) {
        next += period;
        /* sleep in short steps to the next deadline, so a stop is noticed within 50 ms */
        uint64_t now;
        while ((now = shm_now_ns()) < next && !atomic_load(&c->stopping)) {
            uint64_t left = next - now;
            sleep_us((unsigned)(left > 50000000u ? 50000 : left / 1000));
        }
        if (atomic_load(&c->stopping))
            break;
        if (now > next + period)
            next = now; /* fell behind (suspended?): do not burst to catch up */
        cJSON *root = cJSON_CreateObject();
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        cJSON_AddNumberToObject(root, "time", (double)ts.tv_sec + ts.tv_nsec * 1e-9);
        farm_control_counters(c, root);
        char *json = cJSON_PrintUnformatted(root);
        cJSON_Delete(root);
        if (json == NULL)
            continue;
        size_t n = strlen(json);
        char *msg = malloc(n + 7);
        if (msg != NULL) {
            memcpy(msg, "stats ", 6);
            memcpy(msg + 6, json, n + 1);
            nng_send(c->pub, msg, n + 6, NNG_FLAG_NONBLOCK);
            free(msg);
        }
        free(json);
    }
    return NULL;
}

static void remember_ipc(farm_control *c, int i, const char *url) {
    if (strncmp(url, "ipc://", 6) == 0)
        snprintf(c->ipc_paths[i], sizeof c->ipc_paths[i], "%s", url + 6);
}

int farm_control_start(farm_control **out, const farm_options *o, farm_procs *procs,
                       farm_engine *engine, farm_audio *audio) {
    *out = NULL;
    farm_control *c = calloc(1, sizeof *c);
    if (c == NULL)
        return farm_fail(FARM_EFAIL, "out of memory");
    c->opt = o;
    c->procs = procs;
    c->engine = engine;
    c->audio = audio;
    int rv = FARM_OK;
    char dir[400];
    if ((o->control_url == NULL || o->telemetry_url == NULL) &&
        (rv = runtime_dir(dir, sizeof dir)) != FARM_OK) {
        free(c);
        return rv;
    }
    if (o->control_url)
        snprintf(c->control_url, sizeof c->control_url, "%s", o->control_url);
    else
        snprintf(c->control_url, sizeof c->control_url, "ipc://%s/%ld.control", dir,
                 (long)getpid());
    if (o->telemetry_url)
        snprintf(c->telemetry_url, sizeof c->telemetry_url, "%s", o->telemetry_url);
    else
        snprintf(c->telemetry_url, sizeof c->telemetry_url, "ipc://%s/%ld.telemetry", dir,
                 (long)getpid());
    if (rv == FARM_OK)
        rv = check_exposure(c->control_url, o->listen_anywhere, "--control");
    if (rv == FARM_OK)
        rv = check_exposure(c->telemetry_url, o->listen_anywhere, "--telemetry");
    if (rv == FARM_OK)
        rv = make_tls(c);
    int e;
    if (rv == FARM_OK && (e = nng_rep0_open(&c->rep)) != 0)
        rv = farm_fail(FARM_EFAIL, "cannot open the control socket: %s", nng_strerror(e));
    c->rep_open = rv == FARM_OK;
    if (rv == FARM_OK && (e = nng_pub0_open(&c->pub)) != 0)
        rv = farm_fail(FARM_EFAIL, "cannot open the telemetry socket: %s", nng_strerror(e));
    c->pub_open = rv == FARM_OK;
    if (rv == FARM_OK) {
        /* Requests over 64 KiB get an error reply; NNG itself drops what is over 1 MiB. */
        nng_socket_set_size(c->rep, NNG_OPT_RECVMAXSZ, 1 << 20);
        nng_socket_set_ms(c->rep, NNG_OPT_RECVTIMEO, 100);
        rv = listen_on(c, c->rep, c->control_url, sizeof c->control_url, "--control");
    }
    if (rv == FARM_OK)
        rv = listen_on(c, c->pub, c->telemetry_url, sizeof c->telemetry_url, "--telemetry");
    if (rv == FARM_OK) {
        remember_ipc(c, 0, c->control_url);
        remember_ipc(c, 1, c->telemetry_url);
        if (pthread_create(&c->rep_thread, NULL, rep_main, c) == 0)
            c->rep_started = 1;
        if (pthread_create(&c->pub_thread, NULL, pub_main, c) == 0)
            c->pub_started = 1;
        if (!c->rep_started || !c->pub_started)
            rv = farm_fail(FARM_EFAIL, "cannot start the control threads");
    }
    if (rv != FARM_OK) {
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
        if (c->ipc_paths[i][0])
            unlink(c->ipc_paths[i]);
    free(c);
}
