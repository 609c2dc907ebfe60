/* nodes — the farms on other hosts that play as part of this one (--node NAME=URL). Each node
 * is a farm playing into a NetJACK2 slave named NAME; its audio arrives on this host's JACK
 * server as NAME:from_slave_N, and its control socket is URL. This module keeps a link to each
 * node's control socket, learns which voices it plays and how it is doing, keeps its JACK ports
 * connected to ours (a node that comes back has new ones), and forwards requests to it.
 *
 * Contract
 * - A thread of its own polls every node (`status`) several times a second; it never touches
 *   the audio callback. A node that does not answer is unreachable; one that answers but whose
 *   ports brought no sample for a second is silent; else connected. A node is never required:
 *   the farm plays on without it, and picks it up when it answers again.
 * - farm_nodes_send forwards one message and waits for the reply at most FARM_NODE_TIMEOUT_MS;
 *   it is called by the control thread only (one request at a time).
 * - farm_nodes_info copies a node's last known view under a lock; any thread.
 * - Errors as everywhere in farm (base.h).
 */
#ifndef FARM_NODES_H
#define FARM_NODES_H

#include <stddef.h>
#include <stdint.h>

#include "audio.h"

#define FARM_NODE_TIMEOUT_MS 1000 /* a forwarded request's reply */
#define FARM_NODE_POLL_MS 200     /* how often each node is asked for its status */
#define FARM_NODE_SILENT_MS 1000  /* ports that bring nothing this long: silent */

typedef struct farm_nodes farm_nodes;

typedef struct farm_nodes_desc {
    const char *const *specs; /* NAME=URL each */
    uint32_t count;
    farm_audio *audio;  /* whose node ports to keep connected and listen to; outlives nodes */
    const char *tls_ca; /* PEM file checking tls+tcp:// nodes' certificates; NULL: not checked */
    uint32_t channels;  /* of this farm: a node must play as many */
    uint32_t sample_rate;
} farm_nodes_desc;

typedef struct farm_node_info {
    char name[JACK_NODE_NAME_MAX];
    char url[512];
    const char *state; /* "connected", "unreachable", "silent" */
    int known;         /* it has answered at least once: first_voice and voices are its */
    uint32_t first_voice, voices, workers;
    double load; /* its busiest worker's, 0..1 */
    uint64_t late_blocks, underflows;
    uint32_t ports; /* of its channels connected into this farm now */
    uint64_t answers, misses;
    char problem[160]; /* why it is not usable, "" when it is */
} farm_node_info;

int farm_nodes_start(farm_nodes **out, const farm_nodes_desc *desc);
void farm_nodes_stop(farm_nodes *n);            /* NULL is fine */
uint32_t farm_nodes_count(const farm_nodes *n); /* 0 for NULL */
void farm_nodes_info(farm_nodes *n, uint32_t k, farm_node_info *out);
/* Sends msg (len bytes) to node k and returns its reply (malloc'd, NUL-terminated) in *reply;
 * FARM_EFAIL naming the node when it cannot be reached or does not answer in time. */
int farm_nodes_send(farm_nodes *n, uint32_t k, const void *msg, size_t len, char **reply);

#endif
