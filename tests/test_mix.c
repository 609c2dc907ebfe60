/* Renders in parts and `farm mix`, end to end: the parts of a render, however they are cut and
 * whatever their worker counts, mixed equal the whole render; a part holds exactly the voices
 * of the whole from its first on; parts that cannot add up are refused with nothing written;
 * mix writes every format render writes, with render's gain and limiter; parts by count
 * (--part K/N) add up whatever N, and are not rendered again when already whole. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <math.h>
#include <signal.h>
#include <sndfile.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dsp.h"
#include "testutil.h"

static char dir[256];

static void setup(void) {
    tu_tmpdir(dir, sizeof dir);
}

static void teardown(void) {
    tu_farm_cleanup();
    tu_rmdir(dir);
}

TestSuite(mix, .init = setup, .fini = teardown, .timeout = 120);

/* dir/name in a buffer of the caller's: the tests hold many paths at once. */
static const char *at(char *buf, const char *name) {
    snprintf(buf, 512, "%s/%s", dir, name);
    return buf;
}

/* Runs farm with args; it must exit with status and leave no process. */
static void farm_expect(tu_run *r, int status, const char *const *args) {
    tu_farm(r, args, NULL);
    cr_assert_eq(r->status, status, "farm %s ...: status %d, not %d: %s", args[0], r->status,
                 status, r->err);
    cr_assert_eq(tu_count_tagged(r->tag, NULL), 0, "no process of farm %s is left", args[0]);
}

/* A part (first < 0: the whole render) of seed 9's farm of 1000 voices of amp, 1 s. */
static void render_part_amp(const char *out, long first, unsigned voices, unsigned workers,
                            const char *amp) {
    char f[16], v[16], w[16];
    snprintf(f, sizeof f, "%ld", first);
    snprintf(v, sizeof v, "%u", voices);
    snprintf(w, sizeof w, "%u", workers);
    const char *args[] = {"render",
                          "-o",
                          out,
                          "--duration",
                          "1",
                          "--seed",
                          "9",
                          "--total-voices",
                          v,
                          "--workers",
                          w,
                          "--amp",
                          amp,
                          "-q",
                          "--first-voice",
                          f,
                          NULL};
    if (first < 0)
        args[14] = NULL;
    tu_run r;
    farm_expect(&r, 0, args);
}

static void render_part(const char *out, long first, unsigned voices, unsigned workers) {
    render_part_amp(out, first, voices, workers, "0.005");
}

static void read_ok(const char *path, tu_audio *a) {
    cr_assert_eq(tu_read(path, a), 0, "%s is a sound file: %s", path, sf_strerror(NULL));
}

static double worst_difference(const tu_audio *x, const tu_audio *y) {
    cr_assert_eq(x->frames, y->frames);
    cr_assert_eq(x->channels, y->channels);
    double worst = 0;
    for (int64_t k = 0; k < x->frames * x->channels; k++)
        worst = fmax(worst, fabs((double)x->data[k] - y->data[k]));
    return worst;
}

/* ---- parts add up to the whole ---- */

static void expect_mix_equals(const char *whole, const char *const *parts, size_t n,
                              const char *voices) {
    char out[512];
    const char *args[8] = {"mix", "-o", at(out, "mixed.wav")};
    for (size_t i = 0; i < n; i++)
        args[3 + i] = parts[i];
    args[3 + n] = NULL;
    tu_run r;
    farm_expect(&r, 0, args);
    cr_assert_eq(r.err[0], '\0', "no warning for parts that fit: %s", r.err);
    cr_assert(strstr(r.out, voices) != NULL, "the summary names %s: %s", voices, r.out);
    tu_audio w, m;
    read_ok(whole, &w);
    read_ok(out, &m);
    cr_assert_eq(m.format, SF_FORMAT_WAV | SF_FORMAT_FLOAT);
    cr_assert_eq(m.frames, 48000);
    /* only the order of float sums differs, as between worker counts (test_render.c) */
    double worst = worst_difference(&w, &m);
    cr_assert_leq(worst, 1e-6, "%zu parts: worst difference %g", n, worst);
    cr_assert_gt(tu_rms(w.data + 9600, 38400, 2), 0.03, "the whole is not silence");
    tu_audio_free(&w);
    tu_audio_free(&m);
}

Test(mix, the_parts_of_a_render_mixed_equal_the_whole_render) {
    char whole[512], a[512], b[512], c[512], d[512], e[512];
    render_part(at(whole, "whole.wav"), -1, 1000, 2);
    /* two parts of different sizes and worker counts */
    render_part(at(a, "a.wav"), 0, 400, 2);
    render_part(at(b, "b.wav"), 400, 600, 1);
    /* A part is not limited: its 300 voices a channel, in phase at the start, reach 1.5. */
    tu_audio pb;
    read_ok(b, &pb);
    float peak = 0;
    for (int64_t k = 0; k < pb.frames * 2; k++)
        peak = fmaxf(peak, fabsf(pb.data[k]));
    cr_assert_gt(peak, 1.4f, "the part's peak %g: limited?", peak);
    tu_audio_free(&pb);
    expect_mix_equals(whole, (const char *[]){a, b}, 2, "voices 0-999 of seed 9");
    /* three, given in any order */
    render_part(at(c, "c.wav"), 0, 100, 1);
    render_part(at(d, "d.wav"), 100, 550, 3);
    render_part(at(e, "e.wav"), 650, 350, 2);
    expect_mix_equals(whole, (const char *[]){e, c, d}, 3, "voices 0-999 of seed 9");

    /* a part left out is missed: the comparison above can fail, and mix says which voices */
    char out[512];
    tu_run r;
    farm_expect(&r, 0, (const char *[]){"mix", "-o", at(out, "gap.wav"), c, e, NULL});
    cr_assert(strstr(r.err, "farm: warning: no part holds voices 100-649") != NULL, "%s", r.err);
    tu_audio w, g;
    read_ok(whole, &w);
    read_ok(out, &g);
    cr_assert_gt(worst_difference(&w, &g), 1e-2, "without voices 100-649 it is another signal");
    tu_audio_free(&w);
    tu_audio_free(&g);
    /* parts that overlap are summed as asked, with a warning */
    farm_expect(&r, 0, (const char *[]){"mix", "-o", at(out, "twice.wav"), a, d, b, NULL});
    cr_assert(strstr(r.err, "farm: warning: voices 100-399 are in both") != NULL, "%s", r.err);
    cr_assert(strstr(r.err, "voices 400-649 are in both") != NULL, "%s", r.err);
}

/* ---- a part is the whole's voices from K on, each with its frequency and channel ---- */

/* A seed whose voices first..first+n-1 (in 300..3000 Hz) are at least 40 Hz apart, so each
 * shows as a peak of its own. */
static unsigned separated_seed(uint64_t first, int n) {
    for (unsigned seed = 1; seed < 1000; seed++) {
        double gap = 1e9;
        for (int i = 0; i < n; i++)
            for (int j = i + 1; j < n; j++)
                gap = fmin(gap, fabs(dsp_voice_default_freq(seed, first + (uint64_t)i, 300, 3000) -
                                     dsp_voice_default_freq(seed, first + (uint64_t)j, 300, 3000)));
        if (gap > 40)
            return seed;
    }
    cr_assert_fail("no seed below 1000 separates the voices");
    return 0;
}

static void render_sines(const char *out, unsigned seed, const char *first, const char *voices,
                         const char *channels) {
    char s[16];
    snprintf(s, sizeof s, "%u", seed);
    const char *args[] = {"render",
                          "-o",
                          out,
                          "--duration",
                          "1",
                          "--seed",
                          s,
                          "--total-voices",
                          voices,
                          "--channels",
                          channels,
                          "--workers",
                          "1",
                          "--feedback",
                          "0",
                          "--amp",
                          "0.25",
                          "--freq-min",
                          "300",
                          "--freq-max",
                          "3000",
                          "-q",
                          "--first-voice",
                          first,
                          NULL};
    if (first == NULL)
        args[21] = NULL;
    tu_run r;
    farm_expect(&r, 0, args);
}

/* Channel c of a, as doubles. */
static double *channel(const tu_audio *a, int c) {
    double *x = malloc(sizeof(double) * (size_t)a->frames);
    for (int64_t i = 0; i < a->frames; i++)
        x[i] = a->data[i * a->channels + c];
    return x;
}

Test(mix, a_part_holds_exactly_the_voices_of_the_whole_from_its_first) {
    /* 8 voices on 8 channels: each channel of the whole holds one sine, voice c's */
    unsigned seed = separated_seed(0, 8);
    char whole[512], part[512];
    render_sines(at(whole, "whole8.wav"), seed, NULL, "8", "8");
    render_sines(at(part, "part8.wav"), seed, "5", "3", "8");
    tu_audio w, p;
    read_ok(whole, &w);
    read_ok(part, &p);
    cr_assert_eq(p.channels, 8);
    for (int c = 0; c < 8; c++) {
        double worst = 0, peak_hz = 0;
        for (int64_t i = 0; i < p.frames; i++) {
            double want = c >= 5 ? w.data[i * 8 + c] : 0.0;
            worst = fmax(worst, fabs(p.data[i * 8 + c] - want));
        }
        cr_assert_leq(worst, 1e-6, "channel %d: the part differs from %s by %g", c,
                      c >= 5 ? "the whole" : "silence", worst);
        if (c < 5)
            continue;
        tu_band_fraction(p.data + c, (size_t)p.frames, 8, 48000, 0, 24000, &peak_hz);
        double f = dsp_voice_default_freq(seed, (uint64_t)c, 300, 3000);
        cr_assert_float_eq(peak_hz, f, 2.0, "channel %d peaks at %g Hz; voice %d is %g Hz", c,
                           peak_hz, c, f);
    }
    tu_audio_free(&w);
    tu_audio_free(&p);

    /* stereo, from an odd voice: 3 and 5 on the right (odd), 4 on the left, as in the whole */
    seed = separated_seed(3, 3);
    render_sines(at(part, "part3.wav"), seed, "3", "3", "2");
    read_ok(part, &p);
    double *ch[2] = {channel(&p, 0), channel(&p, 1)};
    for (uint64_t v = 3; v <= 5; v++) {
        double f = dsp_voice_default_freq(seed, v, 300, 3000);
        int on = (int)(v % 2);
        double here = tu_tone(ch[on], (size_t)p.frames, 48000, f);
        double there = tu_tone(ch[1 - on], (size_t)p.frames, 48000, f);
        cr_assert_float_eq(here, 0.25, 0.0125, "voice %llu (%g Hz) on channel %d: %g",
                           (unsigned long long)v, f, on, here);
        cr_assert_lt(there, 0.0125, "voice %llu (%g Hz) not on channel %d: %g",
                     (unsigned long long)v, f, 1 - on, there);
    }
    free(ch[0]);
    free(ch[1]);
    tu_audio_free(&p);
}

/* ---- refusals: one line, exit 2, nothing written ---- */

static void expect_refused(const char *const *args, const char *mentions, const char *out) {
    tu_run r;
    farm_expect(&r, 2, args);
    cr_expect_eq(tu_lines(r.err), 1, "%s: one line: %s", mentions, r.err);
    cr_expect(strncmp(r.err, "farm: ", 6) == 0, "%s", r.err);
    cr_expect(strstr(r.err, mentions) != NULL, "expected '%s' in: %s", mentions, r.err);
    FILE *f = fopen(out, "r");
    char buf[16] = "";
    cr_assert_not_null(f, "%s: the existing output is still there", mentions);
    cr_expect(fgets(buf, sizeof buf, f) != NULL && strcmp(buf, "precious") == 0,
              "%s: the existing output is untouched", mentions);
    fclose(f);
}

Test(mix, parts_that_cannot_add_up_are_refused_and_nothing_is_written) {
    char a[512], rate[512], mono[512], shortp[512], junk[512], out[512];
    render_part(at(a, "a.wav"), 0, 100, 1);
    const char *args44[] = {
        "render",        "-o",  at(rate, "r.wav"), "--duration", "1",  "--sr", "44100",
        "--first-voice", "100", "--total-voices",  "100",        "-q", NULL};
    const char *args1[] = {
        "render",        "-o",  at(mono, "m.wav"), "--duration", "1",  "--channels", "1",
        "--first-voice", "100", "--total-voices",  "100",        "-q", NULL};
    const char *args05[] = {"render",
                            "-o",
                            at(shortp, "s.wav"),
                            "--duration",
                            "0.5",
                            "--first-voice",
                            "100",
                            "--total-voices",
                            "100",
                            "-q",
                            NULL};
    tu_run r;
    farm_expect(&r, 0, args44);
    farm_expect(&r, 0, args1);
    farm_expect(&r, 0, args05);
    FILE *f = fopen(at(junk, "junk.wav"), "w");
    fputs("not a sound file", f);
    fclose(f);
    f = fopen(at(out, "out.wav"), "w");
    fputs("precious", f);
    fclose(f);
    const int before = tu_files_in(dir);
    expect_refused((const char *[]){"mix", "-o", out, a, rate, NULL}, "parts differ in sample rate",
                   out);
    expect_refused((const char *[]){"mix", "-o", out, a, mono, NULL}, "parts differ in channels",
                   out);
    expect_refused((const char *[]){"mix", "-o", out, a, shortp, NULL}, "parts differ in length",
                   out);
    expect_refused((const char *[]){"mix", "-o", out, a, junk, NULL}, "cannot read part", out);
    expect_refused((const char *[]){"mix", "-o", out, a, "/nonexistent/b.wav", NULL},
                   "cannot read part /nonexistent/b.wav", out);
    expect_refused((const char *[]){"mix", "-o", out, NULL}, "no parts to mix", out);
    expect_refused((const char *[]){"mix", a, NULL}, "-o", out);
    expect_refused((const char *[]){"mix", "-o", out, "--duration", "1", a, NULL}, "--duration",
                   out);
    expect_refused((const char *[]){"mix", "-o", out, "--gain", "-1", a, NULL}, "--gain", out);
    cr_assert_eq(tu_files_in(dir), before, "no file was added");
}

/* A part is float without gain or limiter; what would change that is refused. */
Test(mix, a_part_refuses_what_would_keep_parts_from_adding_up) {
    char out[512], flac[512], ogg[512], p[512];
    FILE *f = fopen(at(out, "part.wav"), "w");
    fputs("precious", f);
    fclose(f);
    static const struct {
        const char *opt, *value, *mentions;
    } cases[] = {
        {"--gain", "2", "--gain: a part"},
        {"--sample-type", "pcm16", "--sample-type pcm16: a part"},
        {"--sample-type", "pcm24", "--sample-type pcm24: a part"},
        {"--total-voices", "2", "--first-voice: voices 4294967295..4294967296"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *first = i == 3 ? "4294967295" : "0";
        expect_refused((const char *[]){"render", "-o", out, "--workers", "1", "--first-voice",
                                        first, cases[i].opt, cases[i].value, NULL},
                       cases[i].mentions, out);
    }
    expect_refused((const char *[]){"render", "-o", at(flac, "part.flac"), "--first-voice", "0",
                                    "--duration", "0.1", NULL},
                   "part.flac: a part (--first-voice) is written as float", out);
    expect_refused((const char *[]){"render", "-o", at(ogg, "part.ogg"), "--first-voice", "0",
                                    "--duration", "0.1", NULL},
                   "which this format cannot hold", out);
    expect_refused(
        (const char *[]){"render", "-o", out, "--first-voice", "0", "--format", "flac", NULL},
        "which this format cannot hold", out);
    cr_assert_eq(tu_files_in(dir), 1, "nothing was written");
    /* the last voice number is 2^32 - 1 */
    tu_run r;
    farm_expect(&r, 0,
                (const char *[]){"render", "-o", at(p, "top.wav"), "--first-voice", "4294967294",
                                 "--total-voices", "2", "--workers", "1", "--duration", "0.1", "-q",
                                 NULL});
}

/* ---- what mix writes ---- */

/* Two parts quiet enough that their mix never reaches full scale, not even at the start,
 * where the voices are in phase: 1000 voices of 0.0005 peak at 0.5. */
static void two_parts(char *a, char *b) {
    render_part_amp(at(a, "pa.wav"), 0, 300, 1, "0.0005");
    render_part_amp(at(b, "pb.wav"), 300, 700, 2, "0.0005");
}

Test(mix, mix_writes_the_formats_render_writes) {
    char a[512], b[512], ref[512];
    two_parts(a, b);
    tu_run r;
    farm_expect(&r, 0, (const char *[]){"mix", "-o", at(ref, "ref.wav"), "-q", a, b, NULL});
    cr_assert_eq(r.out[0], '\0', "-q prints nothing: %s", r.out);
    tu_audio x;
    read_ok(ref, &x);
    static const struct {
        const char *name, *type;
        int format;
        double within; /* of the float mix, per sample; 0: lossy, compared by level */
    } cases[] = {
        {"m.flac", NULL, SF_FORMAT_FLAC | SF_FORMAT_PCM_24, 2.0 / 8388608},
        {"m.aiff", "pcm16", SF_FORMAT_AIFF | SF_FORMAT_PCM_16, 2.0 / 32768},
        {"m.w64", NULL, SF_FORMAT_W64 | SF_FORMAT_FLOAT, 0},
        {"m.ogg", NULL, SF_FORMAT_OGG | SF_FORMAT_VORBIS, -1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char out[512];
        const char *args[] = {"mix",         "-o", at(out, cases[i].name), a, b, "--sample-type",
                              cases[i].type, NULL};
        if (cases[i].type == NULL)
            args[5] = NULL;
        farm_expect(&r, 0, args);
        tu_audio y;
        read_ok(out, &y);
        cr_assert_eq(y.format, cases[i].format, "%s: format %#x", cases[i].name, y.format);
        cr_assert_eq(y.frames, x.frames, "%s", cases[i].name);
        if (cases[i].within >= 0) {
            double worst = worst_difference(&x, &y);
            cr_assert_leq(worst, cases[i].within, "%s: worst difference %g", cases[i].name, worst);
        } else {
            for (int c = 0; c < 2; c++) {
                double rx = tu_rms(x.data + 9600 + c, 38400, 2);
                double ry = tu_rms(y.data + 9600 + c, 38400, 2);
                cr_assert_float_eq(ry, rx, 0.1 * rx, "%s channel %d: rms %g, float's %g",
                                   cases[i].name, c, ry, rx);
            }
        }
        tu_audio_free(&y);
    }
    tu_audio_free(&x);
}

Test(mix, gain_and_the_limiter_apply_to_the_mix_as_render_applies_them) {
    char a[512], b[512], one[512], half[512], loud[512];
    two_parts(a, b);
    tu_run r;
    farm_expect(&r, 0, (const char *[]){"mix", "-o", at(one, "one.wav"), a, b, NULL});
    farm_expect(&r, 0,
                (const char *[]){"mix", "-o", at(half, "half.wav"), "--gain", "0.5", a, b, NULL});
    cr_assert_null(strstr(r.out, "clipped"), "%s", r.out);
    farm_expect(&r, 0,
                (const char *[]){"mix", "-o", at(loud, "loud.wav"), "--gain", "1000", a, b, NULL});
    double clipped = tu_number_after(r.out, "clipped samples: ");
    tu_audio x, h, l;
    read_ok(one, &x);
    read_ok(half, &h);
    read_ok(loud, &l);
    uint64_t over = 0;
    for (int64_t k = 0; k < x.frames * 2; k++) {
        cr_assert_eq(h.data[k], x.data[k] * 0.5f, "sample %lld: gain 0.5", (long long)k);
        cr_assert(l.data[k] >= -1.0f && l.data[k] <= 1.0f, "sample %lld: %g is beyond [-1, 1]",
                  (long long)k, l.data[k]);
        float want = x.data[k] * 1000.0f;
        if (fabsf(want) > 1.0f)
            over++;
        else
            cr_assert_eq(l.data[k], want, "sample %lld: gain 1000 below full scale", (long long)k);
    }
    cr_assert_gt(over, 48000, "gain 1000 drives most samples past full scale");
    cr_assert_eq(clipped, (double)over, "the summary counts the clipped samples: %s", r.out);
    tu_audio_free(&x);
    tu_audio_free(&h);
    tu_audio_free(&l);
}

Test(mix, help_teaches_mix_and_parts) {
    tu_run r;
    farm_expect(&r, 0, (const char *[]){"--help", NULL});
    cr_assert(strstr(r.out, "farm mix -o OUT.wav PART.wav...") != NULL, "%s", r.out);
    farm_expect(&r, 0, (const char *[]){"mix", "--help", NULL});
    static const char *const words[] = {"usage: farm mix -o OUT [options] PART...",
                                        "--output",
                                        "--format",
                                        "--sample-type",
                                        "--gain",
                                        "--first-voice K",
                                        "Exit status"};
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
        cr_expect(strstr(r.out, words[i]) != NULL, "mix's help lacks '%s': %s", words[i], r.out);
    char mix_help[sizeof r.out];
    memcpy(mix_help, r.out, sizeof mix_help);
    farm_expect(&r, 0, (const char *[]){"help", "mix", NULL});
    cr_assert_str_eq(r.out, mix_help, "farm help mix is farm mix --help");
    farm_expect(&r, 0, (const char *[]){"render", "--help", NULL});
    cr_assert(strstr(r.out, "--first-voice K") != NULL, "%s", r.out);
}

/* ---- parts by count: farm render --part K/N ---- */

/* The N parts of a render, for N that divides its voices and N that does not, up to one voice a
 * part, mixed equal the whole render; bad input gets one line, exit 2 and nothing written; a
 * part already whole at -o is not rendered again, one that is not (other options, cut short)
 * is; a part killed halfway (SIGKILL or SIGTERM) leaves no file under its name. */

/* Part "K/N" (NULL: the whole) of seed 5's render of voices voices, 0.5 s, into out. */
static void render_by_count(tu_run *r, const char *out, const char *part, const char *voices,
                            const char *workers, const char *quiet) {
    const char *args[] = {"render", "-o",  out,         "--duration", "0.5",
                          "--seed", "5",   "--workers", workers,      "--total-voices",
                          voices,   quiet, "--part",    part,         NULL};
    if (part == NULL)
        args[12] = NULL;
    farm_expect(r, 0, args);
}

/* The n parts of the render of voices voices, mixed, against the whole. */
static void expect_parts_make_the_whole(const char *voices, unsigned n) {
    char whole[512], mixed[512], names[64][512];
    const char *mix[64 + 4] = {"mix", "-o", mixed, "-q"};
    snprintf(whole, sizeof whole, "%s/whole-%s.wav", dir, voices);
    snprintf(mixed, sizeof mixed, "%s/mixed-%s-%u.wav", dir, voices, n);
    tu_run r;
    render_by_count(&r, whole, NULL, voices, "1", "-q");
    for (unsigned k = 0; k < n; k++) {
        char part[32];
        snprintf(part, sizeof part, "%u/%u", k, n);
        snprintf(names[k], sizeof names[k], "%s/part-%s-%u-of-%u.wav", dir, voices, k, n);
        render_by_count(&r, names[k], part, voices, k % 2 ? "2" : "1", "-q");
        mix[4 + k] = names[k];
    }
    mix[4 + n] = NULL;
    farm_expect(&r, 0, mix);
    /* the parts follow one another: no voice twice, none missing */
    cr_assert_eq(r.err[0], '\0', "%u parts of %s voices: no warning: %s", n, voices, r.err);
    tu_audio w, m;
    cr_assert_eq(tu_read(whole, &w), 0);
    cr_assert_eq(tu_read(mixed, &m), 0);
    double worst = worst_difference(&w, &m);
    cr_assert_leq(worst, 1e-6, "%u parts of %s voices: worst difference %g", n, voices, worst);
    cr_assert_gt(tu_rms(w.data, (size_t)w.frames, 2), 1e-4, "the whole is not silence");
    tu_audio_free(&w);
    tu_audio_free(&m);
}

Test(mix, part_by_count_the_n_parts_mixed_equal_the_whole_whatever_n) {
    expect_parts_make_the_whole("1000", 1);
    expect_parts_make_the_whole("1000", 4); /* 250 each */
    expect_parts_make_the_whole("1000", 3); /* 334, 333, 333 */
    expect_parts_make_the_whole("1000", 7);
    expect_parts_make_the_whole("5", 5); /* one voice a part, as many parts as voices */
}

Test(mix, part_by_count_a_part_says_which_voices_it_holds) {
    tu_run r;
    const char *args[] = {"render",     "-o",     tu_path(dir, "p.wav"),
                          "--duration", "0.1",    "--total-voices",
                          "1000",       "--part", "2/3",
                          NULL};
    farm_expect(&r, 0, args);
    /* 334 + 333 before it; the first 1000 % 3 = 1 part holds one voice more */
    cr_assert(strstr(r.out, "a part: voices 667-999 of seed 1") != NULL, "%s", r.out);
}

static void part_refused(const char *part, const char *extra, const char *mentions) {
    tu_run r;
    const char *out = tu_path(dir, "refused.wav");
    const char *args[] = {"render", "-o", out,   "--total-voices",   "100",
                          "--part", part, extra, extra ? "5" : NULL, NULL};
    farm_expect(&r, 2, args);
    cr_assert_eq(tu_lines(r.err), 1, "one line: %s", r.err);
    cr_assert(strstr(r.err, mentions) != NULL, "'%s' in: %s", mentions, r.err);
    cr_assert_eq(access(out, F_OK), -1, "nothing written");
    cr_assert_eq(tu_files_in(dir), 0, "nothing written");
}

Test(mix, part_by_count_bad_parts_are_refused_with_one_line_and_nothing_written) {
    part_refused("4/4", NULL, "K counts from 0, so it must be below N (0..3)");
    part_refused("7/3", NULL, "below N");
    part_refused("0/0", NULL, "N, the number of parts, must be 1 or more");
    part_refused("1", NULL, "expected K/N");
    part_refused("a/4", NULL, "expected K/N");
    part_refused("1/4x", NULL, "expected K/N");
    part_refused("-1/4", NULL, "expected K/N");
    part_refused("0/101", NULL, "use at most 100 parts");
    part_refused("0/4", "--first-voice", "--part and --first-voice exclude each other");
    /* the whole must be named: --voices is per worker, and workers differ from part to part */
    tu_run r;
    const char *args[] = {"render", "-o", tu_path(dir, "x.wav"), "--part", "0/2", NULL};
    farm_expect(&r, 2, args);
    cr_assert(strstr(r.err, "--total-voices") != NULL, "%s", r.err);
    cr_assert_eq(tu_files_in(dir), 0, "nothing written");
    /* a FIFO at -o is refused as render refuses it: not opened to see whether it holds the part */
    const char *fifo = tu_path(dir, "fifo.wav");
    cr_assert_eq(mkfifo(fifo, 0600), 0);
    const char *to_fifo[] = {"render", "-o", fifo, "--total-voices", "10", "--part", "0/2", NULL};
    farm_expect(&r, 2, to_fifo);
    cr_assert(strstr(r.err, "FIFO") != NULL || strstr(r.err, "fifo") != NULL, "%s", r.err);
}

static struct stat stat_of(const char *path) {
    struct stat st;
    cr_assert_eq(stat(path, &st), 0, "%s exists", path);
    return st;
}

/* --check: whether out holds part (of 400 voices, 0.5 s, seed 5) whole; nothing is written. */
static void expect_check(const char *out, const char *part, const char *says) {
    tu_run r;
    const char *args[] = {"render",         "-o",  out,      "--duration", "0.5",     "--seed", "5",
                          "--total-voices", "400", "--part", part,         "--check", NULL};
    farm_expect(&r, 0, args);
    cr_assert_str_eq(r.out, says, "--check %s", part);
}

Test(mix, part_by_count_a_part_already_whole_is_not_rendered_again) {
    char out[512];
    snprintf(out, sizeof out, "%s/part-1.wav", dir);
    tu_run r;
    render_by_count(&r, out, "1/4", "400", "2", "-q");
    struct stat first = stat_of(out);
    expect_check(out, "1/4", "done\n");
    expect_check(out, "0/4", "missing\n");
    /* the same options (another worker count is the same part): left as it is, and said */
    render_by_count(&r, out, "1/4", "400", "1", "--progress");
    cr_assert_eq(tu_lines(r.err), 1, "one line: %s", r.err);
    cr_assert(strstr(r.err, "already holds part 1/4 of this render") != NULL, "%s", r.err);
    struct stat again = stat_of(out);
    cr_assert(first.st_ino == again.st_ino && first.st_mtim.tv_sec == again.st_mtim.tv_sec &&
                  first.st_mtim.tv_nsec == again.st_mtim.tv_nsec,
              "not written again");
    render_by_count(&r, out, "1/4", "400", "1", "-q");
    cr_assert_eq(r.err[0], '\0', "-q: nothing said: %s", r.err);
    /* another part of it, or the part of another render: rendered again */
    render_by_count(&r, out, "2/4", "400", "1", "-q");
    cr_assert_neq(stat_of(out).st_ino, first.st_ino, "another part is rendered");
    render_by_count(&r, out, "2/4", "404", "1", "--progress");
    cr_assert(strstr(r.err, "already holds") == NULL, "404 voices are another render: %s", r.err);
    /* a file cut short under the part's name (not farm's doing) is not whole: rendered again */
    struct stat full = stat_of(out);
    cr_assert_eq(truncate(out, full.st_size / 2), 0);
    render_by_count(&r, out, "2/4", "404", "1", "--progress");
    cr_assert(strstr(r.err, "already holds") == NULL, "a cut file is rendered again: %s", r.err);
    cr_assert_eq(stat_of(out).st_size, full.st_size);
    cr_assert_eq(truncate(out, full.st_size - 4), 0); /* one frame short */
    expect_check(out, "2/4", "missing\n");
}

/* A long part killed by sig once it is writing: no file under its name, nothing left running. */
static void killed_by(int sig, int status, const char *says) {
    tu_run r;
    const char *out = tu_path(dir, "long.wav");
    const char *args[] = {
        "render",         "-o",   out,      "--duration", "3600", "--workers", "2",
        "--total-voices", "4000", "--part", "1/2",        "-q",   NULL};
    pid_t pid = tu_farm_start(&r, dir, args, NULL);
    /* until its temporary holds some audio: bounded in time, generously (a busy machine) */
    for (double end = tu_seconds() + 60; tu_seconds() < end; usleep(20000)) {
        char tmp[512];
        snprintf(tmp, sizeof tmp, "ls %s/long.wav.farm-* 2>/dev/null | xargs -r stat -c %%s", dir);
        FILE *p = popen(tmp, "r");
        long bytes = 0;
        if (p != NULL) {
            if (fscanf(p, "%ld", &bytes) != 1)
                bytes = 0;
            pclose(p);
        }
        if (bytes > 256 * 1024)
            break;
    }
    kill(pid, sig);
    tu_farm_wait(&r, pid, dir);
    cr_assert_eq(r.status, status, "status %d: %s", r.status, r.err);
    for (double end = tu_seconds() + 30; tu_count_tagged(r.tag, NULL) > 0 && tu_seconds() < end;)
        usleep(10000);
    cr_assert_eq(tu_count_tagged(r.tag, NULL), 0, "no worker is left");
    cr_assert_eq(access(out, F_OK), -1, "no file under the part's name");
    cr_assert(strstr(r.err, says) != NULL, "'%s' in: %s", says, r.err);
}

Test(mix, part_by_count_a_part_killed_halfway_leaves_no_file_under_its_name) {
    killed_by(SIGKILL, 128 + SIGKILL, "");
}

Test(mix, part_by_count_a_part_stopped_by_sigterm_leaves_no_file_under_its_name) {
    /* and says why, in one line */
    killed_by(SIGTERM, 128 + SIGTERM, "interrupted: a part is kept only whole");
}
