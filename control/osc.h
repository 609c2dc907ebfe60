/* OSC, a transport of the control server's requests (osc.c), as NNG's transports are of its
 * sockets: it knows a URL and a request callback, nothing of the farm behind it. Messages to
 * /farm/COMMAND over UDP or TCP become request text (the command and its arguments as words)
 * handed to the callback; the callback's JSON reply goes back as /farm/reply. The codec is
 * osc_codec.h's. Whether the URL may listen where it says is the caller's policy, checked
 * between farm_osc_check_url and farm_osc_start. Not part of the module's contract. */
#ifndef FARM_OSC_H
#define FARM_OSC_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

typedef struct farm_osc farm_osc;

/* The JSON reply to one request (malloc'd; the transport frees it), NULL when out of memory.
 * Called on the OSC thread. */
typedef char *(*farm_osc_request_fn)(void *arg, const char *text, size_t len);

/* url's form, osc.udp://HOST:PORT or osc.tcp://HOST:PORT (HOST an address, a name or [IPv6]):
 * FARM_OK, or FARM_EUSAGE saying what is wrong with it. */
int farm_osc_check_url(const char *url);
/* Binds url and serves it on a thread of its own until farm_osc_stop: each request to
 * request(arg, ...); every reply that could not be made or sent is counted in *dropped. */
int farm_osc_start(farm_osc **out, const char *url, farm_osc_request_fn request, void *arg,
                   _Atomic uint64_t *dropped);
/* The URL it listens on, with the port the system chose where url asked for port 0. */
const char *farm_osc_url(const farm_osc *o);
/* Stops the thread and closes the sockets; NULL is fine. */
void farm_osc_stop(farm_osc *o);

#endif
