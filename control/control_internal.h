/* Shared by the control server's files that work on struct farm_control (listed below, with
 * what calls what). Not part of the module's contract. */
#ifndef FARM_CONTROL_INTERNAL_H
#define FARM_CONTROL_INTERNAL_H

#include <nng/nng.h>
#include <nng/supplemental/tls/tls.h>
#include <pthread.h>
#include <stdatomic.h>

#include "control.h"
#include "proto.h"

#define DEAF_PIPES 64
#define REP_SERVERS 4 /* requests on the control socket served at once, one thread each */
/* How long a request that finds a worker's queue full waits for room before it is refused as
 * busy (CONTROL.md, "Errors and busy"). */
#define FARM_BUSY_WAIT_NS FARM_NS_PER_S
#define THREAD_STACK (256 * 1024) /* small and explicit: mlockall locks every thread's stack */

/* What each voice is set to: the targets of its ramps, as the workers got them. */
typedef struct voice_shadow {
    float *param[FARM_PARAM_COUNT];
    uint8_t *playing;
} voice_shadow;

struct cJSON;
struct farm_osc;
struct farm_control;

/* One of the threads that serve the control socket, on a context of its own (control.c). */
typedef struct rep_server {
    struct farm_control *c;
    nng_ctx ctx;
    nng_aio *aio;
    pthread_t thread;
    int started;
} rep_server;

struct farm_control {
    farm_control_desc desc;
    const shm_config *cfg;
    shm_region *region; /* the workers' mapping (shm.h's calls) */
    farm_procs *procs;
    farm_engine *engine;
    farm_audio *audio;
    nng_socket rep, pub;
    int rep_open, pub_open;
    nng_tls_config *tls;
    rep_server reps[REP_SERVERS];
    pthread_t pub_thread;
    int pub_started;
    _Atomic int stopping;
    _Atomic int quit;
    /* requests: one at a time in here, whichever transport and thread brings them; one that
     * waits for room in a queue lets go of it meanwhile (dispatch.c) */
    pthread_mutex_t lock;
    uint64_t next_id;
    voice_shadow shadow;
    farm_request *batch;                /* FARM_BATCH_MAX of them */
    float *scratch;                     /* values for one worker's part of a request */
    _Atomic uint64_t replies_dropped;   /* to clients that did not read them */
    _Atomic uint32_t requests_waiting;  /* for room in a worker's queue, now (dispatch.c) */
    _Atomic uint64_t telemetry_dropped; /* messages the PUB socket could not take */
    char control_url[512];
    char telemetry_url[512];
    char runtime_dir[400];     /* "" when every URL was given */
    int announced;             /* a discovery file to remove at the end (Windows) */
    char ipc_paths[2][512];    /* socket files to remove at the end */
    pthread_mutex_t deaf_lock; /* for deaf and deaf_next: the REP threads share them */
    uint32_t deaf[DEAF_PIPES]; /* pipes of clients that do not read their replies */
    uint32_t deaf_next;
    struct farm_osc *osc; /* the OSC transport (osc.h); NULL without --osc */
    char osc_url[512];    /* "" without --osc */
};

/* ---- the files' calls, from the top down: a file calls only those below it ----
 *
 *   control.c      the server: sockets, threads, URLs; OSC through osc.h (a transport)
 *   dispatch.c     a request: parse, dispatch, reply (farm_control_request, control.h)
 *   route.c        a message split among the nodes and this farm
 *   apply.c        this farm's part: commands, the voices' shadow, get, status
 *   status.c       the configuration and the live counters as JSON
 *   voice_range.c  the voices of this farm and its nodes
 * url_policy.c (url_policy.h) and osc.c (osc.h) take no farm_control. */

/* route.c: whether a message names voices this farm does not play (--node); then the message
 * split among the nodes and this farm (CONTROL.md, "Nodes"). */
int farm_control_reaches_nodes(farm_control *c, const farm_request *reqs, size_t n);
int farm_control_route(farm_control *c, const farm_request *reqs, size_t n, struct cJSON *reply);

/* apply.c */
int farm_control_apply_init(farm_control *c);
void farm_control_apply_free(farm_control *c);
/* A parsed message on this farm's own voices (reqs in c->batch's first half or elsewhere; the
 * second half of c->batch is its scratch). */
int farm_control_run_message(farm_control *c, const farm_request *reqs, size_t n,
                             struct cJSON *reply);

/* status.c */
double farm_control_block_seconds(const farm_control *c);
void farm_control_add_config(farm_control *c, struct cJSON *root);
void farm_control_add_counters(farm_control *c, struct cJSON *root);

/* voice_range.c: the voices of this farm and of its nodes known now: the lowest and how many up
 * to the highest (gaps between farms included; a request that names one is refused). */
void farm_control_voice_range(farm_control *c, uint32_t *first, uint32_t *count);
/* Voices of this farm and of its nodes known now. */
uint32_t farm_control_total_voices(farm_control *c);

#endif
