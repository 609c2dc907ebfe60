/* Shared by the control server's files: control.c (sockets, threads, URLs), apply.c (requests
 * into commands, the voices' shadow, replies) and status.c (status and telemetry). Not part of
 * the module's contract. */
#ifndef FARM_CONTROL_INTERNAL_H
#define FARM_CONTROL_INTERNAL_H

#include <nng/nng.h>
#include <nng/supplemental/tls/tls.h>
#include <pthread.h>
#include <stdatomic.h>

#include "control.h"
#include "proto.h"

#define DEAF_PIPES 64

/* What each voice is set to: the targets of its ramps, as the workers got them. */
typedef struct voice_shadow {
    float *param[FARM_PARAM_COUNT];
    uint8_t *playing;
} voice_shadow;

struct cJSON;

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
    /* requests: one at a time, whichever transport brings them */
    pthread_mutex_t lock;
    uint64_t next_id;
    voice_shadow shadow;
    farm_request *batch;                /* FARM_BATCH_MAX of them */
    float *scratch;                     /* values for one worker's part of a request */
    _Atomic uint64_t replies_dropped;   /* to clients that did not read them */
    _Atomic uint64_t telemetry_dropped; /* messages the PUB socket could not take */
    char control_url[512];
    char telemetry_url[512];
    char ipc_paths[2][512];    /* socket files to remove at the end */
    uint32_t deaf[DEAF_PIPES]; /* pipes of clients that do not read their replies */
    uint32_t deaf_next;
};

/* apply.c */
int farm_control_apply_init(farm_control *c);
void farm_control_apply_free(farm_control *c);

/* status.c */
double farm_control_block_seconds(const farm_control *c);
void farm_control_add_config(farm_control *c, struct cJSON *root);
void farm_control_add_counters(farm_control *c, struct cJSON *root);

#endif
