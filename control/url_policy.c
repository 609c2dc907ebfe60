/* The URL policy: where the control server's sockets may listen. Private by default: ipc:// and
 * inproc:// stay on the machine, tcp://, ws://, tls+tcp:// (and OSC's URLs) only on a loopback
 * address, unless the user allows more (--listen-anywhere), which is warned about. */
#include <stdio.h>
#include <string.h>

#include "url_policy.h"

/* localhost, 127.x.y.z, ::1 and [::1]: the first n bytes of host */
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
int farm_control_check_url(const char *url, int anywhere, const char *which) {
    const char *sep = strstr(url, "://");
    if (sep == NULL)
        return farm_fail(FARM_EUSAGE,
                         "%s '%s' is not a URL (like ipc:///path or tcp://127.0.0.1:5555)", which,
                         url);
    size_t scheme = (size_t)(sep - url);
    static const char *const local[] = {"ipc", "inproc", "abstract"};
    static const char *const network[] = {"tcp", "tcp4", "tcp6",    "ws",       "ws4",
                                          "ws6", "wss",  "tls+tcp", "tls+tcp4", "tls+tcp6"};
    for (size_t i = 0; i < sizeof local / sizeof local[0]; i++)
        if (strlen(local[i]) == scheme && strncmp(url, local[i], scheme) == 0)
            return FARM_OK;
    int known = 0;
    for (size_t i = 0; i < sizeof network / sizeof network[0]; i++)
        known |= strlen(network[i]) == scheme && strncmp(url, network[i], scheme) == 0;
    if (!known)
        return farm_fail(FARM_EUSAGE,
                         "%s %s: unknown scheme '%.*s' (ipc://, tcp://, ws://, tls+tcp:// ...)",
                         which, url, (int)scheme, url);
    return farm_control_check_host(url, anywhere, which);
}

/* The host after url's "://": a loopback address, or anywhere allowed (with a warning). */
int farm_control_check_host(const char *url, int anywhere, const char *which) {
    const char *sep = strstr(url, "://");
    const char *host = sep ? sep + 3 : url;
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
