/* The control protocol's request parser (proto/request.c): every command, every selector
 * resolved against the limits, the boundaries, and every kind of bad input refused with one line
 * that names the problem. The parser is pure, so these tests call it directly. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"

static const farm_request_limits stereo = {
    .voices = 1000, .workers = 4, .channels = 2, .sample_rate = 48000};
static const farm_request_limits eight = {
    .voices = 64, .workers = 8, .channels = 8, .sample_rate = 96000};
static const farm_request_limits mono = {
    .voices = 1, .workers = 1, .channels = 1, .sample_rate = 44100};

typedef struct parsed {
    int rc;
    farm_request req;
    char err[256];
} parsed;

/* req and err start as garbage, so whatever the parser leaves unset shows. */
static parsed parse_n(const farm_request_limits *lim, const char *text, size_t len) {
    parsed p;
    memset(&p.req, 0xa5, sizeof p.req);
    farm_error_clear();
    p.rc = farm_request_parse(text, len, lim, &p.req);
    snprintf(p.err, sizeof p.err, "%s", p.rc == FARM_OK ? "" : farm_error_message());
    return p;
}

static farm_request parse_ok_with(const farm_request_limits *lim, const char *text) {
    parsed p = parse_n(lim, text, strlen(text));
    cr_assert_eq(p.rc, 0, "'%s' was refused: %.*s", text, (int)sizeof p.err, p.err);
    return p.req;
}

static farm_request parse_ok(const char *text) {
    return parse_ok_with(&stereo, text);
}

/* Criterion's asserts evaluate their arguments more than once: parse first, then compare. */
static void value_is_with(const farm_request_limits *lim, const char *text, double want) {
    farm_request r = parse_ok_with(lim, text);
    cr_assert_eq(r.value, want, "'%s': value %g, not %g", text, r.value, want);
}

static void value_is(const char *text, double want) {
    value_is_with(&stereo, text, want);
}

static void ramp_is(const char *text, double want) {
    farm_request r = parse_ok(text);
    cr_assert_eq(r.ramp, want, "'%s': ramp %g, not %g", text, r.ramp, want);
}

static void kind_is(const char *text, farm_req_kind want) {
    farm_request r = parse_ok(text);
    cr_assert_eq(r.kind, want, "'%s': kind %d, not %d", text, (int)r.kind, (int)want);
}

/* Refused: FARM_EUSAGE and one non-empty, terminated line in err that contains want. */
static void refused_n(const farm_request_limits *lim, const char *text, size_t len,
                      const char *want) {
    parsed p = parse_n(lim, text, len);
    cr_assert_eq(p.rc, FARM_EUSAGE, "'%.*s' was accepted", (int)len, text);
    const char *nul = memchr(p.err, '\0', sizeof p.err);
    cr_assert_not_null(nul, "'%.*s': the error is not terminated", (int)len, text);
    cr_assert_gt(strlen(p.err), 0, "'%.*s': the error is empty", (int)len, text);
    cr_assert_null(strchr(p.err, '\n'), "'%.*s': the error is not one line: %s", (int)len, text,
                   p.err);
    cr_assert_not_null(strstr(p.err, want), "'%.*s': the error '%s' does not say '%s'", (int)len,
                       text, p.err, want);
}

static void refused_with(const farm_request_limits *lim, const char *text, const char *want) {
    refused_n(lim, text, strlen(text), want);
}

static void refused(const char *text, const char *want) {
    refused_with(&stereo, text, want);
}

/* ---- commands ---- */

Test(commands, status_quit_and_help_parse_to_their_kinds_with_the_default_ramp) {
    static const struct {
        const char *text;
        farm_req_kind kind;
    } cases[] = {{"status", FARM_REQ_STATUS}, {"quit", FARM_REQ_QUIT}, {"help", FARM_REQ_HELP}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        farm_request r = parse_ok(cases[i].text);
        cr_assert_eq(r.kind, cases[i].kind, "%s", cases[i].text);
        cr_assert_eq(r.whole_worker, 0, "%s", cases[i].text);
        cr_assert_lt(r.ramp, 0, "%s: ramp %g", cases[i].text, r.ramp);
    }
}

Test(commands, set_parses_each_parameter_with_the_default_ramp) {
    static const struct {
        const char *text;
        farm_param param;
        double value;
    } cases[] = {{"set 3 freq 440", FARM_PARAM_FREQ, 440},
                 {"set 3 feedback 0.25", FARM_PARAM_FEEDBACK, 0.25},
                 {"set 3 amp 0.5", FARM_PARAM_AMP, 0.5},
                 {"set 3 pan 0.75", FARM_PARAM_PAN, 0.75}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        farm_request r = parse_ok(cases[i].text);
        cr_assert_eq(r.kind, FARM_REQ_SET, "%s", cases[i].text);
        cr_assert_eq(r.param, cases[i].param, "%s", cases[i].text);
        cr_assert_eq(r.value, cases[i].value, "%s: value %g", cases[i].text, r.value);
        cr_assert_eq(r.first, 3, "%s", cases[i].text);
        cr_assert_eq(r.count, 1, "%s", cases[i].text);
        cr_assert_eq(r.whole_worker, 0, "%s", cases[i].text);
        cr_assert_lt(r.ramp, 0, "%s: ramp %g", cases[i].text, r.ramp);
    }
}

Test(commands, set_with_ramp_carries_the_ramp_in_seconds) {
    static const char *const params[] = {"freq", "feedback", "amp", "pan"};
    for (size_t i = 0; i < 4; i++) {
        char text[64];
        snprintf(text, sizeof text, "set all %s 1 ramp 2.5", params[i]);
        farm_request r = parse_ok(text);
        cr_assert_eq(r.kind, FARM_REQ_SET, "%s", text);
        cr_assert_eq(r.param, (farm_param)i, "%s", text);
        cr_assert_eq(r.value, 1.0, "%s", text);
        cr_assert_eq(r.ramp, 2.5, "%s: ramp %g", text, r.ramp);
    }
}

Test(commands, voice_play_and_stop_on_a_selector_with_and_without_ramp) {
    farm_request r = parse_ok("voice 10-19 play");
    cr_assert_eq(r.kind, FARM_REQ_VOICE);
    cr_assert_eq(r.play, 1);
    cr_assert_eq(r.first, 10);
    cr_assert_eq(r.count, 10);
    cr_assert_eq(r.whole_worker, 0);
    cr_assert_lt(r.ramp, 0);

    r = parse_ok("voice 7 stop ramp 0.5");
    cr_assert_eq(r.kind, FARM_REQ_VOICE);
    cr_assert_eq(r.play, 0);
    cr_assert_eq(r.first, 7);
    cr_assert_eq(r.count, 1);
    cr_assert_eq(r.ramp, 0.5);
}

Test(commands, worker_play_and_stop_select_the_whole_worker) {
    farm_request r = parse_ok("worker 2 stop");
    cr_assert_eq(r.kind, FARM_REQ_VOICE);
    cr_assert_eq(r.whole_worker, 1);
    cr_assert_eq(r.worker, 2);
    cr_assert_eq(r.play, 0);
    cr_assert_lt(r.ramp, 0);

    r = parse_ok("worker 1 play ramp 3");
    cr_assert_eq(r.kind, FARM_REQ_VOICE);
    cr_assert_eq(r.whole_worker, 1);
    cr_assert_eq(r.worker, 1);
    cr_assert_eq(r.play, 1);
    cr_assert_eq(r.ramp, 3.0);
}

Test(commands, gain_parses_its_value_with_and_without_ramp) {
    farm_request r = parse_ok("gain 0.8");
    cr_assert_eq(r.kind, FARM_REQ_GAIN);
    cr_assert_eq(r.value, 0.8);
    cr_assert_lt(r.ramp, 0);

    r = parse_ok("gain 2 ramp 1.5");
    cr_assert_eq(r.kind, FARM_REQ_GAIN);
    cr_assert_eq(r.value, 2.0);
    cr_assert_eq(r.ramp, 1.5);
}

Test(commands, tabs_and_repeated_spaces_separate_words_like_one_space) {
    farm_request r = parse_ok("  set\t5 \t amp   0.5\t\tramp  1  ");
    cr_assert_eq(r.kind, FARM_REQ_SET);
    cr_assert_eq(r.param, FARM_PARAM_AMP);
    cr_assert_eq(r.first, 5);
    cr_assert_eq(r.value, 0.5);
    cr_assert_eq(r.ramp, 1.0);
}

Test(commands, only_len_bytes_are_read_so_the_text_need_not_be_terminated) {
    static const char text[] = "gain 0.5 and then garbage";
    parsed p = parse_n(&stereo, text, 8);
    cr_assert_eq(p.rc, 0, "%.*s", (int)sizeof p.err, p.err);
    cr_assert_eq(p.req.kind, FARM_REQ_GAIN);
    cr_assert_eq(p.req.value, 0.5);
}

/* ---- selectors ---- */

Test(selectors, all_selects_every_voice) {
    farm_request r = parse_ok("set all amp 0");
    cr_assert_eq(r.first, 0);
    cr_assert_eq(r.count, 1000);
    cr_assert_eq(r.whole_worker, 0);

    r = parse_ok_with(&mono, "voice all stop");
    cr_assert_eq(r.first, 0);
    cr_assert_eq(r.count, 1);
}

Test(selectors, a_number_selects_one_voice) {
    farm_request r = parse_ok("voice 42 play");
    cr_assert_eq(r.first, 42);
    cr_assert_eq(r.count, 1);
    cr_assert_eq(r.whole_worker, 0);
}

Test(selectors, a_range_includes_both_ends) {
    farm_request r = parse_ok("set 100-199 freq 220");
    cr_assert_eq(r.first, 100);
    cr_assert_eq(r.count, 100);

    r = parse_ok("set 5-5 freq 220");
    cr_assert_eq(r.first, 5);
    cr_assert_eq(r.count, 1);
}

Test(selectors, worker_k_selects_that_whole_worker_in_set_and_voice) {
    farm_request r = parse_ok("set worker:2 feedback 0.1");
    cr_assert_eq(r.kind, FARM_REQ_SET);
    cr_assert_eq(r.whole_worker, 1);
    cr_assert_eq(r.worker, 2);

    r = parse_ok("voice worker:0 stop");
    cr_assert_eq(r.kind, FARM_REQ_VOICE);
    cr_assert_eq(r.whole_worker, 1);
    cr_assert_eq(r.worker, 0);
}

Test(selectors, are_decimal_whole_numbers_only) {
    refused("voice 0x10 play", "voice");
    refused("voice +1 play", "'+1' is not a selector");
    refused("voice 1.0 play", "'1.0' is not a whole number");
    refused("voice one play", "'one' is not a selector");
    refused("voice 1-x play", "'1-x' is not a selector");
    refused("voice worker:x play", "'x' is not a whole number");
    refused("voice worker: play", "worker");
}

/* ---- boundaries ---- */

Test(bounds, the_last_voice_and_the_last_worker_are_accepted) {
    farm_request r = parse_ok("voice 999 play");
    cr_assert_eq(r.first, 999);
    cr_assert_eq(r.count, 1);

    r = parse_ok("set 0-999 amp 1");
    cr_assert_eq(r.first, 0);
    cr_assert_eq(r.count, 1000);

    r = parse_ok("worker 3 play");
    cr_assert_eq(r.worker, 3);

    r = parse_ok("voice worker:3 play");
    cr_assert_eq(r.worker, 3);

    r = parse_ok_with(&mono, "worker 0 stop");
    cr_assert_eq(r.worker, 0);
    r = parse_ok_with(&mono, "voice 0 stop");
    cr_assert_eq(r.first, 0);
}

Test(bounds, freq_may_be_exactly_half_the_sample_rate_and_no_more) {
    farm_request r = parse_ok("set 0 freq 24000");
    cr_assert_eq(r.value, 24000.0);
    r = parse_ok("set 0 freq 0");
    cr_assert_eq(r.value, 0.0);
    refused("set 0 freq 24000.001", "out of range");
    refused("set 0 freq -1", "out of range");

    r = parse_ok_with(&eight, "set 0 freq 48000");
    cr_assert_eq(r.value, 48000.0);
    refused_with(&eight, "set 0 freq 48001", "freq: 48001 is out of range");
}

Test(bounds, feedback_and_amp_run_from_0_to_1) {
    value_is("set 0 feedback 0", 0.0);
    value_is("set 0 feedback 1", 1.0);
    value_is("set 0 amp 0", 0.0);
    value_is("set 0 amp 1", 1.0);
    refused("set 0 feedback 1.01", "feedback: 1.01 is out of range");
    refused("set 0 feedback -0.01", "feedback: -0.01 is out of range");
    refused("set 0 amp 2", "amp: 2 is out of range");
    refused("set 0 amp -1", "amp: -1 is out of range");
}

Test(bounds, gain_runs_from_0_to_1000) {
    value_is("gain 0", 0.0);
    value_is("gain 1000", 1000.0);
    refused("gain 1000.5", "gain: 1000.5 is out of range");
    refused("gain -0.1", "gain: -0.1 is out of range");
}

Test(bounds, ramp_runs_from_0_to_60_seconds) {
    ramp_is("gain 1 ramp 0", 0.0);
    ramp_is("gain 1 ramp 60", 60.0);
    refused("gain 1 ramp 60.001", "ramp: 60.001 is out of range");
    refused("voice 0 play ramp 61", "ramp: 61 is out of range");
    /* -1 is how the request says "the default"; the user cannot ask for it */
    refused("set 0 amp 1 ramp -1", "ramp: -1 is out of range");
}

Test(bounds, stereo_pan_is_a_position_from_0_to_1) {
    value_is("set 0 pan 0", 0.0);
    value_is("set 0 pan 0.25", 0.25);
    value_is("set 0 pan 1", 1.0);
    refused("set 0 pan 1.5", "pan: 1.5 is out of range");
    refused("set 0 pan -0.5", "pan: -0.5 is out of range");
}

Test(bounds, pan_is_a_channel_index_when_channels_are_not_two) {
    value_is_with(&eight, "set 0 pan 0", 0.0);
    value_is_with(&eight, "set 0 pan 7", 7.0);
    value_is_with(&eight, "set 0 pan 3.0", 3.0);
    refused_with(&eight, "set 0 pan 8", "pan: 8 is out of range (0 to 7)");
    refused_with(&eight, "set 0 pan 2.5", "with 8 channels pan is a channel index, not 2.5");
    refused_with(&eight, "set all pan 0.001", "channel index");

    value_is_with(&mono, "set 0 pan 0", 0.0);
    refused_with(&mono, "set 0 pan 1", "pan: 1 is out of range (0 to 0)");
    refused_with(&mono, "set 0 pan 0.5", "out of range");
}

/* ---- refusals: what is wrong, in one line ---- */

Test(refusals, an_empty_request_is_refused) {
    refused_n(&stereo, "", 0, "empty request");
    refused_n(&stereo, "status", 0, "empty request");
}

Test(refusals, whitespace_alone_is_an_empty_request) {
    refused(" ", "empty request");
    refused(" \t  \t", "empty request");
    refused("\n", "empty request");
    refused("\r\n", "empty request");
}

Test(refusals, an_unknown_command_is_named) {
    refused("play", "unknown command 'play'");
    refused("STATUS", "unknown command 'STATUS'");
    refused("statuses", "unknown command 'statuses'");
    refused("volume 3", "unknown command 'volume'");
}

Test(refusals, an_unknown_parameter_is_named_with_the_known_ones) {
    refused("set 0 volume 1", "unknown parameter 'volume' (freq, feedback, amp or pan)");
    refused("set 0 FREQ 440", "unknown parameter 'FREQ'");
}

Test(refusals, missing_arguments_give_the_usage) {
    refused("set", "usage: set SELECTOR PARAM VALUE");
    refused("set 0", "usage: set");
    refused("set 0 freq", "usage: set");
    refused("voice", "usage: voice SELECTOR play|stop");
    refused("voice 0", "usage: voice");
    refused("worker", "usage: worker K play|stop");
    refused("worker 1", "usage: worker");
    refused("gain", "usage: gain VALUE");
}

Test(refusals, extra_arguments_are_refused) {
    refused("status now", "'status' takes no arguments");
    refused("quit 1", "'quit' takes no arguments");
    refused("help set", "'help' takes no arguments");
    refused("gain 1 2", "only 'ramp SECONDS' and 'at BLOCK' may follow");
    refused("set 0 amp 1 ramp 1 extra", "only 'ramp SECONDS' and 'at BLOCK' may follow");
    refused("voice 0 play please", "only 'ramp SECONDS' and 'at BLOCK' may follow");
    refused("worker 0 stop ramp 1 2", "only 'ramp SECONDS' and 'at BLOCK' may follow");
    refused("set 0 amp 1 fade 1", "only 'ramp SECONDS' and 'at BLOCK' may follow");
}

Test(refusals, ramp_without_its_seconds_is_refused) {
    refused("gain 1 ramp", "'ramp' needs SECONDS");
    refused("set 0 amp 1 ramp", "'ramp' needs SECONDS");
    refused("voice 0 stop ramp", "'ramp' needs SECONDS");
    refused("worker 0 stop ramp", "'ramp' needs SECONDS");
}

Test(refusals, a_value_that_is_not_a_number_is_named) {
    refused("gain loud", "gain: 'loud' is not a number");
    refused("gain 1.0x", "gain: '1.0x' is not a number");
    refused("set 0 freq 440Hz", "freq: '440Hz' is not a number");
    refused("gain 1 ramp soon", "ramp: 'soon' is not a number");
    refused("set 0 amp -", "amp: '-' is not a number");
}

Test(refusals, nan_and_infinities_are_not_finite_numbers) {
    static const char *const words[] = {"nan",  "NaN", "-nan",     "nan(1)",   "inf",
                                        "-inf", "INF", "infinity", "-Infinity"};
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++) {
        char text[64];
        snprintf(text, sizeof text, "gain %s", words[i]);
        refused(text, "gain: ");
        refused(text, "not a finite number");
        snprintf(text, sizeof text, "set 0 freq %s", words[i]);
        refused(text, "not a finite number");
        snprintf(text, sizeof text, "gain 1 ramp %s", words[i]);
        refused(text, "ramp: ");
        refused(text, "not a finite number");
    }
}

Test(refusals, a_number_too_large_for_a_double_is_refused) {
    refused("gain 1e999", "gain: '1e999'");
    refused("set 0 freq -1e999", "freq: '-1e999'");
    refused("gain 1 ramp 1e400", "ramp: '1e400'");
}

Test(refusals, hex_floats_are_read_as_strtod_reads_them) {
    /* Documents the current behaviour: values go through strtod, which reads C99 hex floats;
     * the range checks still apply. Selectors are decimal only (see selectors). */
    value_is("gain 0x1p-1", 0.5);
    value_is("set 0 freq 0x1b8", 440.0);
    refused("gain 0x1p20", "out of range");
}

Test(refusals, a_negative_voice_is_refused) {
    refused("voice -1 play", "'-1' is not a selector");
    refused("set -5 amp 1", "'-5' is not a selector");
    refused("voice worker:-1 play", "not a whole number");
    refused("worker -1 play", "worker: '-1' is not a whole number");
}

Test(refusals, a_range_that_runs_backwards_is_refused) {
    refused("voice 10-5 play", "voices 10-5: the range runs backwards");
    refused("set 1-0 amp 1", "runs backwards");
}

Test(refusals, a_half_open_or_doubled_range_is_refused) {
    refused("voice 5- play", "'5-' is not a selector");
    refused("voice 1-2-3 play", "'1-2-3' is not a selector");
    refused("voice - play", "'-' is not a selector");
}

Test(refusals, a_voice_beyond_the_total_is_refused) {
    refused("voice 1000 play", "voice 1000 does not exist (there are 1000)");
    refused("set 990-1000 amp 1", "voice 1000 does not exist");
    refused_with(&mono, "voice 1 play", "voice 1 does not exist (there are 1)");
    refused_with(&mono, "voice 0-1 play", "voice 1 does not exist");
}

Test(refusals, a_voice_index_does_not_wrap_around_32_bits) {
    refused("voice 4294967296 play", "voice 4294967296 does not exist");
    refused("voice 4294967295 play", "does not exist");
    refused("voice 0-4294968295 play", "does not exist");
    refused("voice 99999999999999999999999 play", "not a whole number");
}

Test(refusals, a_worker_beyond_the_count_is_refused) {
    refused("worker 4 play", "worker 4 does not exist (there are 4)");
    refused("voice worker:4 stop", "worker 4 does not exist (there are 4)");
    refused("set worker:4294967300 amp 1", "does not exist");
    refused_with(&mono, "worker 1 play", "worker 1 does not exist (there are 1)");
}

/* ---- global numbering: a farm that plays voices K .. K + N - 1 (--first-voice K) ---- */

static const farm_request_limits from_1000 = {
    .first_voice = 1000, .voices = 500, .workers = 3, .channels = 2, .sample_rate = 48000};

Test(global, voices_are_named_by_their_global_numbers) {
    farm_request r = parse_ok_with(&from_1000, "set 1000-1099 freq 440");
    cr_assert(r.first == 1000 && r.count == 100, "%u %u", r.first, r.count);
    r = parse_ok_with(&from_1000, "voice 1499 stop");
    cr_assert(r.first == 1499 && r.count == 1, "%u %u", r.first, r.count);
    r = parse_ok_with(&from_1000, "get 1200-1201 freq");
    cr_assert(r.first == 1200 && r.count == 2, "%u %u", r.first, r.count);
    r = parse_ok_with(&from_1000, "set 1000-1002 amp 0.1,0.2,0.3");
    cr_assert_eq(r.form, FARM_FORM_LIST);
    float v[3];
    farm_request_values(&r, 0, 3, v);
    cr_assert(v[0] == 0.1f && v[2] == 0.3f, "the values follow the selection, not the numbers");
}

Test(global, all_and_worker_k_resolve_to_global_numbers) {
    farm_request r = parse_ok_with(&from_1000, "set all amp 0");
    cr_assert(r.first == 1000 && r.count == 500, "%u %u", r.first, r.count);
    /* 500 voices on 3 workers: 167, 167, 166 */
    r = parse_ok_with(&from_1000, "set worker:1 freq 300");
    cr_assert(r.first == 1167 && r.count == 167, "%u %u", r.first, r.count);
    r = parse_ok_with(&from_1000, "worker 2 stop");
    cr_assert(r.first == 1334 && r.count == 166, "%u %u", r.first, r.count);
}

Test(global, a_voice_outside_the_farms_range_is_refused_naming_the_range) {
    refused_with(&from_1000, "voice 999 play",
                 "voice 999 is not on this farm (it has voices 1000-1499)");
    refused_with(&from_1000, "voice 1500 play",
                 "voice 1500 is not on this farm (it has voices 1000-1499)");
    refused_with(&from_1000, "set 0-1000 amp 1", "voice 0 is not on this farm");
    refused_with(&from_1000, "set 1400-1500 amp 1", "voice 1500 is not on this farm");
    refused_with(&from_1000, "get 5 freq", "voice 5 is not on this farm");
    refused_with(&from_1000, "worker 3 play", "worker 3 does not exist (there are 3)");
}

Test(global, the_last_32_bit_number_is_a_voice_and_nothing_wraps) {
    static const farm_request_limits top = {.first_voice = UINT32_MAX - 9,
                                            .voices = 10,
                                            .workers = 2,
                                            .channels = 2,
                                            .sample_rate = 48000};
    farm_request r = parse_ok_with(&top, "set all amp 0");
    cr_assert(r.first == UINT32_MAX - 9 && r.count == 10, "%u %u", r.first, r.count);
    r = parse_ok_with(&top, "voice 4294967295 stop");
    cr_assert_eq(r.first, UINT32_MAX);
    refused_with(&top, "voice 4294967296 play", "is not on this farm");
    refused_with(&top, "voice 4294967285 play", "is not on this farm");
}

Test(refusals, a_word_other_than_play_or_stop_is_named) {
    refused("voice 0 pause", "'pause' is not play or stop");
    refused("worker 0 PLAY", "'PLAY' is not play or stop");
}

/* ---- bytes ---- */

Test(bytes, a_trailing_newline_and_carriage_return_are_accepted) {
    kind_is("status\n", FARM_REQ_STATUS);
    kind_is("status\r\n", FARM_REQ_STATUS);
    kind_is("quit\r", FARM_REQ_QUIT);
    value_is("gain 0.5 \r\n", 0.5);
    ramp_is("set 1-2 amp 0.5 ramp 2\n", 2.0);
}

Test(bytes, a_newline_or_carriage_return_inside_the_request_is_refused) {
    refused("status\nquit", "control character 0x0a");
    refused("status\rquit", "control character 0x0d");
    refused("status\n ", "control character 0x0a");
}

Test(bytes, control_characters_are_refused_and_named) {
    refused("sta\x01tus", "control character 0x01");
    refused("gain 1\x1b", "control character 0x1b");
    refused("gain\v1", "control character 0x0b");
    refused("gain\f1", "control character 0x0c");
    refused("set 0 amp 1\x7f", "control character 0x7f");
    refused("\x04", "control character 0x04");
}

Test(bytes, an_embedded_nul_is_refused_when_len_covers_it) {
    static const char text[] = "status\0quit";
    refused_n(&stereo, text, sizeof text - 1, "control character 0x00");
    refused_n(&stereo, text, 7, "control character 0x00");
    refused_n(&stereo, "\0", 1, "control character 0x00");
}

Test(bytes, non_ascii_bytes_are_refused_and_named) {
    refused("st\xe4tus", "non-ASCII byte 0xe4");
    refused("st\x80tus", "non-ASCII byte 0x80");
    refused("gain 0.5\xc2\xa0", "non-ASCII byte 0xc2");   /* a UTF-8 no-break space */
    refused("\xef\xbb\xbfstatus", "non-ASCII byte 0xef"); /* a UTF-8 byte-order mark */
    refused("set 0 freq 440\xff", "non-ASCII byte 0xff");
}

Test(bytes, a_word_of_63_characters_is_read_and_64_is_too_long) {
    char text[128] = "gain ";
    memset(text + 5, '0', 62);
    text[5 + 62] = '1';
    text[5 + 63] = '\0';
    value_is(text, 1.0);

    text[5 + 63] = '1';
    text[5 + 64] = '\0';
    refused(text, "word 2 is too long (at most 63 characters)");

    memset(text, 'a', 100);
    text[100] = '\0';
    refused(text, "word 1 is too long");
}

Test(bytes, twelve_words_are_read_and_thirteen_are_too_many) {
    refused("set 0 amp 1 ramp 1 x y", "only 'ramp SECONDS' and 'at BLOCK' may follow");
    refused("set 0 amp 1 ramp 1 at 5 x y z w v", "too many words (at most 12)");
    refused("a b c d e f g h i j k l m", "too many words");
}

Test(bytes, a_request_of_65536_bytes_is_read_and_one_more_is_too_long) {
    char *text = malloc(FARM_REQUEST_MAX + 1);
    cr_assert_not_null(text);
    memset(text, ' ', FARM_REQUEST_MAX + 1);
    memcpy(text + 1000, "status", 6);
    parsed p = parse_n(&stereo, text, FARM_REQUEST_MAX);
    cr_assert_eq(p.rc, 0, "%.*s", (int)sizeof p.err, p.err);
    cr_assert_eq(p.req.kind, FARM_REQ_STATUS);
    refused_n(&stereo, text, FARM_REQUEST_MAX + 1, "request too long (65537 bytes; at most 65536)");
    free(text);
}

/* ---- what a refusal leaves ---- */

Test(refusals, every_refusal_returns_eusage_and_one_nonempty_line) {
    static const char *const bad[] = {"",
                                      "set",
                                      "set 0 amp 2",
                                      "set 0 amp nan",
                                      "gain 1 ramp 99",
                                      "voice 9-1",
                                      "voice 9-1 play",
                                      "worker 9 play",
                                      "bogus",
                                      "status\x01",
                                      "\x80",
                                      "set 0 pan",
                                      "voice all go"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        refused(bad[i], "");
}

Test(refusals, each_thread_keeps_its_own_message) {
    farm_request r;
    farm_error_clear();
    cr_assert_eq(farm_request_parse("bogus command", 13, &stereo, &r), FARM_EUSAGE);
    cr_assert_not_null(strstr(farm_error_message(), "unknown command 'bogus'"));
    /* the first message since the last clear is the one kept: it names the cause */
    cr_assert_eq(farm_request_parse("set 0 amp 2", 11, &stereo, &r), FARM_EUSAGE);
    cr_assert_not_null(strstr(farm_error_message(), "unknown command 'bogus'"));
    farm_error_clear();
    cr_assert_eq(farm_request_parse("set 0 amp 2", 11, &stereo, &r), FARM_EUSAGE);
    cr_assert_not_null(strstr(farm_error_message(), "amp: 2 is out of range"));
}

/* A refused request should leave nothing that could pass for a request: today the parser
 * clears *req first (which reads as a valid "status") and then fills it as it goes, so
 * "set 0 freq 100 ramp 99" leaves kind SET, first 0, count 1, value 100. Enable once the parser
 * works on a local copy and writes *req only on success. */
Test(refusals, a_refused_request_leaves_the_callers_request_untouched) {
    static const char *const bad[] = {"set 0 freq 100 ramp 99", "voice 0 play extra", "bogus",
                                      "gain 1 ramp"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        farm_request before;
        memset(&before, 0xa5, sizeof before);
        parsed p = parse_n(&stereo, bad[i], strlen(bad[i]));
        cr_assert_eq(p.rc, FARM_EUSAGE, "%s", bad[i]);
        cr_assert_eq(memcmp(&p.req, &before, sizeof before), 0, "'%s' left a partial request",
                     bad[i]);
    }
}

/* The selector as the user wrote it should be in the message: today "-1" and "5-" are
 * reported as "voice: '' is not a whole number". Enable once selector() quotes the word. */
Test(refusals, a_malformed_selector_is_quoted_as_written) {
    refused("voice -1 play", "'-1'");
    refused("voice 5- play", "'5-'");
}

/* ---- values at scale: lists, spreads, vectors, batches, get, at ---- */

static void values_of(const farm_request *r, float *out) {
    farm_request_values(r, 0, r->count, out);
}

Test(scale, a_list_gives_each_selected_voice_its_value_and_must_match_the_selection) {
    farm_request r = parse_ok("set 10-13 freq 110,220.5,330,440 ramp 0");
    cr_assert_eq(r.form, FARM_FORM_LIST);
    cr_assert_eq(r.ramp, 0.0, "ramp 0 is a jump at the block boundary");
    float v[4];
    values_of(&r, v);
    cr_assert(v[0] == 110.0f && v[1] == 220.5f && v[2] == 330.0f && v[3] == 440.0f);
    float tail[2];
    farm_request_values(&r, 2, 2, tail);
    cr_assert(tail[0] == 330.0f && tail[1] == 440.0f, "a part of the list, from its offset");
    refused("set 10-13 freq 110,220,330", "3 values for the 4 voices selected");
    refused("set 10-13 freq 110,220,330,440,550", "more values than the 4 voices selected");
    refused("set 0-1 freq 110,,", "value 2 of the list is empty");
    refused("set 0-1 freq 110,30000", "freq (value 2): 30000 is out of range");
    refused("set 0-1 amp 0.5,nan", "not a finite number");
    refused_with(&eight, "set 0-1 pan 1,2.5", "pan is a channel index");
}

Test(scale, a_list_longer_than_a_word_is_one_value_per_voice) {
    char text[20000];
    int n = snprintf(text, sizeof text, "set 0-999 amp ");
    for (int i = 0; i < 1000; i++)
        n += snprintf(text + n, sizeof text - (size_t)n, "%s0.%03d", i ? "," : "", i);
    farm_request r = parse_ok(text);
    cr_assert_eq(r.count, 1000);
    float v[1000];
    values_of(&r, v);
    cr_assert_float_eq(v[999], 0.999f, 1e-7);
}

Test(scale, spreads_go_from_the_first_selected_voice_to_the_last) {
    float v[5];
    farm_request r = parse_ok("set 0-4 freq lin 100 500");
    cr_assert_eq(r.form, FARM_FORM_LIN);
    values_of(&r, v);
    for (int k = 0; k < 5; k++)
        cr_assert_float_eq(v[k], 100 + 100 * k, 1e-3, "lin %d: %g", k, v[k]);
    r = parse_ok("set 0-4 freq exp 100 1600 at 77");
    values_of(&r, v);
    for (int k = 0; k < 5; k++)
        cr_assert_float_eq(v[k], 100 * pow(2, k), 1e-2, "exp %d: %g", k, v[k]);
    cr_assert(r.has_at && r.at == 77);
    r = parse_ok("set 3-6 freq harmonic 110 ramp 0.5");
    values_of(&r, v);
    for (int k = 0; k < 4; k++)
        cr_assert_float_eq(v[k], 110.0 * (k + 1), 1e-3, "harmonic %d: %g", k, v[k]);
    refused("set 0-4 freq exp 0 100", "exp spreads between values above 0");
    refused("set 0-999 freq harmonic 100", "would reach 100000 Hz");
    refused("set 0-4 amp harmonic 0.1", "harmonic is for freq");
    refused("set 0-4 amp lin 0 2", "amp: 2 is out of range");
    refused("set 0-4 freq lin 100", "usage: set SELECTOR PARAM lin|exp A B");
    refused_with(&eight, "set 0-4 pan lin 0 7", "give a list instead");
}

Test(scale, at_and_ramp_come_in_either_order_once_each) {
    farm_request r = parse_ok("voice 5 stop at 1000 ramp 0");
    cr_assert(r.has_at && r.at == 1000 && r.ramp == 0.0);
    r = parse_ok("gain 0.5 at 12");
    cr_assert(r.has_at && r.at == 12 && r.ramp < 0);
    refused("gain 0.5 at", "'at' needs BLOCK");
    refused("gain 0.5 at 1 at 2", "'at' is given twice");
    refused("gain 0.5 ramp 1 ramp 2", "'ramp' is given twice");
    refused("gain 0.5 at -1", "at: '-1' is not a whole number");
}

Test(scale, worker_k_selects_the_voices_the_supervisor_gives_it) {
    /* 1000 voices on 4 workers: 250 each; 10 on 4: 3, 3, 2, 2 */
    farm_request r = parse_ok("set worker:2 freq 300");
    cr_assert(r.first == 500 && r.count == 250, "%u %u", r.first, r.count);
    static const farm_request_limits ten = {
        .voices = 10, .workers = 4, .channels = 2, .sample_rate = 48000};
    r = parse_ok_with(&ten, "worker 2 stop");
    cr_assert(r.first == 6 && r.count == 2, "%u %u", r.first, r.count);
    r = parse_ok_with(&ten, "set worker:1 amp 0.1,0.2,0.3");
    cr_assert_eq(r.form, FARM_FORM_LIST);
}

Test(scale, get_reads_a_parameter_or_playing) {
    farm_request r = parse_ok("get 0-9 freq");
    cr_assert(r.kind == FARM_REQ_GET && !r.get_playing && r.param == FARM_PARAM_FREQ);
    r = parse_ok("get all playing");
    cr_assert(r.kind == FARM_REQ_GET && r.get_playing && r.count == 1000);
    refused("get all", "usage: get SELECTOR PARAM|playing");
    refused("get all volume", "unknown parameter 'volume'");
    refused("set all playing 1", "unknown parameter 'playing'");
}

static size_t setv_message(char *buf, const char *head, const float *v, size_t n) {
    size_t len = strlen(head);
    memcpy(buf, head, len);
    buf[len++] = '\n';
    for (size_t i = 0; i < n; i++) {
        uint32_t bits;
        memcpy(&bits, &v[i], 4);
        for (int b = 0; b < 4; b++)
            buf[len++] = (char)(bits >> (8 * b)); /* little-endian, whatever the host */
    }
    return len;
}

Test(scale, setv_takes_one_little_endian_float_per_voice_and_refuses_the_rest_whole) {
    static char buf[FARM_RECV_MAX];
    float v[300];
    for (int i = 0; i < 300; i++)
        v[i] = 100.0f + (float)i;
    size_t len = setv_message(buf, "setv 100-399 freq ramp 0.1 at 9", v, 300);
    parsed p = parse_n(&stereo, buf, len);
    cr_assert_eq(p.rc, FARM_OK, "%s", p.err);
    cr_assert_eq(p.req.form, FARM_FORM_VECTOR);
    cr_assert(p.req.has_at && p.req.at == 9 && p.req.ramp == 0.1);
    float got[300];
    values_of(&p.req, got);
    cr_assert_eq(memcmp(got, v, sizeof v), 0);
    refused_n(&stereo, buf, len - 1, "1199 bytes for 300 voices; 1200 expected");
    v[7] = NAN;
    len = setv_message(buf, "setv 100-399 freq", v, 300);
    refused_n(&stereo, buf, len, "freq (value 8)");
    v[7] = 30000;
    len = setv_message(buf, "setv 100-399 freq", v, 300);
    refused_n(&stereo, buf, len, "out of range");
    refused("setv 0-1 freq", "no newline before the values");
}

Test(scale, setv_carries_100000_voices_in_one_message) {
    static const farm_request_limits big = {
        .voices = 100000, .workers = 4, .channels = 2, .sample_rate = 48000};
    static char buf[FARM_RECV_MAX];
    static float v[100000];
    for (int i = 0; i < 100000; i++)
        v[i] = 0.5f * (float)(i % 3);
    size_t len = setv_message(buf, "setv all amp", v, 100000);
    farm_request r;
    farm_error_clear();
    cr_assert_eq(farm_request_parse(buf, len, &big, &r), FARM_OK, "%s", farm_error_message());
    cr_assert_eq(r.count, 100000);
}

Test(scale, a_batch_is_several_lines_parsed_whole_or_refused_naming_the_line) {
    farm_request out[8];
    size_t n;
    const char *ok = "set 0 amp 0.5\nvoice 1 stop ramp 0\r\ngain 0.8 at 50\nstatus\n";
    farm_error_clear();
    cr_assert_eq(farm_message_parse(ok, strlen(ok), &stereo, out, 8, &n), FARM_OK, "%s",
                 farm_error_message());
    cr_assert_eq(n, 4);
    cr_assert(out[0].kind == FARM_REQ_SET && out[1].kind == FARM_REQ_VOICE &&
              out[2].kind == FARM_REQ_GAIN && out[3].kind == FARM_REQ_STATUS);
    const char *bad = "set 0 amp 0.5\nset 1 amp 7\n";
    farm_error_clear();
    cr_assert_eq(farm_message_parse(bad, strlen(bad), &stereo, out, 8, &n), FARM_EUSAGE);
    cr_assert_not_null(strstr(farm_error_message(), "line 2: amp: 7 is out of range"), "%s",
                       farm_error_message());
    const char *quit = "set 0 amp 0.5\nquit";
    farm_error_clear();
    cr_assert_eq(farm_message_parse(quit, strlen(quit), &stereo, out, 8, &n), FARM_EUSAGE);
    cr_assert_not_null(strstr(farm_error_message(), "line 2: quit is not for a batch"));
    const char *empty = "set 0 amp 0.5\n\nstatus";
    farm_error_clear();
    cr_assert_eq(farm_message_parse(empty, strlen(empty), &stereo, out, 8, &n), FARM_EUSAGE);
    cr_assert_not_null(strstr(farm_error_message(), "line 2: empty request"));
    /* one line with a newline at its end is one request, not a batch */
    cr_assert_eq(farm_message_parse("status\n", 7, &stereo, out, 8, &n), FARM_OK);
    cr_assert_eq(n, 1);
}
