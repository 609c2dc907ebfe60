/* A running farm for the end-to-end tests: started as a user would start it (the null sink,
 * paced by its clock), asked over a REQ socket on its control URL, its stream's own clock read
 * from status, and stopped with quit, checking that it exited 0 and left nothing behind.
 * Every farm started here is also in tu_farm_start's list, so a suite's .fini that calls
 * tu_farm_cleanup stops it whatever happened in the test. */
#ifndef FARM_TESTFARM_H
#define FARM_TESTFARM_H

#include <cjson/cJSON.h>
#include <nng/nng.h>
#include <stddef.h>
#include <sys/types.h>

#include "testutil.h"

/* How long one request may wait for its reply (send and receive timeouts of the REQ socket).
 * A hang guard, not a verdict: a farm answers in milliseconds, and only one whose control
 * thread is stuck takes this long, on however loaded a machine. */
#define TF_REPLY_TIMEOUT_MS 10000

/* What a test changes about the farm it starts; {0} for the defaults. */
typedef struct tf_options {
    /* extra environment entries, "NAME=VALUE", NULL-terminated (e.g. FARM_ISA=avx2), or NULL;
     * the fixture always gives ALSA_CONFIG_PATH=alsa-none.conf and JACK_NO_START_SERVER=1 */
    const char *const *env;
    /* --ring-blocks; 0 for 16, a deep ring: a stall of this shared machine must not make a
     * block late in a test about something else */
    int ring_blocks;
} tf_options;

typedef struct tf_farm {
    tu_run run; /* its exit status and output once it is down */
    pid_t pid;
    char dir[256];                               /* where its output goes (the test's dir) */
    char control[512], telemetry[512], osc[512]; /* as status reports them; osc "" when none */
    double sample_rate, block_frames;            /* status's config */
    nng_socket req;                              /* dialled to control */
} tf_farm;

/* Starts farm --null-sink --ring-blocks 16 followed by args (NULL-terminated), output in dir;
 * waits for it to print its control URL, dials it and reads its URLs and clock from status. */
void tf_up(tf_farm *f, const char *dir, const char *const *args);
void tf_up_with(tf_farm *f, const char *dir, const char *const *args, const tf_options *o);

/* Sends msg (len bytes) and returns the reply, parsed (the caller deletes it). */
cJSON *tf_ask_bytes(tf_farm *f, const void *msg, size_t len);
cJSON *tf_ask(tf_farm *f, const char *line);
/* The reply says ok. */
int tf_ok(const cJSON *reply);
/* line is taken (ok); tf_ask_ok returns the reply (the caller deletes it). */
cJSON *tf_ask_ok(tf_farm *f, const char *line);
void tf_expect_ok(tf_farm *f, const char *line);
/* line is refused with an error that contains want. */
void tf_expect_refused(tf_farm *f, const char *line, const char *want);
/* o's member name, which must be there. */
cJSON *tf_item(const cJSON *o, const char *name);

/* The stream's own clock, from one status reply. */
typedef struct tf_stream {
    double block;     /* the stream block the engine is at (what "at B" and from_block count) */
    double seconds;   /* played, in stream seconds */
    double frames;    /* played, in frames (seconds times the sample rate) */
    double callbacks; /* audio callbacks so far */
} tf_stream;
tf_stream tf_stream_now(tf_farm *f);
double tf_stream_block(tf_farm *f);
double tf_played_frames(tf_farm *f);
/* Wait until the stream has played frames, or reached block: conditions on the farm's clock,
 * polled. Each fails the test (instead of hanging it) when the stream has not got there
 * within TF_STREAM_WAIT_S of wall time, which only a farm that stopped playing takes. */
#define TF_STREAM_WAIT_S 30
void tf_wait_played(tf_farm *f, double frames);
void tf_wait_block(tf_farm *f, double block);

/* quit over the socket, then tf_wait_down. */
void tf_down(tf_farm *f);
/* For a farm already told to quit (e.g. over OSC): closes the socket, waits for the farm, and
 * checks that it exited 0, that no process of it is left, that its ipc socket files are gone,
 * and that the URLs it announced on stderr are the ones status reported. */
void tf_wait_down(tf_farm *f);

#endif
