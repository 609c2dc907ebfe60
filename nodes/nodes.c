/* The links to the nodes: two REQ sockets each (the poll thread's and the control thread's, so
 * neither waits behind the other), dialled without blocking so NNG keeps redialling a node
 * that is down, and a thread that asks each node for its status. */
#define _GNU_SOURCE
#include "nodes.h"

#include <cjson/cJSON.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <nng/supplemental/tls/tls.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plat.h"

#define POLL_TIMEOUT_MS 300
#define REDIAL_MIN_MS 100
#define REDIAL_MAX_MS 1000
#define THREAD_STACK (256 * 1024)

typedef struct node {
    farm_node_info info; /* under the lock */
    nng_socket poll, send;
    int poll_open, send_open;
    uint64_t heard, heard_at_ns; /* the poll thread's own */
} node;

struct farm_nodes {
    node *nodes;
    uint32_t count, channels, sample_rate;
    farm_audio *audio;
    nng_tls_config *tls;
    pthread_mutex_t lock;
    pthread_t thread;
    int thread_started;
    _Atomic int stopping;
};

static int dial(farm_nodes *n, nng_socket *s, const char *url, const char *name) {
    int rv = nng_req0_open(s);
    if (rv != 0)
        return farm_fail(FARM_EFAIL, "node %s: %s", name, nng_strerror(rv));
    nng_socket_set_ms(*s, NNG_OPT_RECONNMINT, REDIAL_MIN_MS);
    nng_socket_set_ms(*s, NNG_OPT_RECONNMAXT, REDIAL_MAX_MS);
    nng_socket_set_size(*s, NNG_OPT_RECVMAXSZ, 1 << 22);
    nng_dialer d;
    if ((rv = nng_dialer_create(&d, *s, url)) != 0)
        return farm_fail(FARM_EUSAGE, "--node %s=%s: %s", name, url, nng_strerror(rv));
    if (strncmp(url, "tls+", 4) == 0 &&
        (rv = nng_dialer_set_ptr(d, NNG_OPT_TLS_CONFIG, n->tls)) != 0)
        return farm_fail(FARM_EUSAGE, "--node %s=%s: %s", name, url, nng_strerror(rv));
    /* not blocking: a node that is down now is dialled again until it answers */
    if ((rv = nng_dialer_start(d, NNG_FLAG_NONBLOCK)) != 0)
        return farm_fail(FARM_EUSAGE, "--node %s=%s: %s", name, url, nng_strerror(rv));
    return FARM_OK;
}

static int setup_tls(farm_nodes *n, const char *ca) {
    int rv = nng_tls_config_alloc(&n->tls, NNG_TLS_MODE_CLIENT);
    if (rv != 0)
        return farm_fail(FARM_EFAIL, "TLS for the nodes: %s", nng_strerror(rv));
    if (ca == NULL)
        return nng_tls_config_auth_mode(n->tls, NNG_TLS_AUTH_MODE_NONE) == 0
                   ? FARM_OK
                   : farm_fail(FARM_EFAIL, "TLS for the nodes");
    if ((rv = nng_tls_config_ca_file(n->tls, ca)) != 0 ||
        (rv = nng_tls_config_auth_mode(n->tls, NNG_TLS_AUTH_MODE_REQUIRED)) != 0)
        return farm_fail(FARM_EUSAGE, "--tls-ca %s: %s", ca, nng_strerror(rv));
    return FARM_OK;
}

/* One request on s, its reply as a string; NULL when none came in time. */
static char *ask(nng_socket s, const void *msg, size_t len, int timeout_ms, int *err) {
    nng_socket_set_ms(s, NNG_OPT_SENDTIMEO, timeout_ms);
    nng_socket_set_ms(s, NNG_OPT_RECVTIMEO, timeout_ms);
    if ((*err = nng_send(s, (void *)msg, len, 0)) != 0)
        return NULL;
    char *buf = NULL;
    size_t n = 0;
    if ((*err = nng_recv(s, &buf, &n, NNG_FLAG_ALLOC)) != 0)
        return NULL;
    char *out = malloc(n + 1);
    if (out != NULL) {
        memcpy(out, buf, n);
        out[n] = '\0';
    }
    nng_free(buf, n);
    return out;
}

static double number_at(const cJSON *o, const char *a, const char *b) {
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, a);
    if (b != NULL)
        x = cJSON_GetObjectItemCaseSensitive(x, b);
    return cJSON_IsNumber(x) ? x->valuedouble : 0.0;
}

/* What a node's status says, into info (under the caller's lock). */
static void read_status(farm_nodes *n, const cJSON *st, farm_node_info *info) {
    info->known = 1;
    info->first_voice = (uint32_t)number_at(st, "config", "first_voice");
    info->voices = (uint32_t)number_at(st, "config", "local_voices");
    if (info->voices == 0)
        info->voices = (uint32_t)number_at(st, "config", "voices");
    info->workers = (uint32_t)number_at(st, "config", "workers");
    info->late_blocks = (uint64_t)number_at(st, "stream", "late_blocks");
    info->underflows = (uint64_t)number_at(st, "stream", "underflows");
    double load = 0;
    const cJSON *w;
    cJSON_ArrayForEach(w, cJSON_GetObjectItemCaseSensitive(st, "workers")) {
        double l = number_at(w, "load", NULL);
        load = l > load ? l : load;
    }
    info->load = load;
    uint32_t rate = (uint32_t)number_at(st, "config", "sample_rate");
    uint32_t ch = (uint32_t)number_at(st, "config", "channels");
    info->problem[0] = '\0';
    if (rate != n->sample_rate || ch != n->channels)
        snprintf(info->problem, sizeof info->problem,
                 "plays %u channels at %u Hz; this farm %u at %u Hz", ch, rate, n->channels,
                 n->sample_rate);
}

static void poll_node(farm_nodes *n, uint32_t k) {
    node *d = &n->nodes[k];
    int err;
    char *reply = ask(d->poll, "status", 6, POLL_TIMEOUT_MS, &err);
    cJSON *st = reply ? cJSON_Parse(reply) : NULL;
    free(reply);
    uint32_t ports = farm_audio_node_connect(n->audio, k);
    uint64_t heard = farm_audio_node_heard(n->audio, k), now = farm_now_ns();
    if (heard != d->heard) {
        d->heard = heard;
        d->heard_at_ns = now;
    }
    int silent = ports == 0 || now - d->heard_at_ns > FARM_NODE_SILENT_MS * FARM_NS_PER_MS;
    pthread_mutex_lock(&n->lock);
    farm_node_info *info = &d->info;
    info->ports = ports;
    if (st != NULL && cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(st, "ok"))) {
        read_status(n, st, info);
        info->answers++;
        info->state = silent ? "silent" : "connected";
    } else {
        info->misses++;
        info->state = "unreachable";
    }
    pthread_mutex_unlock(&n->lock);
    cJSON_Delete(st);
}

static void *poll_main(void *arg) {
    farm_nodes *n = arg;
    uint64_t next = farm_now_ns();
    while (!atomic_load(&n->stopping)) {
        for (uint32_t k = 0; k < n->count && !atomic_load(&n->stopping); k++)
            poll_node(n, k);
        next += FARM_NODE_POLL_MS * FARM_NS_PER_MS;
        uint64_t now = farm_now_ns();
        if (next < now)
            next = now;
        while (!atomic_load(&n->stopping) && farm_now_ns() < next)
            farm_sleep_ns(10 * FARM_NS_PER_MS);
    }
    return NULL;
}

static int open_node(farm_nodes *n, uint32_t k, const char *spec) {
    node *d = &n->nodes[k];
    const char *eq = strchr(spec, '=');
    snprintf(d->info.name, sizeof d->info.name, "%.*s", (int)(eq - spec), spec);
    snprintf(d->info.url, sizeof d->info.url, "%s", eq + 1);
    d->info.state = "unreachable";
    d->heard_at_ns = farm_now_ns();
    int rv = dial(n, &d->poll, d->info.url, d->info.name);
    d->poll_open = rv == FARM_OK || d->poll.id != 0;
    if (rv != FARM_OK)
        return rv;
    rv = dial(n, &d->send, d->info.url, d->info.name);
    d->send_open = rv == FARM_OK || d->send.id != 0;
    return rv;
}

static int start_thread(farm_nodes *n) {
    int rv = plat_thread_start(&n->thread, THREAD_STACK, 0, poll_main, n, "the nodes' thread");
    n->thread_started = rv == FARM_OK;
    return rv;
}

int farm_nodes_start(farm_nodes **out, const farm_nodes_desc *desc) {
    *out = NULL;
    farm_nodes *n = calloc(1, sizeof *n);
    if (n == NULL || (n->nodes = calloc(desc->count + 1, sizeof *n->nodes)) == NULL) {
        free(n);
        return farm_fail(FARM_ENOMEM, "out of memory for the nodes");
    }
    pthread_mutex_init(&n->lock, NULL);
    n->audio = desc->audio;
    n->channels = desc->channels;
    n->sample_rate = desc->sample_rate;
    int rv = setup_tls(n, desc->tls_ca);
    for (uint32_t k = 0; k < desc->count && rv == FARM_OK; k++, n->count++)
        rv = open_node(n, k, desc->specs[k]);
    if (rv == FARM_OK)
        rv = start_thread(n);
    if (rv != FARM_OK) {
        farm_nodes_stop(n);
        return rv;
    }
    *out = n;
    return FARM_OK;
}

void farm_nodes_stop(farm_nodes *n) {
    if (n == NULL)
        return;
    atomic_store(&n->stopping, 1);
    if (n->thread_started)
        pthread_join(n->thread, NULL);
    for (uint32_t k = 0; k < n->count + 1 && n->nodes; k++) {
        if (n->nodes[k].poll_open)
            nng_close(n->nodes[k].poll);
        if (n->nodes[k].send_open)
            nng_close(n->nodes[k].send);
    }
    if (n->tls != NULL)
        nng_tls_config_free(n->tls);
    pthread_mutex_destroy(&n->lock);
    free(n->nodes);
    free(n);
}

uint32_t farm_nodes_count(const farm_nodes *n) {
    return n ? n->count : 0;
}

void farm_nodes_info(farm_nodes *n, uint32_t k, farm_node_info *out) {
    pthread_mutex_lock(&n->lock);
    *out = n->nodes[k].info;
    pthread_mutex_unlock(&n->lock);
}

int farm_nodes_send(farm_nodes *n, uint32_t k, const void *msg, size_t len, char **reply) {
    int err;
    *reply = ask(n->nodes[k].send, msg, len, FARM_NODE_TIMEOUT_MS, &err);
    if (*reply != NULL)
        return FARM_OK;
    return farm_fail(FARM_EFAIL, "node %s (%s) did not answer: %s", n->nodes[k].info.name,
                     n->nodes[k].info.url, err ? nng_strerror(err) : "out of memory");
}
