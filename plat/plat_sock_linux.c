/* plat's sockets on Linux: BSD sockets, non-blocking and close-on-exec, poll. */
#define _GNU_SOURCE
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "plat.h"

#define POLL_MAX 64

static int lookup(const char *host, const char *port, int stream, int passive, const char *what,
                  struct addrinfo **ai) {
    struct addrinfo hints = {.ai_flags = AI_NUMERICSERV | (passive ? AI_PASSIVE : 0),
                             .ai_socktype = stream ? SOCK_STREAM : SOCK_DGRAM};
    int e = getaddrinfo(host[0] ? host : NULL, port, &hints, ai);
    if (e != 0)
        return farm_fail(FARM_EUSAGE, "%s: %s", what, gai_strerror(e));
    return FARM_OK;
}

static int bound_port_of(int fd) {
    struct sockaddr_storage sa;
    socklen_t len = sizeof sa;
    if (getsockname(fd, (struct sockaddr *)&sa, &len) != 0)
        return -1;
    return ntohs(sa.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&sa)->sin6_port
                                          : ((struct sockaddr_in *)&sa)->sin_port);
}

/* The first address of ai that binds, IPv4 before IPv6 (for "localhost"). */
int plat_sock_bind(const char *host, const char *port, int stream, const char *what,
                   plat_socket *out, int *bound_port) {
    struct addrinfo *ai = NULL;
    int rv = lookup(host, port, stream, 1, what, &ai);
    if (rv != FARM_OK)
        return rv;
    int got = -1, err = EADDRNOTAVAIL, one = 1;
    for (int pass = 0; pass < 2 && got < 0; pass++)
        for (struct addrinfo *it = ai; it != NULL && got < 0; it = it->ai_next) {
            if ((it->ai_family == AF_INET) != (pass == 0))
                continue;
            int fd = socket(it->ai_family, it->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
            if (fd < 0) {
                err = errno;
                continue;
            }
            if (stream) /* TCP: a port left in TIME_WAIT by the last farm is free */
                setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
            if (bind(fd, it->ai_addr, it->ai_addrlen) == 0 && (!stream || listen(fd, 8) == 0))
                got = fd;
            else {
                err = errno;
                close(fd);
            }
        }
    freeaddrinfo(ai);
    if (got < 0)
        return farm_fail(FARM_EUSAGE, "%s: %s", what, strerror(err));
    *out = got;
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
    int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return farm_fail(FARM_EFAIL, "%s: %s", what, strerror(errno));
    if (connect(fd, sa, a->len) != 0 && errno != EINPROGRESS) {
        int e = errno;
        close(fd);
        return farm_fail(FARM_EFAIL, "%s: %s", what, strerror(e));
    }
    struct pollfd p = {.fd = fd, .events = POLLOUT};
    int err = 0;
    socklen_t len = sizeof err;
    if (poll(&p, 1, timeout_ms) != 1 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 ||
        err != 0) {
        close(fd);
        return farm_fail(FARM_EFAIL, "%s: %s", what, err ? strerror(err) : "timed out");
    }
    *out = fd;
    return FARM_OK;
}

int plat_sock_accept(plat_socket s, plat_socket *out) {
    int fd = accept4((int)s, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0)
        return 0;
    *out = fd;
    return 1;
}

long plat_sock_recv(plat_socket s, void *buf, size_t size, plat_addr *from) {
    socklen_t len = PLAT_ADDR_MAX;
    ssize_t n =
        from ? recvfrom((int)s, buf, size, MSG_DONTWAIT, (struct sockaddr *)from->bytes, &len)
             : recv((int)s, buf, size, MSG_DONTWAIT);
    if (n < 0)
        return errno == EAGAIN || errno == EINTR ? 0 : -1;
    if (from != NULL)
        from->len = len;
    /* A datagram may be empty; a stream's 0 is its end. */
    return n == 0 && from == NULL ? -1 : (long)n;
}

long plat_sock_send(plat_socket s, const void *buf, size_t n, const plat_addr *to) {
    ssize_t k = to ? sendto((int)s, buf, n, MSG_DONTWAIT | MSG_NOSIGNAL,
                            (const struct sockaddr *)to->bytes, to->len)
                   : send((int)s, buf, n, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (k < 0)
        return errno == EAGAIN || errno == EINTR ? 0 : -1;
    return (long)k;
}

int plat_sock_poll(const plat_socket *socks, size_t n, int out, int *ready, int timeout_ms) {
    struct pollfd p[POLL_MAX];
    if (n > POLL_MAX)
        n = POLL_MAX;
    for (size_t i = 0; i < n; i++)
        p[i] = (struct pollfd){.fd = (int)socks[i], .events = out ? POLLOUT : POLLIN};
    int k = poll(p, (nfds_t)n, timeout_ms);
    for (size_t i = 0; i < n; i++)
        ready[i] = k > 0 && p[i].revents != 0;
    return k > 0 ? k : 0;
}

void plat_sock_close(plat_socket s) {
    if (s != PLAT_NO_SOCKET)
        close((int)s);
}
