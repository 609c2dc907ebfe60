/* farmctl — the command-line client for farm's control protocol (CONTROL.md).
 *
 *   farmctl [--url URL] [--timeout SECONDS] [--tls-ca FILE] COMMAND [ARGS...]
 *   farmctl [--url URL] watch [--telemetry URL] [--once] [--timeout SECONDS]
 *
 * A request is COMMAND and ARGS joined with single spaces, sent over an NNG REQ socket; the
 * reply (one JSON object) is printed on stdout as received. `watch` subscribes to the farm's
 * telemetry and redraws a live view.
 *
 * Contract
 * - Exit status: 0 the farm said "ok": true (watch: stopped by --once, Ctrl-C or SIGTERM);
 *   1 the farm said "ok": false (its error is also printed on stderr) or the reply made no
 *   sense; 2 bad usage (an option, a URL NNG cannot use, several farms to choose from);
 *   3 no farm could be reached (none running, or nothing answered within the timeout).
 * - Every wait is bounded: the dial never blocks, and the send and the receive share one
 *   deadline of --timeout seconds.
 * - Messages go to stderr, one line each, prefixed with "farmctl: ".
 * - Sockets are never closed, only left to the exit: NNG 1.5.2 (Debian 12) can deadlock in
 *   nng_close (nanomsg/nng#1543; seen here once, after `watch --once` over tls+tcp), and a
 *   process that exits closes its connections anyway. NNG registers no exit handler.
 */
#define _GNU_SOURCE
#include <cjson/cJSON.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <nng/nng.h>
#include <nng/protocol/pubsub0/sub.h>
#include <nng/protocol/reqrep0/req.h>
#include <nng/supplemental/tls/tls.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "plat.h"
#include "proto.h"

enum {
    EXIT_OK = 0,
    EXIT_REFUSED = 1,     /* the farm answered "ok": false */
    EXIT_USAGE = 2,       /* bad usage */
    EXIT_UNREACHABLE = 3, /* nothing to talk to, or no answer in time */
};

#define URL_MAX 1100

/* How the one running farm is found (proto's farm_discover): by its socket file where ipc://
 * sockets are files (PLAT_IPC_FILES), else by the discovery file it writes. */
static const char found_by_socket_file[] =
    "                      the one farm running as you (its socket is PID.control in\n"
    "                      $XDG_RUNTIME_DIR/farm, or /tmp/farm-UID when XDG_RUNTIME_DIR is\n"
    "                      unset). With several running, choose one with --url.\n";
static const char found_by_discovery_file[] =
    "                      the one farm running as you (its discovery file is PID.farm in\n"
    "                      %LOCALAPPDATA%\\farm, which farm writes while it runs on its\n"
    "                      default socket). With several running, choose one with --url.\n";

static const char usage_head[] =
    "usage: farmctl [--url URL] [--timeout SECONDS] [--tls-ca FILE] COMMAND [ARGS...]\n"
    "       farmctl [--url URL] watch [--telemetry URL] [--once] [--timeout SECONDS]\n"
    "\n"
    "Sends one request to a running farm and prints its reply, one JSON object on one line.\n"
    "COMMAND and ARGS are joined with single spaces into the request (see CONTROL.md):\n"
    "\n"
    "  status                                     configuration and live counters\n"
    "  set SELECTOR PARAM VALUE [ramp SECONDS]    PARAM: freq (0..sr/2 Hz), feedback (0..1),\n"
    "                                             amp (0..1), pan (stereo 0..1, otherwise a\n"
    "                                             channel index)\n"
    "  voice SELECTOR play|stop [ramp SECONDS]    start or silence voices\n"
    "  worker K play|stop [ramp SECONDS]          all the voices of worker K\n"
    "  gain VALUE [ramp SECONDS]                  master gain, 0..1000\n"
    "  quit                                       fade out and stop the farm\n"
    "  help                                       the farm's own one-line summary\n"
    "\n"
    "  SELECTOR is all, a voice N, a range A-B (inclusive) or worker:K. Voices go by the\n"
    "  farm's global numbers: from its --first-voice, 0 unless it plays part of a bigger\n"
    "  farm. Ramps are linear, 0.005 s unless given, at most 60 s. Every command sets\n"
    "  absolute values, so repeating one is harmless.\n"
    "\n"
    "Options (before COMMAND)\n"
    "  --url URL           the farm's control socket, as farm prints it when it starts\n"
    "                      (\"farm: control ipc:///...\"). Default: $FARM_CONTROL if set, else\n";
/* Between the two: found_by_socket_file or found_by_discovery_file. */
static const char usage_tail[] =
    "  --timeout SECONDS   how long to wait for the reply (default 2)\n"
    "  --tls-ca FILE       for tls+tcp:// URLs: the PEM certificate (or its CA) that the\n"
    "                      farm's --tls-cert must match\n"
    "  -h, --help          this text\n"
    "\n"
    "watch: a live view of the telemetry, redrawn at each message: the stream (seconds,\n"
    "callbacks, underflows, late blocks, clipped samples, CPU load, callback time against\n"
    "the block period), one line per output channel (a peak meter, and the peak and rms in\n"
    "dBFS of what was played since the message before) and one line per worker (load bar,\n"
    "peak load, late blocks, lowest ring fill, voices playing). Ctrl-C leaves it.\n"
    "  --telemetry URL     the farm's telemetry socket (default: asked of the farm with\n"
    "                      `status` over the control URL, found as above)\n"
    "  --once              print one view after the first message and exit 0 (for scripts)\n"
    "  --timeout SECONDS   give up (exit 3) when no message comes for this long (default 3,\n"
    "                      or the --timeout given before watch)\n"
    "\n"
    "Exit status: 0 ok; 1 the farm refused the request (its error is printed on stderr);\n"
    "2 bad usage, or several farms to choose from; 3 no farm reached within the timeout.\n"
    "\n"
    "Examples\n"
    "  farmctl status\n"
    "  farmctl set all freq 440 ramp 2           all voices glide to 440 Hz over 2 s\n"
    "  farmctl set 0-99 amp 0.002                 voices 0 to 99, quieter\n"
    "  farmctl set worker:1 pan 0.8 ramp 0.5      worker 1's voices towards the right\n"
    "  farmctl voice 10-19 stop ramp 1            fade ten voices out over a second\n"
    "  farmctl worker 0 play\n"
    "  farmctl gain 0.5 ramp 3\n"
    "  farmctl --url tcp://127.0.0.1:5555 status  the farm started with that --control\n"
    "  farmctl status | python3 -c 'import json,sys; "
    "print(json.load(sys.stdin)[\"stream\"][\"cpu_load\"])'\n"
    "  farmctl watch\n"
    "  farmctl watch --once                       one snapshot, e.g. into a log\n";

static void usage(FILE *to) {
    fputs(usage_head, to);
    fputs(PLAT_IPC_FILES ? found_by_socket_file : found_by_discovery_file, to);
    fputs(usage_tail, to);
}

static void msg(const char *fmt, ...) FARM_PRINTF(1, 2);

static void msg(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("farmctl: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static int usage_error(const char *fmt, ...) FARM_PRINTF(1, 2);

/* One line naming what was wrong, and where to look; always EXIT_USAGE. */
static int usage_error(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("farmctl: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputs("; see farmctl --help\n", stderr);
    va_end(ap);
    return EXIT_USAGE;
}

/* ---- options ---- */

/* A number of seconds above 0, at most a day (base's number parsing, as farm's options). */
static int parse_seconds(const char *name, const char *s, double *out) {
    if (farm_parse_double(name, s, 0, 86400, out) != FARM_OK || *out == 0)
        return usage_error("%s '%s': give a number of seconds above 0 (at most 86400)", name, s);
    return EXIT_OK;
}

typedef struct options {
    const char *url; /* control URL given with --url; NULL: found */
    const char *tls_ca;
    double timeout;
    int timeout_given;
    const char *url_from; /* where the URL in use came from, for messages */
} options;

/* getopt_long's answers for the long options with no short form */
enum { OPT_URL = 256, OPT_TIMEOUT, OPT_TLS_CA, OPT_TELEMETRY, OPT_ONCE };

/* Before COMMAND. A leading '+' stops at the first word that is not an option (COMMAND: what
 * follows is the request's, "-5" included); ':' reports a missing value apart. */
static const char global_short[] = "+:h";
static const struct option global_long[] = {
    {"url", required_argument, NULL, OPT_URL},
    {"timeout", required_argument, NULL, OPT_TIMEOUT},
    {"tls-ca", required_argument, NULL, OPT_TLS_CA},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

/* After watch. */
static const char watch_short[] = "+:h";
static const struct option watch_long[] = {
    {"telemetry", required_argument, NULL, OPT_TELEMETRY},
    {"once", no_argument, NULL, OPT_ONCE},
    {"url", required_argument, NULL, OPT_URL},
    {"timeout", required_argument, NULL, OPT_TIMEOUT},
    {"tls-ca", required_argument, NULL, OPT_TLS_CA},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

/* The name of the long option that getopt_long answers with val, or NULL. */
static const char *long_name(const struct option *longopts, int val) {
    for (; longopts->name != NULL; longopts++)
        if (longopts->val == val)
            return longopts->name;
    return NULL;
}

/* How many long options "--NAME[=VALUE]" abbreviates (getopt_long takes unique prefixes). */
static int prefix_matches(const struct option *longopts, const char *word) {
    size_t n = strcspn(word + 2, "=");
    int count = 0;
    for (; n > 0 && longopts->name != NULL; longopts++)
        count += strncmp(longopts->name, word + 2, n) == 0;
    return count;
}

/* Our one line for what getopt_long refused (c: '?' or ':') in word; always EXIT_USAGE. */
static int option_error(int c, const char *word, const struct option *longopts, const char *where) {
    const char *name = long_name(longopts, optopt);
    if (c == ':' && name != NULL)
        return usage_error("%s--%s needs a value", where, name);
    if (c == ':' || strncmp(word, "--", 2) != 0)
        return usage_error("%sunknown option '-%c'", where, optopt);
    if (name != NULL)
        return usage_error("%s'%s': --%s takes no value", where, word, name);
    if (prefix_matches(longopts, word) > 1)
        return usage_error("%sambiguous option '%s'", where, word);
    return usage_error("%sunknown option '%s'", where, word);
}

/* The next option from getopt_long (optarg its value), -1 at the first word that is not one
 * (optind its index), or '?' after our message for a bad one (getopt's own are off). */
static int next_option(int argc, char **argv, const char *shortopts, const struct option *longopts,
                       const char *where) {
    opterr = 0;
    int at = optind > 0 ? optind : 1; /* the word getopt_long looks at */
    int c = getopt_long(argc, argv, shortopts, longopts, NULL);
    if (c == '?' || c == ':') {
        option_error(c, argv[at], longopts, where);
        return '?';
    }
    return c;
}

/* --url, --timeout (into *timeout) and --tls-ca, before COMMAND or after watch; EXIT_USAGE
 * after a message when the value will not do. */
static int connection_option(options *o, int c, const char *value, double *timeout) {
    switch (c) {
    case OPT_URL:
        if (value[0] == '\0')
            return usage_error("--url needs a URL, like ipc:///path or tcp://127.0.0.1:5555");
        o->url = value;
        return EXIT_OK;
    case OPT_TIMEOUT:
        return parse_seconds("--timeout", value, timeout);
    case OPT_TLS_CA:
        o->tls_ca = value;
        return EXIT_OK;
    default:
        return usage_error("unexpected option %d", c); /* not in the tables above */
    }
}

enum { GO_ON = -1 }; /* a parse's answer when the command is to run; else an exit status */

/* The options before COMMAND into o, and *command: COMMAND's index in argv (argc: none). */
static int parse_global_options(int argc, char **argv, options *o, int *command) {
    optind = 0; /* a fresh scan (glibc, musl) */
    int c;
    while ((c = next_option(argc, argv, global_short, global_long, "")) != -1) {
        if (c == '?')
            return EXIT_USAGE;
        if (c == 'h') {
            usage(stdout);
            return EXIT_OK;
        }
        if (connection_option(o, c, optarg, &o->timeout) != EXIT_OK)
            return EXIT_USAGE;
        o->timeout_given |= c == OPT_TIMEOUT;
    }
    *command = optind;
    return GO_ON;
}

/* ---- finding the farm ---- */

/* The control URL when --url was not given: $FARM_CONTROL, else the one live farm in the
 * runtime directory (its socket file; on Windows its discovery file: proto's farm_discover). */
static int find_control_url(options *o, char *url, size_t size) {
    if (o->url != NULL) {
        snprintf(url, size, "%s", o->url);
        o->url_from = "";
        return EXIT_OK;
    }
    const char *env = getenv("FARM_CONTROL");
    if (env != NULL && env[0] != '\0') {
        snprintf(url, size, "%s", env);
        o->url_from = " (from $FARM_CONTROL)";
        return EXIT_OK;
    }
    char dir[512];
    farm_runtime_dir(dir, sizeof dir);
    enum { MAX_SHOWN = 16 };
    farm_found found[MAX_SHOWN];
    size_t live = 0, stale = 0;
    if (farm_discover(dir, found, MAX_SHOWN, &live, &stale) != FARM_OK) {
        msg("cannot look for farms: %s; give --url", farm_error_message());
        return EXIT_UNREACHABLE;
    }
    const char *record = PLAT_IPC_FILES ? "control socket" : "discovery file";
    if (live == 0) {
        if (stale > 0)
            msg("no farm is running (no %s in %s, only %zu left by farms that died); start one, "
                "or give --url",
                record, dir, stale);
        else
            msg("no farm is running (no %s in %s); start one, or give --url", record, dir);
        return EXIT_UNREACHABLE;
    }
    if (live > 1) {
        fprintf(stderr, "farmctl: several farms are running: ");
        for (size_t k = 0; k < live && k < MAX_SHOWN; k++)
            fprintf(stderr, "%s%s", k ? ", " : "", found[k].control);
        fprintf(stderr, "%s; choose one with --url\n", live > MAX_SHOWN ? ", ..." : "");
        return EXIT_USAGE;
    }
    snprintf(url, size, "%s", found[0].control);
    o->url_from = "";
    return EXIT_OK;
}

/* ---- sockets ---- */

static void say_unreachable(const char *url, double timeout, const options *o) {
    const char *hint = "";
    if (strncmp(url, "tls+", 4) == 0 && o->tls_ca == NULL)
        hint = "; for tls+tcp:// give --tls-ca with the farm's certificate";
    msg("nothing answered at %s%s within %g s: is farm running there? (farm prints its control "
        "URL when it starts: \"farm: control URL ...\")%s",
        url, o->url_from ? o->url_from : "", timeout, hint);
}

/* An IPv4 or IPv6 address rather than a host name. */
static int is_address(const char *host) {
    if (strchr(host, ':') != NULL)
        return 1; /* IPv6 */
    for (const char *p = host; *p; p++)
        if ((*p < '0' || *p > '9') && *p != '.')
            return 0;
    return host[0] != '\0';
}

/* Dials url on s without waiting for the connection (NNG keeps trying in the background;
 * the caller's receive timeout bounds the wait). */
static int dial(nng_socket s, const char *url, const options *o) {
    nng_dialer d;
    int rv = nng_dialer_create(&d, s, url);
    nng_tls_config *tls = NULL;
    if (rv == 0 && strncmp(url, "tls+", 4) == 0 && o->tls_ca != NULL) {
        nng_url *u = NULL;
        rv = nng_tls_config_alloc(&tls, NNG_TLS_MODE_CLIENT);
        if (rv == 0)
            rv = nng_tls_config_ca_file(tls, o->tls_ca);
        /* The certificate's name is checked against a host name; Debian's mbed TLS cannot
         * match an address (127.0.0.1), so for one only the chain to --tls-ca is checked. */
        if (rv == 0 && (rv = nng_url_parse(&u, url)) == 0) {
            if (!is_address(u->u_hostname))
                rv = nng_tls_config_server_name(tls, u->u_hostname);
            nng_url_free(u);
        }
        if (rv == 0)
            rv = nng_dialer_set_ptr(d, NNG_OPT_TLS_CONFIG, tls);
        if (tls != NULL)
            nng_tls_config_free(tls); /* the dialer holds its own reference */
        if (rv != 0) {
            msg("--tls-ca %s: %s", o->tls_ca, nng_strerror(rv));
            return EXIT_USAGE;
        }
    }
    if (rv == 0)
        rv = nng_dialer_start(d, NNG_FLAG_NONBLOCK);
    if (rv != 0) {
        msg("cannot use %s: %s (a URL is like ipc:///path, tcp://127.0.0.1:5555 or "
            "ws://127.0.0.1:5556/farm)",
            url, nng_strerror(rv));
        return EXIT_USAGE;
    }
    return EXIT_OK;
}

/* Milliseconds from now until deadline_ns of farm_now_ns's clock; at least 1. */
static nng_duration ms_until(uint64_t deadline_ns) {
    uint64_t now = farm_now_ns();
    return now >= deadline_ns ? 1 : (nng_duration)((deadline_ns - now) / FARM_NS_PER_MS + 1);
}

static uint64_t seconds_ns(double seconds) {
    return (uint64_t)(seconds * FARM_NS_PER_S);
}

/* Sends text to the farm at url and waits (at most timeout seconds in all) for the reply,
 * which the caller frees with nng_free(*reply, *reply_len). */
static int request(const char *url, const char *text, size_t len, double timeout, const options *o,
                   char **reply, size_t *reply_len) {
    nng_socket s;
    int rv = nng_req0_open(&s);
    if (rv != 0) {
        msg("cannot open a request socket: %s", nng_strerror(rv));
        return EXIT_UNREACHABLE;
    }
    const uint64_t deadline = farm_now_ns() + seconds_ns(timeout);
    int status = dial(s, url, o);
    if (status == EXIT_OK) {
        nng_socket_set_ms(s, NNG_OPT_SENDTIMEO, ms_until(deadline));
        rv = nng_send(s, (void *)text, len, 0);
        if (rv == 0) {
            nng_socket_set_ms(s, NNG_OPT_RECVTIMEO, ms_until(deadline));
            rv = nng_recv(s, reply, reply_len, NNG_FLAG_ALLOC);
        }
        if (rv == NNG_ETIMEDOUT) {
            say_unreachable(url, timeout, o);
            status = EXIT_UNREACHABLE;
        } else if (rv != 0) {
            msg("%s: %s", url, nng_strerror(rv));
            status = EXIT_UNREACHABLE;
        }
    }
    /* No nng_close: see the note at the top; the socket goes when farmctl exits. */
    return status;
}

/* ---- one request ---- */

static int run_request(options *o, int argc, char **argv) {
    size_t len = 0;
    for (int k = 0; k < argc; k++)
        len += strlen(argv[k]) + 1;
    if (len - 1 > FARM_REQUEST_MAX)
        return usage_error("the request is %zu bytes; farm takes at most %d", len - 1,
                           FARM_REQUEST_MAX);
    for (int k = 1; k < argc; k++)
        if (strncmp(argv[k], "--", 2) == 0 && argv[k][2] != '\0')
            return usage_error("'%s' after the command: farmctl's options go before it, as "
                               "in farmctl --url URL %s ...",
                               argv[k], argv[0]);
    char *text = malloc(len);
    if (text == NULL) {
        msg("out of memory");
        return EXIT_REFUSED;
    }
    char *p = text;
    for (int k = 0; k < argc; k++) {
        size_t n = strlen(argv[k]);
        memcpy(p, argv[k], n);
        p += n;
        *p++ = k + 1 < argc ? ' ' : '\0';
    }
    char url[URL_MAX];
    int status = find_control_url(o, url, sizeof url);
    char *reply = NULL;
    size_t reply_len = 0;
    if (status == EXIT_OK)
        status = request(url, text, len - 1, o->timeout, o, &reply, &reply_len);
    free(text);
    if (status != EXIT_OK)
        return status;

    fwrite(reply, 1, reply_len, stdout);
    if (reply_len == 0 || reply[reply_len - 1] != '\n')
        fputc('\n', stdout);
    fflush(stdout);
    cJSON *root = cJSON_ParseWithLength(reply, reply_len);
    const cJSON *ok = cJSON_GetObjectItemCaseSensitive(root, "ok");
    if (cJSON_IsTrue(ok)) {
        status = EXIT_OK;
    } else if (cJSON_IsFalse(ok)) {
        const cJSON *err = cJSON_GetObjectItemCaseSensitive(root, "error");
        msg("%s", cJSON_IsString(err) ? err->valuestring : "the farm refused the request");
        status = EXIT_REFUSED;
    } else {
        msg("the reply from %s is not a farm reply (no \"ok\" in a JSON object)", url);
        status = EXIT_REFUSED;
    }
    cJSON_Delete(root);
    nng_free(reply, reply_len);
    return status;
}

/* ---- watch ---- */

static double num(const cJSON *obj, const char *name) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);
    return cJSON_IsNumber(v) ? v->valuedouble : -1.0;
}

static const char *str(const cJSON *obj, const char *name) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);
    return cJSON_IsString(v) ? v->valuestring : "?";
}

/* [#####.....] for a fraction; full (and '>' at the end) beyond 1 */
static void bar(FILE *f, double frac, int width) {
    int n = frac <= 0 ? 0 : frac >= 1 ? width : (int)(frac * width + 0.5);
    fputc('[', f);
    for (int k = 0; k < width; k++)
        fputc(k < n ? '#' : '.', f);
    fputc(frac > 1 ? '>' : ']', f);
}

#define METER_FLOOR_DB (-60.0) /* a level meter's empty end */

/* 20 log10(x): decibels relative to full scale; -inf for silence */
static double dbfs(double x) {
    return x > 0 ? 20 * log10(x) : -INFINITY;
}

/* One line per output channel, and a blank line after them: a peak meter (METER_FLOOR_DB to
 * 0 dBFS), the peak and the rms, of the interval since the telemetry message before. */
static void draw_levels(FILE *f, const char *eol, const cJSON *levels) {
    const cJSON *peak = cJSON_GetObjectItemCaseSensitive(levels, "peak");
    const cJSON *rms = cJSON_GetObjectItemCaseSensitive(levels, "rms");
    int n = cJSON_GetArraySize(peak);
    for (int ch = 0; ch < n; ch++) {
        const cJSON *p = cJSON_GetArrayItem(peak, ch), *r = cJSON_GetArrayItem(rms, ch);
        double p_db = dbfs(cJSON_IsNumber(p) ? p->valuedouble : 0);
        double r_db = dbfs(cJSON_IsNumber(r) ? r->valuedouble : 0);
        fprintf(f, "ch %-3d  ", ch);
        bar(f, (p_db - METER_FLOOR_DB) / -METER_FLOOR_DB, 30);
        fprintf(f, "  peak %6.1f dBFS   rms %6.1f dBFS%s", p_db, r_db, eol);
    }
    if (n > 0)
        fprintf(f, "%s", eol);
}

/* The farms on other hosts (--node), as the farm last heard from each: their voices, their
 * busiest worker's load and their own late blocks and underflows. */
static void draw_nodes(FILE *f, const char *eol, const cJSON *nodes) {
    if (cJSON_GetArraySize(nodes) == 0)
        return;
    fprintf(f,
            "%snode          state        voices         load                          late  "
            "underflows%s",
            eol, eol);
    const cJSON *n;
    cJSON_ArrayForEach(n, nodes) {
        double first = num(n, "first_voice"), voices = num(n, "voices"), load = num(n, "load");
        char range[48] = "-";
        if (voices > 0)
            snprintf(range, sizeof range, "%.0f-%.0f", first, first + voices - 1);
        fprintf(f, "%-12s  %-11s  %-13s  ", str(n, "name"), str(n, "state"), range);
        bar(f, load, 20);
        fprintf(f, " %5.1f%%  %6.0f  %10.0f%s", 100 * load, num(n, "late_blocks"),
                num(n, "underflows"), eol);
    }
}

typedef struct view {
    const char *url;
    int tty;
    double ring_blocks; /* from status, when known; else < 0 */
} view;

/* One frame of the live view from one telemetry object, into f. Lines end with ESC[K on a
 * terminal so a shorter frame leaves no remnants of the one before. */
static void draw(FILE *f, const view *v, const cJSON *root) {
    const char *eol = v->tty ? "\033[K\n" : "\n";
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(root, "stream");
    const cJSON *cb = cJSON_GetObjectItemCaseSensitive(s, "callback_us");
    const cJSON *ws = cJSON_GetObjectItemCaseSensitive(root, "workers");
    char when[32] = "";
    double t = num(root, "time");
    if (t > 0) {
        time_t tt = (time_t)t;
        struct tm tm;
        if (localtime_r(&tt, &tm) != NULL)
            strftime(when, sizeof when, "%H:%M:%S", &tm);
    }
    fprintf(f, "farm %s   %s%s%s", v->url, when, v->tty ? "   (Ctrl-C to leave)" : "", eol);
    fprintf(f, "%s", eol);
    fprintf(f,
            "stream    %.1f s   callbacks %.0f   underflows %.0f   late blocks %.0f   "
            "clipped %.0f   cpu load %.1f%%",
            num(s, "seconds"), num(s, "callbacks"), num(s, "underflows"), num(s, "late_blocks"),
            num(s, "clipped"), 100 * num(s, "cpu_load"));
    double dropped = num(s, "record_dropped");
    if (dropped > 0)
        fprintf(f, "   record dropped %.0f", dropped);
    fprintf(f, "%s", eol);
    double period = num(cb, "period");
    fprintf(f, "callback  median %.1f us   p99 %.1f us   max %.1f us   of a %.1f us period",
            num(cb, "median"), num(cb, "p99"), num(cb, "max"), period);
    if (period > 0)
        fprintf(f, "   (p99 %.1f%%)", 100 * num(cb, "p99") / period);
    fprintf(f, "%s", eol);
    fprintf(f, "%s", eol);
    draw_levels(f, eol, cJSON_GetObjectItemCaseSensitive(root, "levels"));
    fprintf(f,
            "worker  pid       cpu  state     load                          peak      late  "
            "ring  playing%s",
            eol);
    const cJSON *w;
    cJSON_ArrayForEach(w, ws) {
        double load = num(w, "load"), fill = num(w, "lowest_ring_fill");
        fprintf(f, "%6.0f  %-8.0f  %3.0f  %-8s  ", num(w, "id"), num(w, "pid"), num(w, "cpu"),
                str(w, "state"));
        bar(f, load, 20);
        fprintf(f, " %5.1f%%   %5.1f%%  %6.0f  ", 100 * load, 100 * num(w, "load_peak"),
                num(w, "late_blocks"));
        if (fill < 0)
            fprintf(f, "%4s", "-");
        else if (v->ring_blocks > 0)
            fprintf(f, "%2.0f/%-2.0f", fill, v->ring_blocks);
        else
            fprintf(f, "%4.0f", fill);
        fprintf(f, "  %.0f/%.0f%s", num(w, "voices_playing"), num(w, "voices"), eol);
    }
    draw_nodes(f, eol, cJSON_GetObjectItemCaseSensitive(root, "nodes"));
}

/* The telemetry URL from the farm itself: config.telemetry of a status reply. */
static int telemetry_from_status(options *o, char *url, size_t size, double *ring_blocks) {
    char control[URL_MAX];
    int status = find_control_url(o, control, sizeof control);
    if (status != EXIT_OK)
        return status;
    char *reply = NULL;
    size_t reply_len = 0;
    status = request(control, "status", strlen("status"), o->timeout, o, &reply, &reply_len);
    if (status != EXIT_OK)
        return status;
    cJSON *root = cJSON_ParseWithLength(reply, reply_len);
    const cJSON *cfg = cJSON_GetObjectItemCaseSensitive(root, "config");
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(cfg, "telemetry");
    if (cJSON_IsString(t)) {
        snprintf(url, size, "%s", t->valuestring);
        *ring_blocks = num(cfg, "ring_blocks");
    } else {
        msg("the status reply from %s names no telemetry URL; give --telemetry", control);
        status = EXIT_REFUSED;
    }
    cJSON_Delete(root);
    nng_free(reply, reply_len);
    return status;
}

typedef struct watch_setup {
    const char *telemetry; /* --telemetry; NULL: asked of the farm */
    int once;
    double timeout; /* give up after this long with no message */
} watch_setup;

/* watch's own options (argv[0] is "watch") into w, and the connection's into o. */
static int parse_watch_options(options *o, int argc, char **argv, watch_setup *w) {
    *w = (watch_setup){.timeout = o->timeout_given ? o->timeout : 3.0};
    optind = 0; /* a fresh scan (glibc, musl) */
    int c;
    while ((c = next_option(argc, argv, watch_short, watch_long, "watch: ")) != -1) {
        if (c == '?')
            return EXIT_USAGE;
        if (c == 'h') {
            usage(stdout);
            return EXIT_OK;
        }
        if (c == OPT_TELEMETRY)
            w->telemetry = optarg;
        else if (c == OPT_ONCE)
            w->once = 1;
        else if (connection_option(o, c, optarg, &w->timeout) != EXIT_OK)
            return EXIT_USAGE;
    }
    if (optind < argc)
        return usage_error("watch: unexpected '%s' (watch takes options only)", argv[optind]);
    return GO_ON;
}

/* The telemetry URL: --telemetry, else the one the farm names in its status. */
static int find_telemetry_url(options *o, const watch_setup *w, char *url, size_t size, view *v) {
    if (w->telemetry != NULL) {
        snprintf(url, size, "%s", w->telemetry);
        return EXIT_OK;
    }
    return telemetry_from_status(o, url, size, &v->ring_blocks);
}

/* A subscriber socket *s for the telemetry at url, dialled without waiting. */
static int subscribe(nng_socket *s, const char *url, const options *o) {
    int rv = nng_sub0_open(s);
    if (rv != 0) {
        msg("cannot open a subscriber socket: %s", nng_strerror(rv));
        return EXIT_UNREACHABLE;
    }
    rv = nng_socket_set(*s, NNG_OPT_SUB_SUBSCRIBE, FARM_TELEMETRY_TOPIC, FARM_TELEMETRY_TOPIC_LEN);
    if (rv != 0) {
        msg("cannot subscribe: %s", nng_strerror(rv));
        return EXIT_UNREACHABLE;
    }
    return dial(*s, url, o);
}

/* Waits at most left seconds, and at most 0.1 s so that Ctrl-C is noticed soon, for one
 * telemetry message. *root: its JSON object, or NULL when none came or it was not one. */
static int receive_telemetry(nng_socket s, const char *url, double left, cJSON **root) {
    *root = NULL;
    nng_socket_set_ms(s, NNG_OPT_RECVTIMEO, left > 0.1 ? 100 : (nng_duration)(left * 1000) + 1);
    char *buf = NULL;
    size_t len = 0;
    int rv = nng_recv(s, &buf, &len, NNG_FLAG_ALLOC);
    if (rv == NNG_ETIMEDOUT)
        return EXIT_OK;
    if (rv != 0) {
        msg("%s: %s", url, nng_strerror(rv));
        return EXIT_UNREACHABLE;
    }
    const size_t topic = FARM_TELEMETRY_TOPIC_LEN;
    cJSON *j = len > topic ? cJSON_ParseWithLength(buf + topic, len - topic) : NULL;
    nng_free(buf, len);
    if (cJSON_IsObject(j))
        *root = j;
    else
        cJSON_Delete(j); /* not a stats message: the caller waits for the next */
    return EXIT_OK;
}

/* One frame on stdout, written at once (no flicker): over the one before on a terminal,
 * after it (a blank line between) otherwise. stdout is fully buffered (run_watch): a frame goes
 * out at the flush, in one write. 0 when stdout's reader has gone (`farmctl watch | head`: the
 * watch ends quietly, as at Ctrl-C); a write that failed otherwise stays in ferror(stdout). */
static int show_frame(const view *v, const cJSON *root, int first) {
    FILE *f = stdout;
    if (v->tty)
        fputs("\033[H", f);
    else if (!first)
        fputc('\n', f);
    draw(f, v, root);
    if (v->tty)
        fputs("\033[J", f);
    if (fflush(f) != 0 && errno == EPIPE) {
        clearerr(f);
        return 0;
    }
    return 1;
}

static void say_telemetry_silent(const char *url, double timeout, int frames) {
    if (frames == 0)
        msg("no telemetry from %s within %g s: is farm running there? (farm prints its "
            "telemetry URL when it starts; a farm with a low --telemetry-rate needs a longer "
            "--timeout)",
            url, timeout);
    else
        msg("the telemetry from %s stopped: nothing for %g s (did the farm stop?)", url, timeout);
}

/* Draws a frame at each message until a signal, --once's first frame, or w->timeout
 * seconds without a message (EXIT_UNREACHABLE). */
static int receive_and_draw(nng_socket s, const view *v, const watch_setup *w) {
    uint64_t deadline = farm_now_ns() + seconds_ns(w->timeout);
    int frames = 0;
    while (!farm_stop_signal && !ferror(stdout)) {
        uint64_t now = farm_now_ns();
        if (now >= deadline) {
            say_telemetry_silent(v->url, w->timeout, frames);
            return EXIT_UNREACHABLE;
        }
        cJSON *root;
        int status = receive_telemetry(s, v->url, (double)(deadline - now) / FARM_NS_PER_S, &root);
        if (status != EXIT_OK)
            return status;
        if (root == NULL)
            continue;
        deadline = farm_now_ns() + seconds_ns(w->timeout);
        int shown = show_frame(v, root, frames == 0);
        cJSON_Delete(root);
        frames++;
        if (w->once || !shown)
            break;
    }
    return EXIT_OK;
}

static int run_watch(options *o, int argc, char **argv) {
    watch_setup w;
    int status = parse_watch_options(o, argc, argv, &w);
    if (status != GO_ON)
        return status;
    char url[URL_MAX];
    view v = {.url = url, .tty = !w.once && isatty(STDOUT_FILENO), .ring_blocks = -1};
    status = find_telemetry_url(o, &w, url, sizeof url, &v);
    if (status != EXIT_OK)
        return status;
    farm_catch_stop_signals(); /* Ctrl-C and SIGTERM end the watch (exit 0), not the process */
    setvbuf(stdout, NULL, _IOFBF, 1 << 16); /* a frame in one write: see show_frame */
    nng_socket s;
    status = subscribe(&s, url, o);
    if (status == EXIT_OK && v.tty)
        printf("\033[H\033[2Jwaiting for telemetry from %s ...\033[K\n", url);
    fflush(stdout);
    if (status == EXIT_OK)
        status = receive_and_draw(s, &v, &w);
    if (ferror(stdout)) {
        msg("cannot write to stdout");
        return EXIT_REFUSED;
    }
    return status;
}

/* ---- main ---- */

int main(int argc, char **argv) {
    options o = {.timeout = 2.0};
    int command;
    int status = parse_global_options(argc, argv, &o, &command);
    if (status != GO_ON)
        return status;
    if (command >= argc)
        return usage_error("no command given (for example: farmctl status)");
    if (strcmp(argv[command], "watch") == 0)
        return run_watch(&o, argc - command, argv + command);
    return run_request(&o, argc - command, argv + command);
}
