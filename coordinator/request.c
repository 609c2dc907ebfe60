/* The control protocol's request parser: one line of text in, one validated request out, or an
 * error message that names what was wrong. Pure: no I/O, no allocation, no global state, so
 * the fuzzer (tests/fuzz_request.c) drives it directly. */
#define _GNU_SOURCE
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coordinator.h"

#define MAX_TOKENS 8
#define MAX_TOKEN 64

typedef struct tokens {
    char text[MAX_TOKENS][MAX_TOKEN];
    int count;
} tokens;

static int fail(char *err, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int fail(char *err, size_t size, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, size, fmt, ap);
    va_end(ap);
    return -1;
}

/* Splits on spaces and tabs; a trailing newline (and CR) is allowed, any other control byte,
 * or bytes that are not UTF-8 text, is refused. */
static int split(const char *s, size_t len, tokens *t, char *err, size_t esize) {
    while (len > 0 && (s[len - 1] == '\n' || s[len - 1] == '\r'))
        len--;
    t->count = 0;
    size_t i = 0;
    while (i < len) {
        unsigned char c = (unsigned char)s[i];
        if (c == ' ' || c == '\t') {
            i++;
            continue;
        }
        size_t start = i;
        while (i < len && s[i] != ' ' && s[i] != '\t') {
            unsigned char b = (unsigned char)s[i];
            if (b < 0x20 || b == 0x7f)
                return fail(err, esize, "control character 0x%02x in the request", b);
            if (b >= 0x80)
                return fail(err, esize, "non-ASCII byte 0x%02x: commands are plain words", b);
            i++;
        }
        size_t n = i - start;
        if (t->count == MAX_TOKENS)
            return fail(err, esize, "too many words (at most %d)", MAX_TOKENS);
        if (n >= MAX_TOKEN)
            return fail(err, esize, "word %d is too long (at most %d characters)", t->count + 1,
                        MAX_TOKEN - 1);
        memcpy(t->text[t->count], s + start, n);
        t->text[t->count][n] = '\0';
        t->count++;
    }
    return 0;
}

static int number(const char *s, const char *what, double lo, double hi, double *out, char *err,
                  size_t esize) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || *end != '\0')
        return fail(err, esize, "%s: '%s' is not a number", what, s);
    if (!isfinite(v) || (errno == ERANGE && fabs(v) == HUGE_VAL))
        return fail(err, esize, "%s: '%s' is not a finite number", what, s);
    if (v == 0)
        v = 0; /* -0 and underflows read as plain 0 */
    if (v < lo || v > hi)
        return fail(err, esize, "%s: %s is out of range (%g to %g)", what, s, lo, hi);
    *out = v;
    return 0;
}

static int whole(const char *s, const char *what, uint64_t limit, uint32_t *out, char *err,
                 size_t esize) {
    if (*s < '0' || *s > '9')
        return fail(err, esize, "%s: '%s' is not a whole number", what, s);
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (*end != '\0' || errno == ERANGE)
        return fail(err, esize, "%s: '%s' is not a whole number", what, s);
    if (v >= limit)
        return fail(err, esize, "%s %llu does not exist (there are %llu)", what, v,
                    (unsigned long long)limit);
    *out = (uint32_t)v;
    return 0;
}

/* all | N | A-B | worker:K -> voices [first, first + count) or a whole worker */
static int selector(const char *s, const farm_request_limits *lim, farm_request *r, char *err,
                    size_t esize) {
    if (strcmp(s, "all") == 0) {
        r->first = 0;
        r->count = lim->voices;
        return 0;
    }
    if (strncmp(s, "worker:", 7) == 0) {
        if (whole(s + 7, "worker", lim->workers, &r->worker, err, esize) != 0)
            return -1;
        r->whole_worker = 1;
        return 0;
    }
    char a[MAX_TOKEN], *dash = strchr(s, '-');
    if (dash == NULL)
        dash = (char *)s + strlen(s);
    size_t n = (size_t)(dash - s);
    memcpy(a, s, n);
    a[n] = '\0';
    uint32_t lo, hi;
    const char *b = *dash == '-' ? dash + 1 : NULL;
    if (a[0] < '0' || a[0] > '9' || (b != NULL && (*b < '0' || *b > '9' || strchr(b, '-'))))
        return fail(err, esize, "'%s' is not a selector (all, N, A-B or worker:K)", s);
    if (whole(a, "voice", lim->voices, &lo, err, esize) != 0)
        return -1;
    hi = lo;
    if (b != NULL && whole(b, "voice", lim->voices, &hi, err, esize) != 0)
        return -1;
    if (hi < lo)
        return fail(err, esize, "voices %u-%u: the range runs backwards", lo, hi);
    r->first = lo;
    r->count = hi - lo + 1;
    return 0;
}

/* [ramp SECONDS] at t->text[at], if present */
static int ramp(const tokens *t, int at, farm_request *r, char *err, size_t esize) {
    r->ramp = -1; /* the default */
    if (t->count == at)
        return 0;
    if (strcmp(t->text[at], "ramp") == 0 && t->count == at + 1)
        return fail(err, esize, "'ramp' needs SECONDS");
    if (t->count != at + 2 || strcmp(t->text[at], "ramp") != 0)
        return fail(err, esize, "unexpected '%s': only 'ramp SECONDS' may follow", t->text[at]);
    return number(t->text[at + 1], "ramp", 0, 60, &r->ramp, err, esize);
}

static int play_or_stop(const char *s, farm_request *r, char *err, size_t esize) {
    if (strcmp(s, "play") == 0)
        r->play = 1;
    else if (strcmp(s, "stop") == 0)
        r->play = 0;
    else
        return fail(err, esize, "'%s' is not play or stop", s);
    return 0;
}

static int parse(const char *text, size_t len, const farm_request_limits *lim, farm_request *r,
                 char *err, size_t esize);

int farm_request_parse(const char *text, size_t len, const farm_request_limits *lim,
                       farm_request *out, char *err, size_t esize) {
    /* into a local: a refused request leaves the caller's untouched, not half filled */
    farm_request r;
    memset(&r, 0, sizeof r);
    r.ramp = -1;
    if (parse(text, len, lim, &r, err, esize) != 0)
        return -1;
    *out = r;
    return 0;
}

static int parse(const char *text, size_t len, const farm_request_limits *lim, farm_request *r,
                 char *err, size_t esize) {
    if (len > FARM_REQUEST_MAX)
        return fail(err, esize, "request too long (%zu bytes; at most %d)", len, FARM_REQUEST_MAX);
    tokens t;
    if (split(text, len, &t, err, esize) != 0)
        return -1;
    if (t.count == 0)
        return fail(err, esize, "empty request (try 'help')");
    const char *cmd = t.text[0];
    if (strcmp(cmd, "status") == 0 || strcmp(cmd, "quit") == 0 || strcmp(cmd, "help") == 0) {
        if (t.count != 1)
            return fail(err, esize, "'%s' takes no arguments", cmd);
        r->kind = cmd[0] == 's' ? FARM_REQ_STATUS : cmd[0] == 'q' ? FARM_REQ_QUIT : FARM_REQ_HELP;
        return 0;
    }
    if (strcmp(cmd, "set") == 0) {
        if (t.count < 4)
            return fail(err, esize, "usage: set SELECTOR PARAM VALUE [ramp SECONDS]");
        r->kind = FARM_REQ_SET;
        if (selector(t.text[1], lim, r, err, esize) != 0)
            return -1;
        const char *p = t.text[2];
        double lo = 0, hi;
        if (strcmp(p, "freq") == 0) {
            r->param = FARM_PARAM_FREQ;
            hi = lim->sample_rate / 2;
        } else if (strcmp(p, "feedback") == 0) {
            r->param = FARM_PARAM_FEEDBACK;
            hi = 1;
        } else if (strcmp(p, "amp") == 0) {
            r->param = FARM_PARAM_AMP;
            hi = 1;
        } else if (strcmp(p, "pan") == 0) {
            r->param = FARM_PARAM_PAN;
            hi = lim->channels == 2 ? 1 : lim->channels - 1;
        } else {
            return fail(err, esize, "unknown parameter '%s' (freq, feedback, amp or pan)", p);
        }
        if (number(t.text[3], p, lo, hi, &r->value, err, esize) != 0)
            return -1;
        if (r->param == FARM_PARAM_PAN && lim->channels != 2 && r->value != floor(r->value))
            return fail(err, esize, "pan: with %u channels it is a channel index, not %s",
                        lim->channels, t.text[3]);
        return ramp(&t, 4, r, err, esize);
    }
    if (strcmp(cmd, "voice") == 0) {
        if (t.count < 3)
            return fail(err, esize, "usage: voice SELECTOR play|stop [ramp SECONDS]");
        r->kind = FARM_REQ_VOICE;
        if (selector(t.text[1], lim, r, err, esize) != 0 ||
            play_or_stop(t.text[2], r, err, esize) != 0)
            return -1;
        return ramp(&t, 3, r, err, esize);
    }
    if (strcmp(cmd, "worker") == 0) {
        if (t.count < 3)
            return fail(err, esize, "usage: worker K play|stop [ramp SECONDS]");
        r->kind = FARM_REQ_VOICE;
        r->whole_worker = 1;
        if (whole(t.text[1], "worker", lim->workers, &r->worker, err, esize) != 0 ||
            play_or_stop(t.text[2], r, err, esize) != 0)
            return -1;
        return ramp(&t, 3, r, err, esize);
    }
    if (strcmp(cmd, "gain") == 0) {
        if (t.count < 2)
            return fail(err, esize, "usage: gain VALUE [ramp SECONDS]");
        r->kind = FARM_REQ_GAIN;
        if (number(t.text[1], "gain", 0, 1000, &r->value, err, esize) != 0)
            return -1;
        return ramp(&t, 2, r, err, esize);
    }
    return fail(err, esize, "unknown command '%s' (try 'help')", cmd);
}
