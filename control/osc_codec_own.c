/* osc_codec.h: OSC 1.0 messages as liblo 0.31 reads them (the same checks in the same order,
 * the same error numbers), on every system. Only what osc.c needs: reading a message, writing
 * one with a single string. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "osc_codec.h"

/* liblo's error numbers (lo_errors.h), so a refusal reads the same on every build. */
#define E_INVALIDPATH 9908
#define E_INVALIDTYPE 9909
#define E_BADTYPE 9910
#define E_SIZE 9911
#define E_INVALIDARG 9912
#define E_TERM 9913
#define E_PAD 9914
#define BLOB_MAX 32768 /* liblo's LO_MAX_MSG_SIZE: a longer blob is refused */

const char osc_codec_name[] = "farm's OSC codec";

struct osc_codec_msg {
    char *types; /* after the ',' */
    unsigned char *data;
    void **argv;
    int argc;
};

/* A NUL-terminated string padded with NULs to 4 bytes: its padded length, or -error. */
static long padded_string(const unsigned char *p, size_t size) {
    size_t i = 0;
    while (i < size && p[i] != '\0')
        i++;
    if (i == size)
        return -E_TERM;
    size_t len = 4 * (i / 4 + 1);
    if (len > size)
        return -E_SIZE;
    for (; i < len; i++)
        if (p[i] != '\0')
            return -E_PAD;
    return (long)len;
}

static uint32_t be32(const unsigned char *b) {
    return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

/* The bytes argument of type t takes at p (size left), or -error. */
static long arg_size(char t, const unsigned char *p, size_t size) {
    switch (t) {
    case 'T':
    case 'F':
    case 'N':
    case 'I':
        return 0;
    case 'i':
    case 'f':
    case 'm':
    case 'c':
        return size >= 4 ? 4 : -E_SIZE;
    case 'h':
    case 't':
    case 'd':
        return size >= 8 ? 8 : -E_SIZE;
    case 's':
    case 'S':
        return padded_string(p, size);
    case 'b': {
        if (size < 4 || be32(p) > BLOB_MAX)
            return -E_SIZE;
        size_t end = 4 + be32(p), len = 4 * ((end + 3) / 4);
        if (len > size)
            return -E_SIZE;
        for (size_t i = end; i < len; i++)
            if (p[i] != '\0')
                return -E_PAD;
        return (long)len;
    }
    default:
        return -E_INVALIDTYPE;
    }
}

static void swap(unsigned char *p, int n) {
    for (int i = 0; i < n / 2; i++) {
        unsigned char x = p[i];
        p[i] = p[n - 1 - i];
        p[n - 1 - i] = x;
    }
}

/* Network order to host order, in place, as liblo's lo_arg_host_endian: a blob's size, not its
 * bytes; a timetag's two halves; a MIDI message's bytes stay. */
static void to_host(char t, unsigned char *p) {
    const uint16_t probe = 1;
    if (*(const unsigned char *)&probe == 0)
        return; /* a big-endian host reads network order as it is */
    if (t == 'i' || t == 'f' || t == 'c' || t == 'b')
        swap(p, 4);
    else if (t == 'h' || t == 'd')
        swap(p, 8);
    else if (t == 't') {
        swap(p, 4);
        swap(p + 4, 4);
    }
}

const char *osc_codec_path(void *data, size_t size) {
    long len = padded_string(data, size);
    return len >= 4 ? data : NULL;
}

static osc_codec_msg *fail(osc_codec_msg *m, int *error, int code) {
    osc_codec_free(m);
    *error = code;
    return NULL;
}

osc_codec_msg *osc_codec_parse(void *data, size_t size, int *error) {
    *error = 0;
    if (size == 0)
        return fail(NULL, error, E_SIZE);
    osc_codec_msg *m = calloc(1, sizeof *m);
    if (m == NULL || (m->data = malloc(size)) == NULL)
        return fail(m, error, E_SIZE);
    memcpy(m->data, data, size);
    long len = padded_string(m->data, size);
    if (len < 0)
        return fail(m, error, E_INVALIDPATH);
    size_t at = (size_t)len;
    if (at >= size)
        return fail(m, error, OSC_CODEC_ENOTYPE);
    unsigned char *types = m->data + at;
    if ((len = padded_string(types, size - at)) < 0)
        return fail(m, error, E_INVALIDTYPE);
    if (types[0] != ',')
        return fail(m, error, E_BADTYPE);
    at += (size_t)len;
    m->types = (char *)types + 1;
    m->argc = (int)strlen(m->types);
    if (m->argc > 0 && (m->argv = calloc((size_t)m->argc, sizeof *m->argv)) == NULL)
        return fail(m, error, E_SIZE);
    for (int i = 0; i < m->argc; i++) {
        long n = arg_size(m->types[i], m->data + at, size - at);
        if (n < 0)
            return fail(m, error, E_INVALIDARG);
        to_host(m->types[i], m->data + at);
        m->argv[i] = n ? m->data + at : NULL;
        at += (size_t)n;
    }
    if (at != size)
        return fail(m, error, E_SIZE);
    return m;
}

const char *osc_codec_types(osc_codec_msg *m) {
    return m->types;
}

void *const *osc_codec_argv(osc_codec_msg *m) {
    return m->argv;
}

int osc_codec_argc(osc_codec_msg *m) {
    return m->argc;
}

void osc_codec_free(osc_codec_msg *m) {
    if (m == NULL)
        return;
    free(m->argv);
    free(m->data);
    free(m);
}

void *osc_codec_string_message(const char *path, const char *s, size_t *size) {
    size_t lp = 4 * (strlen(path) / 4 + 1), ls = 4 * (strlen(s) / 4 + 1);
    *size = lp + 4 + ls;
    unsigned char *p = calloc(1, *size); /* the padding is zeros */
    if (p == NULL)
        return NULL;
    memcpy(p, path, strlen(path));
    memcpy(p + lp, ",s", 2);
    memcpy(p + lp + 4, s, strlen(s));
    return p;
}
