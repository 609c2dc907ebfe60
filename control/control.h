/* control — the farm's control server over NNG: a REP socket takes one-line requests (proto/
 * parses them; CONTROL.md is the reference) and a PUB socket publishes the live counters.
 * Optionally an OSC server (over UDP or TCP) takes the same requests as messages to
 * /farm/COMMAND and answers each with /farm/reply.
 *
 * Contract
 * - Sockets are private by default: ipc:// in farm_runtime_dir() (a 0700 directory, created
 *   here; sockets that farms killed with SIGKILL left there are removed), named by farm's pid.
 *   On Windows they are named pipes (ipc://farm-PID.control), and a farm on its default
 *   control socket is found by the discovery file it writes into farm_runtime_dir() once it
 *   listens and removes when it stops (proto.h, farm_announce); dead farms' files are removed.
 *   tcp://, ws:// and tls+tcp:// listen only on loopback unless desc->listen_anywhere.
 *   The OSC URL (osc.udp:// or osc.tcp://) likewise.
 *   FARM_EUSAGE for a URL that cannot be used or would be exposed without consent.
 * - Each server runs on a thread of its own, never on the audio callback: a request becomes
 *   fixed-size commands in the workers' command rings (applied at their next block, ramped) or
 *   a gain for the engine; a full ring is waited for (the requesting thread only, up to 1 s)
 *   and then refused as busy, never met by allocating. The REP socket has 4 threads, so a
 *   request that waits holds up no other client.
 * - A client that sends and never reads cannot stall the others: replies it does not take are
 *   dropped and counted.
 * - Main thread: start, stop, quit_requested, the URL getters. Errors as in base.h.
 */
#ifndef FARM_CONTROL_H
#define FARM_CONTROL_H

#include "audio.h"
#include "engine.h"
#include "supervisor.h"

typedef struct farm_control farm_control;

typedef struct farm_control_desc {
    const char *control_url;   /* NULL: ipc:// in the runtime directory */
    const char *telemetry_url; /* likewise */
    int listen_anywhere;       /* allow tcp/ws/tls on addresses beyond loopback */
    double telemetry_rate;     /* messages per second */
    const char *tls_cert, *tls_key;
    const char *osc_url;      /* NULL: no OSC; osc.udp://HOST:PORT or osc.tcp://HOST:PORT */
    struct farm_nodes *nodes; /* the farms on other hosts (--node), or NULL; outlives control */
} farm_control_desc;

/* region (the workers' mapping, the coordinator's), procs, engine and audio outlive the server;
 * the configuration comes from region. */
int farm_control_start(farm_control **out, const farm_control_desc *desc, shm_region *region,
                       farm_procs *procs, farm_engine *engine, farm_audio *audio);
void farm_control_stop(farm_control *c); /* NULL is fine */
int farm_control_quit_requested(const farm_control *c);
/* One message in (a request, a setv, or a batch of lines; CONTROL.md), its JSON reply out
 * (malloc'd, the caller frees; NULL only when out of memory). Any thread: requests are taken
 * one at a time, whichever transport brought them. Never waits for a worker. */
char *farm_control_request(farm_control *c, const char *text, size_t len);
const char *farm_control_url(const farm_control *c);
const char *farm_control_telemetry_url(const farm_control *c);
const char *farm_control_osc_url(const farm_control *c); /* NULL without OSC */

#endif
