/* OSC against a running farm (the null sink, paced by the clock): packets built by hand here and
 * sent from a plain UDP or TCP socket, as any OSC client would; each gets /farm/reply with the
 * JSON reply, back on the socket it came from. */
#define _GNU_SOURCE
#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <math.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
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

TestSuite(osc, .init = setup, .fini = teardown, .timeout = 60);

static const char *const env[] = {"ALSA_CONFIG_PATH=" FARM_TESTS_DIR "/alsa-none.conf",
                                  "JACK_NO_START_SERVER=1", NULL};

/* ---- OSC packets, by hand: strings NUL-terminated and padded to 4 bytes, numbers big-endian */

typedef struct packet {
    unsigned char b[8192];
    size_t n;
} packet;

static void put(packet *p, const void *data, size_t n) {
    cr_assert_leq(p->n + n, sizeof p->b);
    memcpy(p->b + p->n, data, n);
    p->n += n;
}

static void put_padded(packet *p, const void *data, size_t n) {
    static const unsigned char zeros[4] = {0};
    put(p, data, n);
    put(p, zeros, (4 - n % 4) % 4);
}

static void put_string(packet *p, const char *s) {
    put_padded(p, s, strlen(s) + 1);
}

static void put_be32(packet *p, uint32_t v) {
    v = htonl(v);
    put(p, &v, 4);
}

static void put_be64(packet *p, uint64_t v) {
    put_be32(p, (uint32_t)(v >> 32));
    put_be32(p, (uint32_t)v);
}

/* A message to path; types as OSC's type tag without the comma: s (char *), f and d (double),
 * i (int), h (int64_t), b (const char *, a blob of its strlen). */
static packet message(const char *path, const char *types, ...) {
    packet p = {.n = 0};
    char tag[64];
    snprintf(tag, sizeof tag, ",%s", types);
    put_string(&p, path);
    put_string(&p, tag);
    va_list ap;
    va_start(ap, types);
    for (const char *t = types; *t; t++) {
        if (*t == 's')
            put_string(&p, va_arg(ap, const char *));
        else if (*t == 'i')
            put_be32(&p, (uint32_t)va_arg(ap, int));
        else if (*t == 'h')
            put_be64(&p, (uint64_t)va_arg(ap, int64_t));
        else if (*t == 'f') {
            float f = (float)va_arg(ap, double);
            uint32_t u;
            memcpy(&u, &f, 4);
            put_be32(&p, u);
        } else if (*t == 'd') {
            double d = va_arg(ap, double);
            uint64_t u;
            memcpy(&u, &d, 8);
            put_be64(&p, u);
        } else if (*t == 'b') {
            const char *s = va_arg(ap, const char *);
            put_be32(&p, (uint32_t)strlen(s));
            put_padded(&p, s, strlen(s));
        }
    }
    va_end(ap);
    return p;
}

/* ---- a farm with --osc, and a client socket ---- */

/* The fixture's farm and a socket to its OSC URL. */
typedef struct farm {
    tf_farm tf;
    int sock;
    int tcp;
} farm;

/* A port free on loopback now, for the given socket type. */
static int free_port(int type) {
    int s = socket(AF_INET, type, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof sa;
    cr_assert_eq(bind(s, (struct sockaddr *)&sa, sizeof sa), 0);
    cr_assert_eq(getsockname(s, (struct sockaddr *)&sa, &len), 0);
    close(s);
    return ntohs(sa.sin_port);
}

/* Starts farm with args (which give --osc) and connects a socket to the OSC URL it reports. */
static void farm_up(farm *f, const char *const *args) {
    memset(f, 0, sizeof *f);
    tf_up(&f->tf, dir, args);
    const char *url = f->tf.osc, *colon = strrchr(url, ':');
    cr_assert(url[0] && colon, "status reports the OSC URL: '%s'", url);
    int port = atoi(colon + 1);
    cr_assert_gt(port, 0, "%s", url);
    f->tcp = strncmp(url, "osc.tcp://", 10) == 0;
    f->sock = socket(AF_INET, f->tcp ? SOCK_STREAM : SOCK_DGRAM, 0);
    /* a hang guard, as the fixture's for its REQ socket */
    struct timeval tv = {.tv_sec = TF_REPLY_TIMEOUT_MS / 1000};
    setsockopt(f->sock, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    cr_assert_eq(connect(f->sock, (struct sockaddr *)&sa, sizeof sa), 0, "connect %s", url);
}

static void recv_all(int fd, void *buf, size_t n) {
    for (size_t got = 0; got < n;) {
        ssize_t k = recv(fd, (char *)buf + got, n - got, 0);
        cr_assert_gt(k, 0, "the reply arrived whole");
        got += (size_t)k;
    }
}

/* Sends a packet (framed by its length over TCP) and returns the JSON of the /farm/reply that
 * comes back (the caller deletes it). */
static cJSON *ask(farm *f, const packet *p) {
    static unsigned char in[1 << 20];
    ssize_t n;
    if (f->tcp) {
        uint32_t len = htonl((uint32_t)p->n);
        cr_assert_eq(send(f->sock, &len, 4, 0), 4);
        cr_assert_eq(send(f->sock, p->b, p->n, 0), (ssize_t)p->n);
        recv_all(f->sock, &len, 4);
        n = (ssize_t)ntohl(len);
        cr_assert_leq((size_t)n, sizeof in);
        recv_all(f->sock, in, (size_t)n);
    } else {
        cr_assert_eq(send(f->sock, p->b, p->n, 0), (ssize_t)p->n);
        n = recv(f->sock, in, sizeof in, 0);
        cr_assert_gt(n, 0, "a reply (within the hang guard)");
    }
    static const char head[] = "/farm/reply\0,s\0\0"; /* the address and ",s", both padded */
    cr_assert_gt(n, (ssize_t)(sizeof head - 1));
    cr_assert_eq(memcmp(in, head, sizeof head - 1), 0, "a /farm/reply with one string");
    const char *json = (const char *)in + sizeof head - 1;
    cr_assert_lt(strnlen(json, (size_t)n - (sizeof head - 1)), (size_t)n - (sizeof head - 1),
                 "the string ends inside the packet");
    cJSON *j = cJSON_Parse(json);
    cr_assert_not_null(j, "the reply is JSON: %s", json);
    return j;
}

static int ok(const cJSON *reply) {
    return cJSON_IsTrue(cJSON_GetObjectItem(reply, "ok"));
}

static const char *error_of(const cJSON *reply) {
    const cJSON *e = cJSON_GetObjectItem(reply, "error");
    return cJSON_IsString(e) ? e->valuestring : "";
}

/* The reply to p is a refusal whose error contains want. */
static void expect_refused(farm *f, const packet *p, const char *want) {
    cJSON *r = ask(f, p);
    char *text = cJSON_PrintUnformatted(r);
    cr_assert(!ok(r), "refused: %s", text);
    cr_assert(strstr(error_of(r), want) != NULL, "the error says '%s': %s", want, text);
    free(text);
    cJSON_Delete(r);
}

static cJSON *expect_ok(farm *f, const packet *p) {
    cJSON *r = ask(f, p);
    char *text = cJSON_PrintUnformatted(r);
    cr_assert(ok(r), "ok: %s", text);
    free(text);
    return r;
}

/* The values of get SEL PARAM, into out (up to max); returns how many. */
static int get_values(farm *f, const char *sel, const char *param, double *out, int max) {
    packet p = message("/farm/get", "ss", sel, param);
    cJSON *r = expect_ok(f, &p);
    const cJSON *v = cJSON_GetObjectItem(r, "values");
    cr_assert(cJSON_IsArray(v));
    int n = 0;
    for (const cJSON *e = v->child; e && n < max; e = e->next)
        out[n++] = e->valuedouble;
    cJSON_Delete(r);
    return n;
}

/* /farm/quit: farm must exit 0 and leave no process (tf_wait_down). */
static void farm_down(farm *f) {
    packet p = message("/farm/quit", "");
    cJSON_Delete(expect_ok(f, &p));
    close(f->sock);
    tf_wait_down(&f->tf);
}

Test(osc, udp_requests_run_as_text_requests_and_get_json_replies) {
    farm f;
    char url[64];
    snprintf(url, sizeof url, "osc.udp://127.0.0.1:%d", free_port(SOCK_DGRAM));
    /* --osc is its own option and --osci still abbreviates --oscillator */
    farm_up(&f, (const char *[]){"--workers", "2", "--voices", "4", "--osc", url, "--osci", "sine",
                                 NULL});
    cr_assert_str_eq(f.tf.osc, url);

    packet p = message("/farm/status", "");
    cJSON *st = expect_ok(&f, &p);
    const cJSON *cfg = cJSON_GetObjectItem(st, "config");
    cr_assert_str_eq(cJSON_GetObjectItem(cfg, "osc")->valuestring, url);
    cr_assert_str_eq(cJSON_GetObjectItem(cfg, "oscillator")->valuestring, "sine");
    cJSON_Delete(st);

    /* several numbers after the parameter are a list: set 0-3 freq 110,220,330,440 */
    p = message("/farm/set", "ssffff", "0-3", "freq", 110.0, 220.0, 330.0, 440.0);
    cJSON_Delete(expect_ok(&f, &p));
    double v[8];
    cr_assert_eq(get_values(&f, "0-3", "freq", v, 8), 4);
    for (int i = 0; i < 4; i++)
        cr_assert_float_eq(v[i], 110.0 * (i + 1), 1e-9, "voice %d: %g", i, v[i]);
    /* one number, then words: set 4-7 freq 440 ramp 2; doubles and ints read as they were */
    p = message("/farm/set", "ssdsi", "4-7", "freq", 523.25, "ramp", 2);
    cJSON *r = expect_ok(&f, &p);
    cr_assert_str_eq(cJSON_GetObjectItem(r, "applied")->valuestring, "freq 523.25");
    cr_assert_float_eq(cJSON_GetObjectItem(r, "ramp_s")->valuedouble, 2.0, 1e-12);
    cJSON_Delete(r);
    cr_assert_eq(get_values(&f, "4-7", "freq", v, 8), 4);
    for (int i = 0; i < 4; i++)
        cr_assert_float_eq(v[i], 523.25, 1e-9);
    p = message("/farm/set", "ish", 5, "freq", (int64_t)300); /* set 5 freq 300 */
    cJSON_Delete(expect_ok(&f, &p));
    cr_assert_eq(get_values(&f, "5", "freq", v, 8), 1);
    cr_assert_float_eq(v[0], 300.0, 1e-9);
    p = message("/farm/gain", "f", 0.5);
    r = expect_ok(&f, &p);
    cr_assert_str_eq(cJSON_GetObjectItem(r, "applied")->valuestring, "gain 0.5");
    cJSON_Delete(r);

    /* refusals: the parser's, and OSC's own; the farm goes on answering */
    p = message("/farm/set", "ssf", "all", "freq", 1e9);
    expect_refused(&f, &p, "out of range");
    p = message("/farm/bogus", "");
    expect_refused(&f, &p, "unknown command 'bogus'");
    p = message("/other/status", "");
    expect_refused(&f, &p, "/farm/COMMAND");
    p = message("/farm/set", "ssb", "all", "freq", "blob");
    expect_refused(&f, &p, "blob");
    p = message("/farm/set", "sss", "all", "freq", "440 ramp 1");
    expect_refused(&f, &p, "one word");
    p = (packet){.n = 0};
    put_string(&p, "#bundle");
    put_be64(&p, 1);
    expect_refused(&f, &p, "bundles");
    p = (packet){.b = "xyz", .n = 3};
    expect_refused(&f, &p, "not an OSC message");
    cr_assert_eq(get_values(&f, "0-3", "freq", v, 8), 4, "the farm still answers");
    cr_assert_float_eq(v[3], 440.0, 1e-9, "and nothing refused changed anything");
    farm_down(&f);
}

Test(osc, tcp_with_port_0_reports_its_port_and_frames_replies) {
    farm f;
    farm_up(&f, (const char *[]){"--workers", "1", "--voices", "8", "--osc",
                                 "osc.tcp://localhost:0", NULL});
    cr_assert_eq(strncmp(f.tf.osc, "osc.tcp://localhost:", 20), 0, "%s", f.tf.osc);
    cr_assert_neq(strcmp(f.tf.osc, "osc.tcp://localhost:0"), 0, "%s", f.tf.osc);
    packet p = message("/farm/set", "ssiii", "0-2", "amp", 0, 1, 0);
    cJSON_Delete(expect_ok(&f, &p));
    double v[8];
    cr_assert_eq(get_values(&f, "0-2", "amp", v, 8), 3);
    cr_assert(v[0] == 0 && v[1] == 1 && v[2] == 0, "%g %g %g", v[0], v[1], v[2]);
    p = message("/farm/status", "");
    cJSON_Delete(expect_ok(&f, &p));
    farm_down(&f);
}

/* Runs farm with args that must be refused: exit 2, one line containing want, nothing left. */
static void expect_usage_error(const char *const *args, const char *want) {
    tu_run r;
    tu_farm(&r, args, env);
    cr_assert_eq(r.status, 2, "exit 2: %s", r.err);
    cr_assert_eq(tu_lines(r.err), 1, "one line: %s", r.err);
    cr_assert(strstr(r.err, want) != NULL, "it says '%s': %s", want, r.err);
    cr_assert_eq(tu_count_tagged(r.tag, NULL), 0, "nothing left");
}

Test(osc, exposed_bad_and_taken_urls_are_refused_in_one_line) {
    char url[64];
    int port = free_port(SOCK_DGRAM);
    snprintf(url, sizeof url, "osc.udp://0.0.0.0:%d", port);
    expect_usage_error((const char *[]){"--null-sink", "--duration", "1", "--osc", url, NULL},
                       "--listen-anywhere");
    snprintf(url, sizeof url, "osc.tcp://:%d", port);
    expect_usage_error((const char *[]){"--null-sink", "--duration", "1", "--osc", url, NULL},
                       "--listen-anywhere");
    expect_usage_error((const char *[]){"--null-sink", "--duration", "1", "--osc", "bogus", NULL},
                       "is not a URL");
    expect_usage_error(
        (const char *[]){"--null-sink", "--duration", "1", "--osc", "http://127.0.0.1:1", NULL},
        "unknown scheme 'http'");
    expect_usage_error(
        (const char *[]){"--null-sink", "--duration", "1", "--osc", "osc.udp://127.0.0.1", NULL},
        "give a port");
    expect_usage_error((const char *[]){"--null-sink", "--duration", "1", "--osc",
                                        "osc.udp://127.0.0.1:70000", NULL},
                       "0 to 65535");
    expect_usage_error((const char *[]){"--null-sink", "--osc", NULL}, "--osc needs a value");

    /* a port someone holds */
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof sa;
    cr_assert_eq(bind(s, (struct sockaddr *)&sa, sizeof sa), 0);
    cr_assert_eq(getsockname(s, (struct sockaddr *)&sa, &len), 0);
    snprintf(url, sizeof url, "osc.udp://127.0.0.1:%d", ntohs(sa.sin_port));
    expect_usage_error((const char *[]){"--null-sink", "--duration", "1", "--osc", url, NULL},
                       "in use");
    close(s);
}

Test(osc, the_oscillator_option_is_unchanged) {
    tu_run r;
    tu_farm(&r,
            (const char *[]){"--null-sink", "--duration", "0.2", "--workers", "1", "--voices", "1",
                             "--oscillator", "sine", NULL},
            env);
    cr_assert_eq(r.status, 0, "%s", r.err);
    tu_farm(&r,
            (const char *[]){"--null-sink", "--duration", "0.2", "--workers", "1", "--voices", "1",
                             "--osci", "bogus", NULL},
            env);
    cr_assert_eq(r.status, 2, "%s", r.err);
    cr_assert(strstr(r.err, "--oscillator: 'bogus'") != NULL, "%s", r.err);
}

/* A farm of voices 1000-1003 (--first-voice): OSC names them by those numbers, as text does. */
Test(osc, a_farm_from_first_voice_k_takes_global_numbers) {
    farm f;
    char url[64];
    snprintf(url, sizeof url, "osc.udp://127.0.0.1:%d", free_port(SOCK_DGRAM));
    farm_up(&f, (const char *[]){"--workers", "2", "--total-voices", "4", "--first-voice", "1000",
                                 "--osc", url, NULL});
    packet p = message("/farm/set", "ssffff", "1000-1003", "freq", 110.0, 220.0, 330.0, 440.0);
    cJSON_Delete(expect_ok(&f, &p));
    p = message("/farm/set", "isi", 1002, "freq", 300); /* an int selector: set 1002 freq 300 */
    cJSON_Delete(expect_ok(&f, &p));
    double v[8];
    cr_assert_eq(get_values(&f, "all", "freq", v, 8), 4);
    cr_assert(v[0] == 110 && v[1] == 220 && v[2] == 300 && v[3] == 440, "%g %g %g %g", v[0], v[1],
              v[2], v[3]);
    p = message("/farm/set", "isi", 3, "freq", 300);
    expect_refused(&f, &p, "voice 3 is not on this farm (it has voices 1000-1003)");
    farm_down(&f);
}
