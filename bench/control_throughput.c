/* control_throughput MODE --url URL [...] — how much control a playing farm takes, and how
 * exactly it lands. Each mode prints markdown table rows (the script prints the headers) and,
 * with --raw FILE, appends its raw runs to FILE.
 *
 *   rtt   [--seconds 3] [--label L]  sequential round trips from one client, `set 0 amp 0.001`
 *                                    alternating with 0.002: requests per second, median, p99
 *                                    and max round trip; busy refusals counted
 *   setv  [--reps 10] [--stopped]    `setv all amp` with a new float32 per voice, reps times:
 *                                    message size, round trip, blocks from the stream block at
 *                                    the request to from_block, time to apply (that many block
 *                                    periods plus the round trip), and a check: every worker in
 *                                    the one reply, and a batch of `get` lines reading a few
 *                                    voices back exactly (and after the last rep, every voice);
 *                                    late blocks meanwhile. --stopped: `voice all stop` first,
 *                                    so that rendering takes no CPU from the control path
 *   at    --record FILE [--reps 5]   `set all amp 0 ramp 0 at B`, B = stream.block + 20, each
 *                                    after `set all amp 0.5 ramp 0`; then FILE (farm's
 *                                    --record, read while farm plays) is searched per channel
 *                                    for the first sample from which the channel stays silent;
 *                                    it must be B * buffersize
 *   free-port                        prints a TCP port on 127.0.0.1 that nobody listens on now
 *
 * Exit status 0 when every check holds, 1 when one fails or farm is not reached, 2 bad usage. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <math.h>
#include <netinet/in.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <sndfile.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* Below this a recorded sample counts as silent: with equal-power panning a voice panned hard
 * right still leaves amp * cos(pi/2) = 3e-17 of itself on the left, so the left channel is
 * never exactly 0 while worker 1's voice sounds. Far below any sample of a sounding sine. */
#define SILENT 1e-9

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double pct(double *v, size_t n, double p) {
    size_t i = (size_t)(p / 100.0 * (double)(n - 1) + 0.5);
    return v[i < n ? i : n - 1];
}

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void sleep_ms(double ms) {
    struct timespec ts = {.tv_sec = (time_t)(ms / 1e3), .tv_nsec = (long)(fmod(ms, 1e3) * 1e6)};
    nanosleep(&ts, NULL);
}

__attribute__((format(printf, 1, 2))) static _Noreturn void die(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "control_throughput: ");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

/* ---- one socket, requests and replies ---- */

static nng_socket sock;

/* Dials url, retrying for up to 10 s while farm starts. */
static void connect_to(const char *url) {
    int rv = nng_req0_open(&sock);
    if (rv != 0)
        die("%s: %s", url, nng_strerror(rv));
    double t0 = now_ms();
    while ((rv = nng_dial(sock, url, NULL, 0)) != 0) {
        if (now_ms() - t0 > 10e3)
            die("%s: %s", url, nng_strerror(rv));
        sleep_ms(20);
    }
    nng_socket_set_ms(sock, NNG_OPT_RECVTIMEO, 10000);
    nng_socket_set_size(sock, NNG_OPT_RECVMAXSZ, 0); /* `get all` on 100,000 voices: ~2 MB */
}

/* Sends len bytes and returns the reply as a NUL-terminated string (free it). */
static char *request(const void *msg, size_t len, double *rtt_ms) {
    char *buf = NULL;
    size_t size = 0;
    double t0 = now_ms();
    int rv;
    if ((rv = nng_send(sock, (void *)(uintptr_t)msg, len, 0)) != 0 ||
        (rv = nng_recv(sock, &buf, &size, NNG_FLAG_ALLOC)) != 0)
        die("request: %s", nng_strerror(rv));
    if (rtt_ms)
        *rtt_ms = now_ms() - t0;
    char *text = strndup(buf, size);
    nng_free(buf, size);
    return text;
}

/* A request whose reply must say "ok":true; returns the parsed reply (cJSON_Delete it). */
static cJSON *request_ok(const void *msg, size_t len, double *rtt_ms) {
    char *text = request(msg, len, rtt_ms);
    cJSON *j = cJSON_Parse(text);
    if (j == NULL || !cJSON_IsTrue(cJSON_GetObjectItem(j, "ok")))
        die("unexpected reply to '%.*s': %s", (int)strcspn(msg, "\n"), (const char *)msg, text);
    free(text);
    return j;
}

static double number_at(cJSON *j, const char *a, const char *b) {
    cJSON *o = cJSON_GetObjectItem(j, a);
    if (b != NULL)
        o = cJSON_GetObjectItem(o, b);
    if (!cJSON_IsNumber(o))
        die("the reply has no number %s%s%s", a, b ? "." : "", b ? b : "");
    return o->valuedouble;
}

typedef struct farm_info {
    uint64_t block;       /* stream.block: the block that plays next */
    uint64_t late_blocks; /* stream.late_blocks: blocks some worker did not have ready */
    uint32_t voices, buffersize;
    double sample_rate, block_ms;
} farm_info;

static farm_info status(void) {
    const char *s = "status";
    cJSON *j = request_ok(s, strlen(s), NULL);
    farm_info f = {.block = (uint64_t)number_at(j, "stream", "block"),
                   .late_blocks = (uint64_t)number_at(j, "stream", "late_blocks"),
                   .voices = (uint32_t)number_at(j, "config", "voices"),
                   .buffersize = (uint32_t)number_at(j, "config", "buffersize"),
                   .sample_rate = number_at(j, "config", "sample_rate")};
    f.block_ms = 1e3 * f.buffersize / f.sample_rate;
    cJSON_Delete(j);
    return f;
}

static void wait_for_block(uint64_t block) {
    double t0 = now_ms();
    while (status().block < block) {
        if (now_ms() - t0 > 10e3)
            die("the stream did not reach block %llu in 10 s", (unsigned long long)block);
        sleep_ms(5);
    }
}

/* ---- rtt ---- */

static int run_rtt(double seconds, const char *label, FILE *raw) {
    size_t cap = 1 << 16, n = 0, busy = 0;
    double *rtt = malloc(cap * sizeof *rtt), *done = malloc(cap * sizeof *done);
    double t0 = now_ms(), end = t0 + seconds * 1e3;
    while (now_ms() < end) {
        const char *req = n % 2 ? "set 0 amp 0.002" : "set 0 amp 0.001";
        double ms;
        char *text = request(req, strlen(req), &ms);
        if (strncmp(text, "{\"ok\":true", 10) != 0) {
            if (strstr(text, "\"busy:") == NULL)
                die("unexpected reply to '%s': %s", req, text);
            busy++;
        }
        free(text);
        if (n == cap) {
            cap *= 2;
            double *more_rtt = realloc(rtt, cap * sizeof *rtt);
            double *more_done = realloc(done, cap * sizeof *done);
            if (more_rtt == NULL || more_done == NULL)
                die("out of memory for %zu round trips", cap);
            rtt = more_rtt;
            done = more_done;
        }
        done[n] = now_ms() - t0;
        rtt[n++] = ms;
    }
    double elapsed = (now_ms() - t0) / 1e3;
    if (raw) { /* requests per tenth of a second, in order, then the percentiles */
        fprintf(raw, "rtt %s: %zu requests in %.3f s, %zu busy; per 0.1 s:", label, n, elapsed,
                busy);
        double slot_end = 100;
        size_t count = 0;
        for (size_t i = 0; i < n; i++) {
            count++;
            while (i + 1 == n ? count > 0 : done[i + 1] >= slot_end) {
                fprintf(raw, " %zu", count); /* 0 for a tenth that had no reply */
                count = 0;
                slot_end += 100;
            }
        }
        fputc('\n', raw);
    }
    qsort(rtt, n, sizeof *rtt, cmp);
    if (raw)
        fprintf(raw, "rtt %s: ms p1 %.4f p10 %.4f p50 %.4f p90 %.4f p99 %.4f p99.9 %.4f max %.4f\n",
                label, pct(rtt, n, 1), pct(rtt, n, 10), pct(rtt, n, 50), pct(rtt, n, 90),
                pct(rtt, n, 99), pct(rtt, n, 99.9), rtt[n - 1]);
    printf("| %s | %zu | %.0f | %.3f | %.3f | %.3f | %zu |\n", label, n, (double)n / elapsed,
           pct(rtt, n, 50), pct(rtt, n, 99), rtt[n - 1], busy);
    free(rtt);
    free(done);
    return 0;
}

/* ---- setv ---- */

/* Voice v's amp in rep r: distinct float32s in [0, 0.001), none of them 0. */
static float amp_of(uint32_t v, int r) {
    uint32_t h = v * 2654435761u ^ (uint32_t)r * 2246822519u;
    h ^= h >> 15;
    h *= 2246822519u;
    h ^= h >> 13;
    return (float)((h % 999983u) + 1) * 1e-9f;
}

/* Reads voices back with `get` (one line each, one batch) and compares them exactly. */
static uint32_t check_voices(const uint32_t *which, uint32_t n, int r) {
    char *msg = malloc((size_t)n * 32 + 1), *p = msg;
    for (uint32_t i = 0; i < n; i++)
        p += sprintf(p, "%sget %u amp", i ? "\n" : "", which[i]);
    cJSON *j = request_ok(msg, (size_t)(p - msg), NULL);
    uint32_t bad = 0;
    cJSON *results = n > 1 ? cJSON_GetObjectItem(j, "results") : NULL;
    for (uint32_t i = 0; i < n; i++) {
        cJSON *o = n > 1 ? cJSON_GetArrayItem(results, (int)i) : j;
        cJSON *v = cJSON_GetArrayItem(cJSON_GetObjectItem(o, "values"), 0);
        if (!cJSON_IsNumber(v) || (float)v->valuedouble != amp_of(which[i], r))
            bad++;
    }
    cJSON_Delete(j);
    free(msg);
    return bad;
}

/* Every voice: `get all amp`. Returns how many differ. */
static uint32_t check_all(uint32_t voices, int r) {
    const char *req = "get all amp";
    cJSON *j = request_ok(req, strlen(req), NULL);
    cJSON *values = cJSON_GetObjectItem(j, "values");
    uint32_t bad = cJSON_GetArraySize(values) == (int)voices ? 0 : voices, v = 0;
    cJSON *x;
    cJSON_ArrayForEach(x, values) {
        if (v < voices && (!cJSON_IsNumber(x) || (float)x->valuedouble != amp_of(v, r)))
            bad++;
        v++;
    }
    cJSON_Delete(j);
    return bad;
}

static int run_setv(int reps, int stopped, FILE *raw) {
    if (stopped) { /* the control path alone: stopped voices take values but cost no CPU */
        const char *stop = "voice all stop ramp 0";
        cJSON *j = request_ok(stop, strlen(stop), NULL);
        uint64_t from = (uint64_t)number_at(j, "from_block", NULL);
        cJSON_Delete(j);
        wait_for_block(from + 4);
    }
    farm_info f = status();
    const uint32_t n = f.voices;
    const char *head = "setv all amp ramp 0\n";
    size_t hlen = strlen(head), size = hlen + 4 * (size_t)n;
    unsigned char *msg = malloc(size);
    memcpy(msg, head, hlen);
    double *rtt = calloc((size_t)reps, sizeof(double)),
           *apply = calloc((size_t)reps, sizeof(double));
    double *ahead = calloc((size_t)reps, sizeof(double));
    uint32_t mismatched = 0, one_block = 1;
    /* a few voices: both ends, both sides of the boundary between the two workers, one more */
    uint32_t probe[8] = {0, 1, n / 2 - 1, n / 2, n / 2 + 1, n - 2, n - 1, (n * 7) / 10};
    for (int r = 0; r < reps; r++) {
        for (uint32_t v = 0; v < n; v++) {
            float a = amp_of(v, r);
            uint32_t bits;
            memcpy(&bits, &a, 4);
            unsigned char *p = msg + hlen + 4 * (size_t)v;
            p[0] = (unsigned char)bits;
            p[1] = (unsigned char)(bits >> 8);
            p[2] = (unsigned char)(bits >> 16);
            p[3] = (unsigned char)(bits >> 24);
        }
        cJSON *j = request_ok(msg, size, &rtt[r]);
        cJSON *ws = cJSON_GetObjectItem(j, "workers");
        if (cJSON_GetObjectItem(j, "pending") != NULL || cJSON_GetArraySize(ws) != 2 ||
            cJSON_GetObjectItem(j, "dead_workers") != NULL)
            one_block = 0;
        double from = number_at(j, "from_block", NULL), lat = number_at(j, "latency_blocks", NULL);
        ahead[r] = lat;
        apply[r] = rtt[r] + lat * f.block_ms;
        cJSON_Delete(j);
        uint32_t bad = check_voices(probe, 8, r);
        if (r == reps - 1)
            bad += check_all(n, r);
        mismatched += bad;
        if (raw)
            fprintf(raw,
                    "setv %u voices %s, rep %d: %zu bytes, rtt %.3f ms, from_block %.0f, "
                    "latency_blocks %.0f, apply %.3f ms, mismatched %u%s\n",
                    n, stopped ? "stopped" : "playing", r, size, rtt[r], from, lat, apply[r], bad,
                    r == reps - 1 ? " (8 voices and then every voice read back)"
                                  : " (8 voices read back)");
        /* let the workers apply it before the next one: one setv per 4 blocks at most */
        sleep_ms(4 * f.block_ms);
    }
    uint64_t late = status().late_blocks - f.late_blocks;
    qsort(rtt, (size_t)reps, sizeof(double), cmp);
    qsort(apply, (size_t)reps, sizeof(double), cmp);
    qsort(ahead, (size_t)reps, sizeof(double), cmp);
    printf("| %u | %s | %zu | %.2f / %.2f / %.2f | %.0f / %.0f / %.0f | %.2f / %.2f / %.2f | %s | "
           "%llu "
           "|\n",
           n, stopped ? "stopped" : "playing", size, pct(rtt, (size_t)reps, 50),
           pct(rtt, (size_t)reps, 99), rtt[reps - 1], pct(ahead, (size_t)reps, 50),
           pct(ahead, (size_t)reps, 99), ahead[reps - 1], pct(apply, (size_t)reps, 50),
           pct(apply, (size_t)reps, 99), apply[reps - 1],
           one_block && mismatched == 0 ? "yes" : "**no**", (unsigned long long)late);
    if (mismatched)
        fprintf(stderr, "control_throughput: setv: %u values read back differ\n", mismatched);
    free(msg);
    free(rtt);
    free(apply);
    free(ahead);
    return one_block && mismatched == 0 ? 0 : 1;
}

/* ---- at ---- */

/* Opens the recording once it holds at least frames frames (farm updates its header every
 * 50 ms while it plays). */
static float *read_recording(const char *path, sf_count_t frames, int *channels) {
    double t0 = now_ms();
    for (;;) {
        SF_INFO info = {0};
        SNDFILE *f = sf_open(path, SFM_READ, &info);
        if (f != NULL && info.frames >= frames) {
            float *x = malloc((size_t)info.frames * (size_t)info.channels * sizeof(float));
            sf_count_t got = sf_readf_float(f, x, info.frames);
            sf_close(f);
            if (got >= frames) {
                *channels = info.channels;
                return x;
            }
            free(x);
        } else if (f != NULL) {
            sf_close(f);
        }
        if (now_ms() - t0 > 10e3)
            die("%s: the recording never reached frame %lld", path, (long long)frames);
        sleep_ms(50);
    }
}

static int run_at(const char *record, int reps, FILE *raw) {
    farm_info f = status();
    const char *restore = "set all amp 0.5 ramp 0";
    uint64_t *back = calloc((size_t)reps + 1, sizeof(uint64_t)), *at = calloc((size_t)reps, 8);
    for (int r = 0; r <= reps; r++) {
        cJSON *j = request_ok(restore, strlen(restore), NULL);
        back[r] = (uint64_t)number_at(j, "from_block", NULL);
        cJSON_Delete(j);
        wait_for_block(back[r] + 10); /* sounding again for at least 10 blocks */
        if (r == reps)
            break;
        char req[96];
        at[r] = status().block + 20;
        snprintf(req, sizeof req, "set all amp 0 ramp 0 at %llu", (unsigned long long)at[r]);
        j = request_ok(req, strlen(req), NULL);
        if ((uint64_t)number_at(j, "from_block", NULL) != at[r])
            die("'%s' was given another block: %s", req, cJSON_PrintUnformatted(j));
        cJSON_Delete(j);
        wait_for_block(at[r] + 10);
    }
    const uint32_t bs = f.buffersize;
    int ch = 0;
    float *x = read_recording(record, (sf_count_t)(back[reps] * bs), &ch);
    int fails = 0;
    for (int r = 0; r < reps; r++) {
        /* this rep's stretch: from the restore before it to the one after it */
        uint64_t lo = back[r] * bs, hi = back[r + 1] * bs, want = at[r] * bs;
        long long off[2] = {0, 0};
        for (int c = 0; c < 2 && c < ch; c++) {
            uint64_t s = hi;
            while (s > lo && fabsf(x[(s - 1) * (uint64_t)ch + (uint64_t)c]) < SILENT)
                s--;
            off[c] = (long long)s - (long long)want;
            fails += off[c] != 0;
        }
        printf("| %d | %llu | %llu | %+lld | %+lld |\n", r + 1, (unsigned long long)at[r],
               (unsigned long long)want, off[0], off[1]);
        if (raw)
            fprintf(raw,
                    "at rep %d: restored from block %llu, at %llu = sample %llu, next restore "
                    "from block %llu; first silent sample left %lld (%+lld), right %lld (%+lld)\n",
                    r + 1, (unsigned long long)back[r], (unsigned long long)at[r],
                    (unsigned long long)want, (unsigned long long)back[r + 1],
                    (long long)want + off[0], off[0], (long long)want + off[1], off[1]);
    }
    free(x);
    free(back);
    free(at);
    return fails ? 1 : 0;
}

/* ---- main ---- */

static int free_port(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) != 0)
        die("no free port on 127.0.0.1");
    printf("%u\n", ntohs(a.sin_port));
    close(fd);
    return 0;
}

static _Noreturn void usage(void) {
    fprintf(stderr, "usage: control_throughput rtt|setv|at --url URL [--seconds S] [--reps N] "
                    "[--label L] [--record FILE] [--raw FILE] [--stopped]\n"
                    "       control_throughput free-port\n");
    exit(2);
}

int main(int argc, char **argv) {
    if (argc < 2)
        usage();
    const char *mode = argv[1], *url = NULL, *label = "", *record = NULL, *rawpath = NULL;
    double seconds = 3;
    int reps = -1, stopped = 0;
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--stopped") == 0) {
            stopped = 1;
            continue;
        }
        if (i + 1 >= argc)
            usage();
        if (strcmp(argv[i], "--url") == 0)
            url = argv[++i];
        else if (strcmp(argv[i], "--seconds") == 0)
            seconds = atof(argv[++i]);
        else if (strcmp(argv[i], "--reps") == 0)
            reps = atoi(argv[++i]);
        else if (strcmp(argv[i], "--label") == 0)
            label = argv[++i];
        else if (strcmp(argv[i], "--record") == 0)
            record = argv[++i];
        else if (strcmp(argv[i], "--raw") == 0)
            rawpath = argv[++i];
        else
            usage();
    }
    if (strcmp(mode, "free-port") == 0)
        return free_port();
    if (url == NULL || !(seconds > 0))
        usage();
    FILE *raw = NULL;
    if (rawpath && (raw = fopen(rawpath, "a")) == NULL)
        die("%s: cannot append to it", rawpath);
    connect_to(url);
    int rv;
    if (strcmp(mode, "rtt") == 0)
        rv = run_rtt(seconds, label, raw);
    else if (strcmp(mode, "setv") == 0)
        rv = run_setv(reps > 0 ? reps : 10, stopped, raw);
    else if (strcmp(mode, "at") == 0 && record != NULL)
        rv = run_at(record, reps > 0 ? reps : 5, raw);
    else
        usage();
    if (raw)
        fclose(raw);
    nng_close(sock);
    return rv;
}
