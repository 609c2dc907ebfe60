/* Audio output: a PortAudio stream, or the null sink (a thread paced by the clock) when the
 * machine has no output device or --null-sink asks for it. Both drive farm_engine_process, so
 * tests and machines without hardware run the real code path. Also `farm devices` and
 * `farm probe`. */
#define _GNU_SOURCE
#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <pa_linux_alsa.h>
#include <portaudio.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "coordinator.h"

/* ---- PortAudio, quietly ---- */

/* On machines without sound hardware Pa_Initialize prints dozens of lines of ALSA and JACK
 * complaints on stderr. They are noise unless asked for, so stderr points at /dev/null while
 * PortAudio starts and opens. */
static int quiet_begin(int verbose) {
    if (verbose)
        return -1;
    fflush(stderr);
    int saved = dup(2);
    int devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
    if (saved < 0 || devnull < 0) {
        if (saved >= 0)
            close(saved);
        if (devnull >= 0)
            close(devnull);
        return -1;
    }
    dup2(devnull, 2);
    close(devnull);
    return saved;
}

static void quiet_end(int saved) {
    if (saved < 0)
        return;
    dup2(saved, 2);
    close(saved);
}

static int pa_started;

static int pa_start(int verbose) {
    if (pa_started)
        return FARM_OK;
    /* Looking for JACK must not start a JACK server as a side effect. */
    setenv("JACK_NO_START_SERVER", "1", 0);
    int q = quiet_begin(verbose);
    PaError err = Pa_Initialize();
    quiet_end(q);
    if (err != paNoError)
        return farm_fail(FARM_EFAIL, "PortAudio did not start: %s", Pa_GetErrorText(err));
    pa_started = 1;
    return FARM_OK;
}

static void pa_end(void) {
    if (pa_started) {
        int q = quiet_begin(0);
        Pa_Terminate();
        quiet_end(q);
        pa_started = 0;
    }
}

/* ---- host API names ---- */

static const struct {
    const char *name;
    PaHostApiTypeId type;
} host_names[] = {
    {"alsa", paALSA},
    {"jack", paJACK},
    {"oss", paOSS},
    {"coreaudio", paCoreAudio},
    {"wasapi", paWASAPI},
    {"asio", paASIO},
    {"directsound", paDirectSound},
    {"mme", paMME},
    {"wdm-ks", paWDMKS},
};

static const char *host_short_name(PaHostApiTypeId type) {
    for (size_t i = 0; i < sizeof host_names / sizeof host_names[0]; i++)
        if (host_names[i].type == type)
            return host_names[i].name;
    return "other";
}

static int find_host(const char *name, PaHostApiIndex *out) {
    if (strcasecmp(name, "pulse") == 0 || strcasecmp(name, "pulseaudio") == 0 ||
        strcasecmp(name, "pipewire") == 0)
        return farm_fail(FARM_EUSAGE,
                         "--host %s: this PortAudio has no %s host API; reach it through ALSA "
                         "(--host alsa --device pulse)",
                         name, name);
    for (size_t i = 0; i < sizeof host_names / sizeof host_names[0]; i++) {
        if (strcasecmp(name, host_names[i].name) != 0)
            continue;
        PaHostApiIndex h = Pa_HostApiTypeIdToHostApiIndex(host_names[i].type);
        if (h < 0)
            return farm_fail(FARM_EUSAGE,
                             "--host %s: not available here (see farm devices for the hosts "
                             "this machine has)",
                             name);
        *out = h;
        return FARM_OK;
    }
    return farm_fail(FARM_EUSAGE,
                     "--host '%s' is not one of alsa, jack, oss, coreaudio, wasapi, asio, "
                     "directsound, mme, wdm-ks",
                     name);
}

/* Index, exact name, or a unique part of a name; output devices only, of host when given. */
static int find_device(const char *spec, PaHostApiIndex host, PaDeviceIndex *out) {
    int n = Pa_GetDeviceCount();
    char *end;
    long idx = strtol(spec, &end, 10);
    if (*spec != '\0' && *end == '\0') {
        if (idx < 0 || idx >= n)
            return farm_fail(FARM_EUSAGE, "--device %s: no such device (see farm devices)", spec);
        const PaDeviceInfo *d = Pa_GetDeviceInfo((PaDeviceIndex)idx);
        if (d->maxOutputChannels < 1)
            return farm_fail(FARM_EUSAGE, "--device %s (%s) has no outputs", spec, d->name);
        if (host >= 0 && d->hostApi != host)
            return farm_fail(FARM_EUSAGE, "--device %s (%s) does not belong to --host %s", spec,
                             d->name, Pa_GetHostApiInfo(host)->name);
        *out = (PaDeviceIndex)idx;
        return FARM_OK;
    }
    PaDeviceIndex partial = paNoDevice;
    int partial_count = 0;
    for (PaDeviceIndex i = 0; i < n; i++) {
        const PaDeviceInfo *d = Pa_GetDeviceInfo(i);
        if (d->maxOutputChannels < 1 || (host >= 0 && d->hostApi != host))
            continue;
        if (strcasecmp(d->name, spec) == 0) {
            *out = i;
            return FARM_OK;
        }
        if (strcasestr(d->name, spec) != NULL) {
            partial = i;
            partial_count++;
        }
    }
    if (partial_count == 1) {
        *out = partial;
        return FARM_OK;
    }
    if (partial_count > 1)
        return farm_fail(FARM_EUSAGE,
                         "--device '%s' matches %d devices; name one exactly or by "
                         "index (see farm devices)",
                         spec, partial_count);
    return farm_fail(FARM_EUSAGE, "--device '%s': no such output device%s (see farm devices)", spec,
                     host >= 0 ? " on that host" : "");
}

static const char *hint_for(PaError err) {
    switch (err) {
    case paInvalidSampleRate:
        return "rate mismatch: use the device's rate with --sr";
    case paInvalidChannelCount:
        return "the device has fewer channels: lower --channels";
    case paDeviceUnavailable:
        return "device busy: another program holds it";
    case paInvalidDevice:
        return "no such device";
    default:
        return NULL;
    }
}

/* ---- the ops table ---- */

typedef struct farm_audio_ops {
    int (*start)(farm_audio *a);
    void (*stop)(farm_audio *a);
    void (*close)(farm_audio *a);
    int (*active)(farm_audio *a);
    double (*cpu_load)(farm_audio *a);
} farm_audio_ops;

struct farm_audio {
    const farm_audio_ops *ops;
    farm_engine *engine;
    char description[256];
    /* PortAudio */
    PaStream *stream;
    /* null sink */
    pthread_t thread;
    int thread_started;
    _Atomic int running;
    uint32_t frames;
    double sample_rate;
    uint32_t rt_priority;
    float *buffer;
    uint64_t busy_ns, wall_ns0;
};

/* ---- PortAudio stream ---- */

static int pa_callback(const void *in, void *out, unsigned long frames,
                       const PaStreamCallbackTimeInfo *time, PaStreamCallbackFlags flags,
                       void *user) {
    (void)in;
    (void)time;
    farm_audio *a = user;
    farm_engine_process(a->engine, out, (uint32_t)frames, (flags & paOutputUnderflow) != 0);
    return paContinue;
}

static int pa_stream_start(farm_audio *a) {
    PaError err = Pa_StartStream(a->stream);
    if (err != paNoError)
        return farm_fail(FARM_EFAIL, "cannot start the stream on %s: %s", a->description,
                         Pa_GetErrorText(err));
    return FARM_OK;
}

static void pa_stream_stop(farm_audio *a) {
    if (Pa_IsStreamActive(a->stream) == 1)
        Pa_StopStream(a->stream);
}

static void pa_stream_close(farm_audio *a) {
    int q = quiet_begin(0);
    Pa_CloseStream(a->stream);
    quiet_end(q);
    pa_end();
}

static int pa_stream_active(farm_audio *a) {
    return Pa_IsStreamActive(a->stream) == 1;
}

static double pa_stream_cpu_load(farm_audio *a) {
    return Pa_GetStreamCpuLoad(a->stream);
}

static const farm_audio_ops pa_ops = {pa_stream_start, pa_stream_stop, pa_stream_close,
                                      pa_stream_active, pa_stream_cpu_load};

/* ---- null sink: the same callback, paced by CLOCK_MONOTONIC ---- */

static void add_ns(struct timespec *t, uint64_t ns) {
    uint64_t total = (uint64_t)t->tv_nsec + ns;
    t->tv_sec += (time_t)(total / 1000000000u);
    t->tv_nsec = (long)(total % 1000000000u);
}

static void *null_sink_main(void *arg) {
    farm_audio *a = arg;
    const uint64_t period = (uint64_t)(1e9 * a->frames / a->sample_rate);
    struct timespec next;
    clock_gettime(CLOCK_MONOTONIC, &next);
    a->wall_ns0 = shm_now_ns();
    while (atomic_load_explicit(&a->running, memory_order_acquire)) {
        uint64_t t0 = shm_now_ns();
        farm_engine_process(a->engine, a->buffer, a->frames, 0);
        a->busy_ns += shm_now_ns() - t0;
        add_ns(&next, period);
        clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL);
    }
    return NULL;
}

static int null_start(farm_audio *a) {
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    atomic_store(&a->running, 1);
    int rv = EPERM;
    if (a->rt_priority > 0) {
        struct sched_param sp = {.sched_priority = (int)a->rt_priority};
        pthread_attr_setinheritsched(&attr, PTHREAD_EXPLICIT_SCHED);
        pthread_attr_setschedpolicy(&attr, SCHED_FIFO);
        pthread_attr_setschedparam(&attr, &sp);
        rv = pthread_create(&a->thread, &attr, null_sink_main, a);
    }
    if (rv != 0) {
        /* refused: normal priority; play.c's single warning reports it */
        pthread_attr_destroy(&attr);
        pthread_attr_init(&attr);
        rv = pthread_create(&a->thread, &attr, null_sink_main, a);
    }
    pthread_attr_destroy(&attr);
    if (rv != 0)
        return farm_fail(FARM_EFAIL, "cannot start the null sink's thread: %s", strerror(rv));
    a->thread_started = 1;
    return FARM_OK;
}

static void null_stop(farm_audio *a) {
    atomic_store(&a->running, 0);
    if (a->thread_started) {
        pthread_join(a->thread, NULL);
        a->thread_started = 0;
    }
}

static void null_close(farm_audio *a) {
    null_stop(a);
    free(a->buffer);
    pa_end();
}

static int null_active(farm_audio *a) {
    return atomic_load(&a->running);
}

static double null_cpu_load(farm_audio *a) {
    uint64_t wall = shm_now_ns() - a->wall_ns0;
    return wall > 0 && a->wall_ns0 ? (double)a->busy_ns / (double)wall : 0.0;
}

static const farm_audio_ops null_ops = {null_start, null_stop, null_close, null_active,
                                        null_cpu_load};

static int open_null(farm_audio *a, const farm_options *o) {
    a->ops = &null_ops;
    a->frames = o->buffer_frames;
    a->sample_rate = o->sample_rate;
    a->rt_priority = o->rt_priority;
    a->buffer = calloc((size_t)o->buffer_frames * o->channels, sizeof(float));
    if (a->buffer == NULL)
        return farm_fail(FARM_EFAIL, "out of memory");
    snprintf(a->description, sizeof a->description, "the null sink (paced by the clock)");
    return FARM_OK;
}

/* ---- choosing and opening ---- */

static int open_pa(farm_audio *a, const farm_options *o, PaDeviceIndex dev) {
    const PaDeviceInfo *d = Pa_GetDeviceInfo(dev);
    const PaHostApiInfo *h = Pa_GetHostApiInfo(d->hostApi);
    snprintf(a->description, sizeof a->description, "%s (%s)", d->name, h->name);
    if ((int)o->channels > d->maxOutputChannels)
        return farm_fail(FARM_EUSAGE, "--channels %u: %s has %d output channels", o->channels,
                         a->description, d->maxOutputChannels);
    PaStreamParameters p = {
        .device = dev,
        .channelCount = (int)o->channels,
        .sampleFormat = paFloat32,
        .suggestedLatency = o->latency > 0 ? o->latency : d->defaultLowOutputLatency,
    };
    int q = quiet_begin(o->verbose);
    PaError err = Pa_IsFormatSupported(NULL, &p, o->sample_rate);
    if (err == paNoError)
        /* The limiter already keeps samples in [-1, 1]; PortAudio need not clip or dither. */
        err = Pa_OpenStream(&a->stream, NULL, &p, o->sample_rate, o->buffer_frames,
                            paClipOff | paDitherOff, pa_callback, a);
    quiet_end(q);
    if (err == paInvalidSampleRate)
        return farm_fail(FARM_EUSAGE, "--sr %u: %s refuses that rate (it runs at %g Hz)",
                         o->sample_rate, a->description, d->defaultSampleRate);
    if (err != paNoError) {
        const char *hint = hint_for(err);
        return farm_fail(FARM_EUSAGE, "cannot open %s: %s%s%s", a->description,
                         Pa_GetErrorText(err), hint ? "; " : "", hint ? hint : "");
    }
    if (h->type == paALSA)
        PaAlsa_EnableRealtimeScheduling(a->stream, o->rt_priority > 0);
    a->ops = &pa_ops;
    return FARM_OK;
}

int farm_audio_open(farm_audio **out, const farm_options *o, farm_engine *e) {
    *out = NULL;
    farm_audio *a = calloc(1, sizeof *a);
    if (a == NULL)
        return farm_fail(FARM_EFAIL, "out of memory");
    a->engine = e;
    int rv;
    if (o->null_sink) {
        rv = open_null(a, o);
    } else if ((rv = pa_start(o->verbose)) == FARM_OK) {
        PaHostApiIndex host = -1;
        PaDeviceIndex dev = paNoDevice;
        if (o->host != NULL)
            rv = find_host(o->host, &host);
        if (rv == FARM_OK && o->device != NULL)
            rv = find_device(o->device, host, &dev);
        else if (rv == FARM_OK)
            dev = host >= 0 ? Pa_GetHostApiInfo(host)->defaultOutputDevice
                            : Pa_GetDefaultOutputDevice();
        if (rv == FARM_OK && dev == paNoDevice && o->host != NULL)
            rv = farm_fail(FARM_EUSAGE, "--host %s has no output device", o->host);
        if (rv == FARM_OK && dev == paNoDevice) {
            fprintf(stderr, "farm: no audio output device; playing into the null sink (paced "
                            "by the clock)\n");
            rv = open_null(a, o);
        } else if (rv == FARM_OK) {
            rv = open_pa(a, o, dev);
        }
        if (rv != FARM_OK)
            pa_end();
    }
    if (rv != FARM_OK) {
        free(a->buffer);
        free(a);
        return rv;
    }
    *out = a;
    return FARM_OK;
}

int farm_audio_start(farm_audio *a) {
    return a->ops->start(a);
}

void farm_audio_stop(farm_audio *a) {
    a->ops->stop(a);
}

void farm_audio_close(farm_audio *a) {
    if (a == NULL)
        return;
    a->ops->close(a);
    free(a);
}

int farm_audio_active(farm_audio *a) {
    return a->ops->active(a);
}

double farm_audio_cpu_load(farm_audio *a) {
    return a->ops->cpu_load(a);
}

const char *farm_audio_describe(farm_audio *a) {
    return a->description;
}

/* ---- farm devices / farm probe ---- */

static int parse_listing_args(int argc, char **argv, const char *cmd, int *json, int *verbose,
                              uint32_t *sr, uint32_t *frames, uint32_t *channels) {
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0) {
            *json = 1;
        } else if (strcmp(argv[i], "-v") == 0 || strcmp(argv[i], "--verbose") == 0) {
            *verbose = 1;
        } else if (sr != NULL && i + 1 < argc &&
                   (strcmp(argv[i], "--sr") == 0 || strcmp(argv[i], "--buffersize") == 0 ||
                    strcmp(argv[i], "--channels") == 0)) {
            char *end;
            unsigned long v = strtoul(argv[i + 1], &end, 10);
            uint32_t *dst = argv[i][2] == 's' ? sr : argv[i][2] == 'b' ? frames : channels;
            if (*end != '\0' || v == 0 || v > 384000)
                return farm_fail(FARM_EUSAGE, "%s: '%s' is not a positive whole number", argv[i],
                                 argv[i + 1]);
            *dst = (uint32_t)v;
            i++;
        } else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            if (sr != NULL)
                printf("usage: farm probe [--json] [--sr HZ] [--buffersize N] [--channels N] "
                       "[--verbose]\n\nFor each host API, tries to open its default output "
                       "device alone and with its default input (duplex) at the given rate and "
                       "buffer size, and says OK or why not, with a hint.\n");
            else
                printf("usage: farm devices [--json] [--verbose]\n\nLists PortAudio's host "
                       "APIs and devices; * marks the defaults. Use an index or a name with "
                       "--device, a host's short name with --host.\n");
            return 1;
        } else {
            return farm_fail(FARM_EUSAGE, "unknown option '%s' (see farm %s --help)", argv[i], cmd);
        }
    }
    return FARM_OK;
}

/* Ends a listing: the JSON document when asked for (the text was printed along the way), and
 * PortAudio. Takes root. */
static int finish_listing(int json, cJSON *root) {
    int rv = FARM_OK;
    if (json) {
        char *text = cJSON_Print(root);
        if (text == NULL)
            rv = farm_fail(FARM_EFAIL, "out of memory");
        else
            puts(text);
        free(text);
    }
    cJSON_Delete(root);
    pa_end();
    return rv;
}

int farm_devices(int argc, char **argv) {
    int json = 0, verbose = 0;
    int rv = parse_listing_args(argc, argv, "devices", &json, &verbose, NULL, NULL, NULL);
    if (rv != FARM_OK)
        return rv == 1 ? FARM_OK : rv;
    if ((rv = pa_start(verbose)) != FARM_OK)
        return rv;
    PaHostApiIndex default_host = Pa_GetDefaultHostApi();
    PaDeviceIndex default_out = Pa_GetDefaultOutputDevice();
    PaDeviceIndex default_in = Pa_GetDefaultInputDevice();
    cJSON *root = cJSON_CreateObject(), *hosts = cJSON_AddArrayToObject(root, "hosts");
    cJSON *devices = cJSON_AddArrayToObject(root, "devices");
    cJSON_AddNumberToObject(root, "default_output", default_out);
    cJSON_AddNumberToObject(root, "default_input", default_in);
    if (!json)
        printf("Host APIs (use the short name with --host):\n");
    for (PaHostApiIndex h = 0; h < Pa_GetHostApiCount(); h++) {
        const PaHostApiInfo *hi = Pa_GetHostApiInfo(h);
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "index", h);
        cJSON_AddStringToObject(o, "name", hi->name);
        cJSON_AddStringToObject(o, "short_name", host_short_name(hi->type));
        cJSON_AddNumberToObject(o, "devices", hi->deviceCount);
        cJSON_AddNumberToObject(o, "default_output", hi->defaultOutputDevice);
        cJSON_AddNumberToObject(o, "default_input", hi->defaultInputDevice);
        cJSON_AddBoolToObject(o, "default", h == default_host);
        cJSON_AddItemToArray(hosts, o);
        if (!json)
            printf(" %c %-6s %s: %d device%s, default output %d, default input %d\n",
                   h == default_host ? '*' : ' ', host_short_name(hi->type), hi->name,
                   hi->deviceCount, hi->deviceCount == 1 ? "" : "s", hi->defaultOutputDevice,
                   hi->defaultInputDevice);
    }
    if (!json)
        printf("\nDevices (use the index or the name with --device):\n"
               "  idx  host   in  out   rate   low lat  high lat  name\n");
    for (PaDeviceIndex i = 0; i < Pa_GetDeviceCount(); i++) {
        const PaDeviceInfo *d = Pa_GetDeviceInfo(i);
        const PaHostApiInfo *hi = Pa_GetHostApiInfo(d->hostApi);
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "index", i);
        cJSON_AddStringToObject(o, "name", d->name);
        cJSON_AddStringToObject(o, "host", hi->name);
        cJSON_AddStringToObject(o, "host_short_name", host_short_name(hi->type));
        cJSON_AddNumberToObject(o, "input_channels", d->maxInputChannels);
        cJSON_AddNumberToObject(o, "output_channels", d->maxOutputChannels);
        cJSON_AddNumberToObject(o, "default_sample_rate", d->defaultSampleRate);
        cJSON_AddNumberToObject(o, "default_low_output_latency", d->defaultLowOutputLatency);
        cJSON_AddNumberToObject(o, "default_high_output_latency", d->defaultHighOutputLatency);
        cJSON_AddNumberToObject(o, "default_low_input_latency", d->defaultLowInputLatency);
        cJSON_AddNumberToObject(o, "default_high_input_latency", d->defaultHighInputLatency);
        cJSON_AddBoolToObject(o, "default_output", i == default_out);
        cJSON_AddBoolToObject(o, "default_input", i == default_in);
        cJSON_AddBoolToObject(o, "host_default_output", i == hi->defaultOutputDevice);
        cJSON_AddItemToArray(devices, o);
        if (!json)
            printf(" %c%3d  %-5s %3d  %3d  %6.0f  %6.1f ms  %6.1f ms  %s%s\n",
                   i == default_out ? '*' : ' ', i, host_short_name(hi->type), d->maxInputChannels,
                   d->maxOutputChannels, d->defaultSampleRate, 1000 * d->defaultLowOutputLatency,
                   1000 * d->defaultHighOutputLatency, d->name,
                   i == default_in ? "  (default input)" : "");
    }
    if (!json && Pa_GetDeviceCount() == 0)
        printf("  (none: farm would play into its null sink)\n");
    return finish_listing(json, root);
}

static const char *try_open(PaDeviceIndex in, PaDeviceIndex out, uint32_t sr, uint32_t frames,
                            uint32_t channels, char *why, size_t size) {
    const PaDeviceInfo *od = Pa_GetDeviceInfo(out);
    PaStreamParameters op = {.device = out,
                             .channelCount = (int)channels,
                             .sampleFormat = paFloat32,
                             .suggestedLatency = od->defaultLowOutputLatency};
    PaStreamParameters ip = op;
    if (in != paNoDevice) {
        const PaDeviceInfo *id = Pa_GetDeviceInfo(in);
        ip.device = in;
        ip.channelCount =
            id->maxInputChannels < (int)channels ? id->maxInputChannels : (int)channels;
        ip.suggestedLatency = id->defaultLowInputLatency;
    }
    PaStream *s = NULL;
    int q = quiet_begin(0);
    PaError err = Pa_IsFormatSupported(in != paNoDevice ? &ip : NULL, &op, sr);
    if (err == paNoError)
        err = Pa_OpenStream(&s, in != paNoDevice ? &ip : NULL, &op, sr, frames, paClipOff, NULL,
                            NULL);
    if (s != NULL)
        Pa_CloseStream(s);
    quiet_end(q);
    if (err == paNoError)
        return NULL;
    const char *hint = hint_for(err);
    if (err == paInvalidSampleRate)
        snprintf(why, size, "%s; rate mismatch: the device's default is %g Hz",
                 Pa_GetErrorText(err), od->defaultSampleRate);
    else
        snprintf(why, size, "%s%s%s", Pa_GetErrorText(err), hint ? "; " : "", hint ? hint : "");
    return why;
}

int farm_probe(int argc, char **argv) {
    int json = 0, verbose = 0;
    uint32_t sr = 48000, frames = 256, channels = 2;
    int rv = parse_listing_args(argc, argv, "probe", &json, &verbose, &sr, &frames, &channels);
    if (rv != FARM_OK)
        return rv == 1 ? FARM_OK : rv;
    if ((rv = pa_start(verbose)) != FARM_OK)
        return rv;
    cJSON *root = cJSON_CreateObject(), *results = cJSON_AddArrayToObject(root, "hosts");
    cJSON_AddNumberToObject(root, "sample_rate", sr);
    cJSON_AddNumberToObject(root, "buffersize", frames);
    cJSON_AddNumberToObject(root, "channels", channels);
    if (!json)
        printf("Probing each host API's default devices at %u Hz, %u frames, %u channels:\n", sr,
               frames, channels);
    for (PaHostApiIndex h = 0; h < Pa_GetHostApiCount(); h++) {
        const PaHostApiInfo *hi = Pa_GetHostApiInfo(h);
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "host", hi->name);
        cJSON_AddStringToObject(o, "short_name", host_short_name(hi->type));
        if (!json)
            printf("\n%s (--host %s)\n", hi->name, host_short_name(hi->type));
        const char *modes[2] = {"output", "duplex"};
        for (int m = 0; m < 2; m++) {
            char why[256];
            const char *err = NULL;
            const char *dev_name = "";
            if (hi->defaultOutputDevice == paNoDevice) {
                err = "no output device";
            } else {
                dev_name = Pa_GetDeviceInfo(hi->defaultOutputDevice)->name;
                if (m == 1 && hi->defaultInputDevice == paNoDevice)
                    err = "no input device: duplex needs one";
                else
                    err = try_open(m == 1 ? hi->defaultInputDevice : paNoDevice,
                                   hi->defaultOutputDevice, sr, frames, channels, why, sizeof why);
            }
            cJSON *r = cJSON_AddObjectToObject(o, modes[m]);
            cJSON_AddBoolToObject(r, "ok", err == NULL);
            cJSON_AddStringToObject(r, "device", dev_name);
            if (err != NULL)
                cJSON_AddStringToObject(r, "error", err);
            if (!json)
                printf("  %-6s %-4s %s%s%s\n", modes[m], err ? "FAIL" : "OK", dev_name,
                       err && dev_name[0] ? ": " : "", err ? err : "");
        }
        cJSON_AddItemToArray(results, o);
    }
    if (!json && Pa_GetHostApiCount() == 0)
        printf("  (no host APIs)\n");
    return finish_listing(json, root);
}
