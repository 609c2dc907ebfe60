/* The control protocol's request parser: one line of text in, one validated request out, or an
 * error message that names what was wrong. Pure: no I/O, no allocation, no global state, so
 * the fuzzer (fuzz_request.c) drives it directly. */
#define _GNU_SOURCE
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proto.h"

#define MAX_TOKENS 8
#define MAX_TOKEN 64

typedef struct tokens {
    char text[MAX_TOKENS][MAX_TOKEN];
    int count;
} tokens;

#define fail(...) farm_fail(FARM_EUSAGE, __VA_ARGS__)

/* Splits on spaces and tabs; a trailing newline (and CR) is allowed, any other control byte,
 * or bytes that are not UTF-8 text, is refused. */
static int split(const char *s, size_t len, tokens *t) {
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
                return fail("control character 0x%02x in the request", b);
            if (b >= 0x80)
                return fail("non-ASCII byte 0x%02x: commands are plain words", b);
            i++;
        }
        size_t n = i - start;
        if (t->count == MAX_TOKENS)
            return fail("too many words (at most %d)", MAX_TOKENS);
        if (n >= MAX_TOKEN)
            return fail("word %d is too long (at most %d characters)", t->count + 1, MAX_TOKEN - 1);
        memcpy(t->text[t->count], s + start, n);
        t->text[t->count][n] = '\0';
        t->count++;
    }
    return 0;
}

static int number(const char *s, const char *what, double lo, double hi, double *out) {
    return farm_parse_double(what, s, lo, hi, out);
}

static int whole(const char *s, const char *what, uint64_t limit, uint32_t *out) {
    if (*s < '0' || *s > '9')
        return fail("%s: '%s' is not a whole number", what, s);
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (*end != '\0' || errno == ERANGE)
        return fail("%s: '%s' is not a whole number", what, s);
    if (v >= limit)
        return fail("%s %llu does not exist (there are %llu)", what, v, (unsigned long long)limit);
    *out = (uint32_t)v;
    return 0;
}

/* all | N | A-B | worker:K -> voices [first, first + count) or a whole worker */
static int selector(const char *s, const farm_request_limits *lim, farm_request *r) {
    if (strcmp(s, "all") == 0) {
        r->first = 0;
        r->count = lim->voices;
        return 0;
    }
    if (strncmp(s, "worker:", 7) == 0) {
        if (whole(s + 7, "worker", lim->workers, &r->worker) != 0)
            return FARM_EUSAGE;
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
        return fail("'%s' is not a selector (all, N, A-B or worker:K)", s);
    if (whole(a, "voice", lim->voices, &lo) != 0)
        return FARM_EUSAGE;
    hi = lo;
    if (b != NULL && whole(b, "voice", lim->voices, &hi) != 0)
        return FARM_EUSAGE;
    if (hi < lo)
        return fail("voices %u-%u: the range runs backwards", lo, hi);
    r->first = lo;
    r->count = hi - lo + 1;
    return 0;
}

/* [ramp SECONDS] at t->text[at], if present */
static int ramp(const tokens *t, int at, farm_request *r) {
    r->ramp = -1; /* the default */
    if (t->count == at)
        return 0;
    if (strcmp(t->text[at], "ramp") == 0 && t->count == at + 1)
        return fail("'ramp' needs SECONDS");
    if (t->count != at + 2 || strcmp(t->text[at], "ramp") != 0)
        return fail("unexpected '%s': only 'ramp SECONDS' may follow", t->text[at]);
    return number(t->text[at + 1], "ramp", 0, FARM_RAMP_MAX_S, &r->ramp);
}

static int play_or_stop(const char *s, farm_request *r) {
    if (strcmp(s, "play") == 0)
        r->play = 1;
    else if (strcmp(s, "stop") == 0)
        r->play = 0;
    else
        return fail("'%s' is not play or stop", s);
    return 0;
}

/* ---- the tables ---- */

const farm_command_info farm_commands[] = {
    {"status", FARM_REQ_STATUS, "", "configuration and live counters"},
    {"set", FARM_REQ_SET, "SELECTOR PARAM VALUE [ramp SECONDS]", "set a parameter of voices"},
    {"voice", FARM_REQ_VOICE, "SELECTOR play|stop [ramp SECONDS]", "start or silence voices"},
    {"worker", FARM_REQ_VOICE, "K play|stop [ramp SECONDS]", "all the voices of worker K"},
    {"gain", FARM_REQ_GAIN, "VALUE [ramp SECONDS]", "master gain, 0..1000"},
    {"quit", FARM_REQ_QUIT, "", "fade out and stop the farm"},
    {"help", FARM_REQ_HELP, "", "this summary"},
};
const size_t farm_command_count = sizeof farm_commands / sizeof farm_commands[0];

const farm_param_info farm_params[FARM_PARAM_COUNT] = {
    [FARM_PARAM_FREQ] = {"freq", "0..sr/2 Hz"},
    [FARM_PARAM_FEEDBACK] = {"feedback", "0..1"},
    [FARM_PARAM_AMP] = {"amp", "0..1"},
    [FARM_PARAM_PAN] = {"pan", "stereo 0..1, otherwise a channel index"},
};

void farm_param_range(farm_param p, const farm_request_limits *lim, double *lo, double *hi) {
    *lo = 0;
    switch (p) {
    case FARM_PARAM_FREQ:
        *hi = lim->sample_rate / 2;
        return;
    case FARM_PARAM_PAN:
        *hi = lim->channels == 2 ? 1 : lim->channels - 1.0;
        return;
    case FARM_PARAM_FEEDBACK:
    case FARM_PARAM_AMP:
    case FARM_PARAM_COUNT:
        break;
    }
    *hi = 1;
}

void farm_help_line(char *out, size_t size) {
    size_t n = 0;
    out[0] = '\0';
    for (size_t i = 0; i < farm_command_count && n < size; i++) {
        const farm_command_info *c = &farm_commands[i];
        int w = snprintf(out + n, size - n, "%s%s%s%s", i ? " | " : "", c->name,
                         c->synopsis[0] ? " " : "", c->synopsis);
        n += w > 0 ? (size_t)w : 0;
    }
    if (n < size)
        n += (size_t)snprintf(out + n, size - n, "; SELECTOR is all, N, A-B or worker:K; PARAM is");
    for (int p = 0; p < FARM_PARAM_COUNT && n < size; p++) {
        int w = snprintf(out + n, size - n, "%s %s",
                         p == 0                      ? ""
                         : p == FARM_PARAM_COUNT - 1 ? " or"
                                                     : ",",
                         farm_params[p].name);
        n += w > 0 ? (size_t)w : 0;
    }
}

/* ---- one parser per command ---- */

static int parse_bare(const tokens *t, farm_request *r) {
    if (t->count != 1)
        return fail("'%s' takes no arguments", t->text[0]);
    (void)r;
    return FARM_OK;
}

static int parse_param(const char *name, farm_param *out) {
    for (int p = 0; p < FARM_PARAM_COUNT; p++)
        if (strcmp(name, farm_params[p].name) == 0) {
            *out = (farm_param)p;
            return FARM_OK;
        }
    return fail("unknown parameter '%s' (freq, feedback, amp or pan)", name);
}

static int parse_set(const tokens *t, const farm_request_limits *lim, farm_request *r) {
    int rv;
    if (t->count < 4)
        return fail("usage: set SELECTOR PARAM VALUE [ramp SECONDS]");
    if ((rv = selector(t->text[1], lim, r)) != FARM_OK)
        return rv;
    if ((rv = parse_param(t->text[2], &r->param)) != FARM_OK)
        return rv;
    double lo, hi;
    farm_param_range(r->param, lim, &lo, &hi);
    if ((rv = number(t->text[3], t->text[2], lo, hi, &r->value)) != FARM_OK)
        return rv;
    if (r->param == FARM_PARAM_PAN && lim->channels != 2 && r->value != floor(r->value))
        return fail("pan: with %u channels it is a channel index, not %s", lim->channels,
                    t->text[3]);
    return ramp(t, 4, r);
}

static int parse_voice(const tokens *t, const farm_request_limits *lim, farm_request *r) {
    int rv;
    if (t->count < 3)
        return fail("usage: voice SELECTOR play|stop [ramp SECONDS]");
    if ((rv = selector(t->text[1], lim, r)) != FARM_OK)
        return rv;
    if ((rv = play_or_stop(t->text[2], r)) != FARM_OK)
        return rv;
    return ramp(t, 3, r);
}

static int parse_worker(const tokens *t, const farm_request_limits *lim, farm_request *r) {
    int rv;
    if (t->count < 3)
        return fail("usage: worker K play|stop [ramp SECONDS]");
    r->whole_worker = 1;
    if ((rv = whole(t->text[1], "worker", lim->workers, &r->worker)) != FARM_OK)
        return rv;
    if ((rv = play_or_stop(t->text[2], r)) != FARM_OK)
        return rv;
    return ramp(t, 3, r);
}

static int parse_gain(const tokens *t, farm_request *r) {
    int rv;
    if (t->count < 2)
        return fail("usage: gain VALUE [ramp SECONDS]");
    if ((rv = number(t->text[1], "gain", 0, FARM_GAIN_MAX, &r->value)) != FARM_OK)
        return rv;
    return ramp(t, 2, r);
}

static int parse(const char *text, size_t len, const farm_request_limits *lim, farm_request *r) {
    if (len > FARM_REQUEST_MAX)
        return fail("request too long (%zu bytes; at most %d)", len, FARM_REQUEST_MAX);
    tokens t;
    int rv;
    if ((rv = split(text, len, &t)) != FARM_OK)
        return rv;
    if (t.count == 0)
        return fail("empty request (try 'help')");
    const farm_command_info *c = NULL;
    for (size_t i = 0; i < farm_command_count && c == NULL; i++)
        if (strcmp(t.text[0], farm_commands[i].name) == 0)
            c = &farm_commands[i];
    if (c == NULL)
        return fail("unknown command '%s' (try 'help')", t.text[0]);
    r->kind = c->kind;
    switch (c->kind) {
    case FARM_REQ_SET:
        return parse_set(&t, lim, r);
    case FARM_REQ_VOICE:
        return strcmp(c->name, "worker") == 0 ? parse_worker(&t, lim, r) : parse_voice(&t, lim, r);
    case FARM_REQ_GAIN:
        return parse_gain(&t, r);
    case FARM_REQ_STATUS:
    case FARM_REQ_QUIT:
    case FARM_REQ_HELP:
        break;
    }
    return parse_bare(&t, r);
}

int farm_request_parse(const char *text, size_t len, const farm_request_limits *lim,
                       farm_request *out) {
    /* into a local: a refused request leaves the caller's untouched, not half filled */
    farm_request r;
    memset(&r, 0, sizeof r);
    r.ramp = -1;
    int rv = parse(text, len, lim, &r);
    if (rv != FARM_OK)
        return rv;
    *out = r;
    return FARM_OK;
}

/* ---- where a farm's default sockets live ---- */

void farm_runtime_dir(char *out, size_t size) {
    const char *xdg = getenv("XDG_RUNTIME_DIR");
    if (xdg != NULL && xdg[0] == '/')
        snprintf(out, size, "%s/farm", xdg);
    else
        snprintf(out, size, "/tmp/farm-%ld", (long)getuid());
}

long farm_socket_pid(const char *name, const char *suffix) {
    const char *dot = strchr(name, '.');
    if (dot == NULL || dot == name || strcmp(dot, suffix) != 0)
        return -1;
    long pid = 0;
    for (const char *p = name; p < dot; p++) {
        if (*p < '0' || *p > '9' || pid > 100000000)
            return -1;
        pid = pid * 10 + (*p - '0');
    }
    return pid;
}
