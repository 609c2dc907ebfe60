/* libFuzzer target for the control protocol's request parser (proto/request.c): any bytes,
 * under several sets of limits, must either parse into a request that lies within those limits
 * or be refused with one non-empty line; anything else aborts. Built and run by scripts/fuzz.sh
 * (clang, -fsanitize=fuzzer,address,undefined). */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const farm_request_limits limit_sets[] = {
    {.voices = 1000, .workers = 4, .channels = 2, .sample_rate = 48000},
    {.voices = 1, .workers = 1, .channels = 1, .sample_rate = 44100},
    {.voices = 64, .workers = 8, .channels = 8, .sample_rate = 96000},
    /* the largest counts: ranges and indices near 2^32 */
    {.voices = UINT32_MAX, .workers = 64, .channels = 2, .sample_rate = 192000},
    /* farms numbered from --first-voice: in the middle, and ending at the last number */
    {.first_voice = 1000, .voices = 500, .workers = 3, .channels = 2, .sample_rate = 48000},
    {.first_voice = UINT32_MAX - 63,
     .voices = 64,
     .workers = 8,
     .channels = 4,
     .sample_rate = 48000},
};

#define ERR_SIZE 256

static void violated(const char *what, const uint8_t *data, size_t size,
                     const farm_request_limits *lim) {
    fprintf(stderr,
            "fuzz_request: invariant violated: %s\n  limits: %u voices from %u, %u workers, "
            "%u channels, %g Hz\n  input (%zu bytes): ",
            what, lim->voices, lim->first_voice, lim->workers, lim->channels, lim->sample_rate,
            size);
    for (size_t i = 0; i < size && i < 200; i++)
        fprintf(stderr, data[i] >= 0x20 && data[i] < 0x7f ? "%c" : "\\x%02x", data[i]);
    fputc('\n', stderr);
    abort();
}

#define CHECK(cond, what)                                                                          \
    do {                                                                                           \
        if (!(cond))                                                                               \
            violated(what, data, size, lim);                                                       \
    } while (0)

static void check_value(double v, const farm_request *r, const uint8_t *data, size_t size,
                        const farm_request_limits *lim) {
    CHECK(isfinite(v), "value not finite");
    switch (r->param) {
    case FARM_PARAM_FREQ:
        CHECK(v >= 0 && v <= lim->sample_rate / 2 * (1 + 1e-6), "freq out of [0, sr/2]");
        break;
    case FARM_PARAM_FEEDBACK:
    case FARM_PARAM_AMP:
        CHECK(v >= 0 && v <= 1 + 1e-6, "feedback or amp out of [0, 1]");
        break;
    case FARM_PARAM_PAN:
        if (lim->channels == 2)
            CHECK(v >= 0 && v <= 1 + 1e-6, "stereo pan out of [0, 1]");
        else
            CHECK(v >= 0 && v <= lim->channels - 1 && v == floor(v), "pan not a channel index");
        break;
    default:
        CHECK(0, "param out of the enum");
    }
}

/* Every value a set gives, as the farm will send it: each in range, no read past the bytes. */
static void check_values(const farm_request *r, const uint8_t *data, size_t size,
                         const farm_request_limits *lim) {
    static float v[1 << 16];
    if (r->form == FARM_FORM_ONE) {
        check_value(r->value, r, data, size, lim);
        return;
    }
    /* the first values and the last ones (a selection may hold 2^32 voices) */
    uint32_t n = r->count < (1u << 15) ? r->count : 1u << 15;
    farm_request_values(r, 0, n, v);
    if (r->count > n)
        farm_request_values(r, r->count - n, n, v + n);
    for (uint32_t i = 0; i < (r->count > n ? 2 * n : n); i++)
        check_value((double)v[i], r, data, size, lim);
}

static void check_accepted(const farm_request *r, const uint8_t *data, size_t size,
                           const farm_request_limits *lim) {
    CHECK(r->kind >= FARM_REQ_STATUS && r->kind <= FARM_REQ_GET, "kind out of the enum");
    CHECK(r->ramp == -1 || (r->ramp >= 0 && r->ramp <= 60), "ramp neither default nor in [0, 60]");
    switch (r->kind) {
    case FARM_REQ_STATUS:
    case FARM_REQ_QUIT:
    case FARM_REQ_HELP:
        CHECK(r->ramp == -1 && !r->has_at, "a ramp or a block on a command that takes none");
        break;
    case FARM_REQ_GAIN:
        CHECK(r->value >= 0 && r->value <= 1000, "gain out of [0, 1000]");
        break;
    case FARM_REQ_GET:
    case FARM_REQ_SET:
    case FARM_REQ_VOICE:
        CHECK(r->count >= 1, "an empty voice selection");
        CHECK(r->first >= lim->first_voice, "a voice below the farm's first");
        CHECK((uint64_t)r->first + r->count <= (uint64_t)lim->first_voice + lim->voices,
              "voices beyond the farm's last");
        if (r->whole_worker)
            CHECK(r->worker < lim->workers, "worker beyond the count");
        if (r->kind == FARM_REQ_VOICE)
            CHECK(r->play == 0 || r->play == 1, "play neither 0 nor 1");
        if (r->kind == FARM_REQ_SET)
            check_values(r, data, size, lim);
        break;
    default:
        CHECK(0, "kind out of the enum");
    }
}

static int same_request(const farm_request *a, const farm_request *b) {
    return a->kind == b->kind && a->param == b->param && a->first == b->first &&
           a->count == b->count && a->whole_worker == b->whole_worker && a->worker == b->worker &&
           a->play == b->play && memcmp(&a->value, &b->value, sizeof a->value) == 0 &&
           memcmp(&a->ramp, &b->ramp, sizeof a->ramp) == 0;
}

static void check_refused(const char *err, size_t esize, const uint8_t *data, size_t size,
                          const farm_request_limits *lim) {
    const char *nul = memchr(err, '\0', esize);
    CHECK(nul != NULL, "error not terminated");
    CHECK(nul != err || esize <= 1, "empty error");
    for (const char *p = err; p < nul; p++)
        CHECK(*p >= 0x20 && *p < 0x7f, "error not one line of printable text");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    /* The parser gets exactly size bytes on the heap, not NUL-terminated, so ASan sees any read
     * past the end; the copy with a newline appended must parse the same. */
    char *text = malloc(size + 1);
    if (text == NULL)
        return 0;
    if (size > 0)
        memcpy(text, data, size);
    for (size_t l = 0; l < sizeof limit_sets / sizeof limit_sets[0]; l++) {
        const farm_request_limits *lim = &limit_sets[l];
        farm_request r, again;
        char err[ERR_SIZE], err2[ERR_SIZE];
        farm_error_clear();
        int rc = farm_request_parse(text, size, lim, &r);
        CHECK(rc == FARM_OK || rc == FARM_EUSAGE, "return value neither FARM_OK nor FARM_EUSAGE");
        snprintf(err, sizeof err, "%s", farm_error_message());
        if (rc == FARM_OK)
            check_accepted(&r, data, size, lim);
        else
            check_refused(err, sizeof err, data, size, lim);

        /* The same bytes as a message (a batch when they hold newlines): every line accepted
         * lies within the limits, or the whole is refused with one line of text. */
        farm_request batch[FARM_BATCH_MAX];
        size_t nb = 0;
        farm_error_clear();
        int rcb = farm_message_parse(text, size, lim, batch, FARM_BATCH_MAX, &nb);
        CHECK(rcb == FARM_OK || rcb == FARM_EUSAGE, "message: neither FARM_OK nor FARM_EUSAGE");
        if (rcb == FARM_OK) {
            CHECK(nb >= 1 && nb <= FARM_BATCH_MAX, "a batch of no line or too many");
            for (size_t i = 0; i < nb; i++)
                check_accepted(&batch[i], data, size, lim);
        } else {
            snprintf(err2, sizeof err2, "%s", farm_error_message());
            check_refused(err2, sizeof err2, data, size, lim);
        }

        /* The same request with a trailing newline, when it still fits. */
        /* (not for setv, whose bytes after its first line are values, newlines or not) */
        int setv = size >= 5 && memcmp(text, "setv", 4) == 0 && (text[4] == ' ' || text[4] == '\t');
        if (size < FARM_REQUEST_MAX && !setv) {
            text[size] = '\n';
            farm_error_clear();
            int rc2 = farm_request_parse(text, size + 1, lim, &again);
            snprintf(err2, sizeof err2, "%s", farm_error_message());
            CHECK(rc2 == rc, "a trailing newline changed the verdict");
            if (rc == FARM_OK)
                CHECK(same_request(&r, &again), "a trailing newline changed the request");
            else
                CHECK(strcmp(err, err2) == 0, "a trailing newline changed the error");
        }
    }
    free(text);
    return 0;
}
