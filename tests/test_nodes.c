/* Farms on several "hosts" playing as one, over NetJACK2, on the rig of
 * shared/docs/netjack2.md: a master jackd (dummy driver) with the netmanager, two slaves
 * `jackd -d net`, a node farm on each slave and the master farm joining them with --node. Run
 * inside a private network namespace (tests/netns.sh): all traffic stays on its loopback. */
#define _GNU_SOURCE
#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <dirent.h>
#include <fcntl.h>
#include <math.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "dsp.h"
#include "testutil.h"

#define VOICES 4 /* per farm: few, so each voice's tone is measured on its own */
#define NODES 2
#define FREQ_MIN "300"
#define FREQ_MAX "3000"

static char dir[256];
static char master[96], slave_names[NODES][128];
static pid_t master_pid, slave_pid[NODES];
static pid_t node_farm[NODES], master_farm;
static tu_run node_run[NODES], master_run;
static char master_env[192], slave_env[NODES][300];
static const char *const node_url[NODES] = {"tcp://127.0.0.1:5601", "tcp://127.0.0.1:5602"};
static const char *const master_url = "tcp://127.0.0.1:5600";

/* ---- the rig ---- */

static char rig_error[1024]; /* why the rig did not come up; "" when it did */
static char net_port[8];     /* this rig's own UDP port for NetJACK2 */

/* 1 when the JACK server has the port (jack_lsp); port "" asks only whether the server answers. */
static int server_has_port(const char *server, const char *port) {
    char cmd[512], line[256];
    snprintf(cmd, sizeof cmd, "JACK_DEFAULT_SERVER=%s jack_lsp 2>/dev/null", server);
    FILE *p = popen(cmd, "r");
    int found = 0;
    while (p && fgets(line, sizeof line, p))
        found |= strncmp(line, port, strlen(port)) == 0;
    if (p)
        pclose(p);
    return found;
}

static int master_has_port(const char *port) {
    return server_has_port(master, port);
}

/* A UDP port of this rig's own for NetJACK2, derived from the test process's pid (Criterion runs
 * each test in a process of its own) and free on loopback now: no earlier rig's master or slave,
 * still going or still shutting down, can take this rig's packets or send it its own. */
static void pick_port(void) {
    for (long i = 0; i < 2000; i++) {
        int port = 20000 + (int)(((long)getpid() + 7 * i) % 20000);
        int fd = socket(AF_INET, SOCK_DGRAM, 0);
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
        a.sin_addr.s_addr = htonl(INADDR_ANY);
        int free_now = fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0;
        if (fd >= 0)
            close(fd);
        if (free_now) {
            snprintf(net_port, sizeof net_port, "%d", port);
            return;
        }
    }
    snprintf(net_port, sizeof net_port, "19000");
}

/* The master's JACK server (dummy driver, as tu_jackd_start's) with its log in the test's
 * directory; 0 when it did not answer. */
static pid_t master_start(void) {
    static int counter;
    snprintf(master, sizeof master, "farmtest-%ld-rig%d", (long)getpid(), counter++);
    const char *argv[] = {"jackd", "-n",    master, "-R",    "-P", "20",  "--port-max", "64",
                          "-d",    "dummy", "-r",   "48000", "-p", "256", NULL};
    pid_t pid = tu_spawn(argv, tu_path(dir, "jackd-master.log"), master);
    /* bounded in wall time only against a hang: a loaded machine starts jackd slowly */
    for (double end = tu_seconds() + 20; pid > 0 && !server_has_port(master, "system:");) {
        if (tu_ended(pid))
            return 0; /* its log says why */
        if (tu_seconds() > end) {
            tu_jackd_stop(pid);
            return 0;
        }
        usleep(20000);
    }
    return pid;
}

/* How often text occurs in the file at path (a server's log). */
static int log_count(const char *path, const char *text) {
    static char buf[1 << 20];
    FILE *f = fopen(path, "r");
    size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    if (f)
        fclose(f);
    buf[n] = '\0';
    int count = 0;
    for (const char *at = buf; (at = strstr(at, text)) != NULL; at += strlen(text))
        count++;
    return count;
}

/* The first line of the log at path holding one of the texts, into out ("" when none). */
static void log_line(const char *path, const char *const *texts, char *out, size_t size) {
    char line[512];
    out[0] = '\0';
    for (int t = 0; texts[t] != NULL && out[0] == '\0'; t++) {
        FILE *f = fopen(path, "r");
        while (f && out[0] == '\0' && fgets(line, sizeof line, f))
            if (strstr(line, texts[t]) != NULL)
                snprintf(out, size, "%.*s", (int)strcspn(line, "\n"), line);
        if (f)
            fclose(f);
    }
}

/* Why slave k did not join, in one line, from what the master and the slave logged. */
static void slave_why(int k, const char *port) {
    static const char *const master_says[] = {"already deallocated", "Can't init", NULL};
    static const char *const slave_says[] = {"Too many servers", "connection lost", "Time out",
                                             "rror", NULL};
    char m[256], s[256], log[32];
    snprintf(log, sizeof log, "jackd-node%d.log", k + 1);
    log_line(tu_path(dir, "jackd-master.log"), master_says, m, sizeof m);
    log_line(tu_path(dir, log), slave_says, s, sizeof s);
    snprintf(rig_error, sizeof rig_error,
             "slave %d did not join the master (%s); master: '%s'; slave: '%s'; logs in %s", k + 1,
             port, m, s, dir);
}

/* Starts slave k and waits until the master's netmanager has made its client (its log shows the
 * slave's parameters). Only then is the master asked for the slave's ports: a JACK client that
 * jack_lsp opens and closes on the master while the netmanager opens the slave's client can leave
 * that client without its semaphore ("already deallocated"); the master then stops serving the
 * slave, which restarts and joins again under another name (node1-01). */
static int slave_start(int k) {
    char node[32], log[32], name_line[64], port[64];
    snprintf(slave_names[k], sizeof slave_names[k], "%s-s%d", master, k + 1);
    snprintf(node, sizeof node, "node%d", k + 1);
    snprintf(log, sizeof log, "jackd-node%d.log", k + 1);
    snprintf(name_line, sizeof name_line, "Name : %s\n", node);
    snprintf(port, sizeof port, "%s:from_slave_2", node);
    snprintf(slave_env[k], sizeof slave_env[k], "JACK_DEFAULT_SERVER=%s", slave_names[k]);
    const char *master_log = tu_path(dir, "jackd-master.log");
    int before = log_count(master_log, name_line);
    const char *argv[] = {"jackd", "-n",     slave_names[k], "-R", "-d", "net", "-a", "127.0.0.1",
                          "-p",    net_port, "-C",           "0",  "-P", "2",   "-i", "0",
                          "-o",    "0",      "-n",           node, "-l", "2",   NULL};
    slave_pid[k] = tu_spawn(argv, tu_path(dir, log), slave_names[k]);
    /* bounded in wall time only against a hang: a slave asks for its master every second */
    for (double end = tu_seconds() + 30; slave_pid[k] > 0 && tu_seconds() < end; usleep(50000)) {
        if (log_count(master_log, name_line) > before)
            break;
        if (tu_ended(slave_pid[k]))
            slave_pid[k] = 0; /* its log says why */
    }
    if (slave_pid[k] > 0 && log_count(master_log, name_line) > before && master_has_port(port))
        return 1;
    slave_why(k, port);
    return 0;
}

static void rig_down(void);

static void rig_up(void) {
    tu_tmpdir(dir, sizeof dir);
    setenv("JACK_NETJACK_MULTICAST", "127.0.0.1", 1); /* never the multicast group */
    setenv("JACK_NO_START_SERVER", "1", 1);
    setenv("JACK_NO_AUDIO_RESERVATION", "1", 1);
    rig_error[0] = '\0';
    pick_port();
    master_pid = master_start();
    snprintf(master_env, sizeof master_env, "JACK_DEFAULT_SERVER=%s", master);
    char cmd[512];
    snprintf(cmd, sizeof cmd, "jack_load -s %s -i '-a 127.0.0.1 -p %s' netmanager >>%s 2>&1",
             master, net_port, tu_path(dir, "jack_load.log"));
    if (master_pid == 0 || system(cmd) != 0) {
        static const char *const says[] = {"Too many servers", "rror", NULL};
        char m[256];
        log_line(tu_path(dir, "jackd-master.log"), says, m, sizeof m);
        snprintf(rig_error, sizeof rig_error,
                 "the master or its netmanager did not start: '%s'; logs in %s", m, dir);
        rig_down(); /* nothing may be left running, whatever the test then says */
        return;
    }
    for (int k = 0; k < NODES; k++)
        if (!slave_start(k)) {
            rig_down();
            return;
        }
}

/* Every test starts so: the rig's failure is the test's, with the reason. */
static void rig_ready(void) {
    cr_assert(rig_error[0] == '\0', "%s", rig_error);
}

static void rig_down(void) {
    tu_farm_cleanup();
    /* the slaves first: the master's netmanager waits for them */
    for (int k = 0; k < NODES; k++)
        if (slave_pid[k] > 0)
            tu_jackd_stop(slave_pid[k]);
    if (master_pid > 0)
        tu_jackd_stop(master_pid);
    memset(slave_pid, 0, sizeof slave_pid);
    master_pid = 0;
    if (rig_error[0] == '\0')
        tu_rmdir(dir);
    else
        tu_keep(dir); /* the logs say why */
}

/* ---- the farms ---- */

static void node_farm_start(int k) {
    char first[16], voices[16], sub[64];
    snprintf(first, sizeof first, "%d", VOICES * (k + 1));
    snprintf(voices, sizeof voices, "%d", VOICES);
    snprintf(sub, sizeof sub, "node%d", k);
    char *d = strdup(tu_path(dir, sub));
    mkdir(d, 0700);
    const char *args[] = {
        "--host",        "jack",      "--workers",  "1",      "--total-voices", voices,
        "--first-voice", first,       "--freq-min", FREQ_MIN, "--freq-max",     FREQ_MAX,
        "--control",     node_url[k], "-q",         NULL};
    const char *env[] = {slave_env[k], NULL};
    char url[600];
    int up = 0;
    /* a slave that has just joined its master may refuse clients for a moment */
    for (double end = tu_seconds() + 15; !up && tu_seconds() < end;) {
        node_farm[k] = tu_farm_start(&node_run[k], d, args, env);
        up = tu_wait_control_url(d, url, sizeof url);
        if (!up) {
            tu_farm_wait(&node_run[k], node_farm[k], d);
            cr_assert(strstr(node_run[k].err, "no JACK server") != NULL, "node farm %d: %s", k + 1,
                      node_run[k].err);
            usleep(200000);
        }
    }
    cr_assert(up, "node farm %d plays: %s", k + 1, node_run[k].err);
    free(d);
}

static void master_farm_start(const char *record) {
    char voices[16], n1[128], n2[128];
    snprintf(voices, sizeof voices, "%d", VOICES);
    snprintf(n1, sizeof n1, "node1=%s", node_url[0]);
    snprintf(n2, sizeof n2, "node2=%s", node_url[1]);
    const char *args[] = {"--workers", "1",          "--total-voices", voices,     "--freq-min",
                          FREQ_MIN,    "--freq-max", FREQ_MAX,         "--node",   n1,
                          "--node",    n2,           "--control",      master_url, "--record",
                          record,      NULL};
    const char *env[] = {master_env, NULL};
    master_farm = tu_farm_start(&master_run, dir, args, env);
    char url[600];
    cr_assert(tu_wait_control_url(dir, url, sizeof url), "the master farm plays");
}

/* One request to url; its reply parsed (the caller deletes it), NULL when none came. */
static cJSON *ask(const char *url, const char *text) {
    nng_socket s;
    cr_assert_eq(nng_req0_open(&s), 0);
    nng_socket_set_ms(s, NNG_OPT_RECVTIMEO, 3000);
    nng_socket_set_ms(s, NNG_OPT_SENDTIMEO, 3000);
    cJSON *out = NULL;
    char *buf = NULL;
    size_t n = 0;
    if (nng_dial(s, url, NULL, 0) == 0 && nng_send(s, (void *)text, strlen(text), 0) == 0 &&
        nng_recv(s, &buf, &n, NNG_FLAG_ALLOC) == 0) {
        out = cJSON_ParseWithLength(buf, n);
        nng_free(buf, n);
    }
    nng_close(s);
    return out;
}

static const char *node_state(const cJSON *st, int k) {
    const cJSON *n = cJSON_GetArrayItem(cJSON_GetObjectItem(st, "nodes"), k);
    const cJSON *s = cJSON_GetObjectItem(n, "state");
    return cJSON_IsString(s) ? s->valuestring : "";
}

static char last_nodes[2048]; /* the master's nodes list when a wait ended, for messages */

static int in_state(const cJSON *st, int k, const char *state) {
    int ok = st != NULL;
    for (int j = 0; j < NODES && ok; j++)
        if (k < 0 || j == k)
            ok = strcmp(node_state(st, j), state) == 0;
    return ok;
}

/* Waits until the master says node k is in state (k < 0: every node); 1 when it did before its
 * stream played `played` more seconds. Farm's own clock (status: stream.seconds) judges, not the
 * wall's: a loaded machine slows both the stream and the farms alike. The wall-clock bound only
 * guards against a hang (a master that stopped playing or answering). */
static int wait_state(int k, const char *state, double played) {
    double from = -1, now = -1;
    int ok = 0;
    for (double end = tu_seconds() + 60 + 4 * played; !ok && tu_seconds() < end; usleep(50000)) {
        cJSON *st = ask(master_url, "status");
        const cJSON *s = cJSON_GetObjectItem(cJSON_GetObjectItem(st, "stream"), "seconds");
        now = cJSON_IsNumber(s) ? s->valuedouble : now;
        from = from < 0 ? now : from;
        ok = in_state(st, k, state);
        char *text = st ? cJSON_PrintUnformatted(cJSON_GetObjectItem(st, "nodes")) : NULL;
        snprintf(last_nodes, sizeof last_nodes, "%s, after %.2f s of the stream",
                 text ? text : "(no status)", now - from);
        free(text);
        cJSON_Delete(st);
        if (!ok && from >= 0 && now - from > played)
            break;
    }
    return ok && now - from <= played;
}

static double stream_seconds(void) {
    cJSON *st = ask(master_url, "status");
    const cJSON *s = cJSON_GetObjectItem(cJSON_GetObjectItem(st, "stream"), "seconds");
    double v = cJSON_IsNumber(s) ? s->valuedouble : -1;
    cJSON_Delete(st);
    return v;
}

/* Waits until the master's stream reaches until seconds; the wall-clock bound only guards
 * against a stream that stopped. */
static void wait_stream(double until) {
    for (double end = tu_seconds() + until + 10; stream_seconds() < until && tu_seconds() < end;)
        usleep(50000);
}

static void master_quit(void) {
    cJSON_Delete(ask(master_url, "quit"));
    tu_farm_wait(&master_run, master_farm, dir);
    master_farm = 0;
    cr_assert_eq(master_run.status, 0, "%s", master_run.err);
}

static void nodes_quit(void) {
    for (int k = 0; k < NODES; k++) {
        char sub[64];
        snprintf(sub, sizeof sub, "node%d", k);
        cJSON_Delete(ask(node_url[k], "quit"));
        tu_farm_wait(&node_run[k], node_farm[k], tu_path(dir, sub));
        cr_assert_eq(node_run[k].status, 0, "%s", node_run[k].err);
        cr_assert_eq(tu_count_tagged(node_run[k].tag, NULL), 0, "node farm %d left nothing", k);
    }
}

/* ---- looking at the sound ---- */

/* Tone of global voice i (on its channel) in a window of a recording. */
static double tone(const tu_audio *a, int c, double from_s, double len_s, double freq) {
    size_t n = (size_t)(len_s * a->samplerate), at = (size_t)(from_s * a->samplerate);
    double *x = malloc(n * sizeof *x);
    for (size_t f = 0; f < n; f++)
        x[f] = a->data[(at + f) * (size_t)a->channels + (size_t)c];
    double t = tu_tone(x, n, a->samplerate, freq);
    free(x);
    return t;
}

static double voice_tone(const tu_audio *a, int i, double from_s, double len_s) {
    double freq = dsp_voice_default_freq(1, (uint64_t)i, atof(FREQ_MIN), atof(FREQ_MAX));
    return tone(a, i % a->channels, from_s, len_s, freq);
}

/* The strongest tone at freq on channel c over quarter-second windows in [from, from + len):
 * NetJACK2 may drop or slip a block when the master's cycle runs late (this shared VM's often
 * do), which lowers a long window's measure but not every short one's. */
static double tone_best(const tu_audio *a, int c, double from, double len, double freq) {
    double best = 0;
    for (double t = from; t + 0.25 <= from + len + 1e-9; t += 0.25) {
        double v = tone(a, c, t, 0.25, freq);
        best = v > best ? v : best;
    }
    return best;
}

static double voice_tone_best(const tu_audio *a, int i, double from, double len) {
    double freq = dsp_voice_default_freq(1, (uint64_t)i, atof(FREQ_MIN), atof(FREQ_MAX));
    return tone_best(a, i % a->channels, from, len, freq);
}

TestSuite(nodes, .init = rig_up, .fini = rig_down, .timeout = 120);

/* What the master recorded (rec) against one render of all the voices with the same seed: every
 * voice from `from` on, and each at its new frequency from `moved` on. */
static void check_recording(const char *rec, double from, double moved) {
    char total[16];
    snprintf(total, sizeof total, "%d", VOICES * (NODES + 1));
    tu_run rr;
    const char *whole = tu_path(dir, "whole.wav");
    tu_farm(&rr,
            (const char *[]){"render", "--workers", "1", "--total-voices", total, "--freq-min",
                             FREQ_MIN, "--freq-max", FREQ_MAX, "--duration", "2", "-o", whole, "-q",
                             NULL},
            NULL);
    cr_assert_eq(rr.status, 0, "%s", rr.err);
    tu_audio a, w;
    cr_assert_eq(tu_read(rec, &a), 0);
    cr_assert_eq(tu_read(whole, &w), 0);
    for (int i = 0; i < VOICES * (NODES + 1); i++) {
        double heard = voice_tone_best(&a, i, from, 1.0), want = voice_tone(&w, i, 0.5, 0.25);
        cr_expect(heard > 0.5 * want && heard < 2.0 * want,
                  "voice %d (%s): %g in the recording, %g in the render", i,
                  i < VOICES       ? "master"
                  : i < 2 * VOICES ? "node1"
                                   : "node2",
                  heard, want);
    }
    double rms_heard = tu_rms(a.data + (size_t)(from * 48000) * 2, 48000, 1);
    double rms_want = tu_rms(w.data + 24000 * 2, 48000, 1);
    cr_expect(rms_heard > 0.7 * rms_want && rms_heard < 1.4 * rms_want, "level %g against %g",
              rms_heard, rms_want);
    /* after the set: every voice of every farm left its own frequency for 100 (k + 1) Hz */
    for (int i = 0; i < VOICES * (NODES + 1); i++) {
        double before = voice_tone_best(&a, i, from, 1.0);
        double after = voice_tone_best(&a, i, moved, 0.5);
        double now = tone_best(&a, i % 2, moved, 0.5, 100.0 * (i + 1));
        double was = dsp_voice_default_freq(1, (uint64_t)i, atof(FREQ_MIN), atof(FREQ_MAX));
        int masked = 0; /* a voice of that channel now within 20 Hz of where this one was */
        for (int j = i % 2; j < VOICES * (NODES + 1); j += 2)
            masked |= fabs(100.0 * (j + 1) - was) < 20;
        cr_expect(masked || after < 0.1 * before,
                  "voice %d left its frequency: %g before, %g after", i, before, after);
        cr_expect(now > 0.5 * before && now < 2 * before, "voice %d at %d Hz: %g (before %g)", i,
                  100 * (i + 1), now, before);
    }
    tu_audio_free(&a);
    tu_audio_free(&w);
}

Test(nodes, the_master_records_every_voice_of_every_node_and_routes_requests) {
    rig_ready();
    for (int k = 0; k < NODES; k++)
        node_farm_start(k);
    char rec[512]; /* tu_path's buffers are reused */
    snprintf(rec, sizeof rec, "%s", tu_path(dir, "all.wav"));
    master_farm_start(rec);
    cr_assert(wait_state(-1, "connected", 10), "both nodes connected: %s", last_nodes);
    double from = stream_seconds() + 0.3;

    cJSON *st = ask(master_url, "status");
    cr_assert_not_null(st);
    const cJSON *cfg = cJSON_GetObjectItem(st, "config");
    cr_assert_eq(cJSON_GetObjectItem(cfg, "voices")->valueint, VOICES * (NODES + 1),
                 "config.voices is the whole farm's");
    for (int k = 0; k < NODES; k++) {
        const cJSON *n = cJSON_GetArrayItem(cJSON_GetObjectItem(st, "nodes"), k);
        cr_assert_eq(cJSON_GetObjectItem(n, "first_voice")->valueint, VOICES * (k + 1));
        cr_assert_eq(cJSON_GetObjectItem(n, "voices")->valueint, VOICES);
        cr_assert_eq(cJSON_GetObjectItem(n, "ports_connected")->valueint, 2);
        cr_assert_str_eq(cJSON_GetObjectItem(n, "url")->valuestring, node_url[k]);
    }
    cJSON_Delete(st);
    tu_run view; /* farmctl's live view shows the nodes too */
    char cmd[512];
    snprintf(cmd, sizeof cmd, FARMCTL_BIN " --url %s watch --once", master_url);
    FILE *p = popen(cmd, "r");
    size_t got = p ? fread(view.out, 1, sizeof view.out - 1, p) : 0;
    view.out[got] = '\0';
    cr_assert(p != NULL && pclose(p) == 0, "farmctl watch --once: %s", view.out);
    cr_assert(strstr(view.out, "node2") && strstr(view.out, "connected") &&
                  strstr(view.out, "8-11"),
              "watch shows the nodes: %s", view.out);
    wait_stream(from + 1.5);

    /* one request for every voice: each node moves its own */
    /* voice k to 100 (k + 1) Hz: each voice's own value, split among the farms that play it */
    cJSON *r = ask(master_url, "set all freq harmonic 100");
    cr_assert(cJSON_IsTrue(cJSON_GetObjectItem(r, "ok")), "set all");
    cr_assert_eq(cJSON_GetArraySize(cJSON_GetObjectItem(r, "nodes")), NODES);
    cJSON_Delete(r);
    double moved = stream_seconds() + 0.3;
    r = ask(master_url, "get 2-9 freq"); /* across the master and both nodes */
    cJSON *values = cJSON_GetObjectItem(r, "values");
    cr_assert_eq(cJSON_GetArraySize(values), 8);
    for (int v = 0; v < 8; v++)
        cr_assert_float_eq(cJSON_GetArrayItem(values, v)->valuedouble, 100 * (v + 3), 1e-3,
                           "voice %d", v + 2);
    cJSON_Delete(r);
    r = ask(node_url[1], "get 8-11 freq"); /* the node itself says so */
    cr_assert_float_eq(cJSON_GetArrayItem(cJSON_GetObjectItem(r, "values"), 3)->valuedouble, 1200,
                       1e-3);
    cJSON_Delete(r);
    wait_stream(moved + 1.0);
    master_quit();
    nodes_quit();

    check_recording(rec, from, moved);
}

Test(nodes, a_node_that_goes_away_costs_only_its_voices_and_is_picked_up_again) {
    rig_ready();
    for (int k = 0; k < NODES; k++)
        node_farm_start(k);
    master_farm_start(tu_path(dir, "r.wav"));
    cr_assert(wait_state(-1, "connected", 10), "both nodes connected: %s", last_nodes);

    kill(node_farm[0], SIGTERM);
    tu_farm_wait(&node_run[0], node_farm[0], tu_path(dir, "node0"));
    cr_assert(wait_state(0, "unreachable", 5), "node1 marked unreachable: %s", last_nodes);
    cr_assert(wait_state(1, "connected", 0), "node2 plays on, then too: %s", last_nodes);
    cJSON *r = ask(master_url, "set 4 freq 500");
    cr_assert(!cJSON_IsTrue(cJSON_GetObjectItem(r, "ok")));
    cr_assert(strstr(cJSON_GetObjectItem(r, "error")->valuestring, "node1") != NULL,
              "the refusal names the node: %s", cJSON_GetObjectItem(r, "error")->valuestring);
    cJSON_Delete(r);
    r = ask(master_url, "set 0-3 freq 500"); /* the master's own voices: fine */
    cr_assert(cJSON_IsTrue(cJSON_GetObjectItem(r, "ok")));
    cJSON_Delete(r);
    double t = stream_seconds();
    wait_stream(t + 0.5);
    cr_assert_gt(stream_seconds(), t + 0.4, "the master plays on");

    node_farm_start(0);
    cr_assert(wait_state(0, "connected", 10), "node1 picked up again: %s", last_nodes);
    r = ask(master_url, "set 4 freq 500");
    cr_assert(cJSON_IsTrue(cJSON_GetObjectItem(r, "ok")), "node1 takes requests again");
    cJSON_Delete(r);

    /* node2's JACK server goes away (its host unplugged): its farm stops, its ports vanish */
    const char *master_log = tu_path(dir, "jackd-master.log");
    int exits = log_count(master_log, "Exiting 'node2'");
    int waits = log_count(master_log, "Waiting for a slave...");
    tu_jackd_stop(slave_pid[1]);
    slave_pid[1] = 0;
    tu_farm_wait(&node_run[1], node_farm[1], tu_path(dir, "node1"));
    cr_assert_eq(node_run[1].status, 1, "the node farm ends: %s", node_run[1].err);
    cr_assert(wait_state(1, "unreachable", 5), "node2 marked unreachable: %s", last_nodes);
    /* the master's netmanager drops the lost slave's client when it notices (its log: "Exiting
     * 'node2'", then "Waiting for a slave..." once the client is closed); a slave that returns
     * before that would find its name taken. Read from the log, not by jack_lsp: see slave_start.
     * Bounded in wall time only against a hang. */
    for (double end = tu_seconds() + 30; tu_seconds() < end; usleep(50000))
        if (log_count(master_log, "Exiting 'node2'") > exits &&
            log_count(master_log, "Waiting for a slave...") > waits)
            break;
    cr_assert(!master_has_port("node2:from_slave_2"), "the master dropped the lost slave");
    cr_assert(slave_start(1), "%s", rig_error);
    node_farm_start(1);
    cr_assert(wait_state(1, "connected", 10), "node2's new ports connected and heard: %s",
              last_nodes);

    master_quit();
    cr_assert_eq(tu_count_tagged(master_run.tag, NULL), 0, "the master left nothing");
    nodes_quit();
}

/* The ports connected to port on the master's server (jack_lsp -c), into out; 1 when jack_lsp
 * listed the port at all (its errors go to jack_lsp.log in the test's directory). */
static int connections_of(const char *port, char *out, size_t size) {
    char cmd[1024], line[256];
    snprintf(cmd, sizeof cmd, "JACK_DEFAULT_SERVER=%s jack_lsp -c 2>>%s", master,
             tu_path(dir, "jack_lsp.log"));
    FILE *p = popen(cmd, "r");
    int in = 0, listed = 0;
    size_t n = 0;
    out[0] = '\0';
    while (p && fgets(line, sizeof line, p)) {
        if (line[0] != ' ' && line[0] != '\t') {
            in = strncmp(line, port, strlen(port)) == 0 && line[strlen(port)] == '\n';
            listed |= in;
        } else if (in && n < size)
            n += (size_t)snprintf(out + n, size - n, "%s", line);
    }
    int status = p ? pclose(p) : -1;
    if (!listed)
        snprintf(out, size, "(jack_lsp -c exited with %d without listing %s)", status, port);
    return listed;
}

/* --jack-name and --connect, seen from the JACK server while the farm plays. */
static void connect_case(const char *name, const char *connect, const char *want) {
    char sub[64];
    snprintf(sub, sizeof sub, "connect-%s", name);
    char *d = strdup(tu_path(dir, sub));
    mkdir(d, 0700);
    const char *args[] = {"--host",
                          "jack",
                          "--jack-name",
                          name,
                          "--workers",
                          "1",
                          "--total-voices",
                          "4",
                          connect ? "--connect" : NULL,
                          connect,
                          NULL};
    const char *env[] = {master_env, NULL};
    tu_run r;
    pid_t pid = tu_farm_start(&r, d, args, env);
    char url[600], port[128], seen[1024];
    cr_assert(tu_wait_control_url(d, url, sizeof url), "%s plays", name);
    snprintf(port, sizeof port, "%s:out_1", name);
    int listed = connections_of(port, seen, sizeof seen);
    kill(pid, SIGTERM);
    tu_farm_wait(&r, pid, d);
    free(d);
    cr_expect(listed, "%s", seen);
    if (want == NULL)
        cr_expect_eq(seen[0], '\0', "%s: connected to %s", port, seen);
    else
        cr_expect(strstr(seen, want) != NULL, "%s: connected to '%s', not %s", port, seen, want);
}

Test(nodes, jack_names_and_connections) {
    rig_ready();
    connect_case("farmdefault", NULL, "system:playback_1");
    connect_case("farmnone", "none", NULL);
    connect_case("farmlist", "system:playback_2,system:playback_1", "system:playback_2");
}

Test(nodes, refusals) {
    rig_ready();
    tu_run r;
    const char *env[] = {master_env, NULL};
    tu_farm(&r, (const char *[]){"--node", "node1", "--duration", "1", NULL}, env);
    cr_assert_eq(r.status, 2);
    cr_assert(strstr(r.err, "NAME=URL") != NULL, "%s", r.err);
    tu_farm(&r, (const char *[]){"--node", "a=tcp://127.0.0.1:1", "--null-sink", NULL}, env);
    cr_assert_eq(r.status, 2);
    cr_assert_eq(tu_lines(r.err), 1, "%s", r.err);
    tu_farm(&r, (const char *[]){"--jack-name", "node1", "--duration", "1", NULL}, env);
    cr_assert_eq(r.status, 2, "the name of a running client: %s", r.err);
    cr_assert(strstr(r.err, "node1") != NULL, "%s", r.err);
    tu_farm(&r, (const char *[]){"--connect", "nosuch", "--duration", "1", NULL}, env);
    cr_assert_eq(r.status, 2);
    cr_assert(strstr(r.err, "nosuch") != NULL, "%s", r.err);
    cr_assert_eq(tu_count_tagged(r.tag, NULL), 0);
}
