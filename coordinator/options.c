#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coordinator.h"

/* ---- one way to report errors ---- */

static char error_message[512];

int farm_fail(int status, const char *fmt, ...) {
    if (error_message[0] == '\0') {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(error_message, sizeof error_message, fmt, ap);
        va_end(ap);
    }
    return status;
}

const char *farm_error_message(void) {
    return error_message[0] ? error_message : "unknown error";
}

void farm_error_clear(void) {
    error_message[0] = '\0';
}

uint32_t farm_usable_cpus(void) {
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) != 0)
        return 1;
    int n = CPU_COUNT(&set);
    return n > 0 ? (uint32_t)n : 1;
}

/* ---- usage ---- */

void farm_usage(FILE *to) {
    fputs("usage: farm [options]                    play the farm through one audio stream\n"
          "       farm render -o OUT.wav [options]   render it to a file, as fast as possible\n"
          "       farm devices [--json]              list host APIs and output devices\n"
          "       farm probe [--json]                try each host API's default devices\n"
          "       farm help [render|play]            all options\n"
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

static const char voice_help[] =
    "Voices (the same seed gives the same voices whatever the worker count)\n"
    "      --workers N         worker processes, one per core (default: usable cores)\n"
    "      --voices N          voices per worker (default 500, pyo's Group(500))\n"
    "      --total-voices N    voices in all, shared out over the workers instead\n"
    "      --oscillator KIND   sineloop (pyo's SineLoop, default) or sine (pyo's Sine)\n"
    "      --freq-min HZ       lowest voice frequency (default 400)\n"
    "      --freq-max HZ       highest voice frequency (default 800); uniform in between\n"
    "      --feedback F        SineLoop feedback, 0..1 (default 0.1)\n"
    "      --amp A             each voice's amplitude (default 0.005)\n"
    "      --seed N            seed for the voices' frequencies (default 1)\n"
    "\n"
    "Stream\n"
    "      --sr HZ             sample rate, 8000..384000 (default 48000)\n"
    "      --buffersize N      frames per block, 16..8192 (default 256)\n"
    "      --channels N        1..32 (default 2); voice i sounds on channel i % N\n"
    "      --gain G            master gain before the [-1, 1] limiter (default 1)\n"
    "      --ring-blocks N     blocks each worker renders ahead, 2..64, power of two (default 4)\n";

void farm_play_usage(FILE *to) {
    fputs(
        "usage: farm [options]\n"
        "\n"
        "Plays the farm through one PortAudio output stream until Ctrl-C, SIGTERM or\n"
        "--duration, then fades out and stops cleanly.\n"
        "\n"
        "Output\n"
        "      --host NAME         host API: alsa, jack, oss (coreaudio, wasapi, asio,\n"
        "                          directsound, mme, wdm-ks elsewhere); see farm devices\n"
        "      --device ID         output device index or name (default: the host's default)\n"
        "      --latency SECONDS   suggested output latency (default: the device's low latency)\n"
        "      --null-sink         play into a built-in sink paced by the clock (no device);\n"
        "                          also the fallback when the machine has no output device\n"
        "      --record FILE       record what is played (after gain and limiter) to FILE\n"
        "      --sample-type T     --record's sample type: float, pcm16 or pcm24\n"
        "      --format NAME       --record's format (default: FILE's extension)\n"
        "      --duration SECONDS  stop after this long (default: until stopped)\n"
        "      --rt-priority N     SCHED_FIFO priority of the stream thread; workers get N-1\n"
        "                          (default 10; 0 = normal scheduling)\n"
        "      --no-mlock          do not lock memory (default: mlockall everywhere)\n"
        "\n"
        "Control (see CONTROL.md; farmctl speaks it)\n"
        "      --control URL       the request socket (default: ipc:// in $XDG_RUNTIME_DIR/farm,\n"
        "                          or a 0700 directory under /tmp); any NNG URL: tcp://, ws://,\n"
        "                          tls+tcp:// (with --tls-cert and --tls-key)\n"
        "      --telemetry URL     the PUB socket for live counters (default: beside --control)\n"
        "      --telemetry-rate HZ telemetry messages per second (default 10)\n"
        "      --listen-anywhere   allow tcp/ws/tls on addresses beyond loopback (a warning)\n"
        "      --tls-cert FILE     PEM certificate for tls+tcp://\n"
        "      --tls-key FILE      its PEM private key\n"
        "\n"
        "  -v, --verbose         a status line every second, and PortAudio's start-up noise\n"
        "  -q, --quiet           no summary at the end\n"
        "\n",
        to);
    fputs(voice_help, to);
    fputs("\n"
          "      --test-slow-worker K:US  (tests) worker K sleeps US microseconds every block\n"
          "      --test-slow-record US    (tests) the recorder sleeps US microseconds per block\n"
          "  -h, --help              this text\n"
          "\n"
          "Exit status: 0 done, 1 failed while running, 2 bad input (nothing started),\n"
          "130/143 stopped by SIGINT/SIGTERM (after a clean fade-out).\n",
          to);
}

void farm_render_usage(FILE *to) {
    fputs(
        "usage: farm render -o OUT [options]\n"
        "\n"
        "Renders the farm offline, as fast as the cores allow, into OUT.\n"
        "\n"
        "Output\n"
        "  -o, --output FILE       file to write; replaced only when the render succeeds\n"
        "      --format NAME       wav, flac, ogg, aiff, caf, w64, rf64, au, ... (default: OUT's\n"
        "                          extension)\n"
        "      --sample-type T     float, pcm16 or pcm24 (default: float; pcm24 for flac)\n"
        "      --duration SECONDS  length of the render (default 10)\n"
        "\n",
        to);
    fputs(voice_help, to);
    fputs("\n"
          "  -q, --quiet             no progress bar and no summary\n"
          "      --progress          show the progress bar even when stderr is not a terminal\n"
          "  -h, --help              this text\n"
          "\n"
          "Exit status: 0 done, 1 failed while running, 2 bad input (nothing written),\n"
          "130/143 interrupted (the part rendered so far is kept, properly closed).\n",
          to);
}

/* ---- parsing helpers: each names the option it checks ---- */

static int parse_double(const char *name, const char *s, double lo, double hi, double *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || *end != '\0' || errno == ERANGE)
        return farm_fail(FARM_EUSAGE, "%s: '%s' is not a number", name, s);
    if (!isfinite(v))
        return farm_fail(FARM_EUSAGE, "%s: '%s' is not a finite number", name, s);
    if (v < lo || v > hi)
        return farm_fail(FARM_EUSAGE, "%s: %s is out of range (%g to %g)", name, s, lo, hi);
    *out = v;
    return FARM_OK;
}

static int parse_u64(const char *name, const char *s, uint64_t lo, uint64_t hi, uint64_t *out) {
    char *end;
    errno = 0;
    if (*s == '-' || *s == '+' || *s == ' ')
        return farm_fail(FARM_EUSAGE, "%s: '%s' is not a whole number from %llu to %llu", name, s,
                         (unsigned long long)lo, (unsigned long long)hi);
    unsigned long long v = strtoull(s, &end, 10);
    if (end == s || *end != '\0' || errno == ERANGE || v < lo || v > hi)
        return farm_fail(FARM_EUSAGE, "%s: '%s' is not a whole number from %llu to %llu", name, s,
                         (unsigned long long)lo, (unsigned long long)hi);
    *out = v;
    return FARM_OK;
}

static int parse_u32(const char *name, const char *s, uint32_t lo, uint32_t hi, uint32_t *out) {
    uint64_t v;
    int rv = parse_u64(name, s, lo, hi, &v);
    if (rv == FARM_OK)
        *out = (uint32_t)v;
    return rv;
}

enum {
    OPT_FORMAT = 256,
    OPT_SAMPLE_TYPE,
    OPT_DURATION,
    OPT_WORKERS,
    OPT_VOICES,
    OPT_TOTAL_VOICES,
    OPT_OSCILLATOR,
    OPT_FREQ_MIN,
    OPT_FREQ_MAX,
    OPT_FEEDBACK,
    OPT_AMP,
    OPT_SEED,
    OPT_SR,
    OPT_BUFFERSIZE,
    OPT_CHANNELS,
    OPT_GAIN,
    OPT_RING_BLOCKS,
    OPT_PROGRESS,
    OPT_HOST,
    OPT_DEVICE,
    OPT_LATENCY,
    OPT_RECORD,
    OPT_RT_PRIORITY,
    OPT_NO_MLOCK,
    OPT_NULL_SINK,
    OPT_TEST_SLOW,
    OPT_TEST_SLOW_RECORD,
    OPT_CONTROL,
    OPT_TELEMETRY,
    OPT_LISTEN_ANYWHERE,
    OPT_TELEMETRY_RATE,
    OPT_TLS_CERT,
    OPT_TLS_KEY,
};

static const struct option all_options[] = {
    {"output", required_argument, NULL, 'o'},
    {"host", required_argument, NULL, OPT_HOST},
    {"device", required_argument, NULL, OPT_DEVICE},
    {"latency", required_argument, NULL, OPT_LATENCY},
    {"record", required_argument, NULL, OPT_RECORD},
    {"rt-priority", required_argument, NULL, OPT_RT_PRIORITY},
    {"no-mlock", no_argument, NULL, OPT_NO_MLOCK},
    {"null-sink", no_argument, NULL, OPT_NULL_SINK},
    {"test-slow-worker", required_argument, NULL, OPT_TEST_SLOW},
    {"test-slow-record", required_argument, NULL, OPT_TEST_SLOW_RECORD},
    {"control", required_argument, NULL, OPT_CONTROL},
    {"telemetry", required_argument, NULL, OPT_TELEMETRY},
    {"listen-anywhere", no_argument, NULL, OPT_LISTEN_ANYWHERE},
    {"telemetry-rate", required_argument, NULL, OPT_TELEMETRY_RATE},
    {"tls-cert", required_argument, NULL, OPT_TLS_CERT},
    {"tls-key", required_argument, NULL, OPT_TLS_KEY},
    {"verbose", no_argument, NULL, 'v'},
    {"format", required_argument, NULL, OPT_FORMAT},
    {"sample-type", required_argument, NULL, OPT_SAMPLE_TYPE},
    {"duration", required_argument, NULL, OPT_DURATION},
    {"workers", required_argument, NULL, OPT_WORKERS},
    {"voices", required_argument, NULL, OPT_VOICES},
    {"total-voices", required_argument, NULL, OPT_TOTAL_VOICES},
    {"oscillator", required_argument, NULL, OPT_OSCILLATOR},
    {"freq-min", required_argument, NULL, OPT_FREQ_MIN},
    {"freq-max", required_argument, NULL, OPT_FREQ_MAX},
    {"feedback", required_argument, NULL, OPT_FEEDBACK},
    {"amp", required_argument, NULL, OPT_AMP},
    {"seed", required_argument, NULL, OPT_SEED},
    {"sr", required_argument, NULL, OPT_SR},
    {"buffersize", required_argument, NULL, OPT_BUFFERSIZE},
    {"channels", required_argument, NULL, OPT_CHANNELS},
    {"gain", required_argument, NULL, OPT_GAIN},
    {"ring-blocks", required_argument, NULL, OPT_RING_BLOCKS},
    {"quiet", no_argument, NULL, 'q'},
    {"progress", no_argument, NULL, OPT_PROGRESS},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

/* The name the user typed an option by, for messages (argv[optind - 1] may be its value). */
static const char *option_name(int ch, char *buf, size_t size) {
    for (const struct option *o = all_options; o->name != NULL; o++)
        if (o->val == ch) {
            if (ch < 256)
                snprintf(buf, size, "-%c/--%s", ch, o->name);
            else
                snprintf(buf, size, "--%s", o->name);
            return buf;
        }
    snprintf(buf, size, "-%c", ch);
    return buf;
}

/* Options that only one mode takes; the other refuses them by name. */
static int play_only(int ch) {
    return ch == OPT_HOST || ch == OPT_DEVICE || ch == OPT_LATENCY || ch == OPT_RECORD ||
           ch == OPT_RT_PRIORITY || ch == OPT_NO_MLOCK || ch == OPT_NULL_SINK ||
           ch == OPT_TEST_SLOW || ch == OPT_TEST_SLOW_RECORD || ch == 'v' || ch == OPT_CONTROL ||
           ch == OPT_TELEMETRY || ch == OPT_LISTEN_ANYWHERE || ch == OPT_TELEMETRY_RATE ||
           ch == OPT_TLS_CERT || ch == OPT_TLS_KEY;
}

static int render_only(int ch) {
    return ch == 'o' || ch == OPT_PROGRESS;
}

static void defaults(farm_mode mode, farm_options *o) {
    memset(o, 0, sizeof *o);
    o->mode = mode;
    o->duration = mode == FARM_RENDER ? 10 : 0;
    o->rt_priority = 10;
    o->telemetry_rate = 10;
    o->lock_memory = 1;
    o->workers = farm_usable_cpus();
    o->sample_rate = 48000;
    o->buffer_frames = 256;
    o->channels = 2;
    o->ring_blocks = 4;
    o->freq_min = 400;
    o->freq_max = 800;
    o->feedback = 0.1;
    o->amp = 0.005;
    o->gain = 1;
    o->ramp = 0.005;
    o->seed = 1;
    o->progress = -1;
}

#define MAX_VOICES (1u << 24)

int farm_parse_options(farm_mode mode, int argc, char **argv, farm_options *o) {
    defaults(mode, o);
    int rv = FARM_OK, ch;
    int voices_given = 0, total_given = 0;
    double freq_min_arg = -1, freq_max_arg = -1;
    opterr = 0;
    optind = 1;
    const char *help = mode == FARM_RENDER ? "farm render --help" : "farm --help";
    while (rv == FARM_OK && (ch = getopt_long(argc, argv, ":o:qvh", all_options, NULL)) != -1) {
        if ((mode == FARM_RENDER && play_only(ch)) || (mode == FARM_PLAY && render_only(ch))) {
            char name[64];
            rv = farm_fail(FARM_EUSAGE, "%s is not an option of %s (see %s)",
                           option_name(ch, name, sizeof name),
                           mode == FARM_RENDER ? "farm render" : "playing", help);
            break;
        }
        switch (ch) {
        case 'o':
            o->output = optarg;
            break;
        case OPT_FORMAT:
            o->format = optarg;
            break;
        case OPT_SAMPLE_TYPE:
            if (strcmp(optarg, "float") && strcmp(optarg, "pcm16") && strcmp(optarg, "pcm24"))
                rv = farm_fail(FARM_EUSAGE, "--sample-type: '%s' is not one of float, pcm16, pcm24",
                               optarg);
            o->sample_type = optarg;
            break;
        case OPT_DURATION:
            rv = parse_double("--duration", optarg, 0, 86400, &o->duration);
            if (rv == FARM_OK && !(o->duration > 0))
                rv = farm_fail(FARM_EUSAGE, "--duration: must be more than 0 seconds");
            break;
        case OPT_WORKERS:
            rv = parse_u32("--workers", optarg, 1, SHM_MAX_WORKERS, &o->workers);
            break;
        case OPT_VOICES:
            rv = parse_u32("--voices", optarg, 1, MAX_VOICES, &o->voices_per_worker);
            voices_given = 1;
            break;
        case OPT_TOTAL_VOICES:
            rv = parse_u32("--total-voices", optarg, 1, MAX_VOICES, &o->total_voices);
            total_given = 1;
            break;
        case OPT_OSCILLATOR:
            if (strcmp(optarg, "sineloop") == 0)
                o->oscillator = 0;
            else if (strcmp(optarg, "sine") == 0)
                o->oscillator = 1;
            else
                rv = farm_fail(FARM_EUSAGE, "--oscillator: '%s' is not sineloop or sine", optarg);
            break;
        case OPT_FREQ_MIN:
            rv = parse_double("--freq-min", optarg, 0, 1e6, &freq_min_arg);
            break;
        case OPT_FREQ_MAX:
            rv = parse_double("--freq-max", optarg, 0, 1e6, &freq_max_arg);
            break;
        case OPT_FEEDBACK:
            rv = parse_double("--feedback", optarg, 0, 1, &o->feedback);
            break;
        case OPT_AMP:
            rv = parse_double("--amp", optarg, 0, 1, &o->amp);
            break;
        case OPT_SEED:
            rv = parse_u64("--seed", optarg, 0, UINT64_MAX, &o->seed);
            break;
        case OPT_SR:
            rv = parse_u32("--sr", optarg, 8000, 384000, &o->sample_rate);
            break;
        case OPT_BUFFERSIZE:
            rv = parse_u32("--buffersize", optarg, 16, 8192, &o->buffer_frames);
            break;
        case OPT_CHANNELS:
            rv = parse_u32("--channels", optarg, 1, 32, &o->channels);
            break;
        case OPT_GAIN:
            rv = parse_double("--gain", optarg, 0, 1000, &o->gain);
            break;
        case OPT_RING_BLOCKS:
            rv = parse_u32("--ring-blocks", optarg, 2, 64, &o->ring_blocks);
            if (rv == FARM_OK && (o->ring_blocks & (o->ring_blocks - 1)) != 0)
                rv = farm_fail(FARM_EUSAGE, "--ring-blocks: %u is not a power of two",
                               o->ring_blocks);
            break;
        case 'q':
            o->quiet = 1;
            break;
        case 'v':
            o->verbose = 1;
            break;
        case OPT_HOST:
            o->host = optarg;
            break;
        case OPT_DEVICE:
            o->device = optarg;
            break;
        case OPT_LATENCY:
            rv = parse_double("--latency", optarg, 0, 10, &o->latency);
            break;
        case OPT_RECORD:
            o->record = optarg;
            if (optarg[0] == '\0')
                rv = farm_fail(FARM_EUSAGE, "--record: empty file name");
            break;
        case OPT_RT_PRIORITY:
            rv = parse_u32("--rt-priority", optarg, 0, 99, &o->rt_priority);
            break;
        case OPT_NO_MLOCK:
            o->lock_memory = 0;
            break;
        case OPT_NULL_SINK:
            o->null_sink = 1;
            break;
        case OPT_CONTROL:
            o->control_url = optarg;
            break;
        case OPT_TELEMETRY:
            o->telemetry_url = optarg;
            break;
        case OPT_LISTEN_ANYWHERE:
            o->listen_anywhere = 1;
            break;
        case OPT_TELEMETRY_RATE:
            rv = parse_double("--telemetry-rate", optarg, 0.1, 1000, &o->telemetry_rate);
            break;
        case OPT_TLS_CERT:
            o->tls_cert = optarg;
            break;
        case OPT_TLS_KEY:
            o->tls_key = optarg;
            break;
        case OPT_TEST_SLOW_RECORD:
            rv = parse_u32("--test-slow-record", optarg, 0, 10000000, &o->test_slow_record_us);
            break;
        case OPT_TEST_SLOW: {
            unsigned k, us;
            char extra;
            if (sscanf(optarg, "%u:%u%c", &k, &us, &extra) != 2 || us > 10000000)
                rv = farm_fail(FARM_EUSAGE, "--test-slow-worker: '%s' is not K:MICROSECONDS",
                               optarg);
            o->test_slow_worker = k + 1;
            o->test_slow_us = us;
            break;
        }
        case OPT_PROGRESS:
            o->progress = 1;
            break;
        case 'h':
            return 1;
        case ':':
            rv = farm_fail(FARM_EUSAGE, "%s needs a value", argv[optind - 1]);
            break;
        default:
            rv = farm_fail(FARM_EUSAGE, "unknown option '%s' (see %s)", argv[optind - 1], help);
            break;
        }
    }
    if (rv != FARM_OK)
        return rv;
    if (optind < argc)
        return farm_fail(FARM_EUSAGE, "unexpected argument '%s' (see %s)", argv[optind], help);
    if (mode == FARM_RENDER && (o->output == NULL || o->output[0] == '\0'))
        return farm_fail(FARM_EUSAGE, "no output file: give one with -o FILE");
    if (mode == FARM_PLAY && o->record == NULL && (o->format || o->sample_type))
        return farm_fail(FARM_EUSAGE, "%s applies to --record, which was not given",
                         o->format ? "--format" : "--sample-type");
    if (o->test_slow_worker > o->workers)
        return farm_fail(FARM_EUSAGE, "--test-slow-worker: there is no worker %u",
                         o->test_slow_worker - 1);
    if (voices_given && total_given)
        return farm_fail(FARM_EUSAGE,
                         "--voices (per worker) and --total-voices exclude each other");
    if (total_given) {
        if (o->total_voices < o->workers)
            return farm_fail(FARM_EUSAGE,
                             "--total-voices: %u voices cannot be shared out over %u workers",
                             o->total_voices, o->workers);
    } else {
        if (!voices_given)
            o->voices_per_worker = 500;
        if ((uint64_t)o->voices_per_worker * o->workers > MAX_VOICES)
            return farm_fail(FARM_EUSAGE, "--voices: %u workers x %u voices is more than %u",
                             o->workers, o->voices_per_worker, MAX_VOICES);
        o->total_voices = o->voices_per_worker * o->workers;
    }
    if (freq_min_arg >= 0)
        o->freq_min = freq_min_arg;
    if (freq_max_arg >= 0)
        o->freq_max = freq_max_arg;
    if (o->freq_min > o->freq_max)
        return farm_fail(FARM_EUSAGE, "--freq-min %g is above --freq-max %g", o->freq_min,
                         o->freq_max);
    if (o->freq_max > o->sample_rate / 2.0)
        return farm_fail(FARM_EUSAGE,
                         "--freq-max %g is above the Nyquist frequency (%g Hz at --sr %u)",
                         o->freq_max, o->sample_rate / 2.0, o->sample_rate);
    return FARM_OK;
}
