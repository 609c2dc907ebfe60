/* coordinator — the `farm` program: parses what the user asked for, starts the workers, mixes
 * their blocks and writes (render) or plays the result.
 *
 * Contract
 * - Exit status: 0 done; 2 bad input (an option, a path, a worker that cannot start), with one
 *   line on stderr naming what was wrong and nothing left behind (no file, no process, no
 *   shared memory); 1 a failure while running (a worker died, the disk filled); 128+signal
 *   after SIGINT/SIGTERM, with the workers reaped and the output closed properly.
 * - Every function that can fail returns 0 or a farm_status code and leaves a message for
 *   farm_error_message(); main prints it once, prefixed with "farm: ".
 */
#ifndef FARM_COORDINATOR_H
#define FARM_COORDINATOR_H

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdint.h>
#include <sys/types.h>

#include "shm.h"

enum farm_status {
    FARM_OK = 0,
    FARM_EFAIL = 1,  /* failed while running */
    FARM_EUSAGE = 2, /* bad input */
};

/* printf-style; keeps the first message of a failure, which names the cause. */
int farm_fail(int status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
const char *farm_error_message(void);
void farm_error_clear(void);

/* ---- options ---- */

typedef enum farm_mode { FARM_RENDER, FARM_PLAY } farm_mode;

typedef struct farm_options {
    farm_mode mode;
    const char *output; /* render: -o */
    const char *format; /* NULL: from the extension */
    const char *sample_type;
    double duration; /* seconds; 0 = until stopped (playback) */
    uint32_t workers;
    uint32_t voices_per_worker; /* one of these two is set after parsing */
    uint32_t total_voices;
    uint32_t sample_rate;
    uint32_t buffer_frames;
    uint32_t channels;
    uint32_t ring_blocks;
    uint32_t oscillator; /* 0 SineLoop, 1 Sine */
    double freq_min, freq_max;
    double feedback;
    double amp;
    double gain;
    double ramp;
    uint64_t seed;
    int quiet;
    int progress; /* -1 auto (on a terminal), 0 off, 1 on */
    /* playing */
    const char *host;   /* host API name, NULL = PortAudio's default */
    const char *device; /* index or name, NULL = the host's default output */
    double latency;     /* suggested latency in seconds; 0 = the device's low latency */
    const char *record; /* file to record the mix into */
    uint32_t rt_priority;
    int lock_memory;
    int verbose;
    int null_sink; /* play into the clock-paced null sink even if a device exists */
    /* control */
    const char *control_url;   /* NULL: ipc:// in the private runtime directory */
    const char *telemetry_url; /* likewise */
    int listen_anywhere;       /* allow tcp/ws on addresses beyond loopback */
    double telemetry_rate;     /* messages per second */
    const char *tls_cert, *tls_key;
    uint32_t test_slow_worker; /* 1 + index; test hook */
    uint32_t test_slow_us;
    uint32_t test_slow_record_us; /* test hook: the recorder sleeps this long per block */
} farm_options;

/* Fills defaults for mode, parses argv (argv[0] is the subcommand or program name),
 * validates. On FARM_EUSAGE the message names the option. Returns 1 (not an error) when
 * --help was asked for. */
int farm_parse_options(farm_mode mode, int argc, char **argv, farm_options *opt);
void farm_render_usage(FILE *to);
void farm_play_usage(FILE *to);
void farm_usage(FILE *to);
uint32_t farm_usable_cpus(void);

/* ---- workers ---- */

typedef struct farm_procs {
    shm_region region;
    uint32_t count;
    pid_t pid[SHM_MAX_WORKERS];
    int reaped[SHM_MAX_WORKERS];
} farm_procs;

/* Creates the shared region from opt and starts one farm-worker per worker, pinned round-robin
 * over the usable CPUs, then waits (bounded) until each is RUNNING. On failure everything
 * started is stopped again. block_limit: workers stop after that many blocks (0 = never). */
int farm_procs_start(farm_procs *p, const farm_options *opt, uint64_t block_limit);
/* Asks every worker to quit, waits a moment, kills what is left, reaps all, unmaps. Safe to
 * call twice. */
void farm_procs_stop(farm_procs *p);
/* Returns 0 while every worker lives; otherwise FARM_EFAIL naming the first that died. */
int farm_procs_check(farm_procs *p);

/* ---- mixing ---- */

typedef struct farm_mix_stats {
    uint64_t clipped;
} farm_mix_stats;

/* The master gain, ramping linearly towards target while left > 0 (frames). */
typedef struct farm_gain {
    float value, target, step;
    uint32_t left;
} farm_gain;

/* out = limit(gain * sum of blocks[0..n-1], in that order), samples clamped to [-1, 1] and
 * counted; the gain steps once per frame. Real-time safe. */
void farm_mix(float *out, const float *const *blocks, uint32_t n, uint32_t frames,
              uint32_t channels, farm_gain *gain, farm_mix_stats *stats);

/* ---- sound files: whole or not at all ---- */

/* Where the output goes: a regular file is written under a temporary name beside it and put in
 * place when finished (keeping an existing file's mode, owner and hard links); a symbolic link
 * is followed to its final target, so the link stays a link; a character device (/dev/null) is
 * written in place. FIFOs, sockets and block devices are refused: a sound file's header is
 * patched at the end by seeking back. A wav known to fit in 4 GiB is plain WAV; one longer or
 * of unknown length is RF64, which stays a RIFF WAVE file (WAVE_FORMAT_EXTENSIBLE) if it ends
 * under 4 GiB. Other formats refuse a length they cannot hold, at open or when it is reached. */
typedef struct farm_outfile {
    char path[4096];            /* as named, for messages */
    char target[4096];          /* path, or the final target of the symbolic link path */
    char tmp[4096];             /* the temporary beside target; "" once in place or direct */
    struct sf_private_tag *snd; /* SNDFILE, without making every includer include sndfile.h */
    int fd;                     /* the descriptor libsndfile writes */
    int direct;                 /* a character device, written in place */
    int published;              /* in place while writing; the header follows the frames */
    const char *type_name;      /* "float", "pcm16", "pcm24", "vorbis" */
    const char *format_name;    /* "wav", "aiff", ... as named */
    uint32_t sample_rate;
    uint64_t frames;
    uint64_t max_frames;    /* what the format can hold; 0: no limit */
    uint64_t header_frames; /* frames when the header was last brought up to date */
    uint32_t header_every;  /* frames between header updates once published; 0: none */
} farm_outfile;

/* Chooses the format from format (or path's extension) and sample_type, checks what is at path
 * (see above) and opens a temporary file beside it (or the device). expected_frames: how long
 * the file will be, 0 if not known; a format that cannot hold that many is refused here.
 * FARM_EUSAGE names what was wrong; FARM_EFAIL for a device that fails (/dev/full). */
int farm_outfile_open(farm_outfile *f, const char *path, const char *format,
                      const char *sample_type, uint32_t sample_rate, uint32_t channels,
                      uint64_t expected_frames);
/* FARM_EFAIL naming the file and the reason (a full disk) or that the format is full. */
int farm_outfile_write(farm_outfile *f, const float *frames, uint64_t count);
/* Puts the file in place now, while it is still being written, and from then on keeps its
 * header up to date (at most header_every frames behind), so the file is readable under its
 * own name even if the process is killed. For a live recording; render does not call it. */
int farm_outfile_publish(farm_outfile *f);
/* Closes; with keep puts the file in place, otherwise removes it. After publish it only
 * closes: the file stays, with keep or not. */
int farm_outfile_finish(farm_outfile *f, int keep);

/* ---- the real-time engine: what the audio callback runs ---- */

typedef struct farm_engine {
    shm_region *region;
    shm_header *header;
    uint32_t workers, channels, block_frames;
    farm_gain gain;
    const float **ins; /* one per worker, preallocated */
    float *block;      /* the current mixed block */
    float *silence;    /* a block of zeros for a late worker */
    uint32_t pos;      /* frames of block already handed out */
    /* fades: in at the start, out when stop is asked for */
    _Atomic int stop_requested;
    _Atomic int faded_out;
    float fade, fade_step;
    /* the thread the callbacks run on, published by the first one (pthread_self is no system
     * call) so the main thread can read its scheduling */
    pthread_t cb_thread;
    _Atomic int cb_thread_known;
    /* master gain from the control thread: target, ramp, and a sequence number that the
     * callback acknowledges (with the stream block it started at) */
    _Atomic uint32_t gain_target_bits; /* a float's bits */
    _Atomic uint32_t gain_ramp_frames;
    _Atomic uint32_t gain_seq, gain_seq_seen;
    _Atomic uint64_t gain_block;
    uint32_t gain_seq_applied;
    uint64_t blocks_mixed;
    /* recording: blocks go to a ring that a non-real-time thread drains */
    shm_ring *rec_ring;
    void *rec_base;
} farm_engine;

/* Allocates everything the callback will touch. rec_ring may be NULL (no recording). */
int farm_engine_init(farm_engine *e, shm_region *region, const farm_options *o);
void farm_engine_free(farm_engine *e);
/* Fills out with frames interleaved frames. Real-time safe: never waits; a worker with no
 * block ready is silence and a late block. underflow: the host reported one. */
void farm_engine_process(farm_engine *e, float *out, uint32_t frames, int underflow);

/* ---- audio output: PortAudio or the null sink, one small ops table ---- */

typedef struct farm_audio farm_audio;
/* Chooses and checks the output (device, rate, channels) before anything starts; on a machine
 * with no output device, the null sink. FARM_EUSAGE names what was refused. */
int farm_audio_open(farm_audio **out, const farm_options *o, farm_engine *e);
int farm_audio_start(farm_audio *a);
void farm_audio_stop(farm_audio *a);
void farm_audio_close(farm_audio *a);
int farm_audio_active(farm_audio *a);
double farm_audio_cpu_load(farm_audio *a);
const char *farm_audio_describe(farm_audio *a); /* "system (JACK Audio Connection Kit)" */

int farm_devices(int argc, char **argv);
int farm_probe(int argc, char **argv);

/* ---- the control protocol (see CONTROL.md) ---- */

#define FARM_REQUEST_MAX 65536 /* bytes; longer requests are refused */

typedef enum farm_req_kind {
    FARM_REQ_STATUS,
    FARM_REQ_SET,
    FARM_REQ_VOICE, /* voice SELECTOR play|stop, worker K play|stop */
    FARM_REQ_GAIN,
    FARM_REQ_QUIT,
    FARM_REQ_HELP,
} farm_req_kind;

typedef enum farm_param {
    FARM_PARAM_FREQ,
    FARM_PARAM_FEEDBACK,
    FARM_PARAM_AMP,
    FARM_PARAM_PAN,
} farm_param;

typedef struct farm_request_limits {
    uint32_t voices, workers, channels;
    double sample_rate;
} farm_request_limits;

typedef struct farm_request {
    farm_req_kind kind;
    farm_param param;
    uint32_t first, count; /* voices, when not whole_worker */
    int whole_worker;
    uint32_t worker;
    int play;
    double value;
    double ramp; /* seconds; negative: the default */
} farm_request;

/* Parses one request line (len bytes, not necessarily NUL-terminated). 0 on success; -1 with a
 * one-line message in err naming what was wrong. Allocates nothing; safe on any bytes. */
int farm_request_parse(const char *text, size_t len, const farm_request_limits *lim,
                       farm_request *req, char *err, size_t errsize);

/* ---- control over NNG (control.c) ---- */

typedef struct farm_control farm_control;
struct cJSON;
/* Opens the REP and PUB sockets (default: ipc:// in a private directory) and their threads.
 * FARM_EUSAGE for a URL that cannot be used or would be exposed without --listen-anywhere. */
int farm_control_start(farm_control **out, const farm_options *o, farm_procs *procs,
                       farm_engine *engine, farm_audio *audio);
void farm_control_stop(farm_control *c);
int farm_control_quit_requested(const farm_control *c);
const char *farm_control_url(const farm_control *c);
const char *farm_control_telemetry_url(const farm_control *c);
/* One request in, the JSON reply out (malloc'd). */
char *farm_control_handle(farm_control *c, const char *text, size_t len);
void farm_control_counters(farm_control *c, struct cJSON *root);
/* The private directory for default ipc:// sockets ($XDG_RUNTIME_DIR/farm or /tmp/farm-UID). */
int farm_control_dir(char *out, size_t size);

/* ---- commands ---- */

int farm_render(const farm_options *opt);
int farm_play(const farm_options *opt);

/* Set by SIGINT/SIGTERM handlers; the loops poll it. */
extern volatile sig_atomic_t farm_stop_signal;
void farm_install_signal_handlers(void);

#endif
