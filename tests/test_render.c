/* `farm render` end to end, run as a user runs it: the file's length, channels, level and
 * spectrum, determinism, every bad input, signals, a worker that dies; and after each, no
 * process and no shared memory left behind. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <dirent.h>
#include <math.h>
#include <sched.h>
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

static const char *path_in(const char *name) {
    return tu_path(dir, name);
}

static int files_in_dir(void) {
    return tu_files_in(dir);
}

static void assert_nothing_left(const tu_run *r) {
    int left = tu_count_tagged(r->tag, NULL);
    cr_assert_eq(left, 0, "%d processes of this farm are still running", left);
}

static void render(tu_run *r, const char *const *args) {
    tu_farm(r, args, NULL);
    assert_nothing_left(r);
}

TestSuite(render, .init = setup, .fini = teardown, .timeout = 60);

Test(render, writes_the_asked_length_channels_level_and_band) {
    tu_run r;
    const char *out = path_in("out.wav");
    render(&r, (const char *[]){"render", "-o", out, "--duration", "3", "--workers", "2",
                                "--voices", "500", NULL});
    cr_assert_eq(r.status, 0, "status %d: %s", r.status, r.err);
    tu_audio a;
    cr_assert_eq(tu_read(out, &a), 0);
    cr_assert_eq(a.frames, 3 * 48000);
    cr_assert_eq(a.channels, 2);
    cr_assert_eq(a.samplerate, 48000);
    cr_assert_eq(a.format, SF_FORMAT_WAV | SF_FORMAT_FLOAT);
    /* 500 voices per channel, amp 0.005, random frequencies: their powers add, so the level
     * about the mean is 0.005 * sqrt(500 / 2). The mean is not zero: pyo's SineLoop reads its
     * previous sample, which gives each voice a DC offset of about -0.06 * fb * f / 1000 (at
     * fb 0.1: -0.034 at 600 Hz), and 500 voices add it coherently. Check both against the
     * double-precision reference. Skip the first 0.1 s, where all voices start in phase. */
    const size_t skip = 4800, n = (size_t)a.frames - skip;
    double expect_ac = 0.005 * sqrt(500 / 2.0);
    for (int c = 0; c < 2; c++) {
        double expect_dc = 0;
        for (uint64_t v = (uint64_t)c; v < 1000; v += 2) {
            double f = dsp_voice_default_freq(1, v, 400, 800), phi = 0, y = 0, sum = 0;
            for (int k = 0; k < 9600; k++) {
                y = sin(2 * 3.14159265358979323846 * (phi + 0.1 * y));
                phi += f / 48000;
                phi -= floor(phi);
                sum += y;
            }
            expect_dc += 0.005 * sum / 9600;
        }
        double mean = 0;
        for (size_t i = 0; i < n; i++)
            mean += a.data[(skip + i) * 2 + (size_t)c];
        mean /= (double)n;
        double rms = tu_rms(a.data + skip * 2 + c, n, 2);
        double ac = sqrt(rms * rms - mean * mean);
        cr_assert_float_eq(mean, expect_dc, 0.1 * fabs(expect_dc),
                           "channel %d mean %g, expected %g", c, mean, expect_dc);
        cr_assert_float_eq(ac, expect_ac, 0.25 * expect_ac, "channel %d ac rms %g", c, ac);
        double peak_hz = 0;
        /* Feedback 0.1 puts about a tenth of the power in the harmonics (2nd: 800-1600 Hz). */
        double inband = tu_band_fraction(a.data + skip * 2 + c, n, 2, 48000, 395, 805, &peak_hz);
        cr_assert_gt(inband, 0.85, "channel %d: %g of the power in 400-800 Hz", c, inband);
        cr_assert(peak_hz > 400 && peak_hz < 800);
        double harmonics = tu_band_fraction(a.data + skip * 2 + c, n, 2, 48000, 395, 2405, NULL);
        cr_assert_gt(harmonics, 0.995, "channel %d: %g of the power in 400-2400 Hz", c, harmonics);
    }
    /* The summary names what was done. */
    cr_assert(strstr(r.out, "3.00 s of audio") != NULL, "%s", r.out);
    cr_assert(strstr(r.out, "1000 voices on 2 workers") != NULL, "%s", r.out);
    cr_assert(strstr(r.out, "worker 1") != NULL, "%s", r.out);
    tu_audio_free(&a);
    cr_assert_eq(files_in_dir(), 1, "only the output, no temporary left");
}

/* The strongest check of the pipeline: the file equals the sum of the same voices rendered
 * here, in process, by the dsp module alone. A lost, repeated or reordered block, or a voice
 * on the wrong worker, shows up as a difference. */
static void compare_with_in_process(uint32_t workers, uint32_t total, uint32_t block) {
    tu_run r;
    const char *out = path_in("pipe.wav");
    char w[16], t[16], b[16];
    snprintf(w, sizeof w, "%u", workers);
    snprintf(t, sizeof t, "%u", total);
    snprintf(b, sizeof b, "%u", block);
    render(&r, (const char *[]){"render", "-o", out, "--duration", "1.003", "--workers", w,
                                "--total-voices", t, "--buffersize", b, "--seed", "77",
                                "--channels", "2", "-q", NULL});
    cr_assert_eq(r.status, 0, "%s", r.err);
    tu_audio a;
    cr_assert_eq(tu_read(out, &a), 0);
    const int64_t frames = (int64_t)llround(1.003 * 48000);
    cr_assert_eq(a.frames, frames, "a partial last block is cut to the duration");

    dsp_bank *bank;
    dsp_bank_desc d = {.voices = total, .channels = 2, .sample_rate = 48000, .max_frames = block};
    cr_assert_eq(dsp_bank_create(&d, &bank), FARM_OK);
    for (uint32_t v = 0; v < total; v++) {
        dsp_voice_set_freq(bank, v, dsp_voice_default_freq(77, v, 400, 800), 0);
        dsp_voice_set_feedback(bank, v, 0.1, 0);
        dsp_voice_set_amp(bank, v, 0.005, 0);
        dsp_voice_set_pan(bank, v, dsp_voice_default_pan(v, 2), 0);
        dsp_voice_play(bank, v, 0);
    }
    float *ref = malloc(sizeof(float) * 2 * block);
    double worst = 0;
    for (int64_t f = 0; f < frames; f += block) {
        dsp_bank_render(bank, ref, block);
        for (int64_t i = 0; i < (int64_t)block && f + i < frames; i++)
            for (int c = 0; c < 2; c++) {
                double e = fabs(a.data[(f + i) * 2 + c] - ref[i * 2 + c]);
                worst = e > worst ? e : worst;
            }
    }
    cr_assert_lt(worst, 1e-5, "%u workers, %u voices, %u-frame blocks: worst difference %g",
                 workers, total, block, worst);
    free(ref);
    dsp_bank_destroy(bank);
    tu_audio_free(&a);
}

Test(render, sine_oscillators_keep_all_their_power_in_the_band) {
    tu_run r;
    const char *out = path_in("sine.wav");
    render(&r, (const char *[]){"render", "-o", out, "--duration", "2", "--workers", "2",
                                "--voices", "300", "--oscillator", "sine", "--freq-min", "500",
                                "--freq-max", "600", "-q", NULL});
    cr_assert_eq(r.status, 0, "%s", r.err);
    tu_audio a;
    cr_assert_eq(tu_read(out, &a), 0);
    for (int c = 0; c < 2; c++) {
        double inband =
            tu_band_fraction(a.data + 9600 + c, (size_t)a.frames - 4800, 2, 48000, 495, 605, NULL);
        cr_assert_gt(inband, 0.995, "channel %d: %g of the power in 500-600 Hz", c, inband);
    }
    tu_audio_free(&a);
}

Test(render, equals_the_same_voices_rendered_in_process) {
    compare_with_in_process(1, 100, 256);
    compare_with_in_process(3, 100, 64);
    compare_with_in_process(4, 37, 1000);
}

Test(render, the_same_command_twice_gives_identical_files) {
    tu_run r;
    const char *a = path_in("a.wav"), *b = path_in("b.wav");
    for (int i = 0; i < 2; i++) {
        render(&r, (const char *[]){"render", "-o", i ? b : a, "--duration", "2", "--workers", "3",
                                    "--voices", "300", "-q", NULL});
        cr_assert_eq(r.status, 0, "%s", r.err);
    }
    tu_audio x, y;
    cr_assert_eq(tu_read(a, &x), 0);
    cr_assert_eq(tu_read(b, &y), 0);
    cr_assert_eq(x.frames, y.frames);
    cr_assert_arr_eq(x.data, y.data, sizeof(float) * (size_t)x.frames * 2);
    tu_audio_free(&x);
    tu_audio_free(&y);
    /* and byte for byte, header included */
    FILE *fa = fopen(a, "rb"), *fb = fopen(b, "rb");
    int ca, cb;
    long pos = 0;
    do {
        ca = fgetc(fa);
        cb = fgetc(fb);
        cr_assert_eq(ca, cb, "files differ at byte %ld", pos);
        pos++;
    } while (ca != EOF);
    fclose(fa);
    fclose(fb);
}

Test(render, other_worker_counts_give_the_same_signal_within_a_millionth) {
    tu_run r;
    const char *names[3] = {path_in("w1.wav"), path_in("w2.wav"), path_in("w5.wav")};
    const char *counts[3] = {"1", "2", "5"};
    tu_audio a[3];
    for (int i = 0; i < 3; i++) {
        render(&r,
               (const char *[]){"render", "-o", names[i], "--duration", "2", "--workers", counts[i],
                                "--total-voices", "2000", "--seed", "9", "-q", NULL});
        cr_assert_eq(r.status, 0, "%s", r.err);
        cr_assert_eq(tu_read(names[i], &a[i]), 0);
    }
    for (int i = 1; i < 3; i++) {
        cr_assert_eq(a[i].frames, a[0].frames);
        double worst = 0;
        for (int64_t k = 0; k < a[0].frames * 2; k++) {
            double e = fabs(a[i].data[k] - a[0].data[k]);
            worst = e > worst ? e : worst;
        }
        cr_assert_leq(worst, 1e-6, "1 vs %s workers: worst difference %g", counts[i], worst);
    }
    /* and a different seed is a different signal (so the check above can fail) */
    const char *other = path_in("other.wav");
    render(&r, (const char *[]){"render", "-o", other, "--duration", "2", "--workers", "1",
                                "--total-voices", "2000", "--seed", "10", "-q", NULL});
    tu_audio o;
    cr_assert_eq(tu_read(other, &o), 0);
    double diff = 0;
    for (int64_t k = 0; k < o.frames * 2; k++)
        diff = fmax(diff, fabs(o.data[k] - a[0].data[k]));
    cr_assert_gt(diff, 1e-2);
    tu_audio_free(&o);
    for (int i = 0; i < 3; i++)
        tu_audio_free(&a[i]);
}

Test(render, formats_follow_the_extension_or_format_option) {
    static const struct {
        const char *name, *format, *type;
        int expect;
    } cases[] = {
        {"x.flac", NULL, NULL, SF_FORMAT_FLAC | SF_FORMAT_PCM_24},
        {"x.aiff", NULL, "pcm16", SF_FORMAT_AIFF | SF_FORMAT_PCM_16},
        {"x.ogg", NULL, NULL, SF_FORMAT_OGG | SF_FORMAT_VORBIS},
        {"x.wav", NULL, "pcm24", SF_FORMAT_WAV | SF_FORMAT_PCM_24},
        {"x.audio", "caf", NULL, SF_FORMAT_CAF | SF_FORMAT_FLOAT},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *args[16] = {"render",     "-o",       path_in(cases[i].name),
                                "--duration", "0.5",      "--workers",
                                "1",          "--voices", "50",
                                "-q"};
        int n = 10;
        if (cases[i].format) {
            args[n++] = "--format";
            args[n++] = cases[i].format;
        }
        if (cases[i].type) {
            args[n++] = "--sample-type";
            args[n++] = cases[i].type;
        }
        args[n] = NULL;
        tu_run r;
        render(&r, args);
        cr_assert_eq(r.status, 0, "%s: %s", cases[i].name, r.err);
        tu_audio a;
        cr_assert_eq(tu_read(path_in(cases[i].name), &a), 0, "%s", cases[i].name);
        cr_assert_eq(a.format, cases[i].expect, "%s: format %#x", cases[i].name, a.format);
        cr_assert_eq(a.frames, 24000, "%s", cases[i].name);
        double rms = tu_rms(a.data + 4800 * 2, 19200, 2);
        cr_assert_gt(rms, 0.005 * sqrt(25 / 2.0) * 0.6, "%s: rms %g", cases[i].name, rms);
        tu_audio_free(&a);
    }
}

Test(render, mono_and_multichannel_put_voice_i_on_channel_i_mod_n) {
    tu_run r;
    const char *out = path_in("quad.wav");
    /* 4 voices on 4 channels: each channel holds exactly one sine */
    render(&r, (const char *[]){"render", "-o", out, "--duration", "1", "--workers", "2",
                                "--total-voices", "4", "--channels", "4", "--amp", "0.5",
                                "--feedback", "0", "-q", NULL});
    cr_assert_eq(r.status, 0, "%s", r.err);
    tu_audio a;
    cr_assert_eq(tu_read(out, &a), 0);
    cr_assert_eq(a.channels, 4);
    for (int c = 0; c < 4; c++) {
        double rms = tu_rms(a.data + c, (size_t)a.frames, 4);
        cr_assert_float_eq(rms, 0.5 / sqrt(2), 0.01, "channel %d rms %g", c, rms);
        double peak_hz;
        tu_band_fraction(a.data + c, (size_t)a.frames, 4, 48000, 0, 24000, &peak_hz);
        double f = dsp_voice_default_freq(1, (uint64_t)c, 400, 800);
        cr_assert_float_eq(peak_hz, f, 2.0, "channel %d peaks at %g, voice %d is %g Hz", c, peak_hz,
                           c, f);
    }
    tu_audio_free(&a);
}

/* ---- bad input: one line naming it, exit 2, nothing written, nothing left ---- */

typedef struct bad_case {
    const char *args[12];
    const char *env;
    const char *mentions;
} bad_case;

static void expect_refused(const bad_case *c, const char *out) {
    const char *args[24] = {"render", "-o", out, "--duration", "0.5"};
    int n = 5;
    for (int i = 0; c->args[i] != NULL; i++)
        args[n++] = c->args[i];
    args[n] = NULL;
    const char *env[2] = {c->env, NULL};
    tu_run r;
    tu_farm(&r, args, c->env ? env : NULL);
    cr_expect_eq(r.status, 2, "%s: status %d (stderr: %s)", c->mentions, r.status, r.err);
    cr_expect_eq(tu_lines(r.err), 1, "%s: stderr should be one line: %s", c->mentions, r.err);
    cr_expect(strncmp(r.err, "farm: ", 6) == 0, "%s: %s", c->mentions, r.err);
    cr_expect(strstr(r.err, c->mentions) != NULL, "expected '%s' in: %s", c->mentions, r.err);
    assert_nothing_left(&r);
}

Test(render, every_bad_input_is_refused_cleanly) {
    static const bad_case cases[] = {
        {{"--workers", "0", NULL}, NULL, "--workers"},
        {{"--workers", "-2", NULL}, NULL, "--workers"},
        {{"--voices", "0", NULL}, NULL, "--voices"},
        {{"--voices", "-5", NULL}, NULL, "--voices"},
        {{"--voices", "12abc", NULL}, NULL, "--voices"},
        {{"--total-voices", "0", NULL}, NULL, "--total-voices"},
        {{"--workers", "4", "--total-voices", "3", NULL}, NULL, "--total-voices"},
        {{"--voices", "5", "--total-voices", "10", NULL}, NULL, "--total-voices"},
        {{"--duration", "0", NULL}, NULL, "--duration"},
        {{"--duration", "-1", NULL}, NULL, "--duration"},
        {{"--duration", "nan", NULL}, NULL, "--duration"},
        {{"--sr", "100", NULL}, NULL, "--sr"},
        {{"--sr", "10000000", NULL}, NULL, "--sr"},
        {{"--buffersize", "8", NULL}, NULL, "--buffersize"},
        {{"--buffersize", "100000", NULL}, NULL, "--buffersize"},
        {{"--channels", "0", NULL}, NULL, "--channels"},
        {{"--channels", "33", NULL}, NULL, "--channels"},
        {{"--feedback", "1.5", NULL}, NULL, "--feedback"},
        {{"--amp", "inf", NULL}, NULL, "--amp"},
        {{"--freq-min", "900", NULL}, NULL, "--freq-min"},
        {{"--freq-max", "30000", NULL}, NULL, "--freq-max"},
        {{"--format", "xyz", NULL}, NULL, "--format"},
        {{"--sample-type", "pcm8", NULL}, NULL, "--sample-type"},
        {{"--format", "ogg", "--sample-type", "float", NULL}, NULL, "--sample-type"},
        {{"--format", "flac", "--sample-type", "float", NULL}, NULL, "flac"},
        {{"--oscillator", "saw", NULL}, NULL, "--oscillator"},
        {{"--ring-blocks", "3", NULL}, NULL, "--ring-blocks"},
        {{"--cpus", "0-", NULL}, NULL, "--cpus"},
        {{"--cpus", "3-1", NULL}, NULL, "--cpus"},
        {{"--cpus", "x", NULL}, NULL, "--cpus"},
        {{"--cpus", "1023", NULL}, NULL, "CPU 1023"}, /* a CPU this process may not use */
        {{"--watchdog", "-1", NULL}, NULL, "--watchdog"},
        {{"--max-restarts", "1000", NULL}, NULL, "--max-restarts"},
        {{"--host", "jack", NULL}, NULL, "--host"}, /* playing's, not render's */
        {{"--no-such-option", NULL}, NULL, "--no-such-option"},
        {{"--workers", NULL}, NULL, "--workers"},
        {{"stray", NULL}, NULL, "stray"},
        {{"--workers", "2", NULL}, "FARM_WORKER=/nonexistent/farm-worker", "cannot start"},
        {{"--workers", "2", NULL}, "FARM_WORKER=/bin/false", "cannot start"},
    };
    const char *out = path_in("out.wav");
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        expect_refused(&cases[i], out);
        cr_expect_eq(files_in_dir(), 0, "%s: something was written", cases[i].mentions);
    }
}

Test(render, unwritable_or_unnamed_outputs_are_refused) {
    static const bad_case dirless = {{NULL}, NULL, "cannot write"};
    expect_refused(&dirless, "/nonexistent-dir/out.wav");
    static const bad_case isdir = {{NULL}, NULL, "directory"};
    expect_refused(&isdir, dir);
    static const bad_case noext = {{NULL}, NULL, "extension"};
    expect_refused(&noext, path_in("noext"));
    static const bad_case badext = {{NULL}, NULL, "extension 'xyz'"};
    expect_refused(&badext, path_in("out.xyz"));
    cr_assert_eq(files_in_dir(), 0);

    tu_run r;
    tu_farm(&r, (const char *[]){"render", NULL}, NULL);
    cr_assert_eq(r.status, 2);
    cr_assert(strstr(r.err, "-o") != NULL, "%s", r.err);
}

Test(render, a_refused_render_leaves_an_existing_file_untouched) {
    const char *out = path_in("keep.wav");
    FILE *f = fopen(out, "w");
    fputs("precious", f);
    fclose(f);
    static const bad_case c = {{"--workers", "1", NULL}, "FARM_WORKER=/bin/false", "cannot start"};
    expect_refused(&c, out);
    char buf[32] = {0};
    f = fopen(out, "r");
    cr_assert_not_null(fgets(buf, sizeof buf, f));
    fclose(f);
    cr_assert_str_eq(buf, "precious");
    cr_assert_eq(files_in_dir(), 1);
}

Test(render, help_teaches_every_option) {
    tu_run r;
    tu_farm(&r, (const char *[]){"render", "--help", NULL}, NULL);
    cr_assert_eq(r.status, 0);
    static const char *opts[] = {"--output",       "--duration", "--workers",    "--voices",
                                 "--total-voices", "--sr",       "--buffersize", "--channels",
                                 "--freq-min",     "--freq-max", "--feedback",   "--amp",
                                 "--seed",         "--format",   "--sample-type"};
    for (size_t i = 0; i < sizeof opts / sizeof opts[0]; i++)
        cr_expect(strstr(r.out, opts[i]) != NULL, "help lacks %s", opts[i]);
    tu_farm(&r, (const char *[]){"--version", NULL}, NULL);
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_assert(strncmp(r.out, "farm ", 5) == 0 && strstr(r.out, "kernel") != NULL, "%s", r.out);
    tu_farm(&r, (const char *[]){"frobnicate", NULL}, NULL);
    cr_assert_eq(r.status, 2);
    cr_assert_eq(tu_lines(r.err), 1, "%s", r.err);
}

/* ---- signals and failures while running ---- */

/* Size of the farm's temporary output in the test directory. */
static long long temp_bytes(void) {
    long long size = 0;
    DIR *d = opendir(dir);
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (strstr(de->d_name, ".farm-") == NULL)
            continue;
        struct stat st;
        char path[512]; /* not path_in: its rotating buffers hold the caller's paths */
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        if (stat(path, &st) == 0)
            size = st.st_size;
    }
    closedir(d);
    return size;
}

/* max_restarts: "0" for a farm that does not heal, NULL for the default */
static pid_t start_long_render(tu_run *r, const char *out, const char *max_restarts) {
    const char *args[] = {"render",         "-o",         out,        "--duration", "3600",
                          "--workers",      "2",          "--voices", "2000",       "-q",
                          "--max-restarts", max_restarts, NULL};
    if (max_restarts == NULL)
        args[10] = NULL;
    pid_t pid = tu_farm_start(r, dir, args, NULL);
    /* wait until both workers are up (they carry the tag too), and until some audio is on
     * disk (slow under the sanitizers): bounded in time, not in tries, and generously, since a
     * loaded machine is slow to start processes */
    for (double end = tu_seconds() + 30; tu_count_tagged(r->tag, NULL) < 3 && tu_seconds() < end;)
        usleep(10000);
    cr_assert_eq(tu_count_tagged(r->tag, NULL), 3, "farm and two workers running");
    for (double end = tu_seconds() + 30; temp_bytes() < 512 * 1024 && tu_seconds() < end;)
        usleep(10000);
    cr_assert_geq(temp_bytes(), 512 * 1024, "the render is writing");
    return pid;
}

static void interrupted_by(int sig) {
    tu_run r;
    const char *out = path_in("long.wav");
    pid_t pid = start_long_render(&r, out, NULL);
    kill(pid, sig);
    tu_farm_wait(&r, pid, dir);
    cr_assert_eq(r.status, 128 + sig, "status %d: %s", r.status, r.err);
    assert_nothing_left(&r);
    /* What was rendered is kept, in a file that was closed properly. */
    tu_audio a;
    cr_assert_eq(tu_read(out, &a), 0, "a valid file: %s", sf_strerror(NULL));
    cr_assert_gt(a.frames, 48000 / 10, "some audio was kept");
    cr_assert_lt(a.frames, 3600 * 48000);
    cr_assert_gt(tu_rms(a.data + 9600, (size_t)a.frames / 2, 2), 0.05);
    tu_audio_free(&a);
    cr_assert_eq(files_in_dir(), 1, "no temporary left");
}

Test(render, sigint_stops_workers_and_keeps_a_proper_file) {
    interrupted_by(SIGINT);
}

Test(render, sigterm_stops_workers_and_keeps_a_proper_file) {
    interrupted_by(SIGTERM);
}

/* With --max-restarts 0 a dead worker is not replaced (test_heal.c has the replacements). */
Test(render, a_worker_that_dies_and_may_not_be_replaced_fails_the_render_and_leaves_nothing) {
    tu_run r;
    const char *out = path_in("dies.wav");
    pid_t pid = start_long_render(&r, out, "0");
    /* find a worker: a tagged process that is not the farm itself */
    pid_t victim = 0;
    DIR *d = opendir("/proc");
    struct dirent *de;
    while ((de = readdir(d)) != NULL && victim == 0) {
        pid_t p = (pid_t)atoi(de->d_name);
        if (p <= 0 || p == pid)
            continue;
        char path[64], cmd[64] = {0};
        snprintf(path, sizeof path, "/proc/%d/comm", p);
        FILE *f = fopen(path, "r");
        if (f == NULL)
            continue;
        if (fgets(cmd, sizeof cmd, f) && strncmp(cmd, "farm-worker", 11) == 0) {
            char ppath[64], line[256];
            snprintf(ppath, sizeof ppath, "/proc/%d/status", p);
            FILE *s = fopen(ppath, "r");
            while (s && fgets(line, sizeof line, s))
                if (strncmp(line, "PPid:", 5) == 0 && atoi(line + 5) == pid)
                    victim = p;
            if (s)
                fclose(s);
        }
        fclose(f);
    }
    closedir(d);
    cr_assert_neq(victim, 0, "found a worker of this farm");
    kill(victim, SIGKILL);
    tu_farm_wait(&r, pid, dir);
    cr_assert_eq(r.status, 1, "status %d: %s", r.status, r.err);
    cr_assert(strstr(r.err, "killed by signal 9") != NULL, "%s", r.err);
    cr_assert_eq(tu_lines(r.err), 1, "%s", r.err);
    assert_nothing_left(&r);
    cr_assert_eq(files_in_dir(), 0, "no partial file");
}

Test(render, killing_the_coordinator_takes_the_workers_with_it) {
    tu_run r;
    const char *out = path_in("orphan.wav");
    pid_t pid = start_long_render(&r, out, NULL);
    kill(pid, SIGKILL);
    tu_farm_wait(&r, pid, dir);
    /* they go at once (PR_SET_PDEATHSIG); a loaded machine may take a moment to reap them */
    for (double end = tu_seconds() + 10; tu_count_tagged(r.tag, NULL) > 0 && tu_seconds() < end;)
        usleep(10000);
    assert_nothing_left(&r);
}

/* ---- kernels: FARM_ISA=NAME makes the workers render with that one ---- */

static void render_with_isa(const char *isa, const char *out, tu_audio *a) {
    char var[64];
    snprintf(var, sizeof var, "FARM_ISA=%s", isa ? isa : "");
    const char *env[] = {var, NULL};
    tu_run r;
    tu_farm(&r,
            (const char *[]){"render", "-o", out, "--duration", "2", "--workers", "2",
                             "--total-voices", "400", "--seed", "5", "-q", NULL},
            isa ? env : NULL);
    assert_nothing_left(&r);
    cr_assert_eq(r.status, 0, "FARM_ISA=%s: status %d: %s", isa ? isa : "(unset)", r.status, r.err);
    cr_assert_eq(tu_read(out, a), 0);
    cr_assert_eq(a->frames, 2 * 48000);
}

static double worst_difference(const tu_audio *x, const tu_audio *y) {
    double worst = 0;
    for (int64_t k = 0; k < x->frames * x->channels; k++)
        worst = fmax(worst, fabs((double)x->data[k] - y->data[k]));
    return worst;
}

/* The kernels compute the same voices with the same integer phase and the same polynomial; they
 * differ only in rounding (FMA contracting a multiply and an add, the vector width). Measured on
 * 200 voices a channel (amp 0.005, feedback 0.1, 2 s): avx2 against sse2 or generic at most
 * 1.2e-7, two ulps of a sample of 0.66 near the start, where the voices are still nearly in
 * phase; sse2 and generic equal bit for bit; all four within 5e-7 on a CPU with AVX-512, as
 * reported. The contract's bound (sin error < 1e-6, which feedback 0.1 can grow by
 * 1 / (1 - 2 pi 0.1) = 2.7, times 200 voices of 0.005, plus the rounding of 200 additions) is
 * about 1.5e-5 if every error had the same sign at once. 1e-5 is 20 times anything seen and 500
 * times less than one voice's amplitude: a voice lost, doubled or out of phase fails it. */
Test(render, every_kernel_renders_the_same_voices_within_1e_5) {
    const char *const *isa = dsp_isa_available();
    tu_audio unset, empty, k[8];
    render_with_isa(NULL, path_in("unset.wav"), &unset);
    render_with_isa("", path_in("empty.wav"), &empty);
    int n = 0;
    for (; isa[n] != NULL && n < 8; n++) {
        char name[64];
        snprintf(name, sizeof name, "%s.wav", isa[n]);
        render_with_isa(isa[n], path_in(name), &k[n]);
    }
    cr_assert_geq(n, 1, "at least the portable kernel");
    /* no FARM_ISA, or an empty one, is the kernel farm chooses for the bank (the best, or on a
     * CPU with AVX-512 and AVX2 the faster of them for this size): the same file, bit for bit,
     * as that kernel forced */
    const size_t bytes = sizeof(float) * 2 * 2 * 48000;
    int same = -1;
    for (int i = 0; i < n && same < 0; i++)
        if (memcmp(unset.data, k[i].data, bytes) == 0)
            same = i;
    cr_assert_geq(same, 0, "unset FARM_ISA renders as no kernel forced does");
    cr_assert_arr_eq(empty.data, unset.data, bytes, "empty vs unset");
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++) {
            double worst = worst_difference(&k[i], &k[j]);
            cr_log_info("FARM_ISA %s vs %s: worst difference %g", isa[i], isa[j], worst);
            cr_expect_leq(worst, 1e-5, "%s vs %s: worst difference %g", isa[i], isa[j], worst);
        }
    tu_audio_free(&unset);
    tu_audio_free(&empty);
    for (int i = 0; i < n; i++)
        tu_audio_free(&k[i]);
}

/* A kernel dsp does not know, or one this CPU cannot run: the worker says so in one line that
 * names the ones it can, and farm, whose worker could not start, exits 2 leaving nothing. */
Test(render, farm_isa_naming_no_kernel_this_cpu_runs_is_refused) {
    static const char *const names[] = {"avx512", "avx2", "sse2", "generic", "nosuch", "AVX2"};
    const char *const *available = dsp_isa_available();
    int tried = 0;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        int rv = dsp_force_isa(names[i]); /* in this process: can this CPU run it? */
        dsp_force_isa(NULL);
        if (rv == FARM_OK)
            continue;
        tried++;
        char var[64], named[64];
        snprintf(var, sizeof var, "FARM_ISA=%s", names[i]);
        snprintf(named, sizeof named, "FARM_ISA=%s:", names[i]);
        const char *env[] = {var, NULL};
        tu_run r;
        tu_farm(&r,
                (const char *[]){"render", "-o", path_in("isa.wav"), "--duration", "0.5",
                                 "--workers", "1", "-q", NULL},
                env);
        assert_nothing_left(&r);
        cr_expect_eq(r.status, 2, "%s: status %d: %s", var, r.status, r.err);
        /* the worker's line, and farm's saying its worker could not start */
        cr_expect_eq(tu_lines(r.err), 2, "%s: %s", var, r.err);
        const char *line = strstr(r.err, named);
        cr_assert_not_null(line, "a line names %s: %s", var, r.err);
        cr_expect_null(strstr(line + 1, named), "one line names %s: %s", var, r.err);
        while (line > r.err && line[-1] != '\n')
            line--;
        cr_expect(strncmp(line, "farm-worker 0: ", 15) == 0, "%s", r.err);
        size_t len = strcspn(line, "\n");
        for (const char *const *a = available; *a != NULL; a++) {
            char word[32];
            snprintf(word, sizeof word, " %s", *a);
            cr_expect(memmem(line, len, word, strlen(word)) != NULL, "%s: the line names %s: %s",
                      var, *a, r.err);
        }
        cr_expect(strstr(r.err, "farm: worker 0 cannot start") != NULL, "%s", r.err);
        cr_expect_eq(files_in_dir(), 0, "%s: nothing written", var);
    }
    cr_assert_geq(tried, 2, "at least 'nosuch' and 'AVX2' are refused");
}

Test(render, a_very_short_render_is_not_taken_for_a_worker_that_cannot_start) {
    tu_run r;
    const char *out = path_in("short.wav");
    tu_farm(&r, (const char *[]){"render", "-o", out, "--duration", "0.01", "-q", NULL}, NULL);
    cr_assert_eq(r.status, 0, "%s", r.err);
    tu_audio a;
    cr_assert_eq(tu_read(out, &a), 0);
    cr_assert_eq(a.frames, 480);
    tu_audio_free(&a);
}

Test(render, the_commands_beside_render_refuse_bad_input_too) {
    tu_run r;
    const char *env[] = {"ALSA_CONFIG_PATH=" FARM_TESTS_DIR "/alsa-none.conf", NULL};
    const char *const *cases[] = {
        (const char *const[]){"probe", "--sr", "1", NULL},
        (const char *const[]){"devices", "--sr", "banana", NULL},
        (const char *const[]){"probe", "--bogus", NULL},
        (const char *const[]){"help", "nosuch", NULL},
        (const char *const[]){"--null-sink", "--host", "alsa", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        tu_farm(&r, cases[i], env);
        cr_expect_eq(r.status, 2, "farm %s %s: status %d: %s", cases[i][0], cases[i][1], r.status,
                     r.err);
        cr_expect_eq(tu_lines(r.err), 1, "one line: %s", r.err);
    }
}

/* ---- placement ---- */

/* The CPUs this process may use, in order. */
static int allowed_cpus(int *cpus, int max) {
    cpu_set_t set;
    int n = 0;
    cr_assert_eq(sched_getaffinity(0, sizeof set, &set), 0);
    for (int c = 0; c < CPU_SETSIZE && n < max; c++)
        if (CPU_ISSET(c, &set))
            cpus[n++] = c;
    return n;
}

/* Worker k's CPU from the summary's "  worker k  cpu N" line; -1 when not found. */
static int summary_cpu(const char *out, int k) {
    char key[32];
    snprintf(key, sizeof key, "  worker %d  cpu ", k);
    const char *p = strstr(out, key);
    return p ? atoi(p + strlen(key)) : -1;
}

Test(render, cpus_puts_worker_k_on_the_kth_cpu_and_warns_when_it_cycles) {
    int cpus[CPU_SETSIZE];
    int n = allowed_cpus(cpus, CPU_SETSIZE);
    char list[32];
    snprintf(list, sizeof list, "%d,%d", cpus[n - 1], cpus[0]); /* backwards: not by chance */
    tu_run r;
    tu_farm(&r,
            (const char *[]){"render", "-o", path_in("cpus.wav"), "--duration", "0.2", "--workers",
                             "3", "--cpus", list, "-v", NULL},
            NULL);
    assert_nothing_left(&r);
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_assert_eq(summary_cpu(r.out, 0), cpus[n - 1], "%s", r.out);
    cr_assert_eq(summary_cpu(r.out, 1), cpus[0], "%s", r.out);
    cr_assert_eq(summary_cpu(r.out, 2), cpus[n - 1], "%s", r.out);
    cr_assert_not_null(strstr(r.err, "warning: --cpus lists 2 CPUs for 3 workers"), "%s", r.err);
    cr_assert_not_null(strstr(r.err, "placement list"), "-v names the placement: %s", r.err);
}

Test(render, by_default_workers_run_on_allowed_cpus_one_per_core_first) {
    int cpus[CPU_SETSIZE];
    int n = allowed_cpus(cpus, CPU_SETSIZE);
    tu_run r;
    tu_farm(&r,
            (const char *[]){"render", "-o", path_in("topo.wav"), "--duration", "0.2", "--workers",
                             "1", "-v", NULL},
            NULL);
    assert_nothing_left(&r);
    cr_assert_eq(r.status, 0, "%s", r.err);
    int cpu = summary_cpu(r.out, 0);
    int allowed = 0;
    for (int i = 0; i < n; i++)
        allowed |= cpus[i] == cpu;
    cr_assert(allowed, "worker 0 on CPU %d: %s", cpu, r.out);
    const char *line = strstr(r.err, "placement topology (");
    cr_assert_not_null(line, "-v names the placement: %s", r.err);
    unsigned cores = 0;
    const char *after = strchr(line, ',');
    cr_assert(after != NULL && sscanf(after, ", %u core", &cores) == 1, "%s", line);
    cr_assert(cores >= 1 && (int)cores <= n, "%u cores of %d CPUs", cores, n);
    if (cores > 1) { /* a spare core: kept for the coordinator's thread, named */
        const char *audio = strstr(line, "audio on CPU ");
        cr_assert_not_null(audio, "%s", line);
        cr_assert_neq(atoi(audio + strlen("audio on CPU ")), cpu, "%s", line);
    }
}
