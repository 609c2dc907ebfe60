#define _GNU_SOURCE
#include "testfarm.h"

#include <criterion/criterion.h>
#include <nng/protocol/reqrep0/req.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* How long a farm may take to print its control URL: a hang guard, generous because a loaded
 * machine (sanitizers, other tests) starts the farm and its workers slowly. */
#define TF_START_WAIT_S 30

static int exited(pid_t pid) {
    siginfo_t info = {0};
    return waitid(P_PID, (id_t)pid, &info, WEXITED | WNOHANG | WNOWAIT) == 0 && info.si_pid == pid;
}

static void copy_string(char *out, size_t size, const cJSON *s) {
    snprintf(out, size, "%s", cJSON_IsString(s) ? s->valuestring : "");
}

/* The URLs and the clock's units, from status's config. */
static void read_config(tf_farm *f) {
    cJSON *st = tf_ask_ok(f, "status");
    const cJSON *cfg = tf_item(st, "config");
    copy_string(f->telemetry, sizeof f->telemetry, tf_item(cfg, "telemetry"));
    copy_string(f->osc, sizeof f->osc, tf_item(cfg, "osc"));
    f->sample_rate = tf_item(cfg, "sample_rate")->valuedouble;
    f->block_frames = tf_item(cfg, "buffersize")->valuedouble;
    cJSON_Delete(st);
}

void tf_up_with(tf_farm *f, const char *dir, const char *const *args, const tf_options *o) {
    memset(f, 0, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "%s", dir);
    const char *env[16] = {"ALSA_CONFIG_PATH=" FARM_TESTS_DIR "/alsa-none.conf",
                           "JACK_NO_START_SERVER=1"};
    int e = 2;
    for (int i = 0; o->env != NULL && o->env[i] != NULL && e < 15; i++)
        env[e++] = o->env[i];
    char ring[16];
    snprintf(ring, sizeof ring, "%d", o->ring_blocks > 0 ? o->ring_blocks : 16);
    const char *all[64] = {"--null-sink", "--ring-blocks", ring};
    int n = 3;
    for (int i = 0; args[i] != NULL && n < 63; i++)
        all[n++] = args[i];
    f->pid = tu_farm_start(&f->run, f->dir, all, env);
    int up = 0;
    for (double end = tu_seconds() + TF_START_WAIT_S; !up && tu_seconds() < end;) {
        up = tu_wait_control_url(f->dir, f->control, sizeof f->control);
        if (!up && exited(f->pid)) {
            tu_farm_wait(&f->run, f->pid, f->dir);
            cr_assert_fail("farm exited %d before printing its control URL: %s", f->run.status,
                           f->run.err);
        }
    }
    cr_assert(up, "farm printed its control URL within %d s", TF_START_WAIT_S);
    cr_assert_eq(nng_req0_open(&f->req), 0);
    nng_socket_set_ms(f->req, NNG_OPT_RECVTIMEO, TF_REPLY_TIMEOUT_MS);
    nng_socket_set_ms(f->req, NNG_OPT_SENDTIMEO, TF_REPLY_TIMEOUT_MS);
    int rv = nng_dial(f->req, f->control, NULL, 0);
    cr_assert_eq(rv, 0, "dial %s: %s", f->control, nng_strerror(rv));
    read_config(f);
}

void tf_up(tf_farm *f, const char *dir, const char *const *args) {
    tf_up_with(f, dir, args, &(tf_options){0});
}

cJSON *tf_ask_bytes(tf_farm *f, const void *msg, size_t len) {
    int rv = nng_send(f->req, (void *)msg, len, 0);
    cr_assert_eq(rv, 0, "the request is sent: %s", nng_strerror(rv));
    char *buf = NULL;
    size_t size = 0;
    rv = nng_recv(f->req, &buf, &size, NNG_FLAG_ALLOC);
    cr_assert_eq(rv, 0, "a reply: %s", nng_strerror(rv));
    cJSON *j = cJSON_ParseWithLength(buf, size);
    cr_assert_not_null(j, "the reply is JSON: %.*s", (int)size, buf);
    nng_free(buf, size);
    return j;
}

cJSON *tf_ask(tf_farm *f, const char *line) {
    return tf_ask_bytes(f, line, strlen(line));
}

int tf_ok(const cJSON *reply) {
    return cJSON_IsTrue(cJSON_GetObjectItem(reply, "ok"));
}

cJSON *tf_ask_ok(tf_farm *f, const char *line) {
    cJSON *r = tf_ask(f, line);
    char *text = cJSON_PrintUnformatted(r);
    cr_assert(tf_ok(r), "'%s' -> %s", line, text);
    free(text);
    return r;
}

void tf_expect_ok(tf_farm *f, const char *line) {
    cJSON_Delete(tf_ask_ok(f, line));
}

void tf_expect_refused(tf_farm *f, const char *line, const char *want) {
    cJSON *r = tf_ask(f, line);
    const cJSON *e = cJSON_GetObjectItem(r, "error");
    char *text = cJSON_PrintUnformatted(r);
    cr_assert(!tf_ok(r) && cJSON_IsString(e), "'%s' is refused: %s", line, text);
    cr_assert(strstr(e->valuestring, want) != NULL, "'%s': '%s' does not say '%s'", line,
              e->valuestring, want);
    free(text);
    cJSON_Delete(r);
}

cJSON *tf_item(const cJSON *o, const char *name) {
    cJSON *i = cJSON_GetObjectItem(o, name);
    cr_assert_not_null(i, "the reply has '%s'", name);
    return i;
}

tf_stream tf_stream_now(tf_farm *f) {
    cJSON *st = tf_ask_ok(f, "status");
    const cJSON *s = tf_item(st, "stream");
    tf_stream t = {.block = tf_item(s, "block")->valuedouble,
                   .seconds = tf_item(s, "seconds")->valuedouble,
                   .callbacks = tf_item(s, "callbacks")->valuedouble};
    t.frames = t.seconds * f->sample_rate;
    cJSON_Delete(st);
    return t;
}

double tf_stream_block(tf_farm *f) {
    return tf_stream_now(f).block;
}

double tf_played_frames(tf_farm *f) {
    return tf_stream_now(f).frames;
}

void tf_wait_played(tf_farm *f, double frames) {
    double end = tu_seconds() + TF_STREAM_WAIT_S, now = 0;
    while ((now = tf_played_frames(f)) < frames && tu_seconds() < end)
        usleep(20000);
    cr_assert_geq(now, frames, "the stream played %g frames of %g within %d s", now, frames,
                  TF_STREAM_WAIT_S);
}

void tf_wait_block(tf_farm *f, double block) {
    double end = tu_seconds() + TF_STREAM_WAIT_S, now = 0;
    while ((now = tf_stream_block(f)) < block && tu_seconds() < end)
        usleep(20000);
    cr_assert_geq(now, block, "the stream reached block %g (at %g) within %d s", block, now,
                  TF_STREAM_WAIT_S);
}

void tf_down(tf_farm *f) {
    tf_expect_ok(f, "quit");
    tf_wait_down(f);
}

/* The farm's line "farm: control URL  telemetry URL[  osc URL]" names what status reported. */
static void expect_announced(const tf_farm *f) {
    char line[2048];
    snprintf(line, sizeof line, "control %s  telemetry %s%s%s\n", f->control, f->telemetry,
             f->osc[0] ? "  osc " : "", f->osc);
    cr_assert(strstr(f->run.err, line) != NULL, "farm announced '%s': %s", line, f->run.err);
}

void tf_wait_down(tf_farm *f) {
    nng_close(f->req);
    tu_farm_wait(&f->run, f->pid, f->dir);
    cr_assert_eq(f->run.status, 0, "status %d: %s", f->run.status, f->run.err);
    cr_assert_eq(tu_count_tagged(f->run.tag, NULL), 0, "no process of the farm is left");
    const char *urls[] = {f->control, f->telemetry};
    for (int i = 0; i < 2; i++)
        if (strncmp(urls[i], "ipc://", 6) == 0)
            cr_assert_neq(access(urls[i] + 6, F_OK), 0, "%s is removed", urls[i] + 6);
    expect_announced(f);
}
