/* The OSC codec that osc.c reads and writes messages with: farm's own (osc_codec_own.c), on
 * every system. The Windows cross-build has no liblo (its Debian source is not on the mirror
 * setup-win.sh uses; docs/windows-port-log.md), and one codec on both systems is one that
 * Linux's end-to-end tests run too; it is also the faster (bench/bench_osc_codec.c). liblo's
 * (osc_codec_lo.c) is the reference: osc_codec_test.c holds farm's to liblo's answers (path,
 * types, arguments and error numbers) on the same bytes. Not part of the module's contract. */
#ifndef FARM_OSC_CODEC_H
#define FARM_OSC_CODEC_H

#include <stddef.h>

typedef struct osc_codec_msg osc_codec_msg;

/* "liblo" or "farm's OSC codec", for refusals. */
extern const char osc_codec_name[];

/* The message's address (pointing into data), or NULL when data does not start with one. */
const char *osc_codec_path(void *data, size_t size);
/* The message in data (size bytes, read only), its numbers in host order; NULL when it is not
 * one: *error is then liblo's code (LO_ENOTYPE 9902 for a message without type tags, which old
 * senders send; LO_EINVALIDARG ... otherwise). */
osc_codec_msg *osc_codec_parse(void *data, size_t size, int *error);
#define OSC_CODEC_ENOTYPE 9902
const char *osc_codec_types(osc_codec_msg *m); /* without the ',' */
void *const *osc_codec_argv(osc_codec_msg *m); /* argument i's bytes; only 4-byte aligned */
int osc_codec_argc(osc_codec_msg *m);
void osc_codec_free(osc_codec_msg *m);
/* The message path with one string argument s, serialised (malloc'd; *size its bytes), or NULL
 * when out of memory. */
void *osc_codec_string_message(const char *path, const char *s, size_t *size);

#endif
