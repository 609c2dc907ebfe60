/* The URL policy of the control server's sockets (url_policy.c): private unless the user says
 * otherwise. Not part of the module's contract. */
#ifndef FARM_URL_POLICY_H
#define FARM_URL_POLICY_H

#include "base.h"

/* url may listen: ipc://, inproc:// (abstract://) always; tcp, ws and tls schemes on a loopback
 * host, or anywhere when anywhere is set (then with a warning on stderr). FARM_EUSAGE naming
 * which option (--control, --telemetry) otherwise, or an unknown scheme. */
int farm_control_check_url(const char *url, int anywhere, const char *which);
/* The host after url's "://" alone (any scheme: OSC's too), as above. */
int farm_control_check_host(const char *url, int anywhere, const char *which);

#endif
