/* Control at scale against a running farm (the null sink) over real NNG sockets: values read
 * back with get for every form, a change aimed at one block heard in the same sample on every
 * worker, a batch applied whole or not at all, replies that do not wait for the workers, and a
 * full queue waited for (then busy) while other clients are served. */
#define _GNU_SOURCE
#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <math.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testfarm.h"
#include "testutil.h"

static char dir[256];

static void setup(void) {
    tu_tmpdir(dir, sizeof dir);
}

static void teardown(void) {
    tu_farm_cleanup();
    tu_rmdir(dir);
}

TestSuite(scale, .init = setup, .fini = teardown, .timeout = 60);

/* get SEL PARAM's values, as doubles */
static int get_values(tf_farm *f, const char *sel, const char *param, double *out, int max) {
    char text[128];
    snprintf(text, sizeof text, "get %s %s", sel, param);
    cJSON *r = tf_ask_ok(f, text);
    cJSON *v, *values = cJSON_GetObjectItem(r, "values");
    int n = 0;
    cJSON_ArrayForEach(v, values) {
        if (n < max)
            out[n] = cJSON_IsBool(v) ? (double)cJSON_IsTrue(v) : v->valuedouble;
        n++;
    }
    cJSON_Delete(r);
    return n;
}

Test(scale, every_form_of_set_is_read_back_by_get) {
    tf_farm f;
    tf_up(&f, dir, (const char *[]){"--workers", "3", "--total-voices", "40", NULL});
    double v[64];
    tf_expect_ok(&f, "set 5 freq 500 ramp 0");
    cr_assert_eq(get_values(&f, "5", "freq", v, 64), 1);
    cr_assert_float_eq(v[0], 500, 1e-3);
    /* a list over a range that crosses workers (13, 13 and 14 voices) */
    tf_expect_ok(&f, "set 11-15 amp 0.01,0.02,0.03,0.04,0.05");
    cr_assert_eq(get_values(&f, "11-15", "amp", v, 64), 5);
    for (int k = 0; k < 5; k++)
        cr_assert_float_eq(v[k], 0.01 * (k + 1), 1e-6, "amp %d: %g", k, v[k]);
    tf_expect_ok(&f, "set all freq lin 100 490");
    cr_assert_eq(get_values(&f, "all", "freq", v, 64), 40);
    for (int k = 0; k < 40; k++)
        cr_assert_float_eq(v[k], 100 + 10 * k, 1e-3, "lin %d: %g", k, v[k]);
    tf_expect_ok(&f, "set 0-3 freq exp 100 800");
    get_values(&f, "0-3", "freq", v, 64);
    for (int k = 0; k < 4; k++)
        cr_assert_float_eq(v[k], 100 * pow(2, k), 1e-3, "exp %d: %g", k, v[k]);
    tf_expect_ok(&f, "set worker:1 freq harmonic 55 ramp 0.1");
    cr_assert_eq(get_values(&f, "worker:1", "freq", v, 64), 13);
    for (int k = 0; k < 13; k++)
        cr_assert_float_eq(v[k], 55.0 * (k + 1), 1e-3, "harmonic %d: %g", k, v[k]);
    /* setv: 40 float32s, little-endian */
    char msg[256];
    int n = snprintf(msg, sizeof msg, "setv all pan ramp 0\n");
    for (int k = 0; k < 40; k++) {
        float p = (float)(k % 5) * 0.25f;
        uint32_t bits;
        memcpy(&bits, &p, 4);
        for (int b = 0; b < 4; b++)
            msg[n++] = (char)(bits >> (8 * b));
    }
    cJSON *r = tf_ask_bytes(&f, msg, (size_t)n);
    cr_assert(cJSON_IsTrue(cJSON_GetObjectItem(r, "ok")));
    cJSON_Delete(r);
    cr_assert_eq(get_values(&f, "all", "pan", v, 64), 40);
    for (int k = 0; k < 40; k++)
        cr_assert_float_eq(v[k], (k % 5) * 0.25, 1e-7, "pan %d: %g", k, v[k]);
    tf_expect_ok(&f, "voice 2-4 stop ramp 0");
    get_values(&f, "0-5", "playing", v, 64);
    cr_assert(v[0] == 1 && v[1] == 1 && v[2] == 0 && v[3] == 0 && v[4] == 0 && v[5] == 1);
    tf_down(&f);
}

Test(scale, a_batch_with_one_bad_line_changes_nothing_and_a_good_one_lands_in_one_block) {
    tf_farm f;
    tf_up(&f, dir, (const char *[]){"--workers", "2", "--total-voices", "10", NULL});
    double before[10], after[10];
    get_values(&f, "all", "amp", before, 10);
    cJSON *r = tf_ask(&f, "set 0 amp 0.1\nset 9 amp 0.2\nset 5 amp 7\n");
    cr_assert(cJSON_IsFalse(cJSON_GetObjectItem(r, "ok")));
    cr_assert(strstr(cJSON_GetObjectItem(r, "error")->valuestring, "line 3") != NULL);
    cJSON_Delete(r);
    get_values(&f, "all", "amp", after, 10);
    cr_assert_eq(memcmp(before, after, sizeof before), 0, "nothing changed");
    r = tf_ask_ok(&f, "set 0 amp 0.1\nset 9 amp 0.2\nvoice 4 stop ramp 0\ngain 0.9\nget 0-1 amp");
    cJSON *results = cJSON_GetObjectItem(r, "results");
    cr_assert_eq(cJSON_GetArraySize(results), 5);
    double block = cJSON_GetObjectItem(r, "from_block")->valuedouble;
    for (int i = 0; i < 4; i++) /* worker 0 holds voice 0, worker 1 voice 9: one block */
        cr_assert_eq(cJSON_GetObjectItem(cJSON_GetArrayItem(results, i), "from_block")->valuedouble,
                     block, "line %d in block %g", i + 1, block);
    cJSON_Delete(r);
    get_values(&f, "all", "amp", after, 10);
    cr_assert_float_eq(after[0], 0.1, 1e-7);
    cr_assert_float_eq(after[9], 0.2, 1e-7);
    tf_down(&f);
}

Test(scale, at_b_is_refused_when_too_soon_with_the_earliest_block) {
    tf_farm f;
    tf_up(&f, dir, (const char *[]){"--workers", "2", "--voices", "5", NULL});
    cJSON *r = tf_ask(&f, "set all amp 0.001 at 1");
    cr_assert(cJSON_IsFalse(cJSON_GetObjectItem(r, "ok")));
    const char *e = cJSON_GetObjectItem(r, "error")->valuestring;
    cr_assert(strstr(e, "too soon") && strstr(e, "the earliest is"), "%s", e);
    cJSON_Delete(r);
    tf_down(&f);
}

/* The first frame from which channel c is exactly 0 to the end of the span. */
static int64_t silent_from(const tu_audio *a, int c, int64_t from, int64_t to) {
    int64_t first = to;
    for (int64_t i = to - 1; i >= from && a->data[i * a->channels + c] == 0.0f; i--)
        first = i;
    return first;
}

/* Sends line "at B" for a block B 40 blocks ahead of the stream, and returns B. Should this
 * machine stall the test so long between reading the block and asking that B is too soon, the
 * farm refuses it, naming the earliest block it can reach: B is chosen again from there, so the
 * outcome does not depend on the machine's speed (the tries bound only a farm that keeps
 * refusing). */
static double aim_at(tf_farm *f, const char *line) {
    double b = tf_stream_block(f) + 40;
    for (int tries = 0; tries < 20; tries++) {
        char text[128];
        snprintf(text, sizeof text, "%s at %.0f", line, b);
        cJSON *r = tf_ask(f, text);
        if (tf_ok(r)) {
            cr_assert_eq(tf_item(r, "from_block")->valuedouble, b, "'%s' lands in block %g", text,
                         b);
            cJSON_Delete(r);
            return b;
        }
        const char *e = cJSON_GetStringValue(tf_item(r, "error"));
        const char *earliest = e ? strstr(e, "the earliest is ") : NULL;
        cr_assert_not_null(earliest, "'%s' is refused only as too soon: %s", text, e ? e : "");
        b = strtod(earliest + 16, NULL) + 40;
        cJSON_Delete(r);
    }
    cr_assert_fail("'%s at B' was too soon 20 times", line);
    return 0;
}

Test(scale, a_change_aimed_at_block_b_lands_in_the_same_sample_on_every_worker) {
    tf_farm f;
    const char *rec = tu_path(dir, "at.wav");
    /* voice 0 (worker 0) plays left, voice 1 (worker 1) right */
    tf_up(&f, dir,
          (const char *[]){"--workers", "2", "--total-voices", "2", "--amp", "0.5", "--feedback",
                           "0", "--record", rec, NULL});
    double b = aim_at(&f, "set all amp 0 ramp 0");
    tf_wait_block(&f, b + 50);
    tf_down(&f);
    tu_audio a;
    cr_assert_eq(tu_read(rec, &a), 0);
    int64_t at = (int64_t)b * 256, span_end = at + 40 * 256;
    cr_assert_lt(span_end, a.frames);
    for (int c = 0; c < 2; c++) {
        int64_t from = silent_from(&a, c, at - 4 * 256, span_end);
        cr_assert_eq(from, at, "channel %d falls silent at frame %lld, block %g starts at %lld", c,
                     (long long)from, b, (long long)at);
        cr_assert_gt(fabsf(a.data[(at - 1) * 2 + c]) + fabsf(a.data[(at - 2) * 2 + c]), 1e-3,
                     "channel %d played up to that sample", c);
    }
    tu_audio_free(&a);
}

static double number(const cJSON *o, const char *name) {
    const cJSON *v = cJSON_GetObjectItem(o, name);
    cr_assert(cJSON_IsNumber(v), "a number '%s'", name);
    return v->valuedouble;
}

static int is_busy(const cJSON *r) {
    const cJSON *e = cJSON_GetObjectItem(r, "error");
    return cJSON_IsFalse(cJSON_GetObjectItem(r, "ok")) && cJSON_IsString(e) &&
           strncmp(e->valuestring, "busy:", 5) == 0;
}

/* Judged by farm's own clock, its blocks, not by this machine's speed. Requests sent back to back
 * (faster than the blocks go by, on a fast machine) all apply: one that finds a queue full waits
 * for room. And a reply is built before its change is applied: changes aimed 4000 blocks (21 s)
 * ahead are all answered while the stream is still short of that block. */
Test(scale, replies_do_not_wait_for_the_workers) {
    tf_farm f;
    tf_up(&f, dir, (const char *[]){"--workers", "2", "--voices", "100", NULL});
    for (int i = 0; i < 600; i++) {
        cJSON *r = tf_ask(&f, i % 2 ? "set all amp 0.001" : "set all amp 0.002");
        char *s = cJSON_PrintUnformatted(r);
        cr_assert(cJSON_IsTrue(cJSON_GetObjectItem(r, "ok")), "request %d: %s", i, s);
        free(s);
        cJSON_Delete(r);
    }
    double b = tf_stream_block(&f) + 4000;
    char text[96];
    for (int i = 0; i < 100; i++) {
        snprintf(text, sizeof text, "set 0 amp 0.%03d ramp 0 at %.0f", i + 1, b);
        cJSON *r = tf_ask_ok(&f, text);
        cr_assert_eq(number(r, "from_block"), b);
        cr_assert_geq(number(r, "latency_blocks"), 1);
        cJSON_Delete(r);
    }
    double now = tf_stream_block(&f);
    cr_assert_lt(now, b, "all 100 replies came before block %g; the stream is at %g", b, now);
    double v;
    get_values(&f, "0", "amp", &v, 1); /* the shadow has it already */
    cr_assert_float_eq(v, 0.1, 1e-6);
    tf_down(&f);
}

/* A reply on sock, waiting up to 5 s (wait) or not at all: NULL when none came. */
static cJSON *reply_on(nng_socket sock, int wait) {
    char *buf = NULL;
    size_t size = 0;
    int rv = nng_recv(sock, &buf, &size, NNG_FLAG_ALLOC | (wait ? 0 : NNG_FLAG_NONBLOCK));
    if (!wait && rv == NNG_EAGAIN)
        return NULL;
    cr_assert_eq(rv, 0, "a reply: %s", nng_strerror(rv));
    cJSON *j = cJSON_ParseWithLength(buf, size);
    nng_free(buf, size);
    cr_assert_not_null(j);
    return j;
}

static double requests_waiting(tf_farm *f) {
    cJSON *st = tf_ask_ok(f, "status");
    double n = number(cJSON_GetObjectItem(st, "stream"), "requests_waiting");
    cJSON_Delete(st);
    return n;
}

/* Worker 0 stopped with SIGSTOP takes no commands: once its queue is full, client A's set waits
 * for room, and is refused as busy after the bound (1 s). Judged by the order of replies, not by
 * the speed of this machine: while A waits, as status says, another client is answered, and so
 * is a change that only worker 1 plays. */
Test(scale, a_full_queue_is_waited_for_then_busy_and_other_clients_go_on) {
    tf_farm f;
    tf_up(&f, dir, (const char *[]){"--workers", "2", "--voices", "10", "--watchdog", "0", NULL});
    cJSON *st = tf_ask_ok(&f, "status");
    pid_t w0 = (pid_t)number(cJSON_GetArrayItem(cJSON_GetObjectItem(st, "workers"), 0), "pid");
    cJSON_Delete(st);
    pid_t kids[8];
    int n = tu_children(f.pid, "farm-worker", kids, 8), ours = 0;
    for (int i = 0; i < n; i++)
        ours |= kids[i] == w0;
    cr_assert(ours, "worker 0 (pid %d) is this farm's", (int)w0);
    cr_assert_eq(kill(w0, SIGSTOP), 0);
    for (int i = 0; i < 256; i++) /* its queue's 256 commands */
        cJSON_Delete(tf_ask_ok(&f, "set 0 amp 0.001"));
    nng_socket a;
    cr_assert_eq(nng_req0_open(&a), 0);
    nng_socket_set_ms(a, NNG_OPT_RECVTIMEO, 5000);
    cr_assert_eq(nng_dial(a, f.control, NULL, 0), 0);
    const char *set = "set 0 amp 0.5";
    cr_assert_eq(nng_send(a, (void *)set, strlen(set), 0), 0);
    double sent = tu_seconds();
    /* another client sees A wait; a machine stalled past A's bound just has A sent again */
    for (int tries = 0; requests_waiting(&f) < 1;) {
        cJSON *r = reply_on(a, 0);
        if (r == NULL)
            continue;
        cr_assert(is_busy(r));
        cJSON_Delete(r);
        cr_assert_lt(++tries, 5, "status never saw the request wait");
        cr_assert_eq(nng_send(a, (void *)set, strlen(set), 0), 0);
        sent = tu_seconds();
    }
    cJSON_Delete(tf_ask_ok(&f, "set 15 amp 0.002")); /* worker 1's: applied meanwhile */
    double v;
    get_values(&f, "0", "amp", &v, 1);
    cr_assert_float_eq(v, 0.001, 1e-7, "A's change is not applied");
    cJSON *r = reply_on(a, 1);
    double waited = tu_seconds() - sent;
    char *s = cJSON_PrintUnformatted(r);
    cr_assert(is_busy(r), "%s", s);
    free(s);
    cJSON_Delete(r);
    cr_assert_geq(waited, 0.99, "refused after %.3f s, not after the bound", waited);
    cr_assert_eq(requests_waiting(&f), 0);
    get_values(&f, "0", "amp", &v, 1);
    cr_assert_float_eq(v, 0.001, 1e-7, "a busy request changes nothing");
    cr_assert_eq(kill(w0, SIGCONT), 0);
    cJSON_Delete(tf_ask_ok(&f, set)); /* the worker takes commands again: room comes */
    nng_close(a);
    tf_down(&f);
}
