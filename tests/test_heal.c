/* A farm that heals: workers killed (SIGKILL from outside, SIGSEGV raised inside, SIGSTOP past
 * the watchdog) while playing, through the null sink and through a private jackd, are replaced
 * where they were; what was played is checked through --record. A render whose worker is killed
 * half-way is bit for bit the undisturbed render; a crash loop fails it cleanly. */
#define _GNU_SOURCE
#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "dsp.h"
#include "testutil.h"

static char dir[256];
static pid_t jackd_pid;
static char jack_env[128];

static void setup(void) {
    tu_tmpdir(dir, sizeof dir);
}

static void teardown(void) {
    tu_farm_cleanup();
    if (jackd_pid > 0)
        tu_jackd_stop(jackd_pid);
    jackd_pid = 0;
    tu_rmdir(dir);
}

TestSuite(heal, .init = setup, .fini = teardown, .timeout = 90);

/* Criterion runs no .fini after a skipped test: what it made would be left behind. */
static void skip_test(const char *why) {
    teardown();
    cr_skip_test("%s", why);
}

static const char alsa_none[] = "ALSA_CONFIG_PATH=" FARM_TESTS_DIR "/alsa-none.conf";
/* Under AddressSanitizer a SIGSEGV a worker raises would be its report and exit status 1: let
 * the crash be a crash, as it is without it. */
static const char asan_crash[] = "ASAN_OPTIONS=handle_segv=0";

/* ---- asking the farm, through farmctl ---- */

static cJSON *status_of(const char *control) {
    char cmd[1200], out[65536];
    snprintf(cmd, sizeof cmd, "%s --url %s --timeout 5 status", FARMCTL_BIN, control);
    FILE *f = popen(cmd, "r");
    cr_assert_not_null(f);
    size_t n = fread(out, 1, sizeof out - 1, f);
    out[n] = '\0';
    int st = pclose(f);
    cr_assert_eq(WEXITSTATUS(st), 0, "farmctl status: %s", out);
    cJSON *j = cJSON_Parse(out);
    cr_assert_not_null(j, "%s", out);
    return j;
}

static cJSON *worker_of(cJSON *status, int k) {
    return cJSON_GetArrayItem(cJSON_GetObjectItem(status, "workers"), k);
}

static double num(cJSON *o, const char *name) {
    cJSON *v = cJSON_GetObjectItem(o, name);
    cr_assert(cJSON_IsNumber(v), "no number %s", name);
    return v->valuedouble;
}

static const char *str(cJSON *o, const char *name) {
    cJSON *v = cJSON_GetObjectItem(o, name);
    cr_assert(cJSON_IsString(v), "no string %s", name);
    return v->valuestring;
}

/* Polls status until worker k has been replaced `restarts` times and runs again; returns its
 * pid then. Bounded: a replacement that never comes fails the test. */
static pid_t wait_replaced(const char *control, int k, int restarts) {
    /* the bound only guards against a replacement that never comes: 30 s, whatever the load */
    for (double end = tu_seconds() + 30; tu_seconds() < end;) {
        cJSON *st = status_of(control);
        cJSON *w = worker_of(st, k);
        int done = num(w, "restarts") == restarts && strcmp(str(w, "state"), "running") == 0;
        pid_t pid = (pid_t)num(w, "pid");
        cJSON_Delete(st);
        if (done)
            return pid;
        usleep(10000);
    }
    cr_assert_fail("worker %d was not replaced %d times within 30 s", k, restarts);
    return 0;
}

static double stream_seconds(const char *control) {
    cJSON *st = status_of(control);
    double s = num(cJSON_GetObjectItem(st, "stream"), "seconds");
    cJSON_Delete(st);
    return s;
}

/* Waits until the stream has played `seconds` more: farm's own clock, so a loaded machine that
 * starts or answers slowly cannot shorten what the recording holds. The wall-clock bound only
 * guards against a stream that stopped. */
static void wait_played(const char *control, double seconds) {
    double until = stream_seconds(control) + seconds;
    for (double end = tu_seconds() + 30 + seconds; tu_seconds() < end; usleep(20000))
        if (stream_seconds(control) >= until)
            return;
    cr_assert_fail("the stream did not play %.1f s more within %.0f s", seconds, 30 + seconds);
}

/* ---- playing ---- */

typedef struct played {
    tu_run run;
    pid_t pid;
    char control[600];
} played;

/* Voice 0 (worker 0) plays on the left, voice 1 (worker 1) on the right: a sine each, no
 * feedback, so a gap, a click or a cut shows plainly. */
static void start(played *p, const char *extra_env, const char *const *more) {
    const char *env[] = {alsa_none, "JACK_NO_START_SERVER=1", jack_env[0] ? jack_env : extra_env,
                         jack_env[0] ? extra_env : NULL, NULL};
    const char *args[32] = {"--workers",      "2",
                            "--total-voices", "2",
                            "--amp",          "0.5",
                            "--feedback",     "0",
                            "--record",       tu_path(dir, "played.wav"),
                            "--ring-blocks",  "4"};
    int n = 12;
    if (!jack_env[0])
        args[n++] = "--null-sink";
    for (int i = 0; more && more[i] && n < 31; i++)
        args[n++] = more[i];
    args[n] = NULL;
    p->pid = tu_farm_start(&p->run, dir, args, env);
    cr_assert(tu_wait_control_url(dir, p->control, sizeof p->control), "farm printed its URL");
}

static void stop(played *p) {
    kill(p->pid, SIGTERM);
    tu_farm_wait(&p->run, p->pid, dir);
    cr_assert_eq(p->run.status, 128 + SIGTERM, "%s", p->run.err);
    cr_assert_eq(tu_count_tagged(p->run.tag, NULL), 0, "nothing left running");
}

/* The longest run of samples of channel c that are exactly silent (|x| < 1e-6): a gap. */
static int64_t longest_silence(const tu_audio *a, int c, int64_t from, int64_t to) {
    int64_t best = 0, run = 0;
    for (int64_t i = from; i < to; i++) {
        run = fabsf(a->data[i * a->channels + c]) < 1e-6f ? run + 1 : 0;
        best = run > best ? run : best;
    }
    return best;
}

static double largest_step(const tu_audio *a, int c, int64_t from, int64_t to) {
    double m = 0;
    for (int64_t i = from + 1; i < to; i++) {
        double d = fabs(a->data[i * a->channels + c] - a->data[(i - 1) * a->channels + c]);
        m = d > m ? d : m;
    }
    return m;
}

/* What was played: the left has at most one gap, at most max_gap_s long (none at all when the
 * replacement came before its ring ran dry), and no click (no step larger than the voice's own
 * steepest); the right never stopped. want_gap: the fault must have cost a gap. */
static void check_recording(double max_gap_s, int want_gap) {
    tu_audio a;
    cr_assert_eq(tu_read(tu_path(dir, "played.wav"), &a), 0);
    int64_t edge = a.samplerate / 20; /* away from the start's and the end's fades */
    cr_assert_gt(a.frames, 4 * edge);
    double steepest[2];
    for (int c = 0; c < 2; c++) /* a sine's steepest step: 2 pi f / sr times its amplitude */
        steepest[c] = 2 * 3.14159265358979 * dsp_voice_default_freq(1, (uint64_t)c, 400, 800) /
                      a.samplerate * 0.5;
    int64_t gap = longest_silence(&a, 0, edge, a.frames - edge);
    if (want_gap)
        cr_assert_gt(gap, 0, "the left's worker was out for a while");
    cr_assert_leq(gap, (int64_t)(max_gap_s * a.samplerate), "a gap of %.1f ms",
                  1e3 * (double)gap / a.samplerate);
    double step0 = largest_step(&a, 0, edge, a.frames - edge);
    cr_assert_leq(step0, steepest[0] * 1.1, "no click where it went and came back: %g, sine %g",
                  step0, steepest[0]);
    cr_assert_lt(longest_silence(&a, 1, edge, a.frames - edge), a.samplerate / 1000,
                 "the right never stopped");
    double step1 = largest_step(&a, 1, edge, a.frames - edge);
    cr_assert_leq(step1, steepest[1] * 1.01, "the right is one unbroken sine: %g", step1);
    tu_audio_free(&a);
}

static void killed_and_replaced(int sig_from_outside, const char *crash_env) {
    played p;
    start(&p, crash_env, NULL);
    cJSON *st = status_of(p.control); /* before the crash hook's block, however slow the build */
    pid_t before = (pid_t)num(worker_of(st, 0), "pid");
    cJSON_Delete(st);
    wait_played(p.control, 0.6);
    if (sig_from_outside)
        cr_assert_eq(kill(before, sig_from_outside), 0);
    pid_t after = wait_replaced(p.control, 0, 1);
    cr_assert_neq(after, before, "the replacement is a new process");
    cr_assert_eq(kill(after, 0), 0, "status names the live one");
    wait_played(p.control, 0.5);
    stop(&p);
    const char *line = strstr(p.run.err, "farm: worker 0 (pid ");
    cr_assert_not_null(line, "one line about the fault: %s", p.run.err);
    /* a SIGSEGV raised inside: "signal 11", or under the sanitizers, whose handlers report it,
     * "exited with status 1" */
    cr_assert((sig_from_outside ? strstr(line, "signal 9") != NULL
                                : (strstr(line, "signal 11") || strstr(line, "status 1"))) &&
                  strstr(line, "missed"),
              "%s", p.run.err);
    cr_assert(strstr(p.run.out, "restarts 1") != NULL, "the summary lists it: %s", p.run.out);
    check_recording(1.0, 0);
}

Test(heal, a_worker_killed_while_playing_is_replaced_without_a_click) {
    killed_and_replaced(SIGKILL, NULL);
}

Test(heal, a_worker_that_crashes_while_playing_is_replaced_without_a_click) {
    /* worker 0 raises SIGSEGV in itself after 300 blocks (1.6 s) */
    killed_and_replaced(0, "FARM_TEST_CRASH_WORKER=0:300:11");
}

Test(heal, a_worker_killed_while_playing_through_jack_is_replaced) {
    char name[64];
    jackd_pid = tu_jackd_start(name, sizeof name, 48000, 256);
    snprintf(jack_env, sizeof jack_env, "JACK_DEFAULT_SERVER=%s", name);
    killed_and_replaced(SIGKILL, NULL);
    jack_env[0] = '\0';
}

Test(heal, a_stopped_worker_shows_as_stalled_then_the_watchdog_replaces_it) {
    played p;
    /* 3 s: the stalled state lasts that long, longer than this loaded machine may take to
     * answer a few status requests */
    start(&p, NULL, (const char *[]){"--watchdog", "3", NULL});
    wait_played(p.control, 0.6);
    cJSON *st = status_of(p.control);
    pid_t before = (pid_t)num(worker_of(st, 0), "pid");
    cJSON_Delete(st);
    cr_assert_eq(kill(before, SIGSTOP), 0);
    int stalled = 0, restarts = 0;
    for (double end = tu_seconds() + 30; !stalled && !restarts && tu_seconds() < end;) {
        usleep(10000);
        st = status_of(p.control);
        stalled = strcmp(str(worker_of(st, 0), "state"), "stalled") == 0;
        restarts = (int)num(worker_of(st, 0), "restarts");
        cJSON_Delete(st);
    }
    cr_assert(stalled, "status says the stopped worker is stalled, not running");
    wait_replaced(p.control, 0, 1);
    wait_played(p.control, 0.3);
    stop(&p);
    cr_assert(strstr(p.run.err, "killed by the watchdog") != NULL, "%s", p.run.err);
    check_recording(5.0, 1); /* out for the watchdog's 3 s, and a little more */
}

Test(heal, a_worker_that_keeps_dying_is_left_dead_and_the_farm_plays_on) {
    played p;
    start(&p, "FARM_TEST_CRASH_WORKER=0:3:11:every", (const char *[]){"--max-restarts", "2", NULL});
    for (int i = 0; i < 300; i++) {
        cJSON *st = status_of(p.control);
        int dead = strcmp(str(worker_of(st, 0), "state"), "dead") == 0;
        cJSON_Delete(st);
        if (dead)
            break;
        usleep(10000);
    }
    cJSON *st = status_of(p.control);
    cr_assert_str_eq(str(worker_of(st, 0), "state"), "dead");
    cr_assert_eq(num(worker_of(st, 0), "restarts"), 2);
    cr_assert_str_eq(str(worker_of(st, 1), "state"), "running");
    cJSON_Delete(st);
    /* requests skip the dead worker: no waiting for it, no queue of its filling up to "busy"
     * (its queue holds 256), and the reply names it */
    char cmd[4096], out[4096];
    snprintf(cmd, sizeof cmd,
             "for i in $(seq 300); do %s --url %s set all freq 500 >/dev/null || exit 1; done; "
             "%s --url %s set all freq 600",
             FARMCTL_BIN, p.control, FARMCTL_BIN, p.control);
    double t0 = stream_seconds(p.control);
    FILE *f = popen(cmd, "r");
    size_t n = fread(out, 1, sizeof out - 1, f);
    out[n] = '\0';
    cr_assert_eq(WEXITSTATUS(pclose(f)), 0, "301 requests were all taken: %s", out);
    cr_assert(strstr(out, "\"dead_workers\":[0]") != NULL, "%s", out);
    cr_assert(strstr(out, "pending") == NULL, "%s", out);
    /* a request that waited for room in the dead worker's queue would wait its bound (1 s,
     * CONTROL.md): the 301 would take 301 s of the stream */
    double took = stream_seconds(p.control) - t0;
    cr_assert_lt(took, 150, "none of them waited for the dead worker: %.0f s played", took);
    stop(&p);
    cr_assert(strstr(p.run.err, "left dead") != NULL, "%s", p.run.err);
}

/* ---- rendering ---- */

static void render(tu_run *r, const char *out, const char *env1, const char *max_restarts) {
    const char *env[] = {asan_crash, env1, NULL};
    tu_farm(r,
            (const char *[]){"render", "-o", out, "--workers", "2", "--total-voices", "3000",
                             "--duration", "4", "-q", "--max-restarts", max_restarts, NULL},
            env);
}

static int same_bytes(const char *a, const char *b) {
    FILE *fa = fopen(a, "rb"), *fb = fopen(b, "rb");
    cr_assert(fa && fb);
    int same = 1, ca, cb;
    do {
        ca = fgetc(fa);
        cb = fgetc(fb);
        same = ca == cb;
    } while (same && ca != EOF);
    fclose(fa);
    fclose(fb);
    return same;
}

Test(heal, a_render_whose_worker_crashes_half_way_is_bit_identical) {
    tu_run r;
    const char *whole = tu_path(dir, "whole.wav"), *healed = tu_path(dir, "healed.wav");
    render(&r, whole, NULL, "5");
    cr_assert_eq(r.status, 0, "%s", r.err);
    /* 750 blocks in all; worker 1 crashes after 375, worker 0 after 200 */
    render(&r, healed, "FARM_TEST_CRASH_WORKER=1:375:11", "5");
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_assert(strstr(r.err, "worker 1 (pid") && strstr(r.err, "signal 11"), "%s", r.err);
    cr_assert(same_bytes(whole, healed), "the healed render is the whole render, byte for byte");
}

Test(heal, a_render_whose_workers_are_killed_from_outside_is_bit_identical) {
    tu_run r;
    const char *whole = tu_path(dir, "whole.wav"), *healed = tu_path(dir, "healed.wav");
    const char *args[] = {"render", "-o",         NULL, "--workers", "2", "--total-voices",
                          "20000",  "--duration", "6",  "-q",        NULL};
    args[2] = whole;
    tu_farm(&r, args, NULL);
    cr_assert_eq(r.status, 0, "%s", r.err);
    args[2] = healed;
    /* worker 0 sleeps 2 ms a block: the 1,125 blocks take 2 s at least on any CPU, so the kills
     * below (from 0.2 s on) land while it renders, however fast the kernels are */
    pid_t pid =
        tu_farm_start(&r, dir, args, (const char *[]){"FARM_TEST_SLOW_WORKER=0:2000", NULL});
    int kills = 0;
    for (int i = 0; i < 200 && kills < 3; i++) {
        usleep(50000);
        pid_t workers[4];
        int n = tu_children(pid, "farm-worker", workers, 4);
        if (n == 2 && i % 4 == 3 && kill(workers[kills % 2], SIGKILL) == 0)
            kills++;
    }
    tu_farm_wait(&r, pid, dir);
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_assert_geq(kills, 1, "at least one worker was killed while it rendered");
    cr_assert(strstr(r.err, "signal 9") != NULL, "%s", r.err);
    cr_assert(same_bytes(whole, healed), "the healed render is the whole render, byte for byte");
}

Test(heal, a_crash_loop_fails_the_render_and_leaves_nothing) {
    tu_run r;
    const char *out = tu_path(dir, "loop.wav");
    render(&r, out, "FARM_TEST_CRASH_WORKER=0:5:11:every", "3");
    cr_assert_eq(r.status, 1, "%s", r.err);
    cr_assert(strstr(r.err, "--max-restarts 3") != NULL, "%s", r.err);
    cr_assert_eq(tu_files_in(dir), 0, "no file");
    cr_assert_eq(tu_count_tagged(r.tag, NULL), 0);
}

/* ---- a disk that fills while recording ---- */

Test(heal, a_full_disk_stops_the_recording_not_the_music) {
    if (geteuid() != 0)
        skip_test("a full disk needs root to mount a small tmpfs");
    char small[300];
    snprintf(small, sizeof small, "%s/small", dir);
    cr_assert_eq(mkdir(small, 0700), 0);
    if (unshare(CLONE_NEWNS) != 0)
        skip_test("no private mount namespace here");
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0 ||
        mount("tmpfs", small, "tmpfs", 0, "size=1m") != 0)
        skip_test("cannot mount a small tmpfs here");
    char rec[400];
    snprintf(rec, sizeof rec, "%s/full.wav", small);
    /* 1 MiB holds 2.7 s of stereo float; it plays 5 */
    const char *env[] = {alsa_none, "JACK_NO_START_SERVER=1", NULL};
    tu_run r;
    tu_farm(&r,
            (const char *[]){"--null-sink", "--workers", "2", "--voices", "10", "--duration", "5",
                             "--record", rec, NULL},
            env);
    tu_audio a;
    int readable = tu_read(rec, &a) == 0;
    umount2(small, MNT_DETACH);
    cr_assert(readable, "what was written is a readable, properly closed file");
    cr_assert(a.frames > 2 * 48000 && a.frames < 3 * 48000, "%lld frames kept",
              (long long)a.frames);
    cr_assert_gt(tu_rms(a.data + 9600 * 2, 48000, 2), 0.001, "and it holds the music");
    tu_audio_free(&a);
    cr_assert_eq(r.status, 1, "a recording that stopped early is a failure: %s", r.err);
    const char *line = strstr(r.err, "farm: recording stopped: ");
    cr_assert_not_null(line, "said at once: %s", r.err);
    cr_assert(strstr(line, "No space left") != NULL, "and why: %s", r.err);
    cr_assert(strstr(r.out, "played 5.0") != NULL, "the music played on to the end: %s", r.out);
    double lost = tu_number_after(r.out, "frames dropped, ");
    cr_assert_gt(lost, 48000, "what was not written is counted: %s", r.out);
    cr_assert_eq(tu_count_tagged(r.tag, NULL), 0);
}
