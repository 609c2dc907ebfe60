/* osc_codec.h with liblo: the reference that osc_codec_test.c and bench/bench_osc_codec.c hold
 * farm's own codec (osc_codec_own.c) to. Not in the product. */
#include <lo/lo.h>

#include "osc_codec.h"

const char osc_codec_name[] = "liblo";

const char *osc_codec_path(void *data, size_t size) {
    return lo_get_path(data, (ssize_t)size);
}

osc_codec_msg *osc_codec_parse(void *data, size_t size, int *error) {
    *error = 0;
    return (osc_codec_msg *)lo_message_deserialise(data, size, error);
}

const char *osc_codec_types(osc_codec_msg *m) {
    return lo_message_get_types((lo_message)m);
}

void *const *osc_codec_argv(osc_codec_msg *m) {
    return (void *const *)lo_message_get_argv((lo_message)m);
}

int osc_codec_argc(osc_codec_msg *m) {
    return lo_message_get_argc((lo_message)m);
}

void osc_codec_free(osc_codec_msg *m) {
    if (m != NULL)
        lo_message_free((lo_message)m);
}

void *osc_codec_string_message(const char *path, const char *s, size_t *size) {
    lo_message m = lo_message_new();
    if (m == NULL)
        return NULL;
    void *p = lo_message_add_string(m, s) == 0 ? lo_message_serialise(m, path, NULL, size) : NULL;
    lo_message_free(m);
    return p;
}
