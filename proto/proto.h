/* proto — farm's control protocol, shared by the farm (server), farmctl and any other client:
 * the request parser, one table of commands and parameters with their ranges, the size limit,
 * the telemetry topic, and where a farm's default sockets live. CONTROL.md is the reference for
 * users; this header is the one place the facts live in code.
 *
 * Contract
 * - farm_request_parse is pure: no I/O, no allocation, no global state but the calling thread's
 *   error message (base.h), safe on any bytes; it is fuzzed (fuzz_request.c).
 * - A refused request returns FARM_EUSAGE with a one-line message for farm_error_message()
 *   naming what was wrong, and leaves *out untouched.
 * - Nothing here opens a socket or creates a directory: farm_runtime_dir only names it.
 *   discover.c alone touches files: it lists the runtime directory for running farms (the
 *   socket files on Linux, the discovery files on Windows) and writes and removes a farm's
 *   discovery file; any thread, never the real-time ones.
 */
#ifndef FARM_PROTO_H
#define FARM_PROTO_H

#include <stddef.h>
#include <stdint.h>

#include "base.h"

#define FARM_REQUEST_MAX 65536 /* bytes of text; longer requests are refused */
/* NNG drops longer messages before farm sees them: the most a setv message may be (262,000-odd
 * voices). */
#define FARM_RECV_MAX (1 << 20)
#define FARM_BATCH_MAX 256 /* request lines in one message */
/* Every telemetry message is this topic followed by one JSON object. */
#define FARM_TELEMETRY_TOPIC "stats "
#define FARM_TELEMETRY_TOPIC_LEN (sizeof FARM_TELEMETRY_TOPIC - 1)
/* Default sockets: PID.control and PID.telemetry in farm_runtime_dir(). */
#define FARM_CONTROL_SUFFIX ".control"
#define FARM_TELEMETRY_SUFFIX ".telemetry"
#define FARM_RAMP_MAX_S 60.0
#define FARM_GAIN_MAX 1000.0

typedef enum farm_req_kind {
    FARM_REQ_STATUS,
    FARM_REQ_SET,
    FARM_REQ_VOICE, /* voice SELECTOR play|stop, worker K play|stop */
    FARM_REQ_GAIN,
    FARM_REQ_QUIT,
    FARM_REQ_HELP,
    FARM_REQ_GET, /* get SELECTOR PARAM|playing */
} farm_req_kind;

/* How a set gives its values: one for all, one per selected voice, or a spread over them. */
typedef enum farm_form {
    FARM_FORM_ONE,      /* VALUE */
    FARM_FORM_LIST,     /* V1,V2,...,VN: text, one per selected voice */
    FARM_FORM_LIN,      /* lin A B: A for the first selected voice, B for the last */
    FARM_FORM_EXP,      /* exp A B: likewise, geometrically */
    FARM_FORM_HARMONIC, /* harmonic F0: the k-th selected voice, from 0, gets F0 * (k + 1) */
    FARM_FORM_VECTOR,   /* setv: little-endian float32, one per selected voice */
} farm_form;

/* The commands, in the order help lists them. */
typedef struct farm_command_info {
    const char *name;
    farm_req_kind kind;
    const char *synopsis; /* the words after the name */
    const char *summary;
} farm_command_info;
extern const farm_command_info farm_commands[];
extern const size_t farm_command_count;

typedef enum farm_param {
    FARM_PARAM_FREQ,
    FARM_PARAM_FEEDBACK,
    FARM_PARAM_AMP,
    FARM_PARAM_PAN,
    FARM_PARAM_COUNT,
} farm_param;

typedef struct farm_param_info {
    const char *name;
    const char *range; /* for people: "0..sr/2 Hz" */
} farm_param_info;
/* "playing", what get reads besides the parameters */
#define FARM_PLAYING_NAME "playing"
extern const farm_param_info farm_params[FARM_PARAM_COUNT];

/* What a farm has, which bounds what a request may name. Voices are named by their global
 * numbers: this farm holds first_voice .. first_voice + voices - 1 (--first-voice; 0 for a farm
 * alone), and first_voice + voices is at most 2^32. */
typedef struct farm_request_limits {
    uint32_t first_voice;
    uint32_t voices, workers, channels;
    double sample_rate;
} farm_request_limits;

/* The range of param's values on a farm with these limits. */
void farm_param_range(farm_param p, const farm_request_limits *lim, double *lo, double *hi);

typedef struct farm_request {
    farm_req_kind kind;
    farm_param param;
    uint32_t first, count; /* the selected voices, global numbers; worker:K resolves to its
                              voices too */
    int whole_worker;
    uint32_t worker;
    int play;
    int get_playing; /* get SELECTOR playing */
    farm_form form;
    double value, value2; /* ONE: value; LIN, EXP: value .. value2; HARMONIC: value is F0 */
    const char *list;     /* LIST: the comma-separated values, in the caller's text */
    size_t list_len;
    const unsigned char *vector; /* VECTOR: count float32s, in the caller's bytes */
    double ramp;                 /* seconds; negative: the default */
    int has_at;
    uint64_t at; /* the stream block to apply from */
} farm_request;

/* Parses one request line (len bytes, not necessarily NUL-terminated), or a setv message (its
 * first line, a newline, then 4 bytes per selected voice). The request may point into text:
 * keep text while it is used. */
int farm_request_parse(const char *text, size_t len, const farm_request_limits *lim,
                       farm_request *out);
/* A whole message: one request, a setv message, or a batch of lines (separated by newlines, at
 * most FARM_BATCH_MAX) that applies whole or not at all. *n gets how many; a refusal names the
 * line ("line 2: ..."). */
int farm_message_parse(const char *text, size_t len, const farm_request_limits *lim,
                       farm_request *out, size_t max, size_t *n);
/* The values a set gives voices first + from .. first + from + n - 1 of its selection (from
 * counted within the selection), into out; a parsed request's values are all valid. */
void farm_request_values(const farm_request *r, uint32_t from, uint32_t n, float *out);
/* The value of the k-th selected voice for the spreads and ONE (not LIST or VECTOR). */
double farm_spread_value(farm_form form, double a, double b, uint32_t k, uint32_t n);

/* The reply to `help`: every command and selector on one line, from the tables. */
void farm_help_line(char *out, size_t size);

/* The directory of a farm's default ipc:// sockets: $XDG_RUNTIME_DIR/farm when that is an
 * absolute path, else /tmp/farm-UID. Names it only. */
void farm_runtime_dir(char *out, size_t size);
/* The pid in a socket's file name "PID" suffix (e.g. "123.control"), or -1 when name is not of
 * that form. */
long farm_socket_pid(const char *name, const char *suffix);

/* ---- running farms (discover.c) ----
 * A farm's default sockets are ipc:// URLs. On Linux each is a socket file in the runtime
 * directory, PID.control and PID.telemetry, and those files are how clients find the farm. On
 * Windows they are named pipes (ipc://farm-PID.control is \\.\pipe\farm-PID.control), which
 * leave no file: the farm writes a discovery file PID.farm in the runtime directory instead,
 * lines "KEY VALUE" naming its pid and URLs, and removes it at exit. */
#define FARM_DISCOVERY_SUFFIX ".farm"
#define FARM_URL_MAX 1100 /* "ipc://" and a path */

/* The default URL of a farm's socket (suffix FARM_CONTROL_SUFFIX or FARM_TELEMETRY_SUFFIX) in
 * runtime directory dir: ipc://DIR/PID.control, or ipc://farm-PID.control on Windows. */
void farm_default_url(char *out, size_t size, const char *dir, long pid, const char *suffix);

typedef struct farm_found {
    long pid;
    char control[FARM_URL_MAX];
} farm_found;

/* The farms running in dir: how many (*live; the first max of them in out) and how many records
 * farms that died left there (*stale: their pid is gone). FARM_EFAIL naming dir when it cannot
 * be read; a dir that does not exist holds none. */
int farm_discover(const char *dir, farm_found *out, size_t max, size_t *live, size_t *stale);
/* Removes what farms that died left in dir (their socket files, or their discovery files) and
 * nothing else. */
void farm_discover_clean(const char *dir);
/* Makes this farm findable in dir: on Windows writes PID.farm naming its control and telemetry
 * URLs (and osc, when not NULL), replacing it in one step so that a reader never sees half of
 * it; on Linux nothing (the socket files are the record). */
int farm_announce(const char *dir, long pid, const char *control, const char *telemetry,
                  const char *osc);
/* Removes what farm_announce wrote. */
void farm_withdraw(const char *dir, long pid);
/* The value of KEY in discovery file path, into out: FARM_OK, or FARM_EFAIL when the file cannot
 * be read or has no such line. */
int farm_discovery_read(const char *path, const char *key, char *out, size_t size);

#endif
