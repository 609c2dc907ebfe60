#define _GNU_SOURCE
#include "base.h"

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

/* Per thread: the recorder, the control thread and the main thread each fail on their own. */
static _Thread_local char error_message[512];
static _Thread_local int error_code;

int farm_fail(int code, const char *fmt, ...) {
    if (error_message[0] == '\0') {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(error_message, sizeof error_message, fmt, ap);
        va_end(ap);
        error_code = code;
    }
    return code;
}

const char *farm_error_message(void) {
    return error_message[0] ? error_message : farm_strerror(error_code ? error_code : FARM_EFAIL);
}

void farm_error_clear(void) {
    error_message[0] = '\0';
    error_code = FARM_OK;
}

const char *farm_strerror(int code) {
    switch ((farm_status)code) {
#define FARM_STATUS_TEXT(name, value, message, exit)                                               \
    case name:                                                                                     \
        return message;
        FARM_STATUS_LIST(FARM_STATUS_TEXT)
#undef FARM_STATUS_TEXT
    }
    return "unknown error";
}

int farm_exit_status(int code) {
    switch ((farm_status)code) {
#define FARM_STATUS_EXIT(name, value, message, exit)                                               \
    case name:                                                                                     \
        return exit;
        FARM_STATUS_LIST(FARM_STATUS_EXIT)
#undef FARM_STATUS_EXIT
    }
    return 1;
}

volatile sig_atomic_t farm_stop_signal;

static void on_stop_signal(int sig) {
    farm_stop_signal = sig;
}

#ifdef _WIN32
/* Windows' C runtime has signal() and no sigaction, SIGPIPE or SIGTERM from outside; the
 * platform layer will add a console handler and a named stop event (docs/windows.md). */
void farm_catch_stop_signals(void) {
    signal(SIGINT, on_stop_signal);
    signal(SIGTERM, on_stop_signal);
}
#else
void farm_catch_stop_signals(void) {
    struct sigaction sa = {0};
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN); /* a closed pipe or socket is an error return, not a death */
}
#endif

uint64_t farm_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * FARM_NS_PER_S + (uint64_t)ts.tv_nsec;
}

void farm_sleep_ns(uint64_t ns) {
    struct timespec ts = {(time_t)(ns / FARM_NS_PER_S), (long)(ns % FARM_NS_PER_S)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

#ifdef _WIN32
/* winpthreads' clock_nanosleep(TIMER_ABSTIME) returns at once under wine: sleep what is left,
 * measured again after every wake-up, until the deadline. */
void farm_sleep_until_ns(uint64_t deadline_ns) {
    for (uint64_t now = farm_now_ns(); now < deadline_ns; now = farm_now_ns())
        farm_sleep_ns(deadline_ns - now);
}
#else
void farm_sleep_until_ns(uint64_t deadline_ns) {
    struct timespec ts = {(time_t)(deadline_ns / FARM_NS_PER_S),
                          (long)(deadline_ns % FARM_NS_PER_S)};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
        ;
}
#endif

int farm_parse_double(const char *what, const char *s, double lo, double hi, double *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || *end != '\0')
        return farm_fail(FARM_EUSAGE, "%s: '%s' is not a number", what, s);
    if (!isfinite(v) || (errno == ERANGE && fabs(v) == HUGE_VAL))
        return farm_fail(FARM_EUSAGE, "%s: '%s' is not a finite number", what, s);
    if (v == 0)
        v = 0; /* -0 and underflows read as plain 0 */
    if (v < lo || v > hi)
        return farm_fail(FARM_EUSAGE, "%s: %s is out of range (%g to %g)", what, s, lo, hi);
    *out = v;
    return FARM_OK;
}

int farm_parse_u64(const char *what, const char *s, uint64_t lo, uint64_t hi, uint64_t *out) {
    char *end = NULL;
    errno = 0;
    unsigned long long v = 0;
    int ok = *s >= '0' && *s <= '9';
    if (ok)
        v = strtoull(s, &end, 10);
    if (!ok || end == NULL || *end != '\0' || errno == ERANGE || v < lo || v > hi)
        return farm_fail(FARM_EUSAGE, "%s: '%s' is not a whole number from %llu to %llu", what, s,
                         (unsigned long long)lo, (unsigned long long)hi);
    *out = v;
    return FARM_OK;
}

int farm_parse_u32(const char *what, const char *s, uint32_t lo, uint32_t hi, uint32_t *out) {
    uint64_t v = 0;
    int rv = farm_parse_u64(what, s, lo, hi, &v);
    if (rv == FARM_OK)
        *out = (uint32_t)v;
    return rv;
}
