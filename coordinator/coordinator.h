/* coordinator — the `farm` program: its command line, and the commands that put the modules
 * together: render (the offline loop), mix (parts rendered apart, summed), play (the live
 * session and its recorder), devices and probe.
 *
 * Contract
 * - Exit status (farm_exit_status): 0 done; 2 bad input (an option, a path, a worker that cannot
 *   start), with one line on stderr naming what was wrong and nothing left behind (no file, no
 *   process, no shared memory); 1 a failure while running (a worker died, the disk filled);
 *   128+signal after SIGINT/SIGTERM, with the workers reaped and the output closed properly.
 * - Every option is one row of the table in options.c: its name, kind, range, where it is
 *   stored, which commands take it and its help. Defaults are filled in one place
 *   (farm_options_defaults).
 * - Errors as everywhere in farm (base.h); main prints the message once, prefixed "farm: ".
 */
#ifndef FARM_COORDINATOR_H
#define FARM_COORDINATOR_H

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>

#include "base.h"

typedef enum farm_mode {
    FARM_PLAY = 1 << 0,
    FARM_RENDER = 1 << 1,
    FARM_DEVICES = 1 << 2,
    FARM_PROBE = 1 << 3,
    FARM_MIX = 1 << 4,
} farm_mode;

#define FARM_LIST_MAX 16      /* values of a repeatable option */
#define FARM_NODE_NAME_MAX 64 /* bytes of a node's name, with its NUL (JACK_NODE_NAME_MAX) */
typedef struct farm_string_list {
    const char *items[FARM_LIST_MAX];
    uint32_t count;
} farm_string_list;

typedef struct farm_options {
    farm_mode mode;
    const char *output; /* render: -o */
    const char *format; /* NULL: from the extension */
    const char *sample_type;
    double duration; /* seconds; 0 = until stopped (playback) */
    uint32_t workers;
    const char *cpus; /* --cpus: worker K on the K-th CPU of this list; NULL: by topology */
    uint32_t voices_per_worker; /* one of these two is set after parsing */
    uint32_t total_voices;
    uint32_t first_voice;    /* the global number of this farm's first voice (--first-voice) */
    int part;                /* render: --first-voice given, a part: float, no gain, no limiter */
    const char *part_of;     /* render: --part K/N as given; NULL: not given */
    uint32_t part_k, part_n; /* --part: the K-th (from 0) of N parts */
    uint32_t whole_voices;   /* --part: the voices of the whole render (its --total-voices) */
    int part_check;          /* --check: only say whether -o holds the part, whole */
    uint32_t sample_rate;
    uint32_t buffer_frames;
    uint32_t channels;
    uint32_t ring_blocks;
    uint32_t oscillator; /* shm_oscillator */
    double freq_min, freq_max;
    double feedback;
    double amp;
    double gain;
    double ramp;
    uint64_t seed;
    int quiet;
    int progress; /* -1 auto (on a terminal), 0 off, 1 on */
    int json;     /* devices, probe */
    /* playing */
    const char *host;   /* host API name, NULL = PortAudio's default */
    const char *device; /* index or name, NULL = the host's default output */
    double latency;     /* suggested latency in seconds; 0 = the device's low latency */
    const char *record; /* file to record the mix into */
    uint32_t rt_priority;
    int lock_memory;
    int verbose;
    int null_sink;          /* play into the clock-paced null sink even if a device exists */
    int exclusive;          /* WASAPI exclusive mode (Windows) */
    const char *jack_name;  /* JACK client name; NULL: farm */
    const char *connect;    /* JACK: where the outputs go; NULL: system */
    farm_string_list nodes; /* --node NAME=URL */
    const char *tls_ca;     /* checks tls+tcp:// nodes' certificates */
    /* control */
    const char *control_url;   /* NULL: ipc:// in the private runtime directory */
    const char *telemetry_url; /* likewise */
    int listen_anywhere;       /* allow tcp/ws/osc on addresses beyond loopback */
    double telemetry_rate;     /* messages per second */
    const char *tls_cert, *tls_key;
    const char *osc_url; /* NULL: no OSC */
    /* healing */
    double watchdog;       /* seconds a worker may go without a block while its ring has room */
    uint32_t max_restarts; /* replacements of one worker within 60 s, at most */
    /* mixing */
    char *const *parts; /* the files to sum, in order (argv's) */
    uint32_t part_count;
} farm_options;

void farm_options_defaults(farm_mode mode, farm_options *opt);
/* Fills defaults for mode, parses argv (argv[0] is the subcommand or program name; options
 * start at argv[1]), validates. FARM_EUSAGE names the option. Returns FARM_HELP_ASKED (not an
 * error) when --help was asked for. */
#define FARM_HELP_ASKED (-1)
int farm_parse_options(farm_mode mode, int argc, char **argv, farm_options *opt);
void farm_usage(farm_mode mode, FILE *to); /* one mode's options, from the table */
void farm_overview(FILE *to);              /* farm --help */

/* Playing's default --ring-blocks: the fewest blocks, a power of two from 4 to 64, that hold at
 * least 10 ms at this block size and rate. */
uint32_t farm_play_ring_blocks(uint32_t block_frames, uint32_t sample_rate);

/* The farm's shared configuration from the options; workers stop after block_limit blocks
 * (0: never). */
struct shm_config;
struct shm_config farm_shm_config(const farm_options *opt, uint64_t block_limit);

/* How the supervisor heals, from the options. */
struct farm_heal_desc;
struct farm_heal_desc farm_heal_config(const farm_options *opt);

/* A part's identity, kept as its file's comment by render --first-voice and read by mix:
 * "farm part: first_voice=K voices=N seed=S sr=R channels=C", then the other options that make
 * its sound (oscillator, frequencies, feedback, amp, block size, length), which mix ignores and
 * render --part compares to know a part already rendered. */
#define FARM_PART_COMMENT_MAX 512
void farm_part_comment(char *out, size_t size, const farm_options *opt);
/* render --part: 1 when opt's output already holds, whole, the part these options describe (its
 * comment is theirs and it holds all its frames), so it need not be rendered again; else 0. */
int farm_part_done(const farm_options *opt, uint64_t frames);
/* Pins the audio callback's thread (when pin is set) to the core the placement kept for it, if
 * any, and under -v says where everything runs, prefixed by who. farm render pins nothing: it
 * has no deadline, and a pinned loop on a machine shared with others could not move to a free
 * core (measured: docs/benchmarks.md, "Placement"); its workers stay off the spare core all the
 * same. */
struct farm_procs;
void farm_coordinator_place(const farm_options *opt, const struct farm_procs *procs,
                            pthread_t stream_thread, int pin, const char *who);
/* The coordinator owns the mapping: the configuration from the options (workers stop after
 * block_limit blocks, 0 never), prepared by the supervisor, made into *region, and the workers
 * started on it. On failure nothing is left. Then stop_workers stops them and closes it. */
struct shm_region;
int farm_coordinator_start_workers(const farm_options *opt, uint64_t block_limit,
                                   struct shm_region *region, struct farm_procs **procs);
void farm_coordinator_stop_workers(struct shm_region *region, struct farm_procs *procs);
/* Where a worker runs, for the reports: "cpu N", or "unpinned" for -1. */
void farm_cpu_text(int cpu, char *out, size_t size);

/* The commands. */
int farm_render(const farm_options *opt);
int farm_mix_parts(const farm_options *opt); /* farm mix: mix_parts.c */
int farm_play(const farm_options *opt);
int farm_list_devices(const farm_options *opt);
int farm_list_probe(const farm_options *opt);

#endif
