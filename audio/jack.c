/* The JACK backend, on libjack itself rather than through PortAudio: farm's own client name
 * (--jack-name), where its outputs go (--connect), and input ports that bring the audio of
 * NetJACK2 nodes (--node) into the mix. The process callback deinterleaves what the engine
 * mixes; it allocates nothing, locks nothing and prints nothing. */
#define _GNU_SOURCE
#include <errno.h>
#include <jack/jack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audio_internal.h"

#define JACK_FRAMES_MAX 8192u /* the most frames a JACK period has */

typedef struct jack_backend {
    farm_audio base;
    jack_client_t *client;
    uint32_t channels, nodes;
    jack_port_t **out; /* [channel] */
    jack_port_t **in;  /* [node][channel] */
    char (*node_names)[JACK_NODE_NAME_MAX];
    float *mixed, *bus;      /* interleaved, JACK_FRAMES_MAX frames */
    _Atomic uint64_t *heard; /* per node: periods in which its ports carried a sample */
    _Atomic int xrun, shut_down, active;
    _Atomic uint64_t too_long; /* periods longer than JACK_FRAMES_MAX: played as silence */
    char *connect;             /* --connect, NULL: system */
    int dry;                   /* checking --connect at open: nothing is connected */
} jack_backend;

static jack_backend *jack_of(farm_audio *a) {
    return (jack_backend *)a;
}

/* The nodes' ports summed into the interleaved bus; each node that carried a sample noted. */
static void gather_nodes(jack_backend *j, jack_nframes_t n) {
    const uint32_t ch = j->channels;
    memset(j->bus, 0, (size_t)n * ch * sizeof(float));
    for (uint32_t k = 0; k < j->nodes; k++) {
        int any = 0;
        for (uint32_t c = 0; c < ch; c++) {
            const float *src = jack_port_get_buffer(j->in[k * ch + c], n);
            for (jack_nframes_t f = 0; f < n; f++) {
                j->bus[(size_t)f * ch + c] += src[f];
                any |= src[f] != 0.0f;
            }
        }
        if (any)
            atomic_fetch_add_explicit(&j->heard[k], 1, memory_order_relaxed);
    }
}

static int jack_process(jack_nframes_t n, void *arg) {
    jack_backend *j = arg;
    const uint32_t ch = j->channels;
    if (n > JACK_FRAMES_MAX) {
        atomic_fetch_add_explicit(&j->too_long, 1, memory_order_relaxed);
        for (uint32_t c = 0; c < ch; c++)
            memset(jack_port_get_buffer(j->out[c], n), 0, n * sizeof(float));
        return 0;
    }
    int xrun = atomic_exchange_explicit(&j->xrun, 0, memory_order_relaxed);
    if (j->nodes > 0)
        gather_nodes(j, n);
    farm_engine_process_input(j->base.engine, j->mixed, n, xrun, j->nodes > 0 ? j->bus : NULL);
    for (uint32_t c = 0; c < ch; c++) {
        float *dst = jack_port_get_buffer(j->out[c], n);
        for (jack_nframes_t f = 0; f < n; f++)
            dst[f] = j->mixed[(size_t)f * ch + c];
    }
    return 0;
}

static int jack_xrun(void *arg) {
    atomic_store_explicit(&((jack_backend *)arg)->xrun, 1, memory_order_relaxed);
    return 0;
}

static void jack_shutdown(void *arg) {
    atomic_store(&((jack_backend *)arg)->shut_down, 1);
}

/* ---- connections ---- */

static int connect_pair(jack_backend *j, const char *from, const char *to) {
    if (j->dry)
        return FARM_OK;
    int rv = jack_connect(j->client, from, to);
    return rv == 0 || rv == EEXIST ? FARM_OK : FARM_EFAIL;
}

/* Output c to ports[c] for as many as both have. */
static int connect_outputs(jack_backend *j, const char **ports, const char *what) {
    uint32_t c = 0;
    for (; c < j->channels && ports[c] != NULL; c++)
        if (connect_pair(j, jack_port_name(j->out[c]), ports[c]) != FARM_OK)
            return farm_fail(FARM_EUSAGE, "--connect %s: cannot connect %s to %s", what,
                             jack_port_name(j->out[c]), ports[c]);
    return FARM_OK;
}

/* A comma-separated list of full port names, one per output in order. */
static int connect_list(jack_backend *j, const char *list) {
    char buf[1024];
    const char *ports[FARM_ENGINE_MAX_CHANNELS + 1] = {0};
    if (strlen(list) >= sizeof buf)
        return farm_fail(FARM_EUSAGE, "--connect: the list is too long");
    strcpy(buf, list);
    uint32_t n = 0;
    for (char *save = NULL, *p = strtok_r(buf, ",", &save); p != NULL;
         p = strtok_r(NULL, ",", &save)) {
        if (n == j->channels)
            return farm_fail(FARM_EUSAGE, "--connect: more ports than the %u channels",
                             j->channels);
        if (jack_port_by_name(j->client, p) == NULL)
            return farm_fail(FARM_EUSAGE, "--connect: no JACK port '%s' (see jack_lsp)", p);
        ports[n++] = p;
    }
    return connect_outputs(j, ports, list);
}

static int connect_ports(jack_backend *j, const char *spec) {
    if (spec != NULL && strcmp(spec, "none") == 0)
        return FARM_OK;
    if (spec != NULL && strchr(spec, ':') != NULL)
        return connect_list(j, spec);
    const char **ports;
    if (spec == NULL || strcmp(spec, "system") == 0) {
        ports = jack_get_ports(j->client, NULL, JACK_DEFAULT_AUDIO_TYPE,
                               JackPortIsPhysical | JackPortIsInput);
        if (ports == NULL) /* a server with no playback ports: nothing to connect to */
            return FARM_OK;
        uint32_t n = 0;
        while (ports[n] != NULL)
            n++;
        if (n < j->channels) {
            jack_free(ports);
            return farm_fail(FARM_EUSAGE,
                             "--channels %u: JACK's system playback has %u ports; lower "
                             "--channels, or choose ports with --connect",
                             j->channels, n);
        }
    } else {
        char pattern[300];
        snprintf(pattern, sizeof pattern, "^%s:", spec);
        ports = jack_get_ports(j->client, pattern, JACK_DEFAULT_AUDIO_TYPE, JackPortIsInput);
        if (ports == NULL)
            return farm_fail(FARM_EUSAGE,
                             "--connect %s: no JACK client of that name with inputs (see "
                             "jack_lsp)",
                             spec);
    }
    int rv = connect_outputs(j, ports, spec ? spec : "system");
    jack_free(ports);
    return rv;
}

/* ---- the ops ---- */

static int jack_start(farm_audio *a) {
    jack_backend *j = jack_of(a);
    if (jack_activate(j->client) != 0)
        return farm_fail(FARM_EFAIL, "cannot activate farm's JACK client");
    atomic_store(&j->active, 1);
    j->dry = 0;
    return connect_ports(j, j->connect); /* ports connect only once the client is active */
}

static void jack_stop(farm_audio *a) {
    jack_backend *j = jack_of(a);
    if (atomic_exchange(&j->active, 0) && !atomic_load(&j->shut_down))
        jack_deactivate(j->client);
}

static void jack_free_backend(jack_backend *j) {
    free(j->out);
    free(j->in);
    free(j->node_names);
    free(j->mixed);
    free(j->bus);
    free(j->connect);
    free((void *)j->heard);
    free(j);
}

static void jack_close(farm_audio *a) {
    jack_backend *j = jack_of(a);
    jack_stop(a);
    /* A client whose server went away is not closed: libjack would wait on the dead server,
     * and the process is about to exit anyway. */
    if (j->client != NULL && !atomic_load(&j->shut_down))
        jack_client_close(j->client);
    jack_free_backend(j);
}

static int jack_active(farm_audio *a) {
    jack_backend *j = jack_of(a);
    return atomic_load(&j->active) && !atomic_load(&j->shut_down);
}

static double jack_load(farm_audio *a) {
    jack_backend *j = jack_of(a);
    return atomic_load(&j->shut_down) ? 0.0 : jack_cpu_load(j->client) / 100.0;
}

static uint32_t jack_node_connect(farm_audio *a, uint32_t node) {
    jack_backend *j = jack_of(a);
    if (node >= j->nodes || atomic_load(&j->shut_down))
        return 0;
    uint32_t connected = 0;
    for (uint32_t c = 0; c < j->channels; c++) {
        char src[JACK_NODE_NAME_MAX + 32];
        snprintf(src, sizeof src, "%s:from_slave_%u", j->node_names[node], c + 1);
        jack_port_t *in = j->in[node * j->channels + c];
        if (jack_port_by_name(j->client, src) == NULL)
            continue;
        if (jack_port_connected_to(in, src) || connect_pair(j, src, jack_port_name(in)) == FARM_OK)
            connected++;
    }
    return connected;
}

static uint64_t jack_node_heard(farm_audio *a, uint32_t node) {
    jack_backend *j = jack_of(a);
    return node < j->nodes ? atomic_load_explicit(&j->heard[node], memory_order_relaxed) : 0;
}

static uint32_t jack_input_frames_max(farm_audio *a) {
    return jack_of(a)->nodes > 0 ? JACK_FRAMES_MAX : 0;
}

static const farm_audio_ops jack_ops = {
    .input_frames_max = jack_input_frames_max,
    .start = jack_start,
    .stop = jack_stop,
    .close = jack_close,
    .active = jack_active,
    .cpu_load = jack_load,
    .node_connect = jack_node_connect,
    .node_heard = jack_node_heard,
};

/* ---- opening ---- */

static int open_client(jack_backend *j, const farm_audio_desc *o) {
    const char *name = o->jack_name ? o->jack_name : "farm";
    if (strchr(name, ':') != NULL || strlen(name) >= (size_t)jack_client_name_size())
        return farm_fail(FARM_EUSAGE,
                         "--jack-name %s: a JACK client name has no ':' and at most "
                         "%d characters",
                         name, jack_client_name_size() - 1);
    jack_options_t opts = JackNoStartServer | (o->jack_name ? JackUseExactName : JackNullOption);
    jack_status_t status;
    int q = farm_quiet_begin(o->verbose);
    j->client = jack_client_open(name, opts, &status);
    farm_quiet_end(q);
    if (j->client == NULL && (status & JackNameNotUnique))
        return farm_fail(FARM_EUSAGE, "--jack-name %s: a JACK client of that name is running",
                         name);
    if (j->client == NULL && o->jack_name != NULL && !(status & JackServerFailed))
        return farm_fail(FARM_EUSAGE,
                         "--jack-name %s: the JACK server refused the name (a client of that "
                         "name is running? see jack_lsp)",
                         name);
    if (j->client == NULL)
        return farm_fail(FARM_EUSAGE,
                         "no JACK server to play into%s%s (start jackd, or choose another "
                         "--host)",
                         getenv("JACK_DEFAULT_SERVER") ? " named " : "",
                         getenv("JACK_DEFAULT_SERVER") ? getenv("JACK_DEFAULT_SERVER") : "");
    jack_nframes_t rate = jack_get_sample_rate(j->client);
    if (rate != o->sample_rate)
        return farm_fail(FARM_EUSAGE, "--sr %u: the JACK server runs at %u Hz; use --sr %u",
                         o->sample_rate, (unsigned)rate, (unsigned)rate);
    snprintf(j->base.description, sizeof j->base.description, "%s (JACK Audio Connection Kit)",
             jack_get_client_name(j->client));
    return FARM_OK;
}

static int register_ports(jack_backend *j) {
    for (uint32_t c = 0; c < j->channels; c++) {
        char name[64];
        snprintf(name, sizeof name, "out_%u", c + 1);
        j->out[c] =
            jack_port_register(j->client, name, JACK_DEFAULT_AUDIO_TYPE, JackPortIsOutput, 0);
        if (j->out[c] == NULL)
            return farm_fail(FARM_EFAIL, "cannot register JACK port %s", name);
    }
    for (uint32_t k = 0; k < j->nodes; k++)
        for (uint32_t c = 0; c < j->channels; c++) {
            char name[JACK_NODE_NAME_MAX + 32];
            snprintf(name, sizeof name, "%s_in_%u", j->node_names[k], c + 1);
            jack_port_t *p =
                jack_port_register(j->client, name, JACK_DEFAULT_AUDIO_TYPE, JackPortIsInput, 0);
            if (p == NULL)
                return farm_fail(FARM_EFAIL, "cannot register JACK port %s", name);
            j->in[k * j->channels + c] = p;
        }
    return FARM_OK;
}

static int allocate(jack_backend *j, const farm_audio_desc *o) {
    j->channels = o->channels;
    j->nodes = o->node_count;
    size_t frames = (size_t)JACK_FRAMES_MAX * o->channels;
    j->out = calloc(o->channels, sizeof *j->out);
    j->in = calloc((size_t)j->nodes * o->channels + 1, sizeof *j->in);
    j->node_names = calloc(j->nodes + 1, sizeof *j->node_names);
    j->mixed = calloc(frames, sizeof(float));
    j->bus = calloc(frames, sizeof(float));
    j->heard = calloc(j->nodes + 1, sizeof *j->heard);
    if (!j->out || !j->in || !j->node_names || !j->mixed || !j->bus || !j->heard)
        return farm_fail(FARM_ENOMEM, "out of memory for the JACK backend");
    for (uint32_t k = 0; k < j->nodes; k++)
        snprintf(j->node_names[k], JACK_NODE_NAME_MAX, "%s", o->node_names[k]);
    if (o->connect != NULL && (j->connect = strdup(o->connect)) == NULL)
        return farm_fail(FARM_ENOMEM, "out of memory for the JACK backend");
    return FARM_OK;
}

static int setup(jack_backend *j, const farm_audio_desc *o) {
    int rv;
    if ((rv = allocate(j, o)) != FARM_OK || (rv = open_client(j, o)) != FARM_OK ||
        (rv = register_ports(j)) != FARM_OK)
        return rv;
    jack_set_process_callback(j->client, jack_process, j);
    jack_set_xrun_callback(j->client, jack_xrun, j);
    jack_on_shutdown(j->client, jack_shutdown, j);
    j->dry = 1; /* what --connect names must exist before anything starts */
    return connect_ports(j, j->connect);
}

const int farm_have_jack = 1;

int farm_jack_open(farm_audio **out, const farm_audio_desc *o, farm_engine *e) {
    jack_backend *j = calloc(1, sizeof *j);
    if (j == NULL)
        return farm_fail(FARM_ENOMEM, "out of memory for the JACK backend");
    j->base.ops = &jack_ops;
    j->base.engine = e;
    int rv = setup(j, o);
    if (rv != FARM_OK) {
        if (j->client != NULL)
            jack_client_close(j->client);
        jack_free_backend(j);
        return rv;
    }
    *out = &j->base;
    return FARM_OK;
}
