/* OSC: the same requests as the REP socket, as OSC messages to /farm/COMMAND whose arguments are
 * the request's words; each is answered with /farm/reply and one string, the JSON reply.
 * liblo encodes and decodes the messages. The socket is farm's own: liblo 0.31's servers bind
 * every address (they take the URL's host for a multicast group), and --osc must listen only
 * where it says, on loopback unless --listen-anywhere, as --control does. One thread serves UDP
 * datagrams, or a TCP listener and up to OSC_CLIENTS connections (OSC 1.0 framing: a 4-byte
 * big-endian length before each packet); it waits at most OSC_POLL_MS, so a stop is noticed. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <lo/lo.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "control_internal.h"

#define OSC_POLL_MS 100       /* how soon the thread notices a stop */
#define OSC_CLIENTS 16        /* TCP connections at once; more are closed at once */
#define OSC_UDP_MAX 65536     /* the largest datagram */
#define OSC_UDP_REPLY 65507   /* the largest UDP payload over IPv4 */
#define OSC_TCP_MAX (1 << 20) /* a longer TCP packet closes the connection */
#define OSC_REPLY_WAIT_MS 100 /* for a TCP client to make room for its reply */
#define OSC_NUMBER_MAX 32     /* characters of a number as text */
#define OSC_PREFIX "/farm/"
#define OSC_REPLY_PATH "/farm/reply"

typedef struct osc_client {
    int fd; /* -1: free */
    unsigned char *buf;
    size_t have, cap;
} osc_client;

typedef struct farm_osc {
    int stream; /* 0 UDP, 1 TCP */
    int fd;
    pthread_t thread;
    int started;
    unsigned char *buf; /* UDP: one datagram */
    osc_client clients[OSC_CLIENTS];
} farm_osc;

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

/* One socket on the first address of u that binds, IPv4 before IPv6 (for "localhost"). */
static int bind_url(farm_osc *o, const osc_url *u, const char *url) {
    struct addrinfo hints = {.ai_flags = AI_PASSIVE | AI_NUMERICSERV,
                             .ai_socktype = u->stream ? SOCK_STREAM : SOCK_DGRAM};
    struct addrinfo *ai = NULL;
    int e = getaddrinfo(u->host[0] ? u->host : NULL, u->port, &hints, &ai);
    if (e != 0)
        return farm_fail(FARM_EUSAGE, "--osc %s: %s", url, gai_strerror(e));
    int err = EADDRNOTAVAIL, one = 1;
    for (int pass = 0; pass < 2 && o->fd < 0; pass++)
        for (struct addrinfo *it = ai; it != NULL && o->fd < 0; it = it->ai_next) {
            if ((it->ai_family == AF_INET) != (pass == 0))
                continue;
            int fd = socket(it->ai_family, it->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
            if (fd < 0) {
                err = errno;
                continue;
            }
            if (u->stream) /* TCP: a port left in TIME_WAIT by the last farm is free */
                setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
            if (bind(fd, it->ai_addr, it->ai_addrlen) == 0 && (!u->stream || listen(fd, 8) == 0))
                o->fd = fd;
            else {
                err = errno;
                close(fd);
            }
        }
    freeaddrinfo(ai);
    if (o->fd < 0)
        return farm_fail(FARM_EUSAGE, "--osc %s: %s", url, strerror(err));
    return FARM_OK;
}

/* ---- a message into a request ---- */

static int is_number(char t) {
    return t == 'i' || t == 'h' || t == 'f' || t == 'd';
}

static int is_text(char t) {
    return t == 's' || t == 'S';
}

/* Enough digits that the number reads back as the same float or double. liblo's arguments
 * are in host order but only 4-byte aligned, so they are copied out, not read through lo_arg. */
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
static int request_text(const char *cmd, const char *types, lo_arg **argv, int argc, char **out) {
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

static char *refusal(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* {"ok":false,"error":...}, as farm_control_request refuses. */
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
static char *answer(farm_control *c, void *data, size_t size, int *quiet) {
    *quiet = 0;
    if (size >= 8 && memcmp(data, "#bundle", 8) == 0)
        return refusal("OSC bundles are not taken: send each message on its own");
    const char *path = lo_get_path(data, (ssize_t)size);
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
    lo_message m = lo_message_deserialise(data, size, &result);
    if (m == NULL && result != LO_ENOTYPE) /* no type tags at all: an old sender, no arguments */
        return refusal("%s: not a valid OSC message (liblo error %d)", path, result);
    char *text = NULL;
    farm_error_clear();
    int rv = m ? request_text(cmd, lo_message_get_types(m), lo_message_get_argv(m),
                              lo_message_get_argc(m), &text)
               : request_text(cmd, "", NULL, 0, &text);
    if (m != NULL)
        lo_message_free(m);
    if (rv != FARM_OK)
        return refusal("%s", farm_error_message());
    char *json = farm_control_request(c, text, strlen(text));
    free(text);
    return json;
}

/* /farm/reply with json as its one string, serialised (malloc'd); NULL when out of memory. */
static void *reply_packet(const char *json, size_t *size) {
    lo_message m = lo_message_new();
    if (m == NULL)
        return NULL;
    void *p = lo_message_add_string(m, json) == 0
                  ? lo_message_serialise(m, OSC_REPLY_PATH, NULL, size)
                  : NULL;
    lo_message_free(m);
    return p;
}

/* The reply packet to one packet; NULL for none. A reply over limit bytes (UDP's) becomes a
 * refusal that says so. */
static void *handle(farm_control *c, void *data, size_t size, size_t limit, size_t *out_size) {
    int quiet;
    char *json = answer(c, data, size, &quiet);
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
        atomic_fetch_add(&c->replies_dropped, 1);
    return p;
}

/* ---- UDP ---- */

static void udp_one(farm_control *c, farm_osc *o) {
    struct sockaddr_storage from;
    socklen_t from_len = sizeof from;
    ssize_t n =
        recvfrom(o->fd, o->buf, OSC_UDP_MAX, MSG_DONTWAIT, (struct sockaddr *)&from, &from_len);
    if (n <= 0)
        return;
    size_t size = 0;
    void *p = handle(c, o->buf, (size_t)n, OSC_UDP_REPLY, &size);
    if (p != NULL &&
        sendto(o->fd, p, size, MSG_DONTWAIT, (struct sockaddr *)&from, from_len) != (ssize_t)size)
        atomic_fetch_add(&c->replies_dropped, 1);
    free(p);
}

/* ---- TCP ---- */

static void client_close(osc_client *k) {
    close(k->fd);
    free(k->buf);
    *k = (osc_client){.fd = -1};
}

static void tcp_accept(farm_osc *o) {
    int fd = accept4(o->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0)
        return;
    for (int i = 0; i < OSC_CLIENTS; i++)
        if (o->clients[i].fd < 0) {
            o->clients[i].fd = fd;
            return;
        }
    close(fd); /* OSC_CLIENTS already */
}

/* All of data, waiting at most OSC_REPLY_WAIT_MS for room: 1 when it went. */
static int send_all(int fd, const unsigned char *data, size_t n) {
    uint64_t end = farm_now_ns() + (uint64_t)OSC_REPLY_WAIT_MS * FARM_NS_PER_MS;
    while (n > 0) {
        ssize_t k = send(fd, data, n, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (k > 0) {
            data += k;
            n -= (size_t)k;
            continue;
        }
        uint64_t now = farm_now_ns();
        if ((k < 0 && errno != EAGAIN && errno != EINTR) || now >= end)
            return 0;
        struct pollfd p = {.fd = fd, .events = POLLOUT};
        poll(&p, 1, (int)((end - now) / FARM_NS_PER_MS) + 1);
    }
    return 1;
}

/* The reply to one framed packet, framed: 0 when it could not be sent whole (the connection
 * is then closed: half a frame would garble every later one). */
static int tcp_answer(farm_control *c, osc_client *k, size_t len) {
    size_t size = 0;
    unsigned char *p = handle(c, k->buf + 4, len, SIZE_MAX, &size);
    if (p == NULL)
        return 1;
    uint32_t be = htonl((uint32_t)size);
    int ok = send_all(k->fd, (const unsigned char *)&be, 4) && send_all(k->fd, p, size);
    free(p);
    if (!ok)
        atomic_fetch_add(&c->replies_dropped, 1);
    return ok;
}

/* Reads what k has sent and answers each whole packet; 0 when the connection is over. */
static int tcp_read(farm_control *c, osc_client *k) {
    for (;;) {
        uint32_t len = 0;
        if (k->have >= 4) {
            memcpy(&len, k->buf, 4);
            len = ntohl(len);
        }
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
            return len == 0 || tcp_answer(c, k, len);
        }
        ssize_t n = recv(k->fd, k->buf + k->have, need - k->have, MSG_DONTWAIT);
        if (n <= 0)
            return n < 0 && (errno == EAGAIN || errno == EINTR);
        k->have += (size_t)n;
    }
}

/* ---- the thread ---- */

static void *osc_main(void *arg) {
    farm_control *c = arg;
    farm_osc *o = c->osc;
    struct pollfd p[1 + OSC_CLIENTS];
    int who[1 + OSC_CLIENTS];
    while (!atomic_load(&c->stopping)) {
        int n = 0;
        p[n++] = (struct pollfd){.fd = o->fd, .events = POLLIN};
        for (int i = 0; o->stream && i < OSC_CLIENTS; i++)
            if (o->clients[i].fd >= 0) {
                who[n] = i;
                p[n++] = (struct pollfd){.fd = o->clients[i].fd, .events = POLLIN};
            }
        if (poll(p, (nfds_t)n, OSC_POLL_MS) <= 0)
            continue;
        for (int j = 1; j < n; j++)
            if (p[j].revents && !tcp_read(c, &o->clients[who[j]]))
                client_close(&o->clients[who[j]]);
        if (p[0].revents && o->stream)
            tcp_accept(o);
        else if (p[0].revents)
            udp_one(c, o);
    }
    return NULL;
}

int farm_control_osc_start(farm_control *c) {
    const char *url = c->desc.osc_url;
    if (url == NULL)
        return FARM_OK;
    osc_url u;
    int rv = parse_url(url, &u);
    if (rv == FARM_OK)
        rv = farm_control_check_host(url, c->desc.listen_anywhere, "--osc");
    if (rv != FARM_OK)
        return rv;
    farm_osc *o = c->osc = calloc(1, sizeof *o);
    if (o == NULL)
        return farm_fail(FARM_ENOMEM, "out of memory");
    o->stream = u.stream;
    o->fd = -1;
    for (int i = 0; i < OSC_CLIENTS; i++)
        o->clients[i].fd = -1;
    if (!u.stream && (o->buf = malloc(OSC_UDP_MAX)) == NULL)
        return farm_fail(FARM_ENOMEM, "out of memory");
    if ((rv = bind_url(o, &u, url)) != FARM_OK)
        return rv;
    struct sockaddr_storage sa; /* port 0: the one it got, so the URL printed reaches farm */
    socklen_t len = sizeof sa;
    int port = -1;
    if (getsockname(o->fd, (struct sockaddr *)&sa, &len) == 0)
        port = ntohs(sa.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&sa)->sin6_port
                                              : ((struct sockaddr_in *)&sa)->sin_port);
    snprintf(c->osc_url, sizeof c->osc_url, "%.*s:%d", (int)u.before_port, url, port);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, THREAD_STACK);
    o->started = pthread_create(&o->thread, &attr, osc_main, c) == 0;
    pthread_attr_destroy(&attr);
    if (!o->started)
        return farm_fail(FARM_EFAIL, "cannot start the OSC thread");
    return FARM_OK;
}

void farm_control_osc_stop(farm_control *c) {
    farm_osc *o = c->osc;
    if (o == NULL)
        return;
    atomic_store(&c->stopping, 1);
    if (o->started)
        pthread_join(o->thread, NULL);
    for (int i = 0; i < OSC_CLIENTS; i++)
        if (o->clients[i].fd >= 0)
            client_close(&o->clients[i]);
    if (o->fd >= 0)
        close(o->fd);
    free(o->buf);
    free(o);
    c->osc = NULL;
}
