/* Control against a running farm (the null sink, paced by the clock) over real NNG sockets:
 * what a request changes is checked in what was played (--record), in status, and in the
 * telemetry; bad requests get error replies while the farm keeps playing. */
#define _GNU_SOURCE
#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <math.h>
#include <nng/nng.h>
#include <nng/protocol/pubsub0/sub.h>
#include <nng/protocol/reqrep0/req.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/wait.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
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

TestSuite(control, .init = setup, .fini = teardown, .timeout = 60);

static const char *path_in(const char *name) {
    return tu_path(dir, name);
}

typedef struct farm {
    tu_run run;
    pid_t pid;
    char control[512], telemetry[512];
    nng_socket req;
} farm;

/* Starts farm with args and waits for it to print its control URLs. */
static void farm_up(farm *f, const char *const *args) {
    memset(f, 0, sizeof *f);
    const char *env[] = {"ALSA_CONFIG_PATH=" FARM_TESTS_DIR "/alsa-none.conf",
                         "JACK_NO_START_SERVER=1", NULL};
    /* A deep ring: these tests are about control, and a stall of this shared machine long
     * enough to make a block late would put a click in the recording that no ramp made. */
    const char *all[32] = {"--null-sink", "--ring-blocks", "16"};
    int n = 3;
    for (int i = 0; args[i] != NULL && n < 31; i++)
        all[n++] = args[i];
    all[n] = NULL;
    f->pid = tu_farm_start(&f->run, dir, all, env);
    char err_path[600], buf[4096];
    snprintf(err_path, sizeof err_path, "%s/.stderr", dir);
    for (int i = 0; i < 500; i++) {
        FILE *e = fopen(err_path, "r");
        size_t len = e ? fread(buf, 1, sizeof buf - 1, e) : 0;
        if (e)
            fclose(e);
        buf[len] = '\0';
        const char *c = strstr(buf, "control "), *t = strstr(buf, "telemetry ");
        if (c && t && strchr(t, '\n')) {
            sscanf(c + 8, "%511s", f->control);
            sscanf(t + 10, "%511s", f->telemetry);
            break;
        }
        usleep(10000);
    }
    cr_assert(f->control[0], "farm printed its control URL: %s", buf);
    cr_assert_eq(nng_req0_open(&f->req), 0);
    nng_socket_set_ms(f->req, NNG_OPT_RECVTIMEO, 5000);
    nng_socket_set_ms(f->req, NNG_OPT_SENDTIMEO, 5000);
    cr_assert_eq(nng_dial(f->req, f->control, NULL, 0), 0, "dial %s", f->control);
}

/* Sends bytes, returns the parsed reply (caller deletes). */
static cJSON *ask_bytes(farm *f, const void *msg, size_t len) {
    cr_assert_eq(nng_send(f->req, (void *)msg, len, 0), 0);
    char *buf = NULL;
    size_t size = 0;
    int rv = nng_recv(f->req, &buf, &size, NNG_FLAG_ALLOC);
    cr_assert_eq(rv, 0, "a reply: %s", nng_strerror(rv));
    char *text = strndup(buf, size);
    nng_free(buf, size);
    cJSON *j = cJSON_Parse(text);
    cr_assert_not_null(j, "the reply is JSON: %s", text);
    free(text);
    return j;
}

static cJSON *ask(farm *f, const char *line) {
    return ask_bytes(f, line, strlen(line));
}

static int ok(const cJSON *reply) {
    return cJSON_IsTrue(cJSON_GetObjectItem(reply, "ok"));
}

static void expect_ok(farm *f, const char *line) {
    cJSON *r = ask(f, line);
    char *text = cJSON_PrintUnformatted(r);
    cr_assert(ok(r), "'%s' -> %s", line, text);
    free(text);
    cJSON_Delete(r);
}

/* quit over the socket; farm must exit 0 and leave nothing. */
static void farm_down(farm *f) {
    expect_ok(f, "quit");
    nng_close(f->req);
    tu_farm_wait(&f->run, f->pid, dir);
    cr_assert_eq(f->run.status, 0, "status %d: %s", f->run.status, f->run.err);
    cr_assert_eq(tu_count_tagged(f->run.tag, NULL), 0);
    if (strncmp(f->control, "ipc://", 6) == 0)
        cr_assert_neq(access(f->control + 6, F_OK), 0, "the socket file is removed");
}

static double peak_hz(const tu_audio *a, int64_t from, int64_t frames, int c) {
    double hz = 0;
    tu_band_fraction(a->data + from * a->channels + c, (size_t)frames, (size_t)a->channels,
                     a->samplerate, 0, 24000, &hz);
    return hz;
}

Test(control, set_all_freq_1000_moves_the_played_peak_to_1000_hz) {
    farm f;
    const char *rec = path_in("freq.wav");
    farm_up(&f, (const char *[]){"--workers", "2", "--voices", "20", "--record", rec, NULL});
    usleep(1000000);
    cJSON *r = ask(&f, "set all freq 1000 ramp 0.02");
    cr_assert(ok(r));
    cr_assert_eq(cJSON_GetObjectItem(r, "voices")->valueint, 40);
    cr_assert_eq(cJSON_GetArraySize(cJSON_GetObjectItem(r, "workers")), 2);
    /* it says from which block, and it came within the ring's depth and one block */
    cr_assert_not_null(cJSON_GetObjectItem(r, "from_block"));
    cr_assert_leq(cJSON_GetObjectItem(r, "latency_blocks")->valuedouble, 16 + 1);
    cJSON_Delete(r);
    usleep(1500000);
    farm_down(&f);
    tu_audio a;
    cr_assert_eq(tu_read(rec, &a), 0);
    cr_assert_gt(a.frames, 2 * 48000);
    double before = peak_hz(&a, 4800, 32768, 0);
    double after = peak_hz(&a, a.frames - 40000, 32768, 0);
    cr_assert(before > 400 && before < 800, "before: peak at %g Hz", before);
    cr_assert_float_eq(after, 1000, 3, "after: peak at %g Hz", after);
    tu_audio_free(&a);
}

/* voice 0 is worker 0's (left), voice 1 worker 1's (right) */
static const char *const two_voices[] = {"--workers",  "2", "--total-voices", "2",  "--amp", "0.5",
                                         "--feedback", "0", "--record",       NULL, NULL};

Test(control, worker_stop_silences_its_voices_and_its_load_goes_to_zero) {
    farm f;
    const char *args[12];
    memcpy(args, two_voices, sizeof two_voices);
    args[9] = path_in("stop.wav");
    farm_up(&f, args);
    usleep(800000);
    expect_ok(&f, "worker 0 stop ramp 0.01");
    usleep(800000);
    cJSON *st = ask(&f, "status");
    cJSON *w0 = cJSON_GetArrayItem(cJSON_GetObjectItem(st, "workers"), 0);
    cJSON *w1 = cJSON_GetArrayItem(cJSON_GetObjectItem(st, "workers"), 1);
    cr_assert_eq(cJSON_GetObjectItem(w0, "voices_playing")->valueint, 0);
    cr_assert_eq(cJSON_GetObjectItem(w1, "voices_playing")->valueint, 1);
    cJSON_Delete(st);
    farm_down(&f);
    tu_audio a;
    cr_assert_eq(tu_read(args[9], &a), 0);
    int64_t tail = 24000, from = a.frames - tail - 4800;
    cr_assert_lt(tu_rms(a.data + from * 2, (size_t)tail, 2), 1e-6, "left is silent");
    cr_assert_float_eq(tu_rms(a.data + from * 2 + 1, (size_t)tail, 2), 0.5 / sqrt(2), 0.01,
                       "right plays on");
    cr_assert_float_eq(tu_rms(a.data + 4800 * 2, 24000, 2), 0.5 / sqrt(2), 0.01,
                       "left played before");
    tu_audio_free(&a);
}

Test(control, a_stopped_worker_costs_nothing) {
    farm f;
    farm_up(&f, (const char *[]){"--workers", "2", "--voices", "3000", NULL});
    usleep(500000);
    expect_ok(&f, "worker 0 stop ramp 0.01");
    usleep(500000);
    /* the peak since the start still holds the playing load; "load" is the last block's */
    double load0 = 0, load1 = 0;
    for (int i = 0; i < 5; i++) {
        cJSON *st = ask(&f, "status");
        cJSON *ws = cJSON_GetObjectItem(st, "workers");
        load0 += cJSON_GetObjectItem(cJSON_GetArrayItem(ws, 0), "load")->valuedouble;
        load1 += cJSON_GetObjectItem(cJSON_GetArrayItem(ws, 1), "load")->valuedouble;
        cJSON_Delete(st);
        usleep(50000);
    }
    cr_assert_gt(load1, 0, "the playing worker works");
    cr_assert_lt(load0, 0.05 * load1, "stopped costs nothing: load %g against %g", load0 / 5,
                 load1 / 5);
    farm_down(&f);
}

static double max_step(const tu_audio *a, int c, int64_t from, int64_t to) {
    double m = 0;
    for (int64_t i = from + 1; i < to; i++) {
        double d = fabs(a->data[i * a->channels + c] - a->data[(i - 1) * a->channels + c]);
        m = d > m ? d : m;
    }
    return m;
}

Test(control, a_ramp_arrives_without_a_click_and_a_jump_would_show) {
    for (int ramped = 1; ramped >= 0; ramped--) {
        farm f;
        const char *args[12];
        memcpy(args, two_voices, sizeof two_voices);
        args[9] = path_in(ramped ? "ramp.wav" : "jump.wav");
        farm_up(&f, args);
        usleep(600000);
        /* down and up again, many times, so some change lands near a peak */
        for (int i = 0; i < 10; i++) {
            expect_ok(&f, ramped ? "set 1 amp 0.05 ramp 0.02" : "set 1 amp 0.05 ramp 0");
            usleep(30000);
            expect_ok(&f, ramped ? "set 1 amp 0.5 ramp 0.02" : "set 1 amp 0.5 ramp 0");
            usleep(30000);
        }
        farm_down(&f);
        tu_audio a;
        cr_assert_eq(tu_read(args[9], &a), 0);
        double f1 = dsp_voice_default_freq(1, 1, 400, 800);
        double smooth = 2 * 3.14159265358979323846 * f1 / 48000 * 0.5; /* the sine's own slope */
        double step = max_step(&a, 1, 4800, a.frames - 4800);
        if (ramped)
            cr_assert_lt(step, smooth * 1.1, "ramped: largest step %g, sine's %g", step, smooth);
        else
            cr_assert_gt(step, smooth * 1.5, "unramped: the jump (%g) shows", step);
        tu_audio_free(&a);
    }
}

Test(control, status_reports_the_truth) {
    farm f;
    farm_up(&f, (const char *[]){"--workers", "3", "--total-voices", "100", "--sr", "44100",
                                 "--buffersize", "128", NULL});
    usleep(300000);
    cJSON *st = ask(&f, "status");
    cr_assert(ok(st));
    cJSON *cfg = cJSON_GetObjectItem(st, "config");
    cr_assert_eq(cJSON_GetObjectItem(cfg, "workers")->valueint, 3);
    cr_assert_eq(cJSON_GetObjectItem(cfg, "voices")->valueint, 100);
    cr_assert_eq(cJSON_GetObjectItem(cfg, "sample_rate")->valueint, 44100);
    cr_assert_eq(cJSON_GetObjectItem(cfg, "buffersize")->valueint, 128);
    cr_assert_str_eq(cJSON_GetObjectItem(cfg, "control")->valuestring, f.control);
    cr_assert_str_eq(cJSON_GetObjectItem(cfg, "telemetry")->valuestring, f.telemetry);
    cJSON *ws = cJSON_GetObjectItem(st, "workers");
    cr_assert_eq(cJSON_GetArraySize(ws), 3);
    int sum = 0, next_first = 0;
    cJSON *w;
    cJSON_ArrayForEach(w, ws) {
        pid_t pid = (pid_t)cJSON_GetObjectItem(w, "pid")->valueint;
        cr_assert_eq(kill(pid, 0), 0, "worker pid %d is alive", pid);
        cr_assert_str_eq(cJSON_GetObjectItem(w, "state")->valuestring, "running");
        cr_assert_eq(cJSON_GetObjectItem(w, "first_voice")->valueint, next_first);
        int v = cJSON_GetObjectItem(w, "voices")->valueint;
        cr_assert_eq(cJSON_GetObjectItem(w, "voices_playing")->valueint, v);
        next_first += v;
        sum += v;
        cr_assert_gt(cJSON_GetObjectItem(w, "blocks_rendered")->valuedouble, 0);
    }
    cr_assert_eq(sum, 100);
    cJSON *s = cJSON_GetObjectItem(st, "stream");
    double secs = cJSON_GetObjectItem(s, "seconds")->valuedouble;
    cr_assert(secs > 0.1 && secs < 5, "stream seconds %g", secs);
    cr_assert_eq(cJSON_GetObjectItem(s, "late_blocks")->valueint, 0);
    cJSON_Delete(st);
    farm_down(&f);
}

Test(control, telemetry_arrives_at_its_rate) {
    farm f;
    farm_up(&f,
            (const char *[]){"--workers", "2", "--voices", "10", "--telemetry-rate", "20", NULL});
    nng_socket sub;
    cr_assert_eq(nng_sub0_open(&sub), 0);
    nng_socket_set(sub, NNG_OPT_SUB_SUBSCRIBE, "stats ", 6);
    nng_socket_set_ms(sub, NNG_OPT_RECVTIMEO, 2000);
    cr_assert_eq(nng_dial(sub, f.telemetry, NULL, 0), 0);
    /* the first may take a moment to connect */
    char *buf = NULL;
    size_t size = 0;
    cr_assert_eq(nng_recv(sub, &buf, &size, NNG_FLAG_ALLOC), 0);
    nng_free(buf, size);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int count = 0;
    for (;;) {
        clock_gettime(CLOCK_MONOTONIC, &t1);
        if ((t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) * 1e-9 >= 2.0)
            break;
        cr_assert_eq(nng_recv(sub, &buf, &size, NNG_FLAG_ALLOC), 0);
        cr_assert(size > 6 && memcmp(buf, "stats {", 7) == 0);
        char *json = strndup(buf + 6, size - 6);
        cJSON *j = cJSON_Parse(json);
        cr_assert_not_null(j, "%s", json);
        cr_assert_eq(cJSON_GetArraySize(cJSON_GetObjectItem(j, "workers")), 2);
        cr_assert_not_null(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "stream"), "callbacks"));
        cJSON_Delete(j);
        free(json);
        nng_free(buf, size);
        count++;
    }
    cr_assert(count >= 36 && count <= 44, "%d messages in 2 s at 20 Hz", count);
    nng_close(sub);
    farm_down(&f);
}

Test(control, bad_requests_get_error_replies_and_change_nothing) {
    farm f;
    const char *rec = path_in("bad.wav");
    farm_up(&f, (const char *[]){"--workers", "2", "--voices", "20", "--record", rec, NULL});
    static const char *const bad[] = {
        "",
        "   ",
        "frobnicate",
        "set",
        "set all",
        "set all freq",
        "set all volume 3",
        "set all freq nan",
        "set all freq inf",
        "set all freq -inf",
        "set all freq 1e999",
        "set all freq -5",
        "set all freq 30000",
        "set all amp 2",
        "set all feedback -0.1",
        "set all pan 1.5",
        "set 40 amp 0.1",
        "set 5-2 amp 0.1",
        "set -1 amp 0.1",
        "set worker:2 amp 0.1",
        "set all amp 0.1 ramp",
        "set all amp 0.1 ramp -1",
        "set all amp 0.1 ramp 100",
        "set all amp 0.1 extra words",
        "voice all pause",
        "worker 9 stop",
        "gain -1",
        "gain nan",
        "status now",
        "quit please",
        "set all amp 0.1\x01",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cJSON *r = ask(&f, bad[i]);
        cJSON *e = cJSON_GetObjectItem(r, "error");
        cr_expect(!ok(r) && cJSON_IsString(e) && e->valuestring[0] != '\0',
                  "'%s' must be refused with a message", bad[i]);
        cJSON_Delete(r);
    }
    /* binary garbage, an embedded NUL, and a message over 64 KiB */
    unsigned char garbage[512];
    for (size_t i = 0; i < sizeof garbage; i++)
        garbage[i] = (unsigned char)(i * 151 + 7);
    cJSON *r = ask_bytes(&f, garbage, sizeof garbage);
    cr_assert(!ok(r));
    cJSON_Delete(r);
    r = ask_bytes(&f, "set all amp 0\0.1", 16);
    cr_assert(!ok(r));
    cJSON_Delete(r);
    size_t big = 70 * 1024;
    char *huge = malloc(big);
    memset(huge, 'a', big);
    r = ask_bytes(&f, huge, big);
    free(huge);
    cr_assert(!ok(r));
    cr_assert(strstr(cJSON_GetObjectItem(r, "error")->valuestring, "too long") != NULL);
    cJSON_Delete(r);

    /* nothing changed and the farm kept playing */
    cJSON *st = ask(&f, "status");
    cJSON *w;
    cJSON_ArrayForEach(w, cJSON_GetObjectItem(st, "workers")) {
        cr_assert_eq(cJSON_GetObjectItem(w, "voices_playing")->valueint, 20);
    }
    cr_assert_eq(cJSON_GetObjectItem(cJSON_GetObjectItem(st, "stream"), "late_blocks")->valueint,
                 0);
    cr_assert_float_eq(cJSON_GetObjectItem(cJSON_GetObjectItem(st, "config"), "gain")->valuedouble,
                       1.0, 1e-9);
    cJSON_Delete(st);
    usleep(1500000);
    farm_down(&f);
    tu_audio a;
    cr_assert_eq(tu_read(rec, &a), 0);
    cr_assert_gt(a.frames, 48000, "played on after the bad requests");
    /* away from the fades at both ends */
    double band =
        tu_band_fraction(a.data + 9600, (size_t)a.frames - 19200, 2, 48000, 395, 2405, NULL);
    cr_assert_gt(band, 0.99, "the voices were never changed: %g in band", band);
    tu_audio_free(&a);
}

Test(control, a_request_delivered_twice_does_no_harm) {
    farm f;
    farm_up(&f, (const char *[]){"--workers", "2", "--voices", "10", NULL});
    for (int i = 0; i < 2; i++) {
        expect_ok(&f, "gain 0.5 ramp 0.01");
        expect_ok(&f, "voice 3-7 stop");
        expect_ok(&f, "set worker:1 freq 700");
    }
    cJSON *st = ask(&f, "status");
    cJSON *ws = cJSON_GetObjectItem(st, "workers");
    cr_assert_eq(cJSON_GetObjectItem(cJSON_GetArrayItem(ws, 0), "voices_playing")->valueint, 5);
    cr_assert_float_eq(cJSON_GetObjectItem(cJSON_GetObjectItem(st, "config"), "gain")->valuedouble,
                       0.5, 1e-6);
    cJSON_Delete(st);
    farm_down(&f);
}

Test(control, sockets_are_private_by_default_and_the_network_needs_consent) {
    farm f;
    farm_up(&f, (const char *[]){"--workers", "1", "--voices", "1", NULL});
    cr_assert_eq(strncmp(f.control, "ipc://", 6), 0, "%s", f.control);
    char d[1100];
    snprintf(d, sizeof d, "%s", f.control + 6);
    *strrchr(d, '/') = '\0';
    struct stat st;
    cr_assert_eq(stat(d, &st), 0);
    cr_assert_eq(st.st_mode & 0777, 0700, "%s is mode %o", d, st.st_mode & 0777);
    farm_down(&f);

    /* what a farm killed by SIGKILL left behind (a socket whose pid is gone) is cleared by the
     * next; a regular file that only looks like one is not touched */
    char stale[1200], lookalike[1200];
    snprintf(stale, sizeof stale, "%s/999999999.control", d);
    snprintf(lookalike, sizeof lookalike, "%s/999999998.control", d);
    int sock = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    cr_assert_lt(strlen(stale), sizeof sun.sun_path);
    strcpy(sun.sun_path, stale);
    cr_assert_eq(bind(sock, (struct sockaddr *)&sun, sizeof sun), 0, "bind %s", stale);
    close(sock); /* the socket file stays, with nobody behind it */
    FILE *sf = fopen(lookalike, "w");
    cr_assert_not_null(sf);
    fclose(sf);
    farm_up(&f, (const char *[]){"--workers", "1", "--voices", "1", NULL});
    cr_assert_neq(access(stale, F_OK), 0, "the stale socket was removed");
    cr_assert_eq(access(lookalike, F_OK), 0, "a regular file is not a socket: it stays");
    farm_down(&f);
    unlink(lookalike);

    tu_run r;
    const char *env[] = {"ALSA_CONFIG_PATH=" FARM_TESTS_DIR "/alsa-none.conf", NULL};
    tu_farm(&r,
            (const char *[]){"--null-sink", "--duration", "1", "--control", "tcp://0.0.0.0:45123",
                             NULL},
            env);
    cr_assert_eq(r.status, 2, "%s", r.err);
    cr_assert(strstr(r.err, "--listen-anywhere") != NULL, "%s", r.err);
    cr_assert_eq(tu_count_tagged(r.tag, NULL), 0);
    tu_farm(&r, (const char *[]){"--null-sink", "--duration", "1", "--control", "bogus", NULL},
            env);
    cr_assert_eq(r.status, 2, "%s", r.err);
    tu_farm(&r,
            (const char *[]){"--null-sink", "--duration", "1", "--control", "garbage://x", NULL},
            env);
    cr_assert_eq(r.status, 2, "%s", r.err);
    cr_assert(strstr(r.err, "unknown scheme 'garbage'") != NULL, "%s", r.err);

    /* --control ipc://PATH over something that is not a socket: refused, the file untouched */
    char precious[1200], url[1300];
    snprintf(precious, sizeof precious, "%s/precious.txt", dir);
    sf = fopen(precious, "w");
    cr_assert_not_null(sf);
    fputs("keep me", sf);
    fclose(sf);
    snprintf(url, sizeof url, "ipc://%s", precious);
    tu_farm(&r, (const char *[]){"--null-sink", "--duration", "1", "--control", url, NULL}, env);
    cr_assert_eq(r.status, 2, "%s", r.err);
    cr_assert(strstr(r.err, "is not a socket") != NULL, "%s", r.err);
    cr_assert_eq(tu_lines(r.err), 1, "%s", r.err);
    char buf[16] = "";
    sf = fopen(precious, "r");
    cr_assert_not_null(sf, "the file is still there");
    cr_assert_not_null(fgets(buf, sizeof buf, sf));
    fclose(sf);
    cr_assert_str_eq(buf, "keep me");
}

Test(control, tcp_on_loopback_works) {
    farm f;
    char url[64];
    snprintf(url, sizeof url, "tcp://127.0.0.1:%d", 40000 + (int)(getpid() % 20000));
    farm_up(&f, (const char *[]){"--workers", "1", "--voices", "4", "--control", url, NULL});
    cr_assert_str_eq(f.control, url);
    expect_ok(&f, "set all freq 500");
    farm_down(&f);
}

/* Runs a shell command line; returns its exit status, its stdout in out. */
static int shell(char *out, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int shell(char *out, size_t size, const char *fmt, ...) {
    char cmd[2048], full[2600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    snprintf(full, sizeof full, "%s >%s/.out 2>&1", cmd, dir);
    int st = system(full);
    char path[600];
    snprintf(path, sizeof path, "%s/.out", dir);
    FILE *f = fopen(path, "r");
    size_t n = f ? fread(out, 1, size - 1, f) : 0;
    if (f)
        fclose(f);
    out[n] = '\0';
    unlink(path);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

Test(control, farmctl_speaks_the_protocol_and_tells_by_its_exit_status) {
    farm f;
    farm_up(&f, (const char *[]){"--workers", "2", "--voices", "10", NULL});
    char out[16384];
    int rv = shell(out, sizeof out, "%s --url %s status", FARMCTL_BIN, f.control);
    cr_assert_eq(rv, 0, "%s", out);
    cJSON *j = cJSON_Parse(out);
    cr_assert(j != NULL && ok(j), "%s", out);
    cJSON_Delete(j);
    rv = shell(out, sizeof out, "%s --url %s set all freq 1e9", FARMCTL_BIN, f.control);
    cr_assert_eq(rv, 1, "an error reply: %s", out);
    cr_assert(strstr(out, "out of range") != NULL, "%s", out);
    rv = shell(out, sizeof out, "%s --url %s set 0-4 amp 0.01 ramp 0.1", FARMCTL_BIN, f.control);
    cr_assert_eq(rv, 0, "%s", out);
    rv = shell(out, sizeof out, "%s --url %s watch --once", FARMCTL_BIN, f.control);
    cr_assert_eq(rv, 0, "%s", out);
    int running = 0;
    for (const char *p = out; (p = strstr(p, " running ")) != NULL; p++)
        running++;
    cr_assert_eq(running, 2, "a row per worker: %s", out);
    cr_assert(strstr(out, "late blocks") && strstr(out, "callback"), "%s", out);
    rv = shell(out, sizeof out, "%s", FARMCTL_BIN);
    cr_assert_eq(rv, 2, "no command is a usage error: %s", out);
    /* the Python example, standard library only, over the socket directly */
    rv = shell(out, sizeof out,
               "/usr/bin/python3 %s/examples/sweep.py --url %s --steps 2 --step-time 0.05 "
               "--restore-ramp 0.05",
               FARM_SOURCE_DIR, f.control);
    cr_assert_eq(rv, 0, "sweep.py: %s", out);
    rv = shell(out, sizeof out,
               "bash %s/examples/sweep.sh --url %s --steps 2 --step-time 0.05 --restore-ramp 0.05 "
               "--farmctl %s",
               FARM_SOURCE_DIR, f.control, FARMCTL_BIN);
    cr_assert_eq(rv, 0, "sweep.sh: %s", out);
    farm_down(&f);

    /* nothing there: a clear message within the timeout, exit 3 */
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    rv = shell(out, sizeof out, "%s --url ipc://%s/nobody.control --timeout 0.5 status",
               FARMCTL_BIN, dir);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    cr_assert_eq(rv, 3, "%s", out);
    cr_assert_lt((t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) * 1e-9, 3.0);
    cr_assert_eq(tu_lines(out), 1, "one line: %s", out);
}

Test(control, tcp_port_0_reports_the_port_it_got) {
    farm f;
    farm_up(&f, (const char *[]){"--workers", "1", "--voices", "2", "--control",
                                 "tcp://127.0.0.1:0", NULL});
    cr_assert_neq(strcmp(f.control, "tcp://127.0.0.1:0"), 0, "%s", f.control);
    expect_ok(&f, "status");
    farm_down(&f);
}

Test(control, farmctl_takes_its_options_in_either_form_and_before_the_command_only) {
    farm f;
    farm_up(&f, (const char *[]){"--workers", "1", "--voices", "2", NULL});
    char out[16384];
    int rv = shell(out, sizeof out, "%s --url=%s --timeout=0.5 status", FARMCTL_BIN, f.control);
    cr_assert_eq(rv, 0, "--url=URL --timeout=0.5: %s", out);
    cJSON *j = cJSON_Parse(out);
    cr_assert(j != NULL && ok(j), "%s", out);
    cJSON_Delete(j);
    /* a negative number after the command is a word of the request, not an option */
    rv = shell(out, sizeof out, "%s --url %s set 0 freq -5", FARMCTL_BIN, f.control);
    cr_assert_eq(rv, 1, "the farm refused it: %s", out);
    cr_assert(strstr(out, "-5 is out of range") != NULL, "the farm saw -5: %s", out);
    /* an option after the command is refused before anything is sent */
    rv = shell(out, sizeof out, "%s --url %s status --timeout 1", FARMCTL_BIN, f.control);
    cr_assert_eq(rv, 2, "%s", out);
    cr_assert_eq(tu_lines(out), 1, "one line: %s", out);
    cr_assert(strstr(out, "'--timeout' after the command") != NULL, "%s", out);
    farm_down(&f);
}

Test(control, farmctl_refuses_an_unknown_option_in_one_line) {
    char out[4096];
    int rv = shell(out, sizeof out, "%s --bogus status", FARMCTL_BIN);
    cr_assert_eq(rv, 2, "%s", out);
    cr_assert_eq(tu_lines(out), 1, "one line: %s", out);
    cr_assert(strstr(out, "'--bogus'") && strstr(out, "see farmctl --help"), "%s", out);
    rv = shell(out, sizeof out, "%s watch --bogus", FARMCTL_BIN);
    cr_assert_eq(rv, 2, "%s", out);
    cr_assert_eq(tu_lines(out), 1, "one line: %s", out);
    cr_assert(strstr(out, "'--bogus'") && strstr(out, "see farmctl --help"), "%s", out);
    rv = shell(out, sizeof out, "%s --url", FARMCTL_BIN);
    cr_assert_eq(rv, 2, "%s", out);
    cr_assert_eq(tu_lines(out), 1, "one line: %s", out);
    cr_assert(strstr(out, "--url needs a value") != NULL, "%s", out);
}
