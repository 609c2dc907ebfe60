/* Stands in for control/ where it is not built yet (Windows: control/ waits for its port to
 * named pipes and Winsock, docs/windows.md). Playing then has no control sockets: the farm plays
 * until --duration or a stop request. Asking for a socket is refused in one line. Dropped from
 * the build as soon as a control target exists (coordinator/CMakeLists.txt). */
#include <stddef.h>

#include "control.h"

#define NONE "none (control is not built for Windows yet)"

int farm_control_start(farm_control **out, const farm_control_desc *desc, farm_procs *procs,
                       farm_engine *engine, farm_audio *audio) {
    (void)procs;
    (void)engine;
    (void)audio;
    *out = NULL;
    const char *asked = desc->control_url     ? "--control"
                        : desc->telemetry_url ? "--telemetry"
                        : desc->osc_url       ? "--osc"
                        : desc->tls_cert      ? "--tls-cert"
                                              : NULL;
    if (asked != NULL)
        return farm_fail(FARM_EUSAGE, "%s: control is not built for Windows yet", asked);
    return FARM_OK;
}

void farm_control_stop(farm_control *c) {
    (void)c;
}

int farm_control_quit_requested(const farm_control *c) {
    (void)c;
    return 0;
}

char *farm_control_request(farm_control *c, const char *text, size_t len) {
    (void)c;
    (void)text;
    (void)len;
    return NULL;
}

const char *farm_control_url(const farm_control *c) {
    (void)c;
    return NONE;
}

const char *farm_control_telemetry_url(const farm_control *c) {
    (void)c;
    return NONE;
}

const char *farm_control_osc_url(const farm_control *c) {
    (void)c;
    return NULL;
}
