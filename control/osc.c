/* OSC (osc.h): the same requests as the REP socket, as OSC messages to /farm/COMMAND whose
 * arguments are the request's words; each is answered with /farm/reply and one string, the JSON
 * reply. farm's own codec reads and writes the messages (osc_codec.h), as liblo does. The socket
 * is farm's own: liblo 0.31's servers bind every address (they take the URL's host for a
 * multicast group), and --osc must listen only where it says, on loopback unless
 * --listen-anywhere, as --control does. One thread serves UDP datagrams, or a TCP listener and
 * up to OSC_CLIENTS connections (OSC 1.0 framing: a 4-byte big-endian length before each
 * packet); it waits at most OSC_POLL_MS, so a stop is noticed. The sockets are plat's (BSD
 * sockets; Winsock). */
#include <cjson/cJSON.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "osc.h"
#include "osc_codec.h"
#include "plat.h"

#define OSC_POLL_MS 100       /* how soon the thread notices a stop */
#define OSC_CLIENTS 16        /* TCP connections at once; more are closed at once */
#define OSC_UDP_MAX 65536     /* the largest datagram */
#define OSC_UDP_REPLY 65507   /* the largest UDP payload over IPv4 */
#define OSC_TCP_MAX (1 << 20) /* a longer TCP packet closes the connection */
#define OSC_REPLY_WAIT_MS 100 /* for a TCP client to make room for its reply */
#define OSC_NUMBER_MAX 32     /* characters of a number as text */
#define OSC_PREFIX "/farm/"
#define OSC_REPLY_PATH "/farm/reply"
/* The thread's stack: small and explicit, as mlockall locks every thread's. */
#define OSC_THREAD_STACK (256 * 1024)

typedef struct osc_client {
    plat_socket fd; /* PLAT_NO_SOCKET: free */
    unsigned char *buf;
    size_t have, cap;
} osc_client;

struct farm_osc {
    farm_osc_request_fn request;
    void *arg;
    _Atomic uint64_t *dropped; /* replies that could not be made or sent */
    _Atomic int stopping;
    int stream; /* 0 UDP, 1 TCP */
    plat_socket fd;
    pthread_t thread;
    int started;
    unsigned char *buf; /* UDP: one datagram */
    osc_client clients[OSC_CLIENTS];
    char url[512]; /* as bound */
};

/* ---- the URL: osc.udp://HOST:PORT or osc.tcp://HOST:PORT, HOST an address or [IPv6] ---- */

typedef struct osc_url {
    int stream;
    char host[256]; /* "" for every address */
    char port[8];
    size_t before_port; /* length of the URL up to the ':' before the port */
} osc_url;

static int parse_url(const char *url, osc_url *u) {
    const char *sep = strstr(url, "://");
    if (sep == NULL)
        return farm_fail(FARM_EUSAGE, "--osc '%s' is not a URL (like osc.udp://127.0.0.1:57120)",
                         url);
    if (strncmp(url, "osc.udp://", 10) != 0 && strncmp(url, "osc.tcp://", 10) != 0)
        return farm_fail(FARM_EUSAGE, "--osc %s: unknown scheme '%.*s' (osc.udp:// or osc.tcp://)",
                         url, (int)(sep - url), url);
    u->stream = url[4] == 't';
    const char *h = url + 10, *end;
    if (*h == '[') {
        if ((end = strchr(h, ']')) == NULL)
            return farm_fail(FARM_EUSAGE, "--osc %s: no ']' after the IPv6 address", url);
        h++;
    } else
        end = h + strcspn(h, ":/");
    if ((size_t)(end - h) >= sizeof u->host)
        return farm_fail(FARM_EUSAGE, "--osc %s: the host name is too long", url);
    snprintf(u->host, sizeof u->host, "%.*s", (int)(end - h), h);
    const char *p = end + (*end == ']');
    size_t digits = *p == ':' ? strspn(p + 1, "0123456789") : 0;
    if (digits == 0 || (p[1 + digits] != '\0' && strcmp(p + 1 + digits, "/") != 0))
        return farm_fail(FARM_EUSAGE, "--osc %s: give a port, as in osc.udp://127.0.0.1:57120",
                         url);
    snprintf(u->port, sizeof u->port, "%.*s", (int)(digits < 6 ? digits : 6), p + 1);
    if (digits > 5 || strtoul(u->port, NULL, 10) > 65535)
        return farm_fail(FARM_EUSAGE, "--osc %s: the port is not from 0 to 65535", url);
    u->before_port = (size_t)(p - url);
    return FARM_OK;
}

/* ---- a message into a request ---- */

static int is_number(char t) {
    return t == 'i' || t == 'h' || t == 'f' || t == 'd';
}

static int is_text(char t) {
    return t == 's' || t == 'S';
}

/* Enough digits that the number reads back as the same float or double. The codec's arguments
 * are in host order but only 4-byte aligned, so they are copied out, not read through a type. */
static int number_text(char t, const void *a, char *out, size_t size) {
    int32_t i;
    int64_t h;
    float f;
    double d;
    switch (t) {
    case 'i':
        memcpy(&i, a, sizeof i);
        return snprintf(out, size, "%" PRId32, i);
    case 'h':
        memcpy(&h, a, sizeof h);
        return snprintf(out, size, "%" PRId64, h);
    case 'f':
        memcpy(&f, a, sizeof f);
        return snprintf(out, size, "%.9g", (double)f);
    default:
        memcpy(&d, a, sizeof d);
        return snprintf(out, size, "%.17g", d);
    }
}

/* Argument i (from 0) is one word: a string without spaces or control characters, or a
 * number. */
static int check_arg(char t, const char *a, int i) {
    if (t == 'b')
        return farm_fail(FARM_EUSAGE, "argument %d is a blob: farm takes strings and numbers",
                         i + 1);
    if (is_number(t))
        return FARM_OK;
    if (!is_text(t))
        return farm_fail(FARM_EUSAGE,
                         "argument %d has the OSC type '%c': farm takes strings (s, S) and "
                         "numbers (i, h, f, d)",
                         i + 1, t);
    if (a[0] == '\0')
        return farm_fail(FARM_EUSAGE, "argument %d is empty: each argument is one word", i + 1);
    for (const unsigned char *p = (const unsigned char *)a; *p; p++)
        if (*p <= ' ' || *p == 0x7f)
            return farm_fail(FARM_EUSAGE,
                             "argument %d has a space or a control character: each argument is "
                             "one word",
                             i + 1);
    return FARM_OK;
}

/* cmd and the arguments as words joined by spaces; in a set, the numbers right after the
 * parameter (the second argument) are one list, joined by commas. Malloc'd into *out. */
static int request_text(const char *cmd, const char *types, void *const *argv, int argc,
                        char **out) {
    size_t cap = strlen(cmd) + 1;
    for (int i = 0; i < argc; i++) {
        int rv = check_arg(types[i], (const char *)argv[i], i);
        if (rv != FARM_OK)
            return rv;
        cap += 1 + (is_text(types[i]) ? strlen((const char *)argv[i]) : OSC_NUMBER_MAX);
    }
    char *t = malloc(cap);
    if (t == NULL)
        return farm_fail(FARM_ENOMEM, "out of memory for a request of %zu bytes", cap);
    size_t n = (size_t)snprintf(t, cap, "%s", cmd);
    int list = strcmp(cmd, "set") == 0 && argc > 1 && is_text(types[1]);
    for (int i = 0; i < argc; i++) {
        list = list && (i < 2 || is_number(types[i]));
        t[n++] = list && i > 2 ? ',' : ' ';
        if (is_text(types[i]))
            n += (size_t)snprintf(t + n, cap - n, "%s", (const char *)argv[i]);
        else
            n += (size_t)number_text(types[i], argv[i], t + n, cap - n);
    }
    t[n] = '\0';
    *out = t;
    return FARM_OK;
}

/* ---- a packet in, a reply out ---- */

static char *refusal(const char *fmt, ...) FARM_PRINTF(1, 2);

/* {"ok":false,"error":...}, as the control server refuses. */
static char *refusal(const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddBoolToObject(o, "ok", 0);
    cJSON_AddStringToObject(o, "error", msg);
    char *json = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return json;
}

/* The address after /farm/: one word of letters, digits, '_' and '-'. */
static int is_command(const char *s) {
    if (*s == '\0')
        return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '_' || *s == '-'))
            return 0;
    return 1;
}

/* The JSON reply to one packet; NULL for none (a /farm/reply, which is never answered, so two
 * farms cannot keep answering each other) or when out of memory (*quiet 0). */
static char *answer(farm_osc *o, void *data, size_t size, int *quiet) {
    *quiet = 0;
    if (size >= 8 && memcmp(data, "#bundle", 8) == 0)
        return refusal("OSC bundles are not taken: send each message on its own");
    const char *path = osc_codec_path(data, size);
    if (path == NULL)
        return refusal("not an OSC message");
    if (strcmp(path, OSC_REPLY_PATH) == 0) {
        *quiet = 1;
        return NULL;
    }
    const char *cmd = path + strlen(OSC_PREFIX);
    if (strncmp(path, OSC_PREFIX, strlen(OSC_PREFIX)) != 0 || !is_command(cmd))
        return refusal("address '%.200s': farm takes /farm/COMMAND (/farm/status, /farm/set, ...)",
                       path);
    int result = 0;
    osc_codec_msg *m = osc_codec_parse(data, size, &result);
    if (m == NULL && result != OSC_CODEC_ENOTYPE) /* no type tags: an old sender, no arguments */
        return refusal("%s: not a valid OSC message (%s error %d)", path, osc_codec_name, result);
    char *text = NULL;
    farm_error_clear();
    int rv = m ? request_text(cmd, osc_codec_types(m), osc_codec_argv(m), osc_codec_argc(m), &text)
               : request_text(cmd, "", NULL, 0, &text);
    osc_codec_free(m);
    if (rv != FARM_OK)
        return refusal("%s", farm_error_message());
    char *json = o->request(o->arg, text, strlen(text));
    free(text);
    return json;
}

/* /farm/reply with json as its one string, serialised (malloc'd); NULL when out of memory. */
static void *reply_packet(const char *json, size_t *size) {
    return osc_codec_string_message(OSC_REPLY_PATH, json, size);
}

/* The reply packet to one packet; NULL for none. A reply over limit bytes (UDP's) becomes a
 * refusal that says so. */
static void *handle(farm_osc *o, void *data, size_t size, size_t limit, size_t *out_size) {
    int quiet;
    char *json = answer(o, data, size, &quiet);
    void *p = json ? reply_packet(json, out_size) : NULL;
    if (p != NULL && *out_size > limit) {
        free(p);
        free(json);
        json = refusal("the reply has %zu bytes, more than one UDP datagram holds: ask over "
                       "osc.tcp:// or --control",
                       *out_size);
        p = json ? reply_packet(json, out_size) : NULL;
    }
    free(json);
    if (p == NULL && !quiet)
        atomic_fetch_add(o->dropped, 1);
    return p;
}

/* ---- UDP ---- */

static void udp_one(farm_osc *o) {
    plat_addr from;
    long n = plat_sock_recv(o->fd, o->buf, OSC_UDP_MAX, &from);
    if (n <= 0)
        return;
    size_t size = 0;
    void *p = handle(o, o->buf, (size_t)n, OSC_UDP_REPLY, &size);
    if (p != NULL && plat_sock_send(o->fd, p, size, &from) != (long)size)
        atomic_fetch_add(o->dropped, 1);
    free(p);
}

/* ---- TCP ---- */

static void client_close(osc_client *k) {
    plat_sock_close(k->fd);
    free(k->buf);
    *k = (osc_client){.fd = PLAT_NO_SOCKET};
}

static void tcp_accept(farm_osc *o) {
    plat_socket fd;
    if (!plat_sock_accept(o->fd, &fd))
        return;
    for (int i = 0; i < OSC_CLIENTS; i++)
        if (o->clients[i].fd == PLAT_NO_SOCKET) {
            o->clients[i].fd = fd;
            return;
        }
    plat_sock_close(fd); /* OSC_CLIENTS already */
}

/* All of data, waiting at most OSC_REPLY_WAIT_MS for room: 1 when it went. */
static int send_all(plat_socket fd, const unsigned char *data, size_t n) {
    uint64_t end = farm_now_ns() + (uint64_t)OSC_REPLY_WAIT_MS * FARM_NS_PER_MS;
    while (n > 0) {
        long k = plat_sock_send(fd, data, n, NULL);
        if (k > 0) {
            data += k;
            n -= (size_t)k;
            continue;
        }
        uint64_t now = farm_now_ns();
        if (k < 0 || now >= end)
            return 0;
        int ready;
        plat_sock_poll(&fd, 1, 1, &ready, (int)((end - now) / FARM_NS_PER_MS) + 1);
    }
    return 1;
}

/* OSC 1.0's framing: a 4-byte big-endian length. */
static void put_be32(unsigned char *b, uint32_t v) {
    b[0] = (unsigned char)(v >> 24);
    b[1] = (unsigned char)(v >> 16);
    b[2] = (unsigned char)(v >> 8);
    b[3] = (unsigned char)v;
}

static uint32_t get_be32(const unsigned char *b) {
    return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

/* The reply to one framed packet, framed: 0 when it could not be sent whole (the connection
 * is then closed: half a frame would garble every later one). */
static int tcp_answer(farm_osc *o, osc_client *k, size_t len) {
    size_t size = 0;
    unsigned char *p = handle(o, k->buf + 4, len, SIZE_MAX, &size);
    if (p == NULL)
        return 1;
    unsigned char be[4];
    put_be32(be, (uint32_t)size);
    int ok = send_all(k->fd, be, 4) && send_all(k->fd, p, size);
    free(p);
    if (!ok)
        atomic_fetch_add(o->dropped, 1);
    return ok;
}

/* Reads what k has sent and answers each whole packet; 0 when the connection is over. */
static int tcp_read(farm_osc *o, osc_client *k) {
    for (;;) {
        uint32_t len = k->have >= 4 ? get_be32(k->buf) : 0;
        if (len > OSC_TCP_MAX)
            return 0;
        size_t need = 4 + len;
        if (k->cap < need) {
            unsigned char *b = realloc(k->buf, need);
            if (b == NULL)
                return 0;
            k->buf = b;
            k->cap = need;
        }
        if (k->have >= 4 && k->have == need) {
            k->have = 0; /* the next packet waits for the next poll: one client at a time */
            return len == 0 || tcp_answer(o, k, len);
        }
        long n = plat_sock_recv(k->fd, k->buf + k->have, need - k->have, NULL);
        if (n <= 0)
            return n == 0; /* nothing more now: still open; -1: over */
        k->have += (size_t)n;
    }
}

/* ---- the thread ---- */

static void *osc_main(void *arg) {
    farm_osc *o = arg;
    plat_socket p[1 + OSC_CLIENTS];
    int who[1 + OSC_CLIENTS], ready[1 + OSC_CLIENTS];
    while (!atomic_load(&o->stopping)) {
        size_t n = 0;
        p[n++] = o->fd;
        for (int i = 0; o->stream && i < OSC_CLIENTS; i++)
            if (o->clients[i].fd != PLAT_NO_SOCKET) {
                who[n] = i;
                p[n++] = o->clients[i].fd;
            }
        if (plat_sock_poll(p, n, 0, ready, OSC_POLL_MS) <= 0)
            continue;
        for (size_t j = 1; j < n; j++)
            if (ready[j] && !tcp_read(o, &o->clients[who[j]]))
                client_close(&o->clients[who[j]]);
        if (ready[0] && o->stream)
            tcp_accept(o);
        else if (ready[0])
            udp_one(o);
    }
    return NULL;
}

int farm_osc_check_url(const char *url) {
    osc_url u;
    return parse_url(url, &u);
}

/* Binds u, and the URL it got into o->url (port 0: the one it got, so the URL printed reaches
 * farm). */
static int osc_bind(farm_osc *o, const char *url, const osc_url *u) {
    o->stream = u->stream;
    o->fd = PLAT_NO_SOCKET;
    for (int i = 0; i < OSC_CLIENTS; i++)
        o->clients[i].fd = PLAT_NO_SOCKET;
    if (!u->stream && (o->buf = malloc(OSC_UDP_MAX)) == NULL)
        return farm_fail(FARM_ENOMEM, "out of memory");
    char what[600];
    snprintf(what, sizeof what, "--osc %s", url);
    int port = -1, rv = plat_sock_bind(u->host, u->port, u->stream, what, &o->fd, &port);
    if (rv == FARM_OK)
        snprintf(o->url, sizeof o->url, "%.*s:%d", (int)u->before_port, url, port);
    return rv;
}

int farm_osc_start(farm_osc **out, const char *url, farm_osc_request_fn request, void *arg,
                   _Atomic uint64_t *dropped) {
    *out = NULL;
    osc_url u;
    int rv = parse_url(url, &u);
    if (rv != FARM_OK)
        return rv;
    farm_osc *o = calloc(1, sizeof *o);
    if (o == NULL)
        return farm_fail(FARM_ENOMEM, "out of memory");
    o->request = request;
    o->arg = arg;
    o->dropped = dropped;
    if ((rv = osc_bind(o, url, &u)) != FARM_OK) {
        farm_osc_stop(o);
        return rv;
    }
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, OSC_THREAD_STACK);
    o->started = pthread_create(&o->thread, &attr, osc_main, o) == 0;
    pthread_attr_destroy(&attr);
    if (!o->started) {
        farm_osc_stop(o);
        return farm_fail(FARM_EFAIL, "cannot start the OSC thread");
    }
    *out = o;
    return FARM_OK;
}

const char *farm_osc_url(const farm_osc *o) {
    return o->url;
}

void farm_osc_stop(farm_osc *o) {
    if (o == NULL)
        return;
    atomic_store(&o->stopping, 1);
    if (o->started)
        pthread_join(o->thread, NULL);
    for (int i = 0; i < OSC_CLIENTS; i++)
        if (o->clients[i].fd != PLAT_NO_SOCKET)
            client_close(&o->clients[i]);
    plat_sock_close(o->fd);
    free(o->buf);
    free(o);
}
