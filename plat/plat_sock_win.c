/* plat's sockets on Windows: Winsock 2, started once on first use, non-blocking sockets
 * (FIONBIO), never inherited (HANDLE_FLAG_INHERIT off), WSAPoll. */
#ifndef _WIN32_WINNT
#define _WIN32_WINNT 0x0A00
#endif
#include <stdio.h>
#include <string.h>

/* winsock2.h before windows.h, which would bring the old winsock.h. */
#include <winsock2.h>
#include <ws2tcpip.h>
#include <windows.h>

#include "plat.h"

#define POLL_MAX 64
#ifndef SIO_UDP_CONNRESET
#define SIO_UDP_CONNRESET _WSAIOW(IOC_VENDOR, 12)
#endif

static INIT_ONCE started = INIT_ONCE_STATIC_INIT;
static int start_error;

static BOOL CALLBACK start_winsock(PINIT_ONCE once, PVOID param, PVOID *ctx) {
    (void)once, (void)param, (void)ctx;
    WSADATA d;
    start_error = WSAStartup(MAKEWORD(2, 2), &d);
    return TRUE;
}

/* "what: An attempt was made to access a socket in a way forbidden ... (10013)". */
static int sock_fail(int code, const char *what, int err) {
    char text[256] = "";
    FormatMessageA(FORMAT_MESSAGE_FROM_SYSTEM | FORMAT_MESSAGE_IGNORE_INSERTS, NULL, (DWORD)err, 0,
                   text, sizeof text, NULL);
    size_t n = strlen(text);
    while (n > 0 && (text[n - 1] == '\n' || text[n - 1] == '\r' || text[n - 1] == '.'))
        text[--n] = '\0';
    return farm_fail(code, "%s: %s (%d)", what, n ? text : "Winsock error", err);
}

static int start(const char *what) {
    InitOnceExecuteOnce(&started, start_winsock, NULL, NULL);
    return start_error == 0 ? FARM_OK : sock_fail(FARM_EFAIL, what, start_error);
}

static int lookup(const char *host, const char *port, int stream, int passive, const char *what,
                  struct addrinfo **ai) {
    int rv = start(what);
    if (rv != FARM_OK)
        return rv;
    struct addrinfo hints = {.ai_flags = AI_NUMERICSERV | (passive ? AI_PASSIVE : 0),
                             .ai_socktype = stream ? SOCK_STREAM : SOCK_DGRAM};
    int e = getaddrinfo(host[0] ? host : NULL, port, &hints, ai);
    if (e != 0)
        return sock_fail(FARM_EUSAGE, what, e);
    return FARM_OK;
}

/* A non-blocking socket that no child inherits, or INVALID_SOCKET. */
static SOCKET new_socket(int family, int type) {
    SOCKET s = WSASocketW(family, type, 0, NULL, 0, WSA_FLAG_NO_HANDLE_INHERIT);
    u_long one = 1;
    if (s != INVALID_SOCKET && ioctlsocket(s, FIONBIO, &one) != 0) {
        closesocket(s);
        return INVALID_SOCKET;
    }
    return s;
}

/* Windows reports an ICMP "port unreachable", which a reply to a client that has gone may bring
 * back, as WSAECONNRESET on the socket's next receive; a server wants the next datagram. */
static void udp_no_reset(SOCKET s) {
    BOOL report = FALSE;
    DWORD got = 0;
    WSAIoctl(s, SIO_UDP_CONNRESET, &report, sizeof report, NULL, 0, &got, NULL, NULL);
}

static int bound_port_of(SOCKET s) {
    struct sockaddr_storage sa;
    int len = sizeof sa;
    if (getsockname(s, (struct sockaddr *)&sa, &len) != 0)
        return -1;
    return ntohs(sa.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&sa)->sin6_port
                                          : ((struct sockaddr_in *)&sa)->sin_port);
}

/* The first address that binds, IPv4 before IPv6 (for "localhost"). No SO_REUSEADDR: on
 * Windows it lets another socket take a port in use; a port in TIME_WAIT binds anyway. */
int plat_sock_bind(const char *host, const char *port, int stream, const char *what,
                   plat_socket *out, int *bound_port) {
    struct addrinfo *ai = NULL;
    int rv = lookup(host, port, stream, 1, what, &ai);
    if (rv != FARM_OK)
        return rv;
    SOCKET got = INVALID_SOCKET;
    int err = WSAEADDRNOTAVAIL;
    for (int pass = 0; pass < 2 && got == INVALID_SOCKET; pass++)
        for (struct addrinfo *it = ai; it != NULL && got == INVALID_SOCKET; it = it->ai_next) {
            if ((it->ai_family == AF_INET) != (pass == 0))
                continue;
            SOCKET s = new_socket(it->ai_family, it->ai_socktype);
            if (s == INVALID_SOCKET) {
                err = WSAGetLastError();
                continue;
            }
            BOOL excl = TRUE; /* nobody else binds this port while farm has it */
            setsockopt(s, SOL_SOCKET, SO_EXCLUSIVEADDRUSE, (const char *)&excl, sizeof excl);
            if (!stream) /* no WSAECONNRESET from a reply to a client that left */
                udp_no_reset(s);
            if (bind(s, it->ai_addr, (int)it->ai_addrlen) == 0 && (!stream || listen(s, 8) == 0))
                got = s;
            else {
                err = WSAGetLastError();
                closesocket(s);
            }
        }
    freeaddrinfo(ai);
    if (got == INVALID_SOCKET)
        return sock_fail(FARM_EUSAGE, what, err);
    *out = (plat_socket)got;
    *bound_port = bound_port_of(got);
    return FARM_OK;
}

int plat_sock_resolve(const char *host, const char *port, int stream, const char *what,
                      plat_addr *out) {
    struct addrinfo *ai = NULL;
    int rv = lookup(host, port, stream, 0, what, &ai);
    if (rv != FARM_OK)
        return rv;
    memcpy(out->bytes, ai->ai_addr, ai->ai_addrlen);
    out->len = (uint32_t)ai->ai_addrlen;
    freeaddrinfo(ai);
    return FARM_OK;
}

int plat_sock_connect(const plat_addr *a, int timeout_ms, const char *what, plat_socket *out) {
    const struct sockaddr *sa = (const struct sockaddr *)a->bytes;
    int rv = start(what);
    if (rv != FARM_OK)
        return rv;
    SOCKET s = new_socket(sa->sa_family, SOCK_STREAM);
    if (s == INVALID_SOCKET)
        return sock_fail(FARM_EFAIL, what, WSAGetLastError());
    if (connect(s, sa, (int)a->len) != 0 && WSAGetLastError() != WSAEWOULDBLOCK) {
        int e = WSAGetLastError();
        closesocket(s);
        return sock_fail(FARM_EFAIL, what, e);
    }
    WSAPOLLFD p = {.fd = s, .events = POLLWRNORM};
    int err = 0, len = sizeof err;
    if (WSAPoll(&p, 1, timeout_ms) != 1 ||
        getsockopt(s, SOL_SOCKET, SO_ERROR, (char *)&err, &len) != 0 || err != 0) {
        closesocket(s);
        return err ? sock_fail(FARM_EFAIL, what, err)
                   : farm_fail(FARM_EFAIL, "%s: timed out", what);
    }
    *out = (plat_socket)s;
    return FARM_OK;
}

int plat_sock_accept(plat_socket s, plat_socket *out) {
    SOCKET k = accept((SOCKET)s, NULL, NULL);
    if (k == INVALID_SOCKET)
        return 0;
    /* An accepted socket takes the listener's non-blocking mode but not its handle flags. */
    SetHandleInformation((HANDLE)k, HANDLE_FLAG_INHERIT, 0);
    u_long one = 1;
    ioctlsocket(k, FIONBIO, &one);
    *out = (plat_socket)k;
    return 1;
}

static int would_block(void) {
    int e = WSAGetLastError();
    return e == WSAEWOULDBLOCK || e == WSAEINTR;
}

long plat_sock_recv(plat_socket s, void *buf, size_t size, plat_addr *from) {
    int len = PLAT_ADDR_MAX;
    int n = from ? recvfrom((SOCKET)s, buf, (int)size, 0, (struct sockaddr *)from->bytes, &len)
                 : recv((SOCKET)s, buf, (int)size, 0);
    if (n == SOCKET_ERROR) {
        /* A datagram longer than buf is cut, as on Linux; an ICMP "port unreachable" from an
         * earlier send to a client that left is Winsock's, not this datagram's. */
        int e = WSAGetLastError();
        if (from != NULL && e == WSAEMSGSIZE) {
            from->len = (uint32_t)len;
            return (long)size;
        }
        return would_block() || (from != NULL && e == WSAECONNRESET) ? 0 : -1;
    }
    if (from != NULL)
        from->len = (uint32_t)len;
    return n == 0 && from == NULL ? -1 : (long)n;
}

long plat_sock_send(plat_socket s, const void *buf, size_t n, const plat_addr *to) {
    int k = to ? sendto((SOCKET)s, buf, (int)n, 0, (const struct sockaddr *)to->bytes, (int)to->len)
               : send((SOCKET)s, buf, (int)n, 0);
    if (k == SOCKET_ERROR)
        return would_block() ? 0 : -1;
    return (long)k;
}

int plat_sock_poll(const plat_socket *socks, size_t n, int out, int *ready, int timeout_ms) {
    WSAPOLLFD p[POLL_MAX];
    if (n > POLL_MAX)
        n = POLL_MAX;
    for (size_t i = 0; i < n; i++)
        p[i] = (WSAPOLLFD){.fd = (SOCKET)socks[i], .events = out ? POLLWRNORM : POLLRDNORM};
    int k = WSAPoll(p, (ULONG)n, timeout_ms);
    for (size_t i = 0; i < n; i++)
        ready[i] = k > 0 && p[i].revents != 0;
    return k > 0 ? k : 0;
}

void plat_sock_close(plat_socket s) {
    if (s != PLAT_NO_SOCKET)
        closesocket((SOCKET)s);
}
