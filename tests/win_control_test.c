/* The control server on Windows, at the library level (win_control.sh is the end-to-end test
 * with farm.exe): real farm-worker.exe processes, the engine, the null sink and
 * farm_control_start, as farm's play starts them, driven over NNG (named pipes and
 * tcp://127.0.0.1), over OSC (UDP on 127.0.0.1) and with farmctl.exe, which finds the farm by
 * its discovery file. Runs under wine (scripts/test-win.sh); FARM_WORKER names farm-worker.exe
 * and FARMCTL_EXE farmctl.exe (tests/CMakeLists.txt). */
#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <nng/nng.h>
#include <nng/protocol/pubsub0/sub.h>
#include <nng/protocol/reqrep0/req.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audio.h"
#include "control.h"
#include "plat.h"
#include "proto.h"
#include "supervisor.h"

#define VOICES 16
#define REPLY_MS 5000 /* wine is slow to start a pipe; a reply comes in milliseconds */

typedef struct fixture {
    shm_region region;
    farm_procs *procs;
    farm_engine *engine;
    farm_audio *audio;
    farm_control *control;
} fixture;

static void start(fixture *f, const farm_control_desc *cd) {
    shm_config cfg = {.workers = 2,
                      .channels = 2,
                      .block_frames = 256,
                      .ring_blocks = 8,
                      .total_voices = VOICES,
                      .oscillator = SHM_OSC_SINELOOP,
                      .sample_rate = 48000,
                      .freq_min = 100,
                      .freq_max = 1000,
                      .amp = 0.01,
                      .ramp_seconds = 0.005,
                      .seed = 1};
    farm_heal_desc heal = {.max_restarts = 0, .restart_window_s = 60};
    memset(f, 0, sizeof *f);
    farm_procs_prepare(&cfg);
    cr_assert_eq(shm_create(&cfg, &f->region), FARM_OK, "%s", farm_error_message());
    cr_assert_eq(farm_procs_start(&f->procs, &f->region, &heal, NULL), FARM_OK, "%s",
                 farm_error_message());
    farm_engine_desc ed = {.region = &f->region, .gain = 1};
    cr_assert_eq(farm_engine_create(&f->engine, &ed), FARM_OK, "%s", farm_error_message());
    farm_audio_desc ad = {
        .null_sink = 1, .sample_rate = 48000, .buffer_frames = 256, .channels = 2};
    cr_assert_eq(farm_audio_open(&f->audio, &ad, f->engine), FARM_OK, "%s", farm_error_message());
    cr_assert_eq(farm_audio_start(f->audio), FARM_OK, "%s", farm_error_message());
    cr_assert_eq(farm_control_start(&f->control, cd, &f->region, f->procs, f->engine, f->audio),
                 FARM_OK, "%s", farm_error_message());
}

static void stop(fixture *f) {
    farm_audio_stop(f->audio);
    farm_control_stop(f->control);
    f->control = NULL;
    farm_procs_stop(f->procs);
    f->procs = NULL;
    shm_close(&f->region);
    farm_audio_close(f->audio);
    farm_engine_destroy(f->engine);
}

/* One request over NNG REQ, its reply as JSON (the caller deletes it). */
static cJSON *ask(const char *url, const char *request) {
    nng_socket s;
    cr_assert_eq(nng_req0_open(&s), 0);
    nng_socket_set_ms(s, NNG_OPT_RECVTIMEO, REPLY_MS);
    nng_socket_set_ms(s, NNG_OPT_SENDTIMEO, REPLY_MS);
    int rv = nng_dial(s, url, NULL, 0);
    cr_assert_eq(rv, 0, "dial %s: %s", url, nng_strerror(rv));
    cr_assert_eq(nng_send(s, (void *)request, strlen(request), 0), 0);
    char *buf = NULL;
    size_t len = 0;
    rv = nng_recv(s, &buf, &len, NNG_FLAG_ALLOC);
    cr_assert_eq(rv, 0, "%s at %s: %s", request, url, nng_strerror(rv));
    cJSON *j = cJSON_ParseWithLength(buf, len);
    cr_assert_not_null(j, "%s: not JSON: %.*s", request, (int)len, buf);
    nng_free(buf, len);
    nng_close(s);
    return j;
}

static int is_ok(const cJSON *j) {
    return cJSON_IsTrue(cJSON_GetObjectItem(j, "ok"));
}

/* What `get` says voice v's param is set to. */
static double value_of(const char *url, int v, const char *param) {
    char req[64];
    snprintf(req, sizeof req, "get %d %s", v, param);
    cJSON *j = ask(url, req);
    cr_assert(is_ok(j), "%s: %s", req, cJSON_PrintUnformatted(j));
    double x = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "values"), 0)->valuedouble;
    cJSON_Delete(j);
    return x;
}

/* farmctl.exe ARGS through the shell: its exit status, and its stdout and stderr in out. */
static int farmctl(const char *args, char *out, size_t size) {
    char exe[1024], cmd[2048];
    snprintf(exe, sizeof exe, "%s", FARMCTL_EXE);
    for (char *p = exe; *p; p++)
        if (*p == '/')
            *p = '\\';
    /* a generous reply timeout: wine starts slowly on a busy machine */
    snprintf(cmd, sizeof cmd, "\"%s\" --timeout 10 %s 2>&1", exe, args);
    FILE *p = popen(cmd, "r");
    cr_assert_not_null(p, "cannot run %s", cmd);
    size_t n = fread(out, 1, size - 1, p);
    out[n] = '\0';
    return pclose(p);
}

static void discovery_path(char *out, size_t size, long pid) {
    char dir[512];
    farm_runtime_dir(dir, sizeof dir);
    snprintf(out, size, "%s\\%ld%s", dir, pid, FARM_DISCOVERY_SUFFIX);
}

Test(win_control, default_sockets_are_named_pipes_found_by_a_discovery_file) {
    fixture f;
    farm_control_desc cd = {.telemetry_rate = 20};
    start(&f, &cd);
    long pid = plat_self_pid();
    char want[128], path[1024], got[1100];
    snprintf(want, sizeof want, "ipc://farm-%ld.control", pid);
    cr_assert_str_eq(farm_control_url(f.control), want);
    snprintf(want, sizeof want, "ipc://farm-%ld.telemetry", pid);
    cr_assert_str_eq(farm_control_telemetry_url(f.control), want);
    discovery_path(path, sizeof path, pid);
    cr_assert_eq(farm_discovery_read(path, "control", got, sizeof got), FARM_OK, "%s",
                 farm_error_message());
    cr_assert_str_eq(got, farm_control_url(f.control));
    cr_assert_eq(farm_discovery_read(path, "telemetry", got, sizeof got), FARM_OK);
    cr_assert_str_eq(got, farm_control_telemetry_url(f.control));
    cr_assert_eq(farm_discovery_read(path, "pid", got, sizeof got), FARM_OK);
    cr_assert_eq(atol(got), pid);

    cJSON *j = ask(farm_control_url(f.control), "status");
    cr_assert(is_ok(j));
    cr_assert_eq(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "config"), "voices")->valueint, VOICES,
                 "%s", cJSON_PrintUnformatted(j));
    cJSON_Delete(j);
    j = ask(farm_control_url(f.control), "set 0-3 freq 880 ramp 0.01");
    cr_assert(is_ok(j), "%s", cJSON_PrintUnformatted(j));
    cJSON_Delete(j);
    cr_assert_float_eq(value_of(farm_control_url(f.control), 3, "freq"), 880, 1e-3);

    /* The telemetry over its named pipe: a stats message, counting the stream's blocks. */
    nng_socket sub;
    cr_assert_eq(nng_sub0_open(&sub), 0);
    nng_socket_set(sub, NNG_OPT_SUB_SUBSCRIBE, FARM_TELEMETRY_TOPIC, FARM_TELEMETRY_TOPIC_LEN);
    nng_socket_set_ms(sub, NNG_OPT_RECVTIMEO, REPLY_MS);
    cr_assert_eq(nng_dial(sub, farm_control_telemetry_url(f.control), NULL, 0), 0);
    char *buf = NULL;
    size_t len = 0;
    cr_assert_eq(nng_recv(sub, &buf, &len, NNG_FLAG_ALLOC), 0, "no telemetry");
    cr_assert(len > FARM_TELEMETRY_TOPIC_LEN &&
              memcmp(buf, FARM_TELEMETRY_TOPIC, FARM_TELEMETRY_TOPIC_LEN) == 0);
    cJSON *t =
        cJSON_ParseWithLength(buf + FARM_TELEMETRY_TOPIC_LEN, len - FARM_TELEMETRY_TOPIC_LEN);
    cr_assert(cJSON_IsObject(t), "%.*s", (int)len, buf);
    cJSON_Delete(t);
    nng_free(buf, len);
    nng_close(sub);

    /* farmctl.exe with no --url: the discovery file leads it to this farm. */
    char out[8192];
    int rc = farmctl("set 5 amp 0.25", out, sizeof out);
    cr_assert_eq(rc, 0, "farmctl set: %d: %s", rc, out);
    cr_assert_float_eq(value_of(farm_control_url(f.control), 5, "amp"), 0.25, 1e-6);
    rc = farmctl("status", out, sizeof out);
    cr_assert_eq(rc, 0, "farmctl status: %d: %s", rc, out);
    cr_assert(strstr(out, "\"voices\":16") != NULL, "%s", out);

    stop(&f);
    cr_assert_eq(plat_path_kind_of(path), PLAT_PATH_NONE, "%s left behind", path);
    rc = farmctl("status", out, sizeof out);
    cr_assert_eq(rc, 3, "farmctl with no farm: %d: %s", rc, out);
    cr_assert(strstr(out, "no farm is running") != NULL, "%s", out);
}

/* A record of a farm that died is skipped by farmctl and removed by the next farm; two live
 * ones make farmctl ask for --url, as on Linux. */
Test(win_control, stale_records_are_skipped_and_several_farms_named) {
    char dir[512], stale[1024], other[1024], out[8192];
    farm_runtime_dir(dir, sizeof dir);
    cr_assert_eq(plat_private_dir(dir), FARM_OK);
    /* A pid no process has: a farm killed with TerminateProcess left this. */
    long dead = 99999996; /* Windows pids are multiples of 4 */
    cr_assert(!plat_pid_alive(dead));
    cr_assert_eq(
        farm_announce(dir, dead, "ipc://farm-dead.control", "ipc://farm-dead.telemetry", NULL),
        FARM_OK, "%s", farm_error_message());
    discovery_path(stale, sizeof stale, dead);
    cr_assert_eq(plat_path_kind_of(stale), PLAT_PATH_FILE);
    int rc = farmctl("status", out, sizeof out);
    cr_assert_eq(rc, 3, "%d: %s", rc, out);
    cr_assert(strstr(out, "only 1 left by farms that died") != NULL, "%s", out);

    fixture f;
    farm_control_desc cd = {.telemetry_rate = 5};
    start(&f, &cd);
    cr_assert_eq(plat_path_kind_of(stale), PLAT_PATH_NONE, "the stale record was kept");

    /* A second live farm: a record naming a live process (a worker) and this farm's URL. */
    long live = farm_procs_pid(f.procs, 0);
    cr_assert(plat_pid_alive(live));
    cr_assert_eq(farm_announce(dir, live, farm_control_url(f.control),
                               farm_control_telemetry_url(f.control), NULL),
                 FARM_OK);
    discovery_path(other, sizeof other, live);
    rc = farmctl("status", out, sizeof out);
    cr_assert_eq(rc, 2, "%d: %s", rc, out);
    cr_assert(strstr(out, "several farms are running") != NULL, "%s", out);
    farm_withdraw(dir, live);
    cr_assert_eq(plat_path_kind_of(other), PLAT_PATH_NONE);
    rc = farmctl("status", out, sizeof out);
    cr_assert_eq(rc, 0, "%d: %s", rc, out);
    stop(&f);
}

/* Given URLs: tcp on loopback with the port the system chose, and no discovery file (farmctl
 * finds only farms on their default sockets, as on Linux). */
Test(win_control, tcp_on_loopback_and_a_given_url_is_not_announced) {
    fixture f;
    farm_control_desc cd = {.control_url = "tcp://127.0.0.1:0",
                            .telemetry_url = "tcp://127.0.0.1:0",
                            .telemetry_rate = 5};
    start(&f, &cd);
    const char *url = farm_control_url(f.control);
    cr_assert(strncmp(url, "tcp://127.0.0.1:", 16) == 0 && atoi(url + 16) > 0, "%s", url);
    char path[1024];
    discovery_path(path, sizeof path, plat_self_pid());
    cr_assert_eq(plat_path_kind_of(path), PLAT_PATH_NONE);
    cJSON *j = ask(url, "set all pan 0.75");
    cr_assert(is_ok(j), "%s", cJSON_PrintUnformatted(j));
    cJSON_Delete(j);
    cr_assert_float_eq(value_of(url, VOICES - 1, "pan"), 0.75, 1e-6);
    char args[256], out[8192];
    snprintf(args, sizeof args, "--url %s get 0-1 pan", url);
    int rc = farmctl(args, out, sizeof out);
    cr_assert_eq(rc, 0, "%d: %s", rc, out);
    cr_assert(strstr(out, "0.75") != NULL, "%s", out);
    stop(&f);
}

/* ---- OSC over UDP on 127.0.0.1 ---- */

static size_t put_string(unsigned char *b, size_t at, const char *s) {
    size_t n = strlen(s), len = 4 * (n / 4 + 1);
    memset(b + at, 0, len);
    memcpy(b + at, s, n);
    return at + len;
}

static size_t put_float(unsigned char *b, size_t at, float x) {
    uint32_t u;
    memcpy(&u, &x, 4);
    for (int i = 0; i < 4; i++)
        b[at + (size_t)i] = (unsigned char)(u >> (24 - 8 * i));
    return at + 4;
}

/* Sends packet to the farm's OSC port and returns the JSON of its /farm/reply. */
static cJSON *osc_ask(plat_socket s, const plat_addr *to, const unsigned char *packet, size_t n) {
    cr_assert_eq(plat_sock_send(s, packet, n, to), (long)n);
    int ready = 0;
    cr_assert_eq(plat_sock_poll(&s, 1, 0, &ready, REPLY_MS), 1, "no OSC reply");
    unsigned char buf[65536];
    plat_addr from;
    long got = plat_sock_recv(s, buf, sizeof buf - 1, &from);
    cr_assert_gt(got, 16);
    buf[got] = '\0';
    cr_assert_str_eq((char *)buf, "/farm/reply");
    cr_assert_str_eq((char *)buf + 12, ",s");
    cJSON *j = cJSON_Parse((char *)buf + 16);
    cr_assert_not_null(j, "%s", buf + 16);
    return j;
}

Test(win_control, osc_over_udp_on_loopback) {
    fixture f;
    farm_control_desc cd = {.control_url = "tcp://127.0.0.1:0",
                            .telemetry_url = "tcp://127.0.0.1:0",
                            .telemetry_rate = 5,
                            .osc_url = "osc.udp://127.0.0.1:0"};
    start(&f, &cd);
    const char *osc = farm_control_osc_url(f.control);
    cr_assert(osc != NULL && strncmp(osc, "osc.udp://127.0.0.1:", 20) == 0, "%s", osc);
    plat_socket s;
    int port = 0;
    cr_assert_eq(plat_sock_bind("127.0.0.1", "0", 0, "client", &s, &port), FARM_OK, "%s",
                 farm_error_message());
    plat_addr farm;
    cr_assert_eq(plat_sock_resolve("127.0.0.1", osc + 20, 0, "farm", &farm), FARM_OK);

    unsigned char p[256];
    size_t n = put_string(p, 0, "/farm/set");
    n = put_string(p, n, ",ssf");
    n = put_string(p, n, "0-1");
    n = put_string(p, n, "freq");
    n = put_float(p, n, 220.5f);
    cJSON *j = osc_ask(s, &farm, p, n);
    cr_assert(is_ok(j), "%s", cJSON_PrintUnformatted(j));
    cJSON_Delete(j);
    cr_assert_float_eq(value_of(farm_control_url(f.control), 1, "freq"), 220.5, 1e-3);

    n = put_string(p, 0, "/farm/status");
    n = put_string(p, n, ",");
    j = osc_ask(s, &farm, p, n);
    cr_assert(is_ok(j));
    cJSON_Delete(j);

    n = put_string(p, 0, "/elsewhere"); /* refused, in a reply that says why */
    n = put_string(p, n, ",");
    j = osc_ask(s, &farm, p, n);
    cr_assert(!is_ok(j));
    cr_assert(strstr(cJSON_GetObjectItem(j, "error")->valuestring, "/farm/COMMAND") != NULL);
    cJSON_Delete(j);
    plat_sock_close(s);
    stop(&f);
}

/* Reads exactly n bytes from a TCP socket, waiting at most REPLY_MS for each part. */
static void read_exactly(plat_socket s, unsigned char *buf, size_t n) {
    size_t have = 0;
    while (have < n) {
        int ready = 0;
        cr_assert_eq(plat_sock_poll(&s, 1, 0, &ready, REPLY_MS), 1, "no OSC reply over TCP");
        long k = plat_sock_recv(s, buf + have, n - have, NULL);
        cr_assert_geq(k, 0, "the connection closed");
        have += (size_t)k;
    }
}

Test(win_control, osc_over_tcp_on_loopback) {
    fixture f;
    farm_control_desc cd = {.control_url = "tcp://127.0.0.1:0",
                            .telemetry_url = "tcp://127.0.0.1:0",
                            .telemetry_rate = 5,
                            .osc_url = "osc.tcp://127.0.0.1:0"};
    start(&f, &cd);
    const char *osc = farm_control_osc_url(f.control);
    cr_assert(osc != NULL && strncmp(osc, "osc.tcp://127.0.0.1:", 20) == 0, "%s", osc);
    plat_addr farm;
    cr_assert_eq(plat_sock_resolve("127.0.0.1", osc + 20, 1, "farm", &farm), FARM_OK);
    plat_socket s;
    cr_assert_eq(plat_sock_connect(&farm, REPLY_MS, "farm", &s), FARM_OK, "%s",
                 farm_error_message());
    /* Two framed packets in one write: both are answered, in order. */
    unsigned char p[512];
    size_t n = 4;
    n = put_string(p, n, "/farm/set");
    n = put_string(p, n, ",ssf");
    n = put_string(p, n, "2");
    n = put_string(p, n, "amp");
    n = put_float(p, n, 0.125f);
    size_t first = n - 4;
    size_t second = n;
    n = put_string(p, n + 4, "/farm/get");
    n = put_string(p, n, ",ss");
    n = put_string(p, n, "2");
    n = put_string(p, n, "amp");
    for (int i = 0; i < 4; i++) {
        p[i] = (unsigned char)(first >> (24 - 8 * i));
        p[second + (size_t)i] = (unsigned char)((n - second - 4) >> (24 - 8 * i));
    }
    cr_assert_eq(plat_sock_send(s, p, n, NULL), (long)n);
    for (int r = 0; r < 2; r++) {
        unsigned char len[4], buf[4096];
        read_exactly(s, len, 4);
        size_t k = (size_t)len[0] << 24 | (size_t)len[1] << 16 | (size_t)len[2] << 8 | len[3];
        cr_assert(k > 16 && k < sizeof buf);
        read_exactly(s, buf, k);
        buf[k] = '\0';
        cr_assert_str_eq((char *)buf, "/farm/reply");
        cJSON *j = cJSON_Parse((char *)buf + 16);
        cr_assert(is_ok(j), "%s", buf + 16);
        if (r == 1)
            cr_assert_float_eq(cJSON_GetArrayItem(cJSON_GetObjectItem(j, "values"), 0)->valuedouble,
                               0.125, 1e-6);
        cJSON_Delete(j);
    }
    plat_sock_close(s);
    stop(&f);
}
