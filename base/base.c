#define _GNU_SOURCE
#include "base.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

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
