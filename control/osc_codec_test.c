/* farm's own OSC codec (osc_codec_own.c, what farm reads OSC with on every system) against
 * liblo's (osc_codec_lo.c, the reference), on the same bytes: messages liblo writes with every type
 * farm may meet, each cut short at every length and with bytes changed, deterministically. Both
 * must agree on the path, on accepting, on the error number, the types and every argument's
 * bytes; and the reply farm writes must be liblo's, byte for byte. */
#include <criterion/criterion.h>
#include <lo/lo.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "osc_codecs_side_by_side.h"

/* One parse by each, compared. */
static void agree(void *data, size_t size, const char *what) {
    cr_assert_eq(own_path(data, size) != NULL, osc_codec_path(data, size) != NULL, "%s: path",
                 what);
    int e_lo = 0, e_own = 0;
    osc_codec_msg *lo = osc_codec_parse(data, size, &e_lo);
    osc_codec_msg *own = own_parse(data, size, &e_own);
    cr_assert_eq(own != NULL, lo != NULL, "%s: accepted by liblo %d, by farm's %d", what,
                 lo != NULL, own != NULL);
    if (lo == NULL) {
        cr_assert_eq(e_own, e_lo, "%s: error %d, liblo's %d", what, e_own, e_lo);
        return;
    }
    cr_assert_str_eq(own_types(own), osc_codec_types(lo), "%s: types", what);
    cr_assert_eq(own_argc(own), osc_codec_argc(lo), "%s", what);
    for (int i = 0; i < osc_codec_argc(lo); i++) {
        char t = osc_codec_types(lo)[i];
        void *a = osc_codec_argv(lo)[i], *b = own_argv(own)[i];
        cr_assert_eq(a == NULL, b == NULL, "%s: argument %d", what, i);
        if (a != NULL) {
            int n = lo_arg_size((lo_type)t, a);
            cr_assert_eq(memcmp(a, b, (size_t)n), 0, "%s: argument %d ('%c') differs", what, i, t);
        }
    }
    osc_codec_free(lo);
    own_free(own);
}

static void *sample(int which, size_t *size) {
    lo_message m = lo_message_new();
    unsigned char bytes[5] = {1, 2, 3, 4, 5};
    uint8_t midi[4] = {0x90, 60, 100, 0};
    lo_blob blob = lo_blob_new(5, bytes);
    lo_timetag tt = {0x83aa7e80, 0x10000000};
    const char *path = "/farm/set";
    switch (which) {
    case 0:
        lo_message_add(m, "ssf", "all", "freq", 440.5f);
        break;
    case 1:
        lo_message_add(m, "sshd", "0-9", "amp", (int64_t)-3, 0.25);
        break;
    case 2:
        lo_message_add(m, "isSc", -7, "word", "sym", 'x');
        break;
    case 3:
        lo_message_add_blob(m, blob);
        lo_message_add_midi(m, midi);
        lo_message_add_timetag(m, tt);
        break;
    case 4:
        lo_message_add_true(m);
        lo_message_add_false(m);
        lo_message_add_nil(m);
        lo_message_add_infinitum(m);
        lo_message_add_string(m, "abc"); /* exactly four bytes with its NUL */
        break;
    default:
        path = "/farm/status";
        break;
    }
    void *p = lo_message_serialise(m, path, NULL, size);
    lo_message_free(m);
    lo_blob_free(blob);
    return p;
}

Test(osc_codec, agrees_with_liblo_on_whole_messages) {
    for (int k = 0; k < 6; k++) {
        size_t size;
        void *p = sample(k, &size);
        agree(p, size, "whole");
        free(p);
    }
}

Test(osc_codec, agrees_with_liblo_on_every_cut_and_changed_byte) {
    unsigned char flips[] = {0x00, 0xff, ',', 'i', 's', 'b', 'q', 0x7f, 0x01};
    for (int k = 0; k < 6; k++) {
        size_t size;
        unsigned char *p = sample(k, &size), *q = malloc(size + 4);
        for (size_t n = 0; n <= size; n++) {
            memcpy(q, p, n);
            agree(q, n, "cut");
        }
        for (size_t at = 0; at < size; at++)
            for (size_t f = 0; f < sizeof flips; f++) {
                memcpy(q, p, size);
                q[at] = flips[f];
                agree(q, size, "changed");
            }
        memcpy(q, p, size); /* four bytes too many */
        memset(q + size, 0, 4);
        agree(q, size + 4, "longer");
        free(q);
        free(p);
    }
}

Test(osc_codec, a_message_without_type_tags_is_told_apart) {
    char old[8] = "/farm/s";
    int e = 0;
    cr_assert_null(own_parse(old, sizeof old, &e));
    cr_assert_eq(e, OSC_CODEC_ENOTYPE);
    agree(old, sizeof old, "no type tags");
}

Test(osc_codec, the_reply_is_liblos_byte_for_byte) {
    const char *texts[] = {"", "a", "abc", "abcd", "{\"ok\":true,\"block\":12}"};
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        size_t a, b;
        void *lo = osc_codec_string_message("/farm/reply", texts[i], &a);
        void *own = own_string_message("/farm/reply", texts[i], &b);
        cr_assert_eq(a, b, "'%s': %zu bytes, liblo's %zu", texts[i], b, a);
        cr_assert_eq(memcmp(lo, own, a), 0, "'%s'", texts[i]);
        free(lo);
        free(own);
    }
}
