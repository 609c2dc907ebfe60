/* The command line: every option is one row of the table below, parsed by one loop over it. */
#define _GNU_SOURCE
#include <getopt.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coordinator.h"
#include "dsp.h"
#include "outfile.h"
#include "shm.h"
#include "supervisor.h"

#define MAX_VOICES (1u << 24)

typedef enum opt_kind {
    OPT_FLAG,   /* no value: stores flag_value in an int */
    OPT_U32,    /* whole number in [lo, hi] */
    OPT_U64,    /* whole number in [lo, hi] */
    OPT_DOUBLE, /* number in [lo, hi] */
    OPT_STRING, /* any non-empty text, or one of choices */
    OPT_ENUM,   /* one of choices, stored as its index in a uint32_t */
    OPT_MULTI,  /* repeatable text, appended to a farm_string_list */
    OPT_HELP,
} opt_kind;

typedef struct opt_spec opt_spec;
struct opt_spec {
    const char *name;
    char short_name;
    opt_kind kind;
    unsigned modes; /* farm_mode bits of the commands that take it */
    size_t offset;  /* of the field in farm_options */
    double lo, hi;
    int flag_value;
    const char *const *choices;                         /* NULL-terminated */
    int (*check)(const opt_spec *o, farm_options *opt); /* a rule beyond the range */
    const char *section;
    const char *arg; /* the value's name in help */
    const char *help;
};

#define PLAY FARM_PLAY
#define RENDER FARM_RENDER
#define MIX FARM_MIX
#define LIST (FARM_DEVICES | FARM_PROBE)
#define AT(field) offsetof(farm_options, field)

static const char *const sample_types[] = {"float", "pcm16", "pcm24", NULL};
static const char *const oscillators[] = {"sineloop", "sine", NULL}; /* shm_oscillator order */

static int check_positive_duration(const opt_spec *o, farm_options *opt) {
    (void)o;
    if (!(opt->duration > 0))
        return farm_fail(FARM_EUSAGE, "--duration: must be more than 0 seconds");
    return FARM_OK;
}

/* NAME=URL: NAME the node's JACK client on this server (its slave's -n), URL its control. */
static int check_node(const opt_spec *o, farm_options *opt) {
    (void)o;
    const char *spec = opt->nodes.items[opt->nodes.count - 1];
    const char *eq = strchr(spec, '=');
    size_t len = eq ? (size_t)(eq - spec) : 0;
    if (eq == NULL || len == 0 || strstr(eq + 1, "://") == NULL)
        return farm_fail(FARM_EUSAGE, "--node '%s': expected NAME=URL, e.g. node1=tcp://host:5555",
                         spec);
    if (len >= FARM_NODE_NAME_MAX ||
        strspn(spec, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                     "0123456789._-") != len)
        return farm_fail(FARM_EUSAGE,
                         "--node '%s': a name is at most %d letters, digits, '.', '_' or '-'", spec,
                         FARM_NODE_NAME_MAX - 1);
    for (uint32_t i = 0; i + 1 < opt->nodes.count; i++)
        if (strncmp(opt->nodes.items[i], spec, len + 1) == 0)
            return farm_fail(FARM_EUSAGE, "--node: %.*s is named twice", (int)len, spec);
    return FARM_OK;
}

static int check_cpus(const opt_spec *o, farm_options *opt) {
    (void)o;
    static int cpus[FARM_PLACE_MAX_PUS];
    uint32_t n;
    return farm_cpu_list_parse("--cpus", opt->cpus, cpus, FARM_PLACE_MAX_PUS, &n);
}

static int check_power_of_two(const opt_spec *o, farm_options *opt) {
    (void)o;
    if ((opt->ring_blocks & (opt->ring_blocks - 1)) != 0)
        return farm_fail(FARM_EUSAGE, "--ring-blocks: %u is not a power of two", opt->ring_blocks);
    return FARM_OK;
}

/* A worker's ring is what hides a stall of its core, so playing sizes it in time, not in blocks:
 * 4 blocks of 64 frames (5.3 ms) were late on a shared VM at two thirds of the voices that 8
 * (10.7 ms) and 16 carried (bench/results/scaling-2core-2026-11-29c*). A control change waits as
 * long, so no deeper than that: from 128 frames at 48 kHz on, 4 blocks already hold 10 ms. */
uint32_t farm_play_ring_blocks(uint32_t block_frames, uint32_t sample_rate) {
    uint32_t blocks = 4;
    while (blocks < 64 && (uint64_t)blocks * block_frames * 100 < sample_rate)
        blocks *= 2;
    return blocks;
}

/* clang-format off */
static const opt_spec table[] = {
    {"output", 'o', OPT_STRING, RENDER | MIX, AT(output), 0, 0, 0, NULL, NULL, "Output", "FILE",
     "file to write; replaced only when the command succeeds"},
    {"host", 0, OPT_STRING, PLAY, AT(host), 0, 0, 0, NULL, NULL, "Output", "NAME",
     "host API: alsa, jack, oss on Linux; wasapi, mme (ds, wdmks, asio when\n"
     "PortAudio has them) on Windows; see farm devices"},
    {"device", 0, OPT_STRING, PLAY, AT(device), 0, 0, 0, NULL, NULL, "Output", "ID",
     "output device index or name (default: the host's default)"},
    {"latency", 0, OPT_DOUBLE, PLAY, AT(latency), 0, 10, 0, NULL, NULL, "Output", "SECONDS",
     "suggested output latency (default: the device's low latency)"},
    {"jack-name", 0, OPT_STRING, PLAY, AT(jack_name), 0, 0, 0, NULL, NULL, "Output", "NAME",
     "farm's JACK client name, exactly (default: farm, or farm-01 ... when taken)"},
    {"connect", 0, OPT_STRING, PLAY, AT(connect), 0, 0, 0, NULL, NULL, "Output", "WHERE",
     "JACK: where the outputs go: system (default: the playback ports), none,\n"
     "a client's name (its inputs in order), or PORT,PORT,... one per channel"},
    {"exclusive", 0, OPT_FLAG, PLAY, AT(exclusive), 0, 0, 1, NULL, NULL, "Output", NULL,
     "Windows: WASAPI exclusive mode (implies --host wasapi): the device is farm's\n"
     "alone, no resampling or mixing by Windows; refused while another program\n"
     "holds it (farm probe says why)"},
    {"null-sink", 0, OPT_FLAG, PLAY, AT(null_sink), 0, 0, 1, NULL, NULL, "Output", NULL,
     "play into a built-in sink paced by the clock (no device); also the fallback\n"
     "when the machine has no output device"},
    {"record", 0, OPT_STRING, PLAY, AT(record), 0, 0, 0, NULL, NULL, "Output", "FILE",
     "record what is played (after gain and limiter) to FILE"},
    {"format", 0, OPT_STRING, PLAY | RENDER | MIX, AT(format), 0, 0, 0, NULL, NULL, "Output",
     "NAME", "wav, flac, ogg, aiff, caf, w64, rf64, au, ... (default: the file's extension)"},
    {"sample-type", 0, OPT_STRING, PLAY | RENDER | MIX, AT(sample_type), 0, 0, 0, sample_types,
     NULL, "Output", "T", "float, pcm16 or pcm24 (default: float; pcm24 for flac)"},
    {"duration", 0, OPT_DOUBLE, PLAY | RENDER, AT(duration), 0, 86400, 0, NULL,
     check_positive_duration, "Output", "SECONDS",
     "length (render: default 10; playing: until stopped)"},
    {"rt-priority", 0, OPT_U32, PLAY, AT(rt_priority), 0, 99, 0, NULL, NULL, "Output", "N",
     "SCHED_FIFO priority of the stream thread; workers get N-1 (0 = normal)"},
    {"no-mlock", 0, OPT_FLAG, PLAY, AT(lock_memory), 0, 0, 0, NULL, NULL, "Output", NULL,
     "do not lock memory (default: mlockall everywhere)"},
    {"control", 0, OPT_STRING, PLAY, AT(control_url), 0, 0, 0, NULL, NULL, "Control", "URL",
     "the request socket (default: ipc:// in $XDG_RUNTIME_DIR/farm, or a 0700\n"
     "directory under /tmp); any NNG URL: tcp://, ws://, tls+tcp:// (with --tls-cert\n"
     "and --tls-key)"},
    {"telemetry", 0, OPT_STRING, PLAY, AT(telemetry_url), 0, 0, 0, NULL, NULL, "Control", "URL",
     "the PUB socket for live counters (default: beside --control)"},
    {"osc", 0, OPT_STRING, PLAY, AT(osc_url), 0, 0, 0, NULL, NULL, "Control", "URL",
     "also take requests as OSC messages to /farm/COMMAND, answered\n"
     "with /farm/reply: osc.udp://127.0.0.1:57120 or osc.tcp://..."},
    {"telemetry-rate", 0, OPT_DOUBLE, PLAY, AT(telemetry_rate), 0.1, 1000, 0, NULL, NULL,
     "Control", "HZ", "telemetry messages per second"},
    {"listen-anywhere", 0, OPT_FLAG, PLAY, AT(listen_anywhere), 0, 0, 1, NULL, NULL, "Control",
     NULL, "allow tcp/ws/tls/osc on addresses beyond loopback (a warning)"},
    {"tls-cert", 0, OPT_STRING, PLAY, AT(tls_cert), 0, 0, 0, NULL, NULL, "Control", "FILE",
     "PEM certificate for tls+tcp://"},
    {"tls-key", 0, OPT_STRING, PLAY, AT(tls_key), 0, 0, 0, NULL, NULL, "Control", "FILE",
     "its PEM private key"},
    {"node", 0, OPT_MULTI, PLAY, AT(nodes), 0, 0, 0, NULL, check_node,
     "Nodes (farms on other hosts, joined over NetJACK2; see README)", "NAME=URL",
     "repeatable: the farm whose control socket is URL plays on another host into\n"
     "the NetJACK2 slave NAME; its audio (NAME:from_slave_*) joins this farm's mix,\n"
     "and requests for its voices go to it"},
    {"tls-ca", 0, OPT_STRING, PLAY, AT(tls_ca), 0, 0, 0, NULL, NULL,
     "Nodes (farms on other hosts, joined over NetJACK2; see README)", "FILE",
     "PEM authority that tls+tcp:// nodes' certificates must be signed by\n"
     "(default: encrypted but not checked)"},
    {"watchdog", 0, OPT_DOUBLE, PLAY | RENDER, AT(watchdog), 0, 3600, 0, NULL, NULL,
     "Healing (a worker that dies or hangs is replaced where it was)", "SECONDS",
     "a worker that publishes no block for this long while its ring has room is\n"
     "killed and replaced (default 0.5; 0 turns the watchdog off)"},
    {"max-restarts", 0, OPT_U32, PLAY | RENDER, AT(max_restarts), 0, FARM_MAX_RESTARTS_LIMIT, 0,
     NULL, NULL, "Healing", "N",
     "a worker that dies more than N times within 60 s is left dead, its voices\n"
     "silent (render: the render fails)"},
    {"workers", 0, OPT_U32, PLAY | RENDER, AT(workers), 1, SHM_MAX_WORKERS, 0, NULL, NULL,
     "Voices (the same seed gives the same voices whatever the worker count)", "N",
     "worker processes, one per core (default: usable cores)"},
    {"cpus", 0, OPT_STRING, PLAY | RENDER, AT(cpus), 0, 0, 0, NULL, check_cpus, "Voices", "LIST",
     "worker K runs on the K-th CPU of LIST (0-3,8,10-11), cycling when it is\n"
     "shorter (default: by topology: one worker per core before any SMT sibling,\n"
     "one L3 domain filled before the next, a spare core kept for the audio thread)"},
    {"voices", 0, OPT_U32, PLAY | RENDER, AT(voices_per_worker), 1, MAX_VOICES, 0, NULL, NULL,
     "Voices", "N", "voices per worker (default 500, pyo's Group(500))"},
    {"total-voices", 0, OPT_U32, PLAY | RENDER, AT(total_voices), 1, MAX_VOICES, 0, NULL, NULL,
     "Voices", "N", "voices in all, shared out over the workers instead"},
    {"first-voice", 0, OPT_U32, PLAY | RENDER, AT(first_voice), 0, UINT32_MAX, 0, NULL, NULL,
     "Voices", "K",
     "this farm holds voices K .. K+N-1 of one big farm with the same --seed (N: its\n"
     "voices in all), each with the frequency and pan it has there; requests name\n"
     "them so. render: writes a part for farm mix, float without gain or limiter\n"
     "(default 0, and not a part)"},
    {"part", 0, OPT_STRING, RENDER, AT(part_of), 0, 0, 0, NULL, NULL, "Voices", "K/N",
     "render the K-th of N equal parts (K from 0 to N-1) of the render of\n"
     "--total-voices voices: works out --first-voice and the part's voices, for\n"
     "farm mix; a part already whole at -o with the same options is not redone"},
    {"check", 0, OPT_FLAG, RENDER, AT(part_check), 0, 0, 1, NULL, NULL, "Voices", NULL,
     "with --part: render nothing, only print 'done' when -o already holds the part\n"
     "whole with these options, or 'missing'"},
    {"oscillator", 0, OPT_ENUM, PLAY | RENDER, AT(oscillator), 0, 0, 0, oscillators, NULL,
     "Voices", "KIND", "sineloop (pyo's SineLoop, default) or sine (pyo's Sine)"},
    {"freq-min", 0, OPT_DOUBLE, PLAY | RENDER, AT(freq_min), 0, 1e6, 0, NULL, NULL, "Voices",
     "HZ", "lowest voice frequency"},
    {"freq-max", 0, OPT_DOUBLE, PLAY | RENDER, AT(freq_max), 0, 1e6, 0, NULL, NULL, "Voices",
     "HZ", "highest voice frequency; uniform in between"},
    {"feedback", 0, OPT_DOUBLE, PLAY | RENDER, AT(feedback), 0, 1, 0, NULL, NULL, "Voices", "F",
     "SineLoop feedback"},
    {"amp", 0, OPT_DOUBLE, PLAY | RENDER, AT(amp), 0, 1, 0, NULL, NULL, "Voices", "A",
     "each voice's amplitude"},
    {"seed", 0, OPT_U64, PLAY | RENDER, AT(seed), 0, (double)UINT64_MAX, 0, NULL, NULL, "Voices",
     "N", "seed for the voices' frequencies"},
    {"sr", 0, OPT_U32, PLAY | RENDER | LIST, AT(sample_rate), 8000, 384000, 0, NULL, NULL,
     "Stream", "HZ", "sample rate"},
    {"buffersize", 0, OPT_U32, PLAY | RENDER | LIST, AT(buffer_frames), 16, 8192, 0, NULL, NULL,
     "Stream", "N", "frames per block"},
    {"channels", 0, OPT_U32, PLAY | RENDER | LIST, AT(channels), 1, 32, 0, NULL, NULL, "Stream",
     "N", "output channels; voice i sounds on channel i % N"},
    {"gain", 0, OPT_DOUBLE, PLAY | RENDER | MIX, AT(gain), 0, 1000, 0, NULL, NULL, "Stream", "G",
     "master gain before the [-1, 1] limiter"},
    {"ring-blocks", 0, OPT_U32, PLAY | RENDER, AT(ring_blocks), 2, 64, 0, NULL,
     check_power_of_two, "Stream", "N", "blocks each worker renders ahead, a power of two, 2..64;\n"
     "a control change waits as long (default: play the fewest, at least 4,\n"
     "that hold 10 ms; render 16)"},
    {"json", 0, OPT_FLAG, LIST, AT(json), 0, 0, 1, NULL, NULL, "", NULL,
     "one JSON document instead of text"},
    {"verbose", 'v', OPT_FLAG, PLAY | RENDER | LIST, AT(verbose), 0, 0, 1, NULL, NULL, "", NULL,
     "PortAudio's start-up noise; playing: a status line each second played; playing\n"
     "and render: where the workers run, at the start"},
    {"quiet", 'q', OPT_FLAG, PLAY | RENDER | MIX, AT(quiet), 0, 0, 1, NULL, NULL, "", NULL,
     "no progress bar and no summary"},
    {"progress", 0, OPT_FLAG, RENDER, AT(progress), 0, 0, 1, NULL, NULL, "", NULL,
     "show the progress bar even when stderr is not a terminal"},
    {"help", 'h', OPT_HELP, PLAY | RENDER | MIX | LIST, 0, 0, 0, 0, NULL, NULL, "", NULL,
     "this text"},
};
/* clang-format on */
#define N_OPTIONS (sizeof table / sizeof table[0])

void farm_options_defaults(farm_mode mode, farm_options *o) {
    memset(o, 0, sizeof *o);
    o->mode = mode;
    o->duration = mode == FARM_RENDER ? 10 : 0;
    o->rt_priority = 10;
    o->telemetry_rate = 10;
    o->lock_memory = 1;
    o->workers = farm_usable_cpus();
    o->voices_per_worker = 500;
    o->sample_rate = 48000;
    o->buffer_frames = 256;
    o->channels = 2;
    o->ring_blocks = mode == FARM_RENDER ? 16 : 4; /* render: deep rings, woken in batches */
    o->oscillator = SHM_OSC_SINELOOP;
    o->freq_min = 400;
    o->freq_max = 800;
    o->feedback = 0.1;
    o->amp = 0.005;
    o->gain = 1;
    o->ramp = 0.005;
    o->seed = 1;
    o->progress = -1;
    o->watchdog = 0.5;
    o->max_restarts = 5;
}

static const char *mode_name(farm_mode mode) {
    switch (mode) {
    case FARM_PLAY:
        return "playing";
    case FARM_RENDER:
        return "farm render";
    case FARM_DEVICES:
        return "farm devices";
    case FARM_MIX:
        return "farm mix";
    case FARM_PROBE:
        break;
    }
    return "farm probe";
}

static const char *help_command(farm_mode mode) {
    switch (mode) {
    case FARM_PLAY:
        return "farm --help";
    case FARM_RENDER:
        return "farm render --help";
    case FARM_DEVICES:
        return "farm devices --help";
    case FARM_MIX:
        return "farm mix --help";
    case FARM_PROBE:
        break;
    }
    return "farm probe --help";
}

/* ---- one loop over the table ---- */

static int choice_index(const opt_spec *o, const char *value) {
    for (int i = 0; o->choices[i] != NULL; i++)
        if (strcmp(o->choices[i], value) == 0)
            return i;
    return -1;
}

static int choices_error(const opt_spec *o, const char *value) {
    char list[128] = "";
    size_t n = 0;
    for (int i = 0; o->choices[i] != NULL && n < sizeof list; i++)
        n += (size_t)snprintf(list + n, sizeof list - n, "%s%s", i ? ", " : "", o->choices[i]);
    return farm_fail(FARM_EUSAGE, "--%s: '%s' is not one of %s", o->name, value, list);
}

static int store(const opt_spec *o, const char *value, farm_options *opt) {
    void *field = (char *)opt + o->offset;
    char what[40];
    snprintf(what, sizeof what, "--%s", o->name);
    switch (o->kind) {
    case OPT_FLAG:
        *(int *)field = o->flag_value;
        return FARM_OK;
    case OPT_U32:
        return farm_parse_u32(what, value, (uint32_t)o->lo, (uint32_t)o->hi, field);
    case OPT_U64:
        return farm_parse_u64(what, value, (uint64_t)o->lo,
                              o->hi >= (double)UINT64_MAX ? UINT64_MAX : (uint64_t)o->hi, field);
    case OPT_DOUBLE:
        return farm_parse_double(what, value, o->lo, o->hi, field);
    case OPT_STRING:
        if (value[0] == '\0')
            return farm_fail(FARM_EUSAGE, "--%s: empty value", o->name);
        if (o->choices != NULL && choice_index(o, value) < 0)
            return choices_error(o, value);
        *(const char **)field = value;
        return FARM_OK;
    case OPT_MULTI: {
        farm_string_list *list = field;
        if (value[0] == '\0')
            return farm_fail(FARM_EUSAGE, "--%s: empty value", o->name);
        if (list->count == FARM_LIST_MAX)
            return farm_fail(FARM_EUSAGE, "--%s: at most %d", o->name, FARM_LIST_MAX);
        list->items[list->count++] = value;
        return FARM_OK;
    }
    case OPT_ENUM: {
        int i = choice_index(o, value);
        if (i < 0)
            return choices_error(o, value);
        *(uint32_t *)field = (uint32_t)i;
        return FARM_OK;
    }
    case OPT_HELP:
        break;
    }
    return FARM_HELP_ASKED;
}

static void build_getopt(struct option *longs, char *shorts) {
    char *s = shorts;
    *s++ = ':'; /* a missing value is its own case */
    for (size_t i = 0; i < N_OPTIONS; i++) {
        int takes = table[i].kind != OPT_FLAG && table[i].kind != OPT_HELP;
        longs[i] = (struct option){table[i].name, takes ? required_argument : no_argument, NULL,
                                   (int)(256 + i)};
        if (table[i].short_name) {
            *s++ = table[i].short_name;
            if (takes)
                *s++ = ':';
        }
    }
    longs[N_OPTIONS] = (struct option){NULL, 0, NULL, 0};
    *s = '\0';
}

static const opt_spec *spec_of(int ch) {
    if (ch >= 256 && (size_t)(ch - 256) < N_OPTIONS)
        return &table[ch - 256];
    for (size_t i = 0; i < N_OPTIONS; i++)
        if (table[i].short_name && table[i].short_name == ch)
            return &table[i];
    return NULL;
}

/* One option as getopt returned it; marks it given. */
static int take(farm_mode mode, int ch, char **argv, farm_options *opt, unsigned char *given) {
    if (ch == ':')
        return farm_fail(FARM_EUSAGE, "%s needs a value", argv[optind - 1]);
    const opt_spec *o = spec_of(ch);
    if (o == NULL)
        return farm_fail(FARM_EUSAGE, "unknown option '%s' (see %s)", argv[optind - 1],
                         help_command(mode));
    if (!(o->modes & mode))
        return farm_fail(FARM_EUSAGE, "--%s is not an option of %s (see %s)", o->name,
                         mode_name(mode), help_command(mode));
    int rv = store(o, optarg, opt);
    if (rv == FARM_OK && o->check != NULL)
        rv = o->check(o, opt);
    given[o - table] = 1;
    return rv;
}

static int was_given(const unsigned char *given, const char *name) {
    for (size_t i = 0; i < N_OPTIONS; i++)
        if (strcmp(table[i].name, name) == 0)
            return given[i];
    return 0;
}

static int check_voices(farm_options *o, const unsigned char *given) {
    if (was_given(given, "voices") && was_given(given, "total-voices"))
        return farm_fail(FARM_EUSAGE,
                         "--voices (per worker) and --total-voices exclude each other");
    if (was_given(given, "total-voices")) {
        if (o->total_voices < o->workers)
            return farm_fail(FARM_EUSAGE,
                             "--total-voices: %u voices cannot be shared out over %u workers",
                             o->total_voices, o->workers);
        return FARM_OK;
    }
    if ((uint64_t)o->voices_per_worker * o->workers > MAX_VOICES)
        return farm_fail(FARM_EUSAGE, "--voices: %u workers x %u voices is more than %u",
                         o->workers, o->voices_per_worker, MAX_VOICES);
    o->total_voices = o->voices_per_worker * o->workers;
    return FARM_OK;
}

/* Global voice numbers are 32-bit: the farm's last voice must have one. */
static int check_first_voice(const farm_options *o) {
    uint64_t last = (uint64_t)o->first_voice + o->total_voices - 1;
    if (last > UINT32_MAX)
        return farm_fail(FARM_EUSAGE,
                         "--first-voice: voices %u..%llu go beyond the last voice number, %u",
                         o->first_voice, (unsigned long long)last, UINT32_MAX);
    return FARM_OK;
}

/* A part is summed with others by farm mix, which applies the gain and the limiter once: it is
 * written as float, as rendered, so that the parts add up exactly. */
static int check_part(const farm_options *o, const unsigned char *given) {
    if (was_given(given, "gain"))
        return farm_fail(FARM_EUSAGE, "--gain: a part (--first-voice) is written without gain or "
                                      "limiter so that parts add up; give --gain to farm mix");
    if (o->sample_type != NULL && strcmp(o->sample_type, "float") != 0)
        return farm_fail(FARM_EUSAGE,
                         "--sample-type %s: a part (--first-voice) is written as float so that "
                         "parts add up exactly; farm mix writes %s",
                         o->sample_type, o->sample_type);
    int yes = 0;
    int rv = farm_outfile_takes_float(o->output, o->format, o->sample_rate, o->channels, &yes);
    if (rv == FARM_OK && !yes)
        return farm_fail(FARM_EUSAGE,
                         "%s: a part (--first-voice) is written as float so that parts add up "
                         "exactly, which this format cannot hold: use wav, w64, caf or rf64",
                         o->output);
    return rv;
}

/* --part K/N: the K-th of N parts of the whole render of --total-voices voices, as even as can
 * be (the first T % N parts hold one voice more). It becomes that part's --first-voice and
 * --total-voices, with no more workers than it has voices. */
static int apply_part(farm_options *o, const unsigned char *given) {
    const char *s = o->part_of;
    char *end = NULL;
    unsigned long long k = 0, n = 0;
    if (s[0] >= '0' && s[0] <= '9')
        k = strtoull(s, &end, 10);
    if (end != NULL && *end == '/' && end[1] >= '0' && end[1] <= '9')
        n = strtoull(end + 1, &end, 10);
    else
        end = NULL;
    if (end == NULL || *end != '\0' || k > UINT32_MAX || n > UINT32_MAX)
        return farm_fail(FARM_EUSAGE, "--part '%s': expected K/N, e.g. 0/4 (the first of 4 parts)",
                         s);
    if (n < 1)
        return farm_fail(FARM_EUSAGE, "--part %s: N, the number of parts, must be 1 or more", s);
    if (k >= n)
        return farm_fail(FARM_EUSAGE, "--part %s: K counts from 0, so it must be below N (0..%llu)",
                         s, n - 1);
    if (was_given(given, "first-voice"))
        return farm_fail(FARM_EUSAGE,
                         "--part and --first-voice exclude each other: --part works out the "
                         "part's first voice");
    if (!was_given(given, "total-voices"))
        return farm_fail(FARM_EUSAGE,
                         "--part %s: give the whole render's voices with --total-voices (--voices "
                         "is per worker, and parts may run on other worker counts)",
                         s);
    const uint32_t whole = o->total_voices;
    if (n > whole)
        return farm_fail(FARM_EUSAGE,
                         "--part %s: %llu parts of %u voices would leave parts with none: use at "
                         "most %u parts",
                         s, n, whole, whole);
    const uint32_t each = whole / (uint32_t)n, more = whole % (uint32_t)n;
    o->part_k = (uint32_t)k;
    o->part_n = (uint32_t)n;
    o->whole_voices = whole;
    o->first_voice = o->part_k * each + (o->part_k < more ? o->part_k : more);
    o->total_voices = each + (o->part_k < more ? 1 : 0);
    if (o->workers > o->total_voices)
        o->workers = o->total_voices;
    return FARM_OK;
}

static int check_mix(const farm_options *o) {
    if (o->part_count == 0)
        return farm_fail(FARM_EUSAGE, "no parts to mix: farm mix -o OUT PART... (see %s)",
                         help_command(FARM_MIX));
    return FARM_OK;
}

/* Rules between options, after all are read. */
static int check_together(farm_mode mode, farm_options *o, const unsigned char *given) {
    if ((mode & (FARM_RENDER | FARM_MIX)) && o->output == NULL)
        return farm_fail(FARM_EUSAGE, "no output file: give one with -o FILE");
    if (mode == FARM_MIX)
        return check_mix(o);
    if (mode == FARM_PLAY && o->record == NULL && (o->format || o->sample_type))
        return farm_fail(FARM_EUSAGE, "%s applies to --record, which was not given",
                         o->format ? "--format" : "--sample-type");
    if (mode == FARM_PLAY && o->null_sink && (o->host || o->device || o->exclusive))
        return farm_fail(FARM_EUSAGE, "--null-sink plays into no device: %s does not apply",
                         o->host     ? "--host"
                         : o->device ? "--device"
                                     : "--exclusive");
    if (mode == FARM_PLAY && o->null_sink && (o->jack_name || o->connect || o->nodes.count))
        return farm_fail(FARM_EUSAGE, "--null-sink plays into no JACK server: %s does not apply",
                         o->jack_name ? "--jack-name"
                         : o->connect ? "--connect"
                                      : "--node");
    if (!(mode & (FARM_PLAY | FARM_RENDER)))
        return FARM_OK;
    if (mode == FARM_PLAY && !was_given(given, "ring-blocks"))
        o->ring_blocks = farm_play_ring_blocks(o->buffer_frames, o->sample_rate);
    if (o->part_check && o->part_of == NULL)
        return farm_fail(FARM_EUSAGE, "--check: goes with --part K/N");
    int rv = o->part_of != NULL ? apply_part(o, given) : FARM_OK;
    if (rv == FARM_OK)
        rv = check_voices(o, given);
    if (rv == FARM_OK)
        rv = check_first_voice(o);
    o->part = mode == FARM_RENDER && (was_given(given, "first-voice") || o->part_of != NULL);
    if (rv == FARM_OK && o->part)
        rv = check_part(o, given);
    if (rv != FARM_OK)
        return rv;
    if (o->freq_min > o->freq_max)
        return farm_fail(FARM_EUSAGE, "--freq-min %g is above --freq-max %g", o->freq_min,
                         o->freq_max);
    if (o->freq_max > o->sample_rate / 2.0)
        return farm_fail(FARM_EUSAGE,
                         "--freq-max %g is above the Nyquist frequency (%g Hz at --sr %u)",
                         o->freq_max, o->sample_rate / 2.0, o->sample_rate);
    return FARM_OK;
}

int farm_parse_options(farm_mode mode, int argc, char **argv, farm_options *o) {
    struct option longs[N_OPTIONS + 1];
    char shorts[2 * N_OPTIONS + 2];
    unsigned char given[N_OPTIONS] = {0};
    farm_options_defaults(mode, o);
    build_getopt(longs, shorts);
    opterr = 0;
    optind = 1;
    int ch, rv;
    while ((ch = getopt_long(argc, argv, shorts, longs, NULL)) != -1)
        if ((rv = take(mode, ch, argv, o, given)) != FARM_OK)
            return rv;
    if (mode == FARM_MIX) { /* getopt has moved the parts after the options, in their order */
        o->parts = argv + optind;
        o->part_count = (uint32_t)(argc - optind);
        optind = argc;
    }
    if (optind < argc)
        return farm_fail(FARM_EUSAGE, "unexpected argument '%s' (see %s)", argv[optind],
                         help_command(mode));
    return check_together(mode, o, given);
}

/* ---- help, from the same table ---- */

static void print_default(const opt_spec *o, const farm_options *d, FILE *to) {
    const void *field = (const char *)d + o->offset;
    if (strstr(o->help, "default") != NULL)
        return;
    switch (o->kind) {
    case OPT_U32:
        fprintf(to, " (default %u)", *(const uint32_t *)field);
        break;
    case OPT_U64:
        fprintf(to, " (default %llu)", (unsigned long long)*(const uint64_t *)field);
        break;
    case OPT_DOUBLE:
        fprintf(to, " (default %g)", *(const double *)field);
        break;
    case OPT_FLAG:
    case OPT_STRING:
    case OPT_ENUM:
    case OPT_MULTI:
    case OPT_HELP:
        break;
    }
    if (o->kind == OPT_U32 || o->kind == OPT_DOUBLE)
        fprintf(to, ", %g..%g", o->lo, o->hi);
}

static void print_option(const opt_spec *o, const farm_options *d, FILE *to) {
    char left[48];
    int n = o->short_name ? snprintf(left, sizeof left, "  -%c, --%s", o->short_name, o->name)
                          : snprintf(left, sizeof left, "      --%s", o->name);
    if (o->arg && n > 0 && (size_t)n < sizeof left)
        snprintf(left + n, sizeof left - (size_t)n, " %s", o->arg);
    fprintf(to, "%-26s", left);
    if (strlen(left) >= 26)
        fprintf(to, "\n%-26s", "");
    for (const char *p = o->help; *p; p++) {
        fputc(*p, to);
        if (*p == '\n')
            fprintf(to, "%-26s", "");
    }
    print_default(o, d, to);
    fputc('\n', to);
}

static void print_intro(farm_mode mode, FILE *to) {
    switch (mode) {
    case FARM_PLAY:
        fputs("usage: farm [options]\n\nPlays the farm through one PortAudio output stream until "
              "Ctrl-C, SIGTERM or\n--duration, then fades out and stops cleanly.\n",
              to);
        return;
    case FARM_RENDER:
        fputs("usage: farm render -o OUT [options]\n\nRenders the farm offline, as fast as the "
              "cores allow, into OUT.\nWith --first-voice it renders a part of a bigger farm "
              "for farm mix: voices K..\nK+N-1, as float without gain or limiter. With --part "
              "K/N it works those out for\nthe K-th of N parts, e.g. a Slurm job array:\n\n"
              "    farm render -o part-$K.wav --part $K/4 --total-voices 8000   (K = 0..3)\n"
              "    farm mix -o out.flac part-0.wav part-1.wav part-2.wav part-3.wav\n",
              to);
        return;
    case FARM_MIX:
        fputs("usage: farm mix -o OUT [options] PART...\n\nSums parts written by farm render "
              "--part K/N or --first-voice K (on this\nhost or others), in the order given, then "
              "applies --gain and the [-1, 1]\nlimiter as render does, and writes OUT. The parts "
              "must agree in sample rate,\nchannels and length; a warning names voices that two "
              "parts both hold, or\nthat none holds between them. Example, 4000 voices in two "
              "parts:\n\n"
              "    farm render -o a.wav --first-voice 0 --total-voices 2000\n"
              "    farm render -o b.wav --first-voice 2000 --total-voices 2000\n"
              "    farm mix -o out.flac a.wav b.wav\n\n"
              "or, the same, by count:\n\n"
              "    farm render -o a.wav --part 0/2 --total-voices 4000\n"
              "    farm render -o b.wav --part 1/2 --total-voices 4000\n",
              to);
        return;
    case FARM_DEVICES:
        fputs("usage: farm devices [--json] [--verbose]\n\nLists PortAudio's host APIs and "
              "devices; * marks the defaults. Use an index or a\nname with --device, a host's "
              "short name with --host.\n",
              to);
        return;
    case FARM_PROBE:
        break;
    }
    fputs("usage: farm probe [--json] [--sr HZ] [--buffersize N] [--channels N] [--verbose]\n\n"
          "For each host API, tries to open its default output device alone and with its\n"
          "default input (duplex) at the given rate and buffer size, and says OK or why\n"
          "not, with a hint.\n",
          to);
}

void farm_usage(farm_mode mode, FILE *to) {
    farm_options d;
    farm_options_defaults(mode, &d);
    print_intro(mode, to);
    const char *section = NULL;
    for (size_t i = 0; i < N_OPTIONS; i++) {
        const opt_spec *o = &table[i];
        if (!(o->modes & mode))
            continue;
        if (section == NULL || strncmp(section, o->section, strlen(o->section)) != 0 ||
            (o->section[0] == '\0' && section[0] != '\0')) {
            fprintf(to, "\n%s%s", o->section, o->section[0] ? "\n" : "");
            section = o->section;
        }
        print_option(o, &d, to);
    }
    if (mode & (FARM_PLAY | FARM_RENDER))
        fputs("\nExit status: 0 done, 1 failed while running, 2 bad input (nothing started or\n"
              "written), 130/143 stopped by SIGINT/SIGTERM (playing: after a clean fade-out;\n"
              "render: the part rendered so far is kept, properly closed).\n",
              to);
    if (mode == FARM_MIX)
        fputs("\nExit status: 0 done, 1 failed while running (a part that ends early, a full\n"
              "disk), 2 bad input (no parts, a part that cannot be read, parts that differ in\n"
              "rate, channels or length), 130/143 stopped by SIGINT/SIGTERM; OUT is written\n"
              "only when all of it is mixed, otherwise what was there is left untouched.\n",
              to);
}

void farm_overview(FILE *to) {
    fputs("usage: farm [options]                    play the farm through one audio stream\n"
          "       farm render -o OUT.wav [options]   render it to a file, as fast as possible\n"
          "       farm mix -o OUT.wav PART.wav...    sum parts (render --part K/N, --first-voice)\n"
          "       farm devices [--json]              list host APIs and output devices\n"
          "       farm probe [--json]                try each host API's default devices\n"
          "       farm help [play|render|mix|devices|probe]  all options of one command\n"
          "       farm --version\n"
          "\n"
          "farm runs banks of pyo-style SineLoop oscillators in worker processes, one per core,\n"
          "and mixes them into one stream. pyo's multi-process recipe (4 processes x 500\n"
          "SineLoop voices, each with its own stream) becomes:\n"
          "\n"
          "    farm --workers 4 --voices 500                 play until Ctrl-C\n"
          "    farm render -o out.wav --workers 4 --voices 500 --duration 10\n",
          to);
}

shm_config farm_shm_config(const farm_options *o, uint64_t block_limit) {
    return (shm_config){
        .workers = o->workers,
        .channels = o->channels,
        .block_frames = o->buffer_frames,
        .ring_blocks = o->ring_blocks,
        .total_voices = o->total_voices,
        .first_voice = o->first_voice,
        .oscillator = o->oscillator,
        .sample_rate = o->sample_rate,
        .freq_min = o->freq_min,
        .freq_max = o->freq_max,
        .feedback = o->feedback,
        .amp = o->amp,
        .ramp_seconds = o->ramp,
        .seed = o->seed,
        .block_limit = block_limit,
        .lock_memory = o->mode == FARM_PLAY && o->lock_memory,
        /* Render has no deadline: each side sleeps until half the ring is ready, so one
         * wake-up moves several blocks. Playing keeps its rings as full as they can be. */
        .wake_batch = o->mode == FARM_RENDER ? o->ring_blocks / 2 : 1,
    };
}

farm_heal_desc farm_heal_config(const farm_options *o) {
    return (farm_heal_desc){.watchdog_s = o->watchdog,
                            .max_restarts = o->max_restarts,
                            .restart_window_s = 60,
                            .render = o->mode == FARM_RENDER};
}
