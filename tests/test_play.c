/* Playing, against real PortAudio: a private jackd with the dummy driver gives a real device
 * paced in real time (shared/docs/headless-audio.md). What was played is checked through
 * --record: its length, its spectrum, and that it has no gaps. */
#define _GNU_SOURCE
#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <dirent.h>
#include <math.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "dsp.h"
#include "testutil.h"

static char dir[256];
static char jack_name[128];
static char jack_env[192];
static pid_t jackd_pid;
static const char alsa_none[] = "ALSA_CONFIG_PATH=" FARM_TESTS_DIR "/alsa-none.conf";
static const char alsa_null[] = "ALSA_CONFIG_PATH=" FARM_TESTS_DIR "/alsa-null.conf";

static void with_jack(void) {
    tu_tmpdir(dir, sizeof dir);
    jackd_pid = tu_jackd_start(jack_name, sizeof jack_name, 48000, 256);
    snprintf(jack_env, sizeof jack_env, "JACK_DEFAULT_SERVER=%s", jack_name);
}

static void without_jack(void) {
    tu_tmpdir(dir, sizeof dir);
    jackd_pid = 0;
    /* a server name nobody runs: JACK is absent */
    snprintf(jack_env, sizeof jack_env, "JACK_DEFAULT_SERVER=farmtest-none-%ld", (long)getpid());
}

static void cleanup(void) {
    tu_farm_cleanup();
    if (jackd_pid > 0)
        tu_jackd_stop(jackd_pid);
    tu_rmdir(dir);
}

/* Criterion runs no .fini after a skipped test: its jackd would be left running. */
static void skip_test(const char *why) {
    cleanup();
    cr_skip_test("%s", why);
}

/* Whether this machine grants SCHED_FIFO to a process of ours (a container may refuse it):
 * farm's workers are real-time exactly where it does. */
static int fifo_granted(void) {
    pid_t pid = fork();
    if (pid == 0) {
        struct sched_param sp = {.sched_priority = 1};
        _exit(sched_setscheduler(0, SCHED_FIFO, &sp) == 0 ? 0 : 1);
    }
    int status = 1;
    waitpid(pid, &status, 0);
    return pid > 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

static const char *path_in(const char *name) {
    return tu_path(dir, name);
}

static int files_in_dir(void) {
    return tu_files_in(dir);
}

static double seconds_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Runs farm with the test's audio environment and one more variable (extra, may be NULL);
 * returns the wall time. */
static double play_with(tu_run *r, const char *const *args, const char *alsa, const char *extra) {
    const char *env[] = {jack_env, alsa, "JACK_NO_START_SERVER=1", extra, NULL};
    double t0 = seconds_now();
    tu_farm(r, args, env);
    double wall = seconds_now() - t0;
    int left = tu_count_tagged(r->tag, NULL);
    cr_assert_eq(left, 0, "%d processes of this farm are still running", left);
    return wall;
}

static double play(tu_run *r, const char *const *args, const char *alsa) {
    return play_with(r, args, alsa, NULL);
}

/* Lowest RMS over 5 ms windows (two periods of the lowest voice) of channel c between from and
 * to (frames), stepping 16 frames: a gap, a lost or a silent 256-frame block, holds a whole
 * window and shows as one near zero. */
static double lowest_window_rms(const tu_audio *a, int c, int64_t from, int64_t to) {
    const int64_t w = a->samplerate / 200;
    double lowest = 1e9;
    for (int64_t f = from; f + w <= to; f += 16) {
        double rms = tu_rms(a->data + f * a->channels + c, (size_t)w, (size_t)a->channels);
        lowest = rms < lowest ? rms : lowest;
    }
    return lowest;
}

/* How many of the recording's whole blocks (256 frames, as played) on channel c, between the
 * fade in and the fade out, have an RMS below `level`. */
static double blocks_below(const tu_audio *a, int c, double level) {
    int n = 0;
    for (int64_t f = 4 * 256; f + 256 <= a->frames - 8 * 256; f += 256)
        n += tu_rms(a->data + f * a->channels + c, 256, (size_t)a->channels) < level;
    return n;
}

/* Size of the recording farm is writing under its temporary name in the test directory. */
/* Whether a worker is late is the machine's business (a VM that stalls a core for longer than
 * the ring holds makes one late, whatever farm does); that the stream counts each late block, and
 * only those, is farm's: the stream's count is its workers' counts together. */
static void late_blocks_add_up(const char *out, int workers) {
    double sum = 0;
    for (int k = 0; k < workers; k++) {
        char name[32];
        snprintf(name, sizeof name, "worker %d ", k);
        const char *w = strstr(out, name);
        cr_assert_not_null(w, "%s", out);
        sum += tu_number_after(w, "late ");
    }
    cr_assert_eq(tu_number_after(out, "late blocks "), sum, "late blocks add up: %s", out);
}

static long long file_bytes(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 ? (long long)st.st_size : 0;
}

TestSuite(jack, .init = with_jack, .fini = cleanup, .timeout = 60);
TestSuite(nodevice, .init = without_jack, .fini = cleanup, .timeout = 60);

Test(jack, plays_in_real_time_and_records_what_was_played_without_gaps) {
    tu_run r;
    const char *rec = path_in("played.wav");
    double wall = play(&r,
                       /* 8 blocks (43 ms) of slack: a stall of this shared machine is
                        * not what this test is about */
                       (const char *[]){"--workers", "2", "--voices", "200", "--duration", "3",
                                        "--record", rec, "--ring-blocks", "8", NULL},
                       alsa_none);
    cr_assert_eq(r.status, 0, "status %d: %s", r.status, r.err);
    cr_assert(strstr(r.out, "JACK Audio Connection Kit") != NULL, "%s", r.out);
    /* only farm's own lines (what plays, where to control it; the warning where real time is
     * refused): no ALSA or JACK noise */
    cr_assert_eq(tu_lines(r.err), 2 + !fifo_granted(), "%s", r.err);
    for (const char *line = r.err; *line; line = strchr(line, '\n') + 1) {
        cr_assert(strncmp(line, "farm: ", 6) == 0, "noise on stderr: %s", r.err);
        if (strchr(line, '\n') == NULL)
            break;
    }
    if (fifo_granted())
        cr_assert(strstr(r.out, "workers SCHED_FIFO") != NULL, "workers real-time: %s", r.out);
    else /* a container that refuses it: farm says so and plays on (nodevice's test) */
        cr_assert(strstr(r.out, "workers normal") != NULL, "%s", r.out);
    /* a lower bound only: nothing makes a paced device play 3 s sooner, while how much longer
     * a loaded machine takes to start and stop farm is no verdict on farm */
    cr_assert_geq(wall, 2.9, "a real device is paced: 3 s took %.2f s", wall);
    double callbacks = tu_number_after(r.out, "callbacks ");
    cr_assert_geq(callbacks, 3 * 48000 / 256, "%s", r.out);

    tu_audio a;
    cr_assert_eq(tu_read(rec, &a), 0);
    cr_assert_eq(a.channels, 2);
    cr_assert_eq(a.samplerate, 48000);
    /* what played: 3 s and the fade-out, in whole blocks */
    cr_assert_geq(a.frames, 3 * 48000, "recorded %lld frames", (long long)a.frames);
    cr_assert_lt(a.frames, 3 * 48000 + 48000 / 5, "recorded %lld frames", (long long)a.frames);
    cr_assert_eq(a.frames % 256, 0);
    for (int c = 0; c < 2; c++) {
        double band = tu_band_fraction(a.data + 4800 * 2 + c, (size_t)a.frames - 9600, 2, 48000,
                                       395, 2405, NULL);
        cr_assert_gt(band, 0.995, "channel %d: %g of the power in 400-2400 Hz", c, band);
        double overall = tu_rms(a.data + 4800 * 2 + c, (size_t)a.frames - 9600, 2);
        double lowest = lowest_window_rms(&a, c, 4800, a.frames - 4800);
        cr_assert_gt(lowest, 0.3 * overall, "channel %d: a 10 ms window at %g of the level", c,
                     lowest / overall);
    }
    /* it starts and ends without a click: faded in from, and out to, silence */
    cr_assert_lt(fabs(a.data[0]) + fabs(a.data[1]), 1e-3);
    cr_assert_lt(fabs(a.data[(a.frames - 1) * 2]) + fabs(a.data[(a.frames - 1) * 2 + 1]), 1e-6);
    tu_audio_free(&a);
}

Test(jack, a_slow_worker_is_late_while_the_stream_and_the_other_worker_keep_their_pace) {
    tu_run r;
    const char *rec = path_in("slow.wav");
    /* voice 0 (worker 0) on the left, voice 1 (worker 1) on the right; worker 0 takes 8 ms
     * per 5.3 ms block */
    play_with(&r,
              (const char *[]){"--workers", "2", "--total-voices", "2", "--amp", "0.5",
                               "--feedback", "0", "--duration", "3", "--record", rec,
                               "--ring-blocks", "8", NULL},
              alsa_none, "FARM_TEST_SLOW_WORKER=0:8000");
    cr_assert_eq(r.status, 0, "status %d: %s", r.status, r.err);
    /* the stream kept its pace: a stream that waited for worker 0 would have no late blocks,
     * and it has 3 s of frames (below), whatever the wall clock says on a loaded machine */
    const char *w0 = strstr(r.out, "worker 0"), *w1 = strstr(r.out, "worker 1");
    cr_assert(w0 && w1, "%s", r.out);
    double late0 = tu_number_after(w0, "late "), late1 = tu_number_after(w1, "late ");
    cr_assert_gt(late0, 100, "worker 0 must be late often: %s", r.out);
    /* worker 1 late now and then is a core the machine stalled; late as often as worker 0 is
     * a worker that waited for another */
    cr_assert_lt(late1, late0 / 4, "worker 1 is not slow: %s", r.out);
    late_blocks_add_up(r.out, 2);

    tu_audio a;
    cr_assert_eq(tu_read(rec, &a), 0);
    cr_assert_geq(a.frames, 3 * 48000, "the stream did not slow down to the worker");
    /* A late block fades its worker's voice out over that block and back in over the next, so
     * it dips at most two blocks of its channel: worker 1's voice (right) dips only where worker
     * 1 itself was late, and worker 0's (left) where it was. */
    const double level = 0.5 / sqrt(2);
    double dips_right = blocks_below(&a, 1, 0.7 * level),
           dips_left = blocks_below(&a, 0, 0.7 * level);
    cr_assert_leq(dips_right, 2 * late1, "worker 1's voice continues: %g blocks dip, %g late",
                  dips_right, late1);
    cr_assert_geq(dips_left, late0 / 4,
                  "worker 0's voice dips (%g blocks, %g late), so the check above can fail",
                  dips_left, late0);
    double steepest = 2 * 3.14159265358979 * dsp_voice_default_freq(1, 0, 400, 800) / 48000 * 0.5;
    double step = 0;
    for (int64_t i = 4801; i < a.frames - 4800; i++) {
        double d = fabs(a.data[i * 2] - a.data[(i - 1) * 2]);
        step = d > step ? d : step;
    }
    cr_assert_leq(step, 1.1 * steepest, "late blocks fade, they do not click: step %g, sine %g",
                  step, steepest);
    tu_audio_free(&a);
}

Test(jack, sigint_fades_out_and_stops_everything) {
    tu_run r;
    const char *rec = path_in("int.wav");
    const char *env[] = {jack_env, alsa_none, NULL};
    pid_t pid = tu_farm_start(
        &r, dir, (const char *[]){"--workers", "2", "--voices", "100", "--record", rec, NULL}, env);
    /* Interrupt it once more than a second has been recorded (2 channels of float; a live
     * recording is under its own name from the start), however long this machine took to
     * start it: waited for, not slept. */
    const long long want = 44 + (long long)(1.2 * 48000) * 2 * 4;
    for (double end = tu_seconds() + 30; file_bytes(rec) < want && tu_seconds() < end;)
        usleep(20000);
    cr_assert_geq(file_bytes(rec), want, "farm is recording");
    kill(pid, SIGINT);
    tu_farm_wait(&r, pid, dir);
    cr_assert_eq(r.status, 130, "status %d: %s", r.status, r.err);
    cr_assert_eq(tu_count_tagged(r.tag, NULL), 0);
    tu_audio a;
    cr_assert_eq(tu_read(rec, &a), 0, "the recording is kept and valid");
    cr_assert_gt(a.frames, 48000);
    cr_assert_lt(fabs(a.data[(a.frames - 1) * 2]), 1e-6, "ends faded out");
    cr_assert_gt(tu_rms(a.data + 9600, (size_t)a.frames / 2, 2), 0.01);
    tu_audio_free(&a);
    cr_assert_eq(files_in_dir(), 1);
}

Test(jack, a_jack_server_that_dies_ends_the_farm_in_one_line_and_leaves_nothing) {
    tu_run r;
    const char *env[] = {jack_env, alsa_none, "JACK_NO_START_SERVER=1", NULL};
    pid_t pid =
        tu_farm_start(&r, dir, (const char *[]){"--workers", "2", "--voices", "10", NULL}, env);
    char url[600];
    cr_assert(tu_wait_control_url(dir, url, sizeof url), "farm is playing");
    /* SIGTERM: a server that goes away; SIGKILL would also leave JACK's shared registry
     * broken for every server started after it on this machine */
    tu_jackd_stop(jackd_pid); /* SIGTERM first; and farm's JACK client, which could not
                               * unregister from a server that was gone, leaves its semaphore
                               * in /dev/shm: tu_jackd_stop removes the server's files */
    jackd_pid = 0;
    tu_farm_wait(&r, pid, dir);      /* the suite's timeout fails a farm that hangs here */
    tu_jack_files_remove(jack_name); /* what farm's client left after the server had gone */
    cr_assert_eq(r.status, 1, "%s", r.err);
    cr_assert(strstr(r.err, "stopped by itself") != NULL, "%s", r.err);
    cr_assert_eq(tu_count_tagged(r.tag, NULL), 0, "nothing left running");
}

Test(jack, devices_and_probe_see_jack) {
    tu_run r;
    play(&r, (const char *[]){"devices", "--json", NULL}, alsa_none);
    cr_assert_eq(r.status, 0, "%s", r.err);
    cJSON *root = cJSON_Parse(r.out);
    cr_assert_not_null(root, "devices --json is JSON: %s", r.out);
    cJSON *dev, *found = NULL;
    cJSON_ArrayForEach(dev, cJSON_GetObjectItem(root, "devices")) {
        if (strcmp(cJSON_GetObjectItem(dev, "host_short_name")->valuestring, "jack") == 0)
            found = dev;
    }
    cr_assert_not_null(found, "a JACK device: %s", r.out);
    cr_assert_str_eq(cJSON_GetObjectItem(found, "name")->valuestring, "system");
    cr_assert_eq(cJSON_GetObjectItem(found, "output_channels")->valueint, 2);
    cr_assert_eq(cJSON_GetObjectItem(found, "default_sample_rate")->valuedouble, 48000);
    cr_assert(cJSON_IsTrue(cJSON_GetObjectItem(found, "default_output")));
    cr_assert_gt(cJSON_GetObjectItem(found, "default_low_output_latency")->valuedouble, 0);
    cJSON_Delete(root);

    play(&r, (const char *[]){"devices", NULL}, alsa_none);
    cr_assert(strstr(r.out, "system") != NULL && strstr(r.out, "jack") != NULL, "%s", r.out);
    cr_assert_eq(strstr(r.err, "ALSA") == NULL && strstr(r.err, "Cannot") == NULL, 1,
                 "start-up noise is silenced: %s", r.err);

    play(&r, (const char *[]){"probe", "--json", NULL}, alsa_none);
    cr_assert_eq(r.status, 0, "%s", r.err);
    root = cJSON_Parse(r.out);
    cr_assert_not_null(root, "%s", r.out);
    cJSON *h, *jack = NULL;
    cJSON_ArrayForEach(h, cJSON_GetObjectItem(root, "hosts")) {
        if (strcmp(cJSON_GetObjectItem(h, "short_name")->valuestring, "jack") == 0)
            jack = h;
    }
    cr_assert_not_null(jack, "%s", r.out);
    cr_assert(cJSON_IsTrue(cJSON_GetObjectItem(cJSON_GetObjectItem(jack, "output"), "ok")));
    cJSON_Delete(root);

    /* a rate JACK does not run at fails, with the reason */
    play(&r, (const char *[]){"probe", "--sr", "44100", NULL}, alsa_none);
    cr_assert(strstr(r.out, "rate mismatch") != NULL, "%s", r.out);
}

/* With no sound card and ALSA's JACK plugin installed, PortAudio's first output is ALSA's "jack"
 * PCM: farm goes to JACK through libjack instead, not through the plugin's second buffer. (Asked
 * for with --host alsa it plays the plugin as asked; not run here: the plugin, unloaded at exit,
 * leaves allocations LeakSanitizer cannot name.) */
Test(jack, alsa_s_jack_plugin_as_the_default_output_is_bypassed_for_libjack) {
    if (access("/usr/lib/x86_64-linux-gnu/alsa-lib/libasound_module_pcm_jack.so", F_OK) != 0 &&
        access("/usr/lib/aarch64-linux-gnu/alsa-lib/libasound_module_pcm_jack.so", F_OK) != 0)
        skip_test("ALSA's JACK plugin (libasound2-plugins) is not installed");
    static const char alsa_jack[] = "ALSA_CONFIG_PATH=" FARM_TESTS_DIR "/alsa-jack.conf";
    tu_run r;
    play(&r, (const char *[]){"--duration", "0.3", "--workers", "1", "--voices", "4", NULL},
         alsa_jack);
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_assert(strstr(r.out, "(JACK Audio Connection Kit)") != NULL, "libjack plays it: %s", r.out);
}

typedef struct refusal {
    const char *args[8];
    const char *mentions;
} refusal;

Test(jack, refused_outputs_exit_2_and_leave_nothing) {
    static const refusal cases[] = {
        {{"--host", "nosuch", NULL}, "--host 'nosuch'"},
        {{"--host", "pulse", NULL}, "--host alsa --device pulse"},
        {{"--host", "oss", NULL}, "no output device"},
        {{"--host", "wasapi", NULL}, "--host wasapi: not in this build's PortAudio, which has"},
        {{"--exclusive", NULL}, "--exclusive is WASAPI's exclusive mode"},
        {{"--device", "nosuch", NULL}, "--device 'nosuch'"},
        {{"--device", "99", NULL}, "--device 99"},
        {{"--sr", "44100", NULL}, "runs at 48000 Hz"},
        {{"--channels", "3", NULL}, "--channels 3"},
        {{"--latency", "-1", NULL}, "--latency"},
        {{"--rt-priority", "100", NULL}, "--rt-priority"},
        {{"-o", "x.wav", NULL}, "-o"},
        {{"--format", "wav", NULL}, "--record"},
        {{"--record", "/nonexistent-dir/r.wav", NULL}, "cannot write"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *args[16] = {"--duration", "1", "--record", path_in("r.wav")};
        int n = 4;
        if (strcmp(cases[i].args[0], "--record") == 0 || strcmp(cases[i].args[0], "--format") == 0)
            n = 2; /* the case brings its own --record, or tests --format without one */
        for (int k = 0; cases[i].args[k]; k++)
            args[n++] = cases[i].args[k];
        args[n] = NULL;
        tu_run r;
        play(&r, args, alsa_none);
        cr_expect_eq(r.status, 2, "%s: status %d: %s", cases[i].mentions, r.status, r.err);
        cr_expect_eq(tu_lines(r.err), 1, "%s: one line: %s", cases[i].mentions, r.err);
        cr_expect(strstr(r.err, cases[i].mentions) != NULL, "expected '%s' in: %s",
                  cases[i].mentions, r.err);
        cr_expect_eq(files_in_dir(), 0, "%s: nothing written", cases[i].mentions);
    }
}

Test(nodevice, no_output_device_plays_into_the_paced_null_sink) {
    tu_run r;
    const char *rec = path_in("null.wav");
    double wall = play(&r,
                       (const char *[]){"--workers", "2", "--voices", "100", "--duration", "1.5",
                                        "--record", rec, "--ring-blocks", "16", NULL},
                       alsa_none);
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_assert(strstr(r.err, "no audio output device; playing into the null sink") != NULL, "%s",
              r.err);
    /* a lower bound only: the null sink is paced by the clock, never faster */
    cr_assert_geq(wall, 1.4, "paced by the clock: 1.5 s took %.2f s", wall);
    late_blocks_add_up(r.out, 2);
    tu_audio a;
    cr_assert_eq(tu_read(rec, &a), 0);
    cr_assert_geq(a.frames, 72000);
    cr_assert_gt(lowest_window_rms(&a, 0, 4800, a.frames - 4800), 0.01);
    tu_audio_free(&a);
}

/* The ring's depth in blocks, as the summary names it: "lowest ring fill F/DEPTH". */
static long ring_depth_played(const char *frames, const char *sr, const char *ring) {
    tu_run r;
    const char *args[16] = {"--workers",    "1",    "--voices", "10", "--duration", "0.2",
                            "--buffersize", frames, "--sr",     sr};
    if (ring != NULL) {
        args[10] = "--ring-blocks";
        args[11] = ring;
    }
    play(&r, args, alsa_none);
    cr_assert_eq(r.status, 0, "%s", r.err);
    const char *fill = strstr(r.out, "lowest ring fill ");
    cr_assert(fill != NULL, "%s", r.out);
    const char *slash = strchr(fill, '/');
    cr_assert(slash != NULL, "%s", r.out);
    return strtol(slash + 1, NULL, 10);
}

Test(nodevice, the_default_ring_holds_10_ms_at_every_block_size_and_an_asked_depth_is_kept) {
    cr_assert_eq(ring_depth_played("256", "48000", NULL), 4);  /* 21.3 ms */
    cr_assert_eq(ring_depth_played("128", "48000", NULL), 4);  /* 10.7 ms */
    cr_assert_eq(ring_depth_played("64", "48000", NULL), 8);   /* 4 would be 5.3 ms */
    cr_assert_eq(ring_depth_played("64", "96000", NULL), 16);  /* 10.7 ms */
    cr_assert_eq(ring_depth_played("16", "48000", NULL), 32);  /* 10.7 ms */
    cr_assert_eq(ring_depth_played("64", "48000", "4"), 4);    /* asked for: kept */
    cr_assert_eq(ring_depth_played("16", "192000", NULL), 64); /* the most: 5.3 ms */
}

Test(nodevice, an_explicit_device_that_is_missing_is_an_error) {
    tu_run r;
    play(&r, (const char *[]){"--device", "0", "--duration", "1", NULL}, alsa_none);
    cr_assert_eq(r.status, 2, "%s", r.err);
    cr_assert(strstr(r.err, "--device 0") != NULL, "%s", r.err);
    cr_assert_eq(tu_lines(r.err), 1, "%s", r.err);
}

Test(nodevice, devices_and_probe_against_an_alsa_null_config) {
    tu_run r;
    play(&r, (const char *[]){"devices", "--json", NULL}, alsa_null);
    cr_assert_eq(r.status, 0, "%s", r.err);
    cJSON *root = cJSON_Parse(r.out);
    cr_assert_not_null(root, "%s", r.out);
    int alsa_outputs = 0;
    cJSON *dev;
    cJSON_ArrayForEach(dev, cJSON_GetObjectItem(root, "devices")) {
        if (strcmp(cJSON_GetObjectItem(dev, "host_short_name")->valuestring, "alsa") == 0 &&
            cJSON_GetObjectItem(dev, "output_channels")->valueint > 0)
            alsa_outputs++;
        cr_assert_neq(strcmp(cJSON_GetObjectItem(dev, "host_short_name")->valuestring, "jack"), 0,
                      "no JACK server runs here");
    }
    cr_assert_geq(alsa_outputs, 1, "%s", r.out);
    cJSON_Delete(root);

    play(&r, (const char *[]){"probe", NULL}, alsa_null);
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_assert(strstr(r.out, "ALSA (--host alsa)\n  output OK") != NULL, "%s", r.out);

    /* and with no device at all, devices says what farm would do */
    play(&r, (const char *[]){"devices", NULL}, alsa_none);
    cr_assert(strstr(r.out, "null sink") != NULL, "%s", r.out);
}

Test(nodevice, refused_real_time_gives_one_warning_and_plays_on) {
    /* without CAP_SYS_NICE / CAP_IPC_LOCK and with both limits at 0, as an ordinary user is */
    static const char *const unprivileged[] = {"setpriv",
                                               "--inh-caps=-all",
                                               "--bounding-set=-sys_nice,-ipc_lock",
                                               "prlimit",
                                               "--rtprio=0",
                                               "--memlock=0",
                                               "--",
                                               NULL};
    tu_prefix = unprivileged;
    tu_run r;
    play(&r,
         (const char *[]){"--null-sink", "--workers", "2", "--voices", "50", "--duration", "1",
                          NULL},
         alsa_none);
    tu_prefix = NULL;
    cr_assert_eq(r.status, 0, "%s", r.err);
    int warnings = 0;
    for (const char *p = r.err; (p = strstr(p, "warning")) != NULL; p++)
        warnings++;
    cr_assert_eq(warnings, 1, "exactly one warning: %s", r.err);
#if defined(__SANITIZE_ADDRESS__)
    /* AddressSanitizer replaces mlockall with a no-op that succeeds */
    cr_assert(strstr(r.err, "real-time scheduling refused") != NULL, "%s", r.err);
#else
    cr_assert(strstr(r.err, "real-time scheduling refused and memory locking refused") != NULL,
              "%s", r.err);
#endif
    cr_assert(strstr(r.out, "workers normal") != NULL, "%s", r.out);
    cr_assert_geq(tu_number_after(r.out, "callbacks "), 170, "it still played: %s", r.out);
}

/* The status lines are timed by the stream's clock: the k-th comes once k seconds were played,
 * and says so. Each is printed by farm's main thread, which looks every 20 ms: a machine that
 * stalls it delays a line, or loses the last one when the stream ends first, but can never make
 * a line come before its second. */
Test(nodevice, verbose_prints_a_status_line_for_each_second_played) {
    tu_run r;
    play(&r,
         (const char *[]){"--null-sink", "--workers", "2", "--voices", "50", "--duration", "4.5",
                          "--verbose", NULL},
         alsa_none);
    cr_assert_eq(r.status, 0, "%s", r.err);
    int lines = 0;
    double last = 0;
    for (const char *p = r.err; (p = strstr(p, "farm: ")) != NULL; p++) {
        char *end;
        double s = strtod(p + 6, &end);
        if (end == p + 6 || strncmp(end, " s  late ", 9) != 0)
            continue; /* another of farm's lines */
        lines++;
        cr_assert_geq(s, lines, "status line %d came at %.1f s of audio: %s", lines, s, r.err);
        cr_assert_geq(s, last, "%s", r.err);
        last = s;
    }
    /* 4.5 s played: lines for seconds 1 to 4, the last one lost only to a stall at the end */
    cr_assert(lines >= 2 && lines <= 4, "%d status lines for 4.5 s: %s", lines, r.err);
    cr_assert(strstr(r.err, "underflows") != NULL && strstr(r.err, "load") != NULL, "%s", r.err);
}

Test(nodevice, a_disk_that_falls_behind_loses_counted_frames_and_never_stalls_the_stream,
     .timeout = 90) {
    tu_run r;
    const char *rec = path_in("slowdisk.wav");
    /* the recorder's ring holds 5.5 s; one that takes 40 ms per 5.3 ms block fills it */
    play_with(&r,
              (const char *[]){"--workers", "2", "--voices", "50", "--duration", "7", "--record",
                               rec, "--ring-blocks", "16", NULL},
              alsa_none, "FARM_TEST_SLOW_RECORD=40000");
    cr_assert_eq(r.status, 0, "%s", r.err);
    /* the stream never waited for the disk: a stream that waited would drop nothing, and every
     * callback's frames were written or counted as dropped (below); how long the run took, and
     * whether a stalled core made a worker late, are the machine's business */
    /* "recorded 7.02 s to FILE (N frames dropped)": N is the number before the words */
    const char *d = strstr(r.out, "frames dropped");
    cr_assert_not_null(d, "%s", r.out);
    while (d > r.out && d[-1] == ' ')
        d--;
    while (d > r.out && d[-1] >= '0' && d[-1] <= '9')
        d--;
    double dropped = strtod(d, NULL);
    cr_assert_gt(dropped, 0, "the drops are counted: %s", r.out);
    late_blocks_add_up(r.out, 2);
    double callbacks = tu_number_after(r.out, "callbacks ");
    tu_audio a;
    cr_assert_eq(tu_read(rec, &a), 0);
    /* what was written plus what was dropped is what was played */
    cr_assert_eq((double)a.frames + dropped, callbacks * 256, "%lld + %g vs %g callbacks",
                 (long long)a.frames, dropped, callbacks);
    tu_audio_free(&a);
}
