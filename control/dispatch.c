/* The top of the control server's requests, whichever transport brought them (the REP threads,
 * OSC): one message is parsed whole (proto/), dispatched (to route.c when it names voices that
 * nodes play, else to apply.c) and answered with one JSON reply; a message that finds a worker's
 * queue full is tried again until there is room or the wait is over. */
#include <cjson/cJSON.h>
#include <stdlib.h>

#include "control_internal.h"

/* How often a request that waits for room tries again. */
#define BUSY_POLL_NS FARM_NS_PER_MS

/* One try at a message, under c->lock (c->batch is its scratch): its reply, *rv its verdict. */
static cJSON *try_message(farm_control *c, const char *text, size_t len,
                          const farm_request_limits *lim, int *rv) {
    cJSON *reply = cJSON_CreateObject();
    cJSON_AddBoolToObject(reply, "ok", 1); /* first, so the verdict reads at a glance */
    farm_error_clear();
    size_t n = 0;
    *rv = farm_message_parse(text, len, lim, c->batch, FARM_BATCH_MAX, &n);
    if (*rv == FARM_OK)
        *rv = farm_control_reaches_nodes(c, c->batch, n)
                  ? farm_control_route(c, c->batch, n, reply)
                  : farm_control_run_message(c, c->batch, n, reply);
    if (*rv != FARM_OK) {
        cJSON_Delete(reply);
        reply = cJSON_CreateObject();
        cJSON_AddBoolToObject(reply, "ok", 0);
        cJSON_AddStringToObject(reply, "error", farm_error_message());
    }
    return reply;
}

/* A message that finds a worker's queue full (FARM_EBUSY: nothing was sent) waits for room: the
 * lock is let go, so that other requests go on meanwhile, and the whole message is tried again
 * (parsed again: c->batch served others in between) every BUSY_POLL_NS, up to BUSY_WAIT_NS or
 * a stop; then it is refused as busy. Only control threads wait here, never the workers or the
 * audio. */
char *farm_control_request(farm_control *c, const char *text, size_t len) {
    farm_request_limits lim = {.workers = c->cfg->workers,
                               .channels = c->cfg->channels,
                               .sample_rate = c->cfg->sample_rate};
    /* the voices of this farm and of the nodes known now */
    farm_control_voice_range(c, &lim.first_voice, &lim.voices);
    const uint64_t deadline = farm_now_ns() + FARM_BUSY_WAIT_NS;
    for (int waited = 0;; waited = 1) {
        int rv;
        pthread_mutex_lock(&c->lock);
        cJSON *reply = try_message(c, text, len, &lim, &rv);
        if (rv != FARM_EBUSY || farm_now_ns() >= deadline || atomic_load(&c->stopping)) {
            char *out = cJSON_PrintUnformatted(reply);
            cJSON_Delete(reply);
            pthread_mutex_unlock(&c->lock);
            if (waited)
                atomic_fetch_sub(&c->requests_waiting, 1);
            return out;
        }
        cJSON_Delete(reply);
        pthread_mutex_unlock(&c->lock);
        if (!waited)
            atomic_fetch_add(&c->requests_waiting, 1);
        farm_sleep_ns(BUSY_POLL_NS);
    }
}
