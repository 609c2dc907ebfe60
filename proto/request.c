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

#include "plat.h"
#include "proto.h"

#define MAX_TOKENS 12
#define MAX_TOKEN 64 /* a word; a list of values (one word with commas) may be longer */

typedef struct tokens {
    char text[MAX_TOKENS][MAX_TOKEN]; /* "" for a list longer than a word */
    const char *at[MAX_TOKENS];       /* where each word is in the request */
    size_t len[MAX_TOKENS];
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
        int comma = 0;
        while (i < len && s[i] != ' ' && s[i] != '\t') {
            unsigned char b = (unsigned char)s[i];
            if (b < 0x20 || b == 0x7f)
                return fail("control character 0x%02x in the request", b);
            if (b >= 0x80)
                return fail("non-ASCII byte 0x%02x: commands are plain words", b);
            comma |= b == ',';
            i++;
        }
        size_t n = i - start;
        if (t->count == MAX_TOKENS)
            return fail("too many words (at most %d)", MAX_TOKENS);
        if (n >= MAX_TOKEN && !comma)
            return fail("word %d is too long (at most %d characters)", t->count + 1, MAX_TOKEN - 1);
        t->at[t->count] = s + start;
        t->len[t->count] = n;
        size_t copy = n < MAX_TOKEN ? n : 0;
        memcpy(t->text[t->count], s + start, copy);
        t->text[t->count][copy] = '\0';
        t->count++;
    }
    return 0;
}

static int number(const char *s, const char *what, double lo, double hi, double *out) {
    return farm_parse_double(what, s, lo, hi, out);
}

/* A whole number in [lo, lo + count): workers from 0, voices by their global numbers. */
static int whole(const char *s, const char *what, uint64_t lo, uint64_t count, uint32_t *out) {
    if (*s < '0' || *s > '9')
        return fail("%s: '%s' is not a whole number", what, s);
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (*end != '\0' || errno == ERANGE)
        return fail("%s: '%s' is not a whole number", what, s);
    if (v >= lo + count && lo == 0)
        return fail("%s %llu does not exist (there are %llu)", what, v, (unsigned long long)count);
    if (v < lo || v >= lo + count)
        return fail("%s %llu is not on this farm (it has %ss %llu-%llu)", what, v, what,
                    (unsigned long long)lo, (unsigned long long)(lo + count - 1));
    *out = (uint32_t)v;
    return 0;
}

/* Worker K's voices, by their global numbers. */
static void worker_voices(const farm_request_limits *lim, farm_request *r) {
    farm_voice_share(lim->voices, lim->workers, r->worker, &r->first, &r->count);
    r->first += lim->first_voice;
}

/* all | N | A-B | worker:K -> voices [first, first + count) or a whole worker */
static int selector(const char *s, const farm_request_limits *lim, farm_request *r) {
    if (strcmp(s, "all") == 0) {
        r->first = lim->first_voice;
        r->count = lim->voices;
        return 0;
    }
    if (strncmp(s, "worker:", 7) == 0) {
        if (whole(s + 7, "worker", 0, lim->workers, &r->worker) != 0)
            return FARM_EUSAGE;
        r->whole_worker = 1;
        worker_voices(lim, r);
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
    if (whole(a, "voice", lim->first_voice, lim->voices, &lo) != 0)
        return FARM_EUSAGE;
    hi = lo;
    if (b != NULL && whole(b, "voice", lim->first_voice, lim->voices, &hi) != 0)
        return FARM_EUSAGE;
    if (hi < lo)
        return fail("voices %u-%u: the range runs backwards", lo, hi);
    r->first = lo;
    r->count = hi - lo + 1;
    return 0;
}

/* [ramp SECONDS] [at BLOCK] from word i on, in either order, each at most once */
static int options(const tokens *t, int i, int allow_ramp, farm_request *r) {
    r->ramp = -1; /* the default */
    int seen_ramp = 0;
    for (; i < t->count; i += 2) {
        const char *w = t->text[i];
        int is_ramp = strcmp(w, "ramp") == 0 && allow_ramp, is_at = strcmp(w, "at") == 0;
        if (!is_ramp && !is_at)
            return fail("unexpected '%s': only %s may follow", w,
                        allow_ramp ? "'ramp SECONDS' and 'at BLOCK'" : "'at BLOCK'");
        if (i + 1 >= t->count)
            return fail("'%s' needs %s", w, is_ramp ? "SECONDS" : "BLOCK");
        if ((is_ramp && seen_ramp) || (is_at && r->has_at))
            return fail("'%s' is given twice", w);
        int rv;
        if (is_ramp) {
            seen_ramp = 1;
            rv = number(t->text[i + 1], "ramp", 0, FARM_RAMP_MAX_S, &r->ramp);
        } else {
            r->has_at = 1;
            rv = farm_parse_u64("at", t->text[i + 1], 0, UINT64_MAX / 2, &r->at);
        }
        if (rv != FARM_OK)
            return rv;
    }
    return FARM_OK;
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
    {"set", FARM_REQ_SET,
     "SELECTOR PARAM VALUE|V1,V2,..|lin A B|exp A B|harmonic F0 [ramp S] [at B]",
     "set a parameter of voices: one value, one per voice, or a spread"},
    {"setv", FARM_REQ_SET, "SELECTOR PARAM [ramp S] [at B], a newline, 4 bytes per voice",
     "one little-endian float32 per selected voice"},
    {"get", FARM_REQ_GET, "SELECTOR PARAM|playing", "what each voice is set to"},
    {"voice", FARM_REQ_VOICE, "SELECTOR play|stop [ramp S] [at B]", "start or silence voices"},
    {"worker", FARM_REQ_VOICE, "K play|stop [ramp S] [at B]", "all the voices of worker K"},
    {"gain", FARM_REQ_GAIN, "VALUE [ramp S] [at B]", "master gain, 0..1000"},
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
        n += (size_t)snprintf(out + n, size - n,
                              "; several lines in one message apply together; SELECTOR is all, "
                              "N, A-B or worker:K; PARAM is");
    for (int p = 0; p < FARM_PARAM_COUNT && n < size; p++) {
        int w = snprintf(out + n, size - n, "%s %s",
                         p == 0                      ? ""
                         : p == FARM_PARAM_COUNT - 1 ? " or"
                                                     : ",",
                         farm_params[p].name);
        n += w > 0 ? (size_t)w : 0;
    }
}

/* ---- values ---- */

static int parse_param(const char *name, farm_param *out) {
    for (int p = 0; p < FARM_PARAM_COUNT; p++)
        if (strcmp(name, farm_params[p].name) == 0) {
            *out = (farm_param)p;
            return FARM_OK;
        }
    return fail("unknown parameter '%s' (freq, feedback, amp or pan)", name);
}

/* One value for parameter p: in range, and a channel index for pan with other than 2 channels. */
static int check_value(const farm_request *r, const farm_request_limits *lim, double v,
                       const char *text, const char *what) {
    double lo, hi;
    farm_param_range(r->param, lim, &lo, &hi);
    if (!isfinite(v))
        return fail("%s: '%s' is not a finite number", what, text);
    if (v < lo || v > hi)
        return fail("%s: %s is out of range (%g to %g)", what, text, lo, hi);
    if (r->param == FARM_PARAM_PAN && lim->channels != 2 && v != floor(v))
        return fail("%s: with %u channels pan is a channel index, not %s", what, lim->channels,
                    text);
    return FARM_OK;
}

static int one_value(const char *text, farm_request *r, const farm_request_limits *lim, double *out,
                     const char *what) {
    int rv = farm_parse_double(what, text, -HUGE_VAL, HUGE_VAL, out);
    if (rv != FARM_OK)
        return rv;
    return check_value(r, lim, *out, text, what);
}

/* V1,V2,...: exactly one per selected voice, each valid. */
static int check_list(const char *s, size_t len, farm_request *r, const farm_request_limits *lim) {
    const char *name = farm_params[r->param].name;
    uint32_t k = 0;
    for (size_t i = 0; i <= len; k++) {
        size_t j = i;
        while (j < len && s[j] != ',')
            j++;
        char word[MAX_TOKEN], what[48];
        if (j - i >= MAX_TOKEN || j == i)
            return fail("%s: value %u of the list is %s", name, k + 1,
                        j == i ? "empty" : "too long");
        if (k >= r->count)
            return fail("%s: more values than the %u voices selected", name, r->count);
        memcpy(word, s + i, j - i);
        word[j - i] = '\0';
        double v;
        snprintf(what, sizeof what, "%s (value %u)", name, k + 1);
        int rv = one_value(word, r, lim, &v, what);
        if (rv != FARM_OK)
            return rv;
        i = j + 1;
    }
    if (k != r->count)
        return fail("%s: %u values for the %u voices selected", name, k, r->count);
    r->form = FARM_FORM_LIST;
    r->list = s;
    r->list_len = len;
    return FARM_OK;
}

double farm_spread_value(farm_form form, double a, double b, uint32_t k, uint32_t n) {
    double x = n > 1 ? (double)k / (double)(n - 1) : 0;
    switch (form) {
    case FARM_FORM_LIN:
        return a + (b - a) * x;
    case FARM_FORM_EXP:
        return a * pow(b / a, x);
    case FARM_FORM_HARMONIC:
        return a * (double)(k + 1);
    case FARM_FORM_ONE:
    case FARM_FORM_LIST:
    case FARM_FORM_VECTOR:
        break;
    }
    return a;
}

static float vector_value(const unsigned char *p) {
    uint32_t bits = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                    (uint32_t)p[3] << 24; /* little-endian on every host */
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

void farm_request_values(const farm_request *r, uint32_t from, uint32_t n, float *out) {
    if (r->form == FARM_FORM_VECTOR) {
        for (uint32_t i = 0; i < n; i++)
            out[i] = vector_value(r->vector + 4 * ((size_t)from + i));
        return;
    }
    if (r->form != FARM_FORM_LIST) {
        for (uint32_t i = 0; i < n; i++)
            out[i] = (float)farm_spread_value(r->form, r->value, r->value2, from + i, r->count);
        return;
    }
    const char *s = r->list, *end = r->list + r->list_len;
    uint32_t k = 0;
    while (s < end && k < from + n) {
        char *next;
        double v = strtod(s, &next); /* validated when parsed */
        if (k >= from)
            out[k - from] = (float)v;
        k++;
        s = next + 1;
    }
}

/* set SELECTOR PARAM VALUE|LIST|lin A B|exp A B|harmonic F0 [ramp S] [at B] */
static int parse_set_values(const tokens *t, const farm_request_limits *lim, farm_request *r,
                            int *next) {
    const char *v = t->text[3], *name = farm_params[r->param].name;
    int rv, spread = strcmp(v, "lin") == 0 || strcmp(v, "exp") == 0;
    if (spread || strcmp(v, "harmonic") == 0) {
        int words = spread ? 2 : 1;
        if (t->count < 4 + words)
            return fail("usage: set SELECTOR PARAM %s", spread ? "lin|exp A B" : "harmonic F0");
        if (r->param == FARM_PARAM_PAN && lim->channels != 2)
            return fail("pan: with %u channels it is a channel index: give a list instead",
                        lim->channels);
        if (!spread && r->param != FARM_PARAM_FREQ)
            return fail("harmonic is for freq, not %s", name);
        r->form = v[0] == 'l' ? FARM_FORM_LIN : v[0] == 'e' ? FARM_FORM_EXP : FARM_FORM_HARMONIC;
        if ((rv = one_value(t->text[4], r, lim, &r->value, name)) != FARM_OK)
            return rv;
        r->value2 = r->value;
        if (spread && (rv = one_value(t->text[5], r, lim, &r->value2, name)) != FARM_OK)
            return rv;
        if (r->form == FARM_FORM_EXP && !(r->value > 0 && r->value2 > 0))
            return fail("%s: exp spreads between values above 0", name);
        double lo, hi, top = r->value * r->count;
        farm_param_range(r->param, lim, &lo, &hi);
        if (r->form == FARM_FORM_HARMONIC && (!(r->value > 0) || top > hi))
            return fail("harmonic %s: the %u voices would reach %g Hz, above %g", t->text[4],
                        r->count, top, hi);
        *next = 4 + words;
        return FARM_OK;
    }
    *next = 4;
    if (memchr(t->at[3], ',', t->len[3]) != NULL)
        return check_list(t->at[3], t->len[3], r, lim);
    r->form = FARM_FORM_ONE;
    return one_value(v, r, lim, &r->value, name);
}

static int parse_selector_param(const tokens *t, const farm_request_limits *lim, farm_request *r) {
    int rv;
    if ((rv = selector(t->text[1], lim, r)) != FARM_OK)
        return rv;
    if (r->kind == FARM_REQ_GET && strcmp(t->text[2], FARM_PLAYING_NAME) == 0) {
        r->get_playing = 1;
        return FARM_OK;
    }
    return parse_param(t->text[2], &r->param);
}

static int parse_set(const tokens *t, const farm_request_limits *lim, farm_request *r) {
    int rv, next = 4;
    if (t->count < 4)
        return fail("usage: set SELECTOR PARAM VALUE [ramp SECONDS] [at BLOCK]");
    if ((rv = parse_selector_param(t, lim, r)) != FARM_OK)
        return rv;
    if ((rv = parse_set_values(t, lim, r, &next)) != FARM_OK)
        return rv;
    return options(t, next, 1, r);
}

/* setv SELECTOR PARAM [ramp S] [at B], then after the newline 4 bytes per selected voice */
static int parse_setv(const tokens *t, const unsigned char *data, size_t len,
                      const farm_request_limits *lim, farm_request *r) {
    int rv;
    if (t->count < 3)
        return fail("usage: setv SELECTOR PARAM [ramp SECONDS] [at BLOCK], a newline, then 4 "
                    "bytes (float32, little-endian) per voice");
    if ((rv = parse_selector_param(t, lim, r)) != FARM_OK || (rv = options(t, 3, 1, r)) != FARM_OK)
        return rv;
    const char *name = farm_params[r->param].name;
    if (len != 4 * (size_t)r->count)
        return fail("setv %s: %zu bytes for %u voices; %zu expected (4 each)", name, len, r->count,
                    4 * (size_t)r->count);
    double lo, hi;
    farm_param_range(r->param, lim, &lo, &hi);
    const int index = r->param == FARM_PARAM_PAN && lim->channels != 2;
    for (uint32_t k = 0; k < r->count; k++) {
        double v = (double)vector_value(data + 4 * (size_t)k);
        if (isfinite(v) && v >= lo && v <= hi && (!index || v == floor(v)))
            continue; /* the usual case, without formatting a message */
        char text[48], what[48];
        snprintf(text, sizeof text, "%g", v);
        snprintf(what, sizeof what, "%s (value %u)", name, k + 1);
        return check_value(r, lim, v, text, what);
    }
    r->form = FARM_FORM_VECTOR;
    r->vector = data;
    return FARM_OK;
}

static int parse_get(const tokens *t, const farm_request_limits *lim, farm_request *r) {
    if (t->count != 3)
        return fail("usage: get SELECTOR PARAM|playing");
    return parse_selector_param(t, lim, r);
}

static int parse_voice(const tokens *t, const farm_request_limits *lim, farm_request *r) {
    int rv;
    if (t->count < 3)
        return fail("usage: voice SELECTOR play|stop [ramp SECONDS] [at BLOCK]");
    if ((rv = selector(t->text[1], lim, r)) != FARM_OK)
        return rv;
    if ((rv = play_or_stop(t->text[2], r)) != FARM_OK)
        return rv;
    return options(t, 3, 1, r);
}

static int parse_worker(const tokens *t, const farm_request_limits *lim, farm_request *r) {
    int rv;
    if (t->count < 3)
        return fail("usage: worker K play|stop [ramp SECONDS] [at BLOCK]");
    if ((rv = whole(t->text[1], "worker", 0, lim->workers, &r->worker)) != FARM_OK)
        return rv;
    r->whole_worker = 1;
    worker_voices(lim, r);
    if ((rv = play_or_stop(t->text[2], r)) != FARM_OK)
        return rv;
    return options(t, 3, 1, r);
}

static int parse_gain(const tokens *t, farm_request *r) {
    int rv;
    if (t->count < 2)
        return fail("usage: gain VALUE [ramp SECONDS] [at BLOCK]");
    if ((rv = number(t->text[1], "gain", 0, FARM_GAIN_MAX, &r->value)) != FARM_OK)
        return rv;
    return options(t, 2, 1, r);
}

static int parse_bare(const tokens *t) {
    if (t->count != 1)
        return fail("'%s' takes no arguments", t->text[0]);
    return FARM_OK;
}

static const farm_command_info *command_named(const char *name) {
    for (size_t i = 0; i < farm_command_count; i++)
        if (strcmp(name, farm_commands[i].name) == 0)
            return &farm_commands[i];
    return NULL;
}

/* One request: len bytes of text, and for setv the bytes after its first line. */
static int parse(const char *text, size_t len, const farm_request_limits *lim, farm_request *r) {
    const char *nl = memchr(text, '\n', len);
    int setv = len >= 5 && memcmp(text, "setv", 4) == 0 && (text[4] == ' ' || text[4] == '\t');
    size_t line = setv && nl ? (size_t)(nl - text) : len;
    if ((setv ? len > FARM_RECV_MAX : len > FARM_REQUEST_MAX))
        return fail("request too long (%zu bytes; at most %d)", len,
                    setv ? FARM_RECV_MAX : FARM_REQUEST_MAX);
    if (setv && nl == NULL)
        return fail("setv: no newline before the values");
    tokens t;
    int rv;
    if ((rv = split(text, line, &t)) != FARM_OK)
        return rv;
    if (t.count == 0)
        return fail("empty request (try 'help')");
    const farm_command_info *c = command_named(t.text[0]);
    if (c == NULL)
        return fail("unknown command '%s' (try 'help')", t.text[0]);
    r->kind = c->kind;
    if (setv)
        return parse_setv(&t, (const unsigned char *)nl + 1, len - line - 1, lim, r);
    switch (c->kind) {
    case FARM_REQ_SET:
        return parse_set(&t, lim, r);
    case FARM_REQ_GET:
        return parse_get(&t, lim, r);
    case FARM_REQ_VOICE:
        return strcmp(c->name, "worker") == 0 ? parse_worker(&t, lim, r) : parse_voice(&t, lim, r);
    case FARM_REQ_GAIN:
        return parse_gain(&t, r);
    case FARM_REQ_STATUS:
    case FARM_REQ_QUIT:
    case FARM_REQ_HELP:
        break;
    }
    return parse_bare(&t);
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

int farm_message_parse(const char *text, size_t len, const farm_request_limits *lim,
                       farm_request *out, size_t max, size_t *n) {
    *n = 0;
    int setv = len >= 5 && memcmp(text, "setv", 4) == 0 && (text[4] == ' ' || text[4] == '\t');
    size_t trimmed = len;
    while (trimmed > 0 && (text[trimmed - 1] == '\n' || text[trimmed - 1] == '\r'))
        trimmed--;
    /* one request: a setv, or a line with at most a newline at its end */
    if (setv || memchr(text, '\n', trimmed) == NULL) {
        if (max < 1)
            return fail("no room for a request");
        int rv = farm_request_parse(text, len, lim, &out[0]);
        if (rv == FARM_OK)
            *n = 1;
        return rv;
    }
    if (len > FARM_REQUEST_MAX)
        return fail("request too long (%zu bytes; at most %d)", len, FARM_REQUEST_MAX);
    size_t count = 0;
    for (size_t i = 0; i < trimmed;) {
        size_t j = i;
        while (j < trimmed && text[j] != '\n')
            j++;
        if (count == max || count == FARM_BATCH_MAX)
            return fail("a batch holds at most %zu lines",
                        max < FARM_BATCH_MAX ? max : (size_t)FARM_BATCH_MAX);
        if (farm_request_parse(text + i, j - i, lim, &out[count]) != FARM_OK) {
            char why[400];
            snprintf(why, sizeof why, "%s", farm_error_message());
            farm_error_clear();
            return fail("line %zu: %s", count + 1, why);
        }
        if (out[count].kind == FARM_REQ_QUIT || out[count].kind == FARM_REQ_HELP)
            return fail("line %zu: %s is not for a batch", count + 1,
                        out[count].kind == FARM_REQ_QUIT ? "quit" : "help");
        count++;
        i = j + 1;
    }
    *n = count;
    return FARM_OK;
}

/* ---- where a farm's default sockets live ---- */

/* $XDG_RUNTIME_DIR/farm or /tmp/farm-UID; %LOCALAPPDATA%\\farm on Windows, where the sockets are
 * named pipes and the directory will hold the discovery files. */
void farm_runtime_dir(char *out, size_t size) {
    plat_runtime_dir(out, size);
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
