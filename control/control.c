/* The control server: see control.h for its contract and CONTROL.md for the protocol. */
#define _GNU_SOURCE
#include <cjson/cJSON.h>
#include <errno.h>
#include <nng/nng.h>
#include <nng/protocol/pubsub0/pub.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/supplemental/tls/tls.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "control_internal.h"
#include "osc.h"
#include "plat.h"
#include "url_policy.h"

#define RECV_POLL_MS 100 /* how soon a REP thread notices a stop */
#define TELEMETRY_STOP_CHECK_NS (50 * FARM_NS_PER_MS)
#define TLS_FILE_MAX (1 << 20)
#define REPLY_WAIT_MS 100                    /* see send_reply */
#define LEVELS_WAIT_NS (50 * FARM_NS_PER_MS) /* see close_levels */
#define LEVELS_POLL_NS (FARM_NS_PER_MS / 2)

/* ---- URLs: private by default, the network only when asked ---- */

static int is_socket(const char *path) {
    return plat_path_kind_of(path) == PLAT_PATH_SOCKET;
}

/* The runtime directory, created private, or refused when someone else could enter it. A farm
 * killed with SIGKILL (TerminateProcess) cannot remove its sockets (discovery file); the next
 * one clears what dead farms left, and nothing else. */
static int make_runtime_dir(char *out, size_t size) {
    farm_runtime_dir(out, size);
    int rv = plat_private_dir(out);
    if (rv != FARM_OK)
        return rv;
    farm_discover_clean(out);
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

/* An ipc:// path must be free or a stale socket: NNG would replace anything there. (A named
 * pipe, on Windows, is no file: NNG refuses a name in use.) */
static int check_ipc_path(const char *url, const char *which) {
    if (!PLAT_IPC_FILES || strncmp(url, "ipc://", 6) != 0)
        return FARM_OK;
    const char *path = url + 6;
    plat_path_kind kind = plat_path_kind_of(path);
    if (kind != PLAT_PATH_NONE && kind != PLAT_PATH_SOCKET)
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

/* A client that sends and never reads would keep a REP thread in its send. A reply gets
 * REPLY_WAIT_MS to leave (a client that reads takes it at once; the wait only covers NNG
 * finishing the previous reply on that pipe); one that does not leave is dropped, counted, and
 * its pipe marked deaf: until a reply to it leaves at once again, its replies are dropped
 * without waiting. The table is shared by the REP threads. */
static int is_deaf(farm_control *c, uint32_t pipe) {
    int deaf = 0;
    pthread_mutex_lock(&c->deaf_lock);
    for (int i = 0; i < DEAF_PIPES; i++)
        deaf |= c->deaf[i] == pipe;
    pthread_mutex_unlock(&c->deaf_lock);
    return deaf;
}

static void set_deaf(farm_control *c, uint32_t pipe, int deaf) {
    pthread_mutex_lock(&c->deaf_lock);
    for (int i = 0; i < DEAF_PIPES; i++)
        if (c->deaf[i] == pipe)
            c->deaf[i] = 0;
    if (deaf)
        c->deaf[c->deaf_next++ % DEAF_PIPES] = pipe;
    pthread_mutex_unlock(&c->deaf_lock);
}

static void send_reply(rep_server *s, nng_msg *req, const char *reply) {
    farm_control *c = s->c;
    uint32_t pipe = nng_pipe_id(nng_msg_get_pipe(req));
    int deaf = is_deaf(c, pipe);
    nng_msg_clear(req); /* the request's message carries the reply: NNG routes it back */
    if (reply == NULL || nng_msg_append(req, reply, strlen(reply)) != 0) {
        nng_msg_free(req);
        atomic_fetch_add(&c->replies_dropped, 1);
        return;
    }
    nng_aio_set_msg(s->aio, req);
    /* no time at all (a deaf pipe): sent only if the pipe takes it at once */
    nng_aio_set_timeout(s->aio, deaf ? NNG_DURATION_ZERO : REPLY_WAIT_MS);
    nng_ctx_send(s->ctx, s->aio);
    nng_aio_wait(s->aio);
    int rv = nng_aio_result(s->aio);
    if (rv != 0) { /* the message is still ours */
        nng_msg_free(nng_aio_get_msg(s->aio));
        atomic_fetch_add(&c->replies_dropped, 1);
    }
    if ((rv != 0) != deaf)
        set_deaf(c, pipe, rv != 0);
}

/* The next request on this server's context, waiting up to RECV_POLL_MS: 0 and *req, or NNG's
 * error (NNG_ETIMEDOUT when none came; another once the socket is closed). */
static int recv_request(rep_server *s, nng_msg **req) {
    nng_aio_set_timeout(s->aio, RECV_POLL_MS);
    nng_ctx_recv(s->ctx, s->aio);
    nng_aio_wait(s->aio);
    int rv = nng_aio_result(s->aio);
    *req = rv == 0 ? nng_aio_get_msg(s->aio) : NULL;
    return rv;
}

/* REP_SERVERS of these, each on its own context of the REP socket: a request that waits (for
 * room in a worker's queue, for a node, for a slow reader) holds up only its own thread. */
static void *rep_main(void *arg) {
    rep_server *s = arg;
    farm_control *c = s->c;
    while (!atomic_load(&c->stopping)) {
        nng_msg *req = NULL;
        int rv = recv_request(s, &req);
        if (rv == NNG_ETIMEDOUT)
            continue;
        if (rv != 0)
            break; /* closed */
        char *reply = farm_control_request(c, nng_msg_body(req), nng_msg_len(req));
        send_reply(s, req, reply);
        free(reply);
    }
    return NULL;
}

/* Has the callback close the engine's levels window, so that this message's levels are those of
 * the interval since the last message's. It closes it at its next block, within a block period
 * while the stream plays (or a host buffer's, which may hold several blocks): waited for, up to
 * half the telemetry period and at most LEVELS_WAIT_NS or two blocks. A stream that stalls delays
 * the message that much, and the message carries the last window closed. */
static void close_levels(farm_control *c, uint64_t period_ns) {
    uint64_t block_ns = (uint64_t)(farm_control_block_seconds(c) * 1e9);
    uint64_t wait = LEVELS_WAIT_NS > 2 * block_ns ? LEVELS_WAIT_NS : 2 * block_ns;
    if (wait > period_ns / 2)
        wait = period_ns / 2;
    uint64_t ask = farm_engine_ask_levels(c->engine), end = farm_now_ns() + wait;
    farm_levels lv;
    for (;;) {
        farm_engine_levels(c->engine, &lv);
        if (lv.ask >= ask || farm_now_ns() >= end || atomic_load(&c->stopping))
            return;
        farm_sleep_ns(LEVELS_POLL_NS);
    }
}

static void publish(farm_control *c, uint64_t period_ns) {
    close_levels(c, period_ns);
    cJSON *root = cJSON_CreateObject();
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    cJSON_AddNumberToObject(root, "time", (double)ts.tv_sec + ts.tv_nsec * 1e-9);
    farm_control_add_counters(c, root);
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
        publish(c, period);
    }
    return NULL;
}

static void remember_ipc(farm_control *c, int i, const char *url) {
    if (PLAT_IPC_FILES && strncmp(url, "ipc://", 6) == 0)
        snprintf(c->ipc_paths[i], sizeof c->ipc_paths[i], "%s", url + 6);
}

static int choose_urls(farm_control *c) {
    const farm_control_desc *o = &c->desc;
    char *dir = c->runtime_dir;
    int rv;
    if ((o->control_url == NULL || o->telemetry_url == NULL) &&
        (rv = make_runtime_dir(dir, sizeof c->runtime_dir)) != FARM_OK)
        return rv;
    if (o->control_url)
        snprintf(c->control_url, sizeof c->control_url, "%s", o->control_url);
    else
        farm_default_url(c->control_url, sizeof c->control_url, dir, plat_self_pid(),
                         FARM_CONTROL_SUFFIX);
    if (o->telemetry_url)
        snprintf(c->telemetry_url, sizeof c->telemetry_url, "%s", o->telemetry_url);
    else
        farm_default_url(c->telemetry_url, sizeof c->telemetry_url, dir, plat_self_pid(),
                         FARM_TELEMETRY_SUFFIX);
    if ((rv = farm_control_check_url(c->control_url, o->listen_anywhere, "--control")) != FARM_OK)
        return rv;
    return farm_control_check_url(c->telemetry_url, o->listen_anywhere, "--telemetry");
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
    if ((e = nng_socket_set_size(c->rep, NNG_OPT_RECVMAXSZ, FARM_RECV_MAX)) != 0)
        return farm_fail(FARM_EFAIL, "cannot set up the control socket: %s", nng_strerror(e));
    for (int i = 0; i < REP_SERVERS; i++) { /* the waits are the aios' (rep_main) */
        rep_server *r = &c->reps[i];
        r->c = c;
        if ((e = nng_ctx_open(&r->ctx, c->rep)) != 0 ||
            (e = nng_aio_alloc(&r->aio, NULL, NULL)) != 0)
            return farm_fail(FARM_EFAIL, "cannot set up the control socket: %s", nng_strerror(e));
    }
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
    int ok = 1;
    for (int i = 0; i < REP_SERVERS; i++)
        ok &= c->reps[i].started =
            pthread_create(&c->reps[i].thread, &attr, rep_main, &c->reps[i]) == 0;
    c->pub_started = pthread_create(&c->pub_thread, &attr, pub_main, c) == 0;
    pthread_attr_destroy(&attr);
    if (!ok || !c->pub_started)
        return farm_fail(FARM_EFAIL, "cannot start the control threads");
    return FARM_OK;
}

/* OSC's requests, as the REP threads' (osc.h's callback). */
static char *osc_request(void *arg, const char *text, size_t len) {
    return farm_control_request(arg, text, len);
}

/* The OSC transport on desc.osc_url (none without it), where the URL policy lets it listen. */
static int start_osc(farm_control *c) {
    const char *url = c->desc.osc_url;
    if (url == NULL)
        return FARM_OK;
    int rv = farm_osc_check_url(url);
    if (rv == FARM_OK)
        rv = farm_control_check_host(url, c->desc.listen_anywhere, "--osc");
    if (rv == FARM_OK)
        rv = farm_osc_start(&c->osc, url, osc_request, c, &c->replies_dropped);
    if (rv == FARM_OK)
        snprintf(c->osc_url, sizeof c->osc_url, "%s", farm_osc_url(c->osc));
    return rv;
}

/* A farm on its default control socket is found as on Linux: there by its socket file, on
 * Windows by the discovery file written here once every socket listens. */
static int announce(farm_control *c) {
    if (c->desc.control_url != NULL)
        return FARM_OK;
    int rv = farm_announce(c->runtime_dir, plat_self_pid(), c->control_url, c->telemetry_url,
                           farm_control_osc_url(c));
    c->announced = rv == FARM_OK;
    return rv;
}

int farm_control_start(farm_control **out, const farm_control_desc *desc, shm_region *region,
                       farm_procs *procs, farm_engine *engine, farm_audio *audio) {
    *out = NULL;
    farm_control *c = calloc(1, sizeof *c);
    if (c == NULL)
        return farm_fail(FARM_ENOMEM, "out of memory");
    c->desc = *desc;
    c->cfg = shm_config_of(region);
    c->region = region;
    c->procs = procs;
    c->engine = engine;
    c->audio = audio;
    pthread_mutex_init(&c->lock, NULL);
    pthread_mutex_init(&c->deaf_lock, NULL);
    int rv;
    if ((rv = farm_control_apply_init(c)) != FARM_OK || (rv = choose_urls(c)) != FARM_OK ||
        (rv = make_tls(c)) != FARM_OK || (rv = open_sockets(c)) != FARM_OK ||
        (rv = start_osc(c)) != FARM_OK || (rv = start_threads(c)) != FARM_OK ||
        (rv = announce(c)) != FARM_OK) {
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

const char *farm_control_osc_url(const farm_control *c) {
    return c->osc_url[0] ? c->osc_url : NULL;
}

int farm_control_quit_requested(const farm_control *c) {
    return c != NULL && atomic_load(&c->quit);
}

/* NNG 1.5.2 can hang in nng_close while a pipe has a send pending that will never finish
 * (nanomsg/nng#1543: seen here when a client that did not read was killed). Exiting must not
 * hang: the sockets are closed on a thread of their own, waited for a moment, and otherwise
 * left to the process's exit, which closes them anyway. */
#define CLOSE_WAIT_NS (2 * FARM_NS_PER_S)

typedef struct closer {
    nng_socket rep, pub;
    int rep_open, pub_open;
    _Atomic int done;
} closer;

static void *close_sockets(void *arg) {
    closer *k = arg;
    if (k->rep_open)
        nng_close(k->rep);
    if (k->pub_open)
        nng_close(k->pub);
    atomic_store(&k->done, 1);
    return NULL;
}

static void close_bounded(farm_control *c) {
    closer *k = malloc(sizeof *k);
    pthread_t t;
    if (k == NULL)
        return;
    *k = (closer){.rep = c->rep, .pub = c->pub, .rep_open = c->rep_open, .pub_open = c->pub_open};
    if (pthread_create(&t, NULL, close_sockets, k) != 0) {
        free(k);
        return;
    }
    uint64_t deadline = farm_now_ns() + CLOSE_WAIT_NS;
    while (!atomic_load(&k->done) && farm_now_ns() < deadline)
        farm_sleep_ns(FARM_NS_PER_MS);
    if (atomic_load(&k->done)) {
        pthread_join(t, NULL);
        free(k);
        return;
    }
    pthread_detach(t); /* k stays with it: the process exits soon */
    fprintf(stderr,
            "farm: warning: the control sockets did not close within %llu s; left to "
            "the exit\n",
            CLOSE_WAIT_NS / FARM_NS_PER_S);
}

void farm_control_stop(farm_control *c) {
    if (c == NULL)
        return;
    /* The threads notice within their poll (RECV_POLL_MS, TELEMETRY_STOP_CHECK_NS) and leave;
     * a request that waits for room stops waiting (dispatch.c), and a reply being sent waits at
     * most REPLY_WAIT_MS. */
    atomic_store(&c->stopping, 1);
    if (c->announced) /* first: no client finds a farm that is going */
        farm_withdraw(c->runtime_dir, plat_self_pid());
    for (int i = 0; i < REP_SERVERS; i++)
        if (c->reps[i].started)
            pthread_join(c->reps[i].thread, NULL);
    if (c->pub_started)
        pthread_join(c->pub_thread, NULL);
    farm_osc_stop(c->osc); /* its thread may be in a request: before what requests use goes */
    c->osc = NULL;
    for (int i = 0; i < REP_SERVERS; i++)
        if (c->reps[i].aio != NULL)
            nng_aio_free(c->reps[i].aio); /* idle: its thread has left; nng_close closes the
                                           * contexts */
    close_bounded(c);
    if (c->tls)
        nng_tls_config_free(c->tls);
    for (int i = 0; i < 2; i++)
        if (c->ipc_paths[i][0] && is_socket(c->ipc_paths[i]))
            plat_remove_file(c->ipc_paths[i]);
    farm_control_apply_free(c);
    pthread_mutex_destroy(&c->lock);
    pthread_mutex_destroy(&c->deaf_lock);
    free(c);
}
