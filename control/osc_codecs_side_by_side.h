/* Both OSC codecs in one translation unit, for comparing them (osc_codec_test.c) and timing them
 * (bench/bench_osc_codec.c): farm's own (osc_codec_own.c) under own_* names, liblo's
 * (osc_codec_lo.c, the reference) under osc_codec.h's. Include it once, in place of osc_codec.h;
 * it needs liblo. Not part of any product build. */
#ifndef FARM_OSC_CODECS_SIDE_BY_SIDE_H
#define FARM_OSC_CODECS_SIDE_BY_SIDE_H

#define osc_codec_name own_name
#define osc_codec_path own_path
#define osc_codec_parse own_parse
#define osc_codec_types own_types
#define osc_codec_argv own_argv
#define osc_codec_argc own_argc
#define osc_codec_free own_free
#define osc_codec_string_message own_string_message
#include "osc_codec_own.c"
#undef osc_codec_name
#undef osc_codec_path
#undef osc_codec_parse
#undef osc_codec_types
#undef osc_codec_argv
#undef osc_codec_argc
#undef osc_codec_free
#undef osc_codec_string_message
#undef FARM_OSC_CODEC_H /* the header again, with liblo's under the usual names */
#include "osc_codec_lo.c"

#endif
