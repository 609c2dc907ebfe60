/* The PortAudio backend, and PortAudio itself: started once, quietly, with the host API names
 * farm's options use. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "audio_internal.h"
#include "plat.h"

/* ---- PortAudio, quietly ---- */

/* On machines without sound hardware Pa_Initialize prints dozens of lines of ALSA and JACK
 * complaints on stderr. They are noise unless asked for, so stderr points at the null device
 * while PortAudio starts and opens. */
int farm_quiet_begin(int verbose) {
    return verbose ? -1 : plat_stderr_silence();
}

void farm_quiet_end(int saved) {
    plat_stderr_restore(saved);
}

static int pa_started;

int farm_pa_start(int verbose) {
    if (pa_started)
        return FARM_OK;
    /* Looking for JACK must not start a JACK server as a side effect. */
    plat_env_default("JACK_NO_START_SERVER", "1");
    int q = farm_quiet_begin(verbose);
    PaError err = Pa_Initialize();
    farm_quiet_end(q);
    if (err != paNoError)
        return farm_fail(FARM_EFAIL, "PortAudio did not start: %s", Pa_GetErrorText(err));
    pa_started = 1;
    return FARM_OK;
}

void farm_pa_end(void) {
    if (pa_started) {
        int q = farm_quiet_begin(0);
        Pa_Terminate();
        farm_quiet_end(q);
        pa_started = 0;
    }
}

/* ---- host API names ---- */

/* The first name of a type is the one farm prints; the others are accepted too. */
static const struct {
    const char *name;
    PaHostApiTypeId type;
} host_names[] = {
    {"alsa", paALSA},      {"jack", paJACK},
    {"oss", paOSS},        {"coreaudio", paCoreAudio},
    {"wasapi", paWASAPI},  {"mme", paMME},
    {"ds", paDirectSound}, {"directsound", paDirectSound},
    {"wdmks", paWDMKS},    {"wdm-ks", paWDMKS},
    {"asio", paASIO},
};
#define HOST_NAMES "alsa, jack, oss, coreaudio, wasapi, mme, ds, wdmks, asio"

const char *farm_pa_host_short_name(PaHostApiTypeId type) {
    for (size_t i = 0; i < sizeof host_names / sizeof host_names[0]; i++)
        if (host_names[i].type == type)
            return host_names[i].name;
    return "other";
}

/* "wasapi, mme": the hosts this PortAudio was built with, by the names --host takes. */
static void built_hosts(char *buf, size_t size) {
    size_t used = 0;
    buf[0] = '\0';
    for (PaHostApiIndex h = 0; h < Pa_GetHostApiCount() && used < size; h++) {
        int n = snprintf(buf + used, size - used, "%s%s", h > 0 ? ", " : "",
                         farm_pa_host_short_name(Pa_GetHostApiInfo(h)->type));
        used += n > 0 ? (size_t)n : 0;
    }
}

int farm_pa_find_host(const char *name, PaHostApiIndex *out) {
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
        if (h < 0) {
            char have[128];
            built_hosts(have, sizeof have);
            return farm_fail(FARM_EUSAGE,
                             "--host %s: not in this build's PortAudio, which has %s (see farm "
                             "devices)",
                             name, have[0] ? have : "no host API");
        }
        *out = h;
        return FARM_OK;
    }
    return farm_fail(FARM_EUSAGE, "--host '%s' is not one of " HOST_NAMES, name);
}

/* Whether name holds part, ignoring case (strcasestr is GNU's; mingw has none). */
static int holds_nocase(const char *name, const char *part) {
    size_t n = strlen(part);
    for (; *name != '\0'; name++)
        if (strncasecmp(name, part, n) == 0)
            return 1;
    return n == 0;
}

/* Index, exact name, or a unique part of a name; output devices only, of host when given. */
int farm_pa_find_device(const char *spec, PaHostApiIndex host, PaDeviceIndex *out) {
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
        if (holds_nocase(d->name, spec)) {
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

const char *farm_pa_hint(PaError err) {
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

void farm_pa_explain(PaError err, PaHostApiTypeId type, int exclusive, char *buf, size_t size) {
    char host[384];
    const char *hint = farm_pa_hint(err);
    if (err == paUnanticipatedHostError && farm_pa_host_error(type, exclusive, host, sizeof host))
        hint = host;
    snprintf(buf, size, "%s%s%s", Pa_GetErrorText(err), hint ? "; " : "", hint ? hint : "");
}

/* ---- the stream ---- */

typedef struct pa_backend {
    farm_audio base;
    PaStream *stream;
    int started;
    int stopped; /* by us: Pa_StopStream returned */
} pa_backend;

static PaStream *stream_of(farm_audio *a) {
    return ((pa_backend *)a)->stream;
}

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
    PaError err = Pa_StartStream(stream_of(a));
    ((pa_backend *)a)->started = err == paNoError;
    if (err != paNoError)
        return farm_fail(FARM_EFAIL, "cannot start the stream on %s: %s", a->description,
                         Pa_GetErrorText(err));
    return FARM_OK;
}

static void pa_stream_stop(farm_audio *a) {
    pa_backend *b = (pa_backend *)a;
    if (Pa_IsStreamActive(b->stream) == 1 && Pa_StopStream(b->stream) == paNoError)
        b->stopped = 1;
}

static void pa_stream_close(farm_audio *a) {
    pa_backend *b = (pa_backend *)a;
    pa_stream_stop(a);
    /* A stream that stopped by itself lost its server (jackd killed): PortAudio's JACK host
     * then waits forever in Pa_CloseStream for a process thread that will never answer. Left
     * as it is: the process is about to exit, and exiting is what must not hang. */
    if (b->started && !b->stopped) {
        free(a);
        return;
    }
    int q = farm_quiet_begin(0);
    Pa_CloseStream(b->stream);
    farm_quiet_end(q);
    farm_pa_end();
    free(a);
}

static int pa_stream_active(farm_audio *a) {
    return Pa_IsStreamActive(stream_of(a)) == 1;
}

static double pa_stream_cpu_load(farm_audio *a) {
    return Pa_GetStreamCpuLoad(stream_of(a));
}

static const farm_audio_ops pa_ops = {.start = pa_stream_start,
                                      .stop = pa_stream_stop,
                                      .close = pa_stream_close,
                                      .active = pa_stream_active,
                                      .cpu_load = pa_stream_cpu_load};

/* ---- null sink: the same callback, paced by CLOCK_MONOTONIC ---- */
/* ---- choosing and opening ---- */

static int open_stream(pa_backend *b, const farm_audio_desc *o, PaDeviceIndex dev) {
    const PaDeviceInfo *d = Pa_GetDeviceInfo(dev);
    const PaHostApiInfo *h = Pa_GetHostApiInfo(d->hostApi);
    farm_audio *a = &b->base;
    a->exclusive = o->exclusive;
    snprintf(a->description, sizeof a->description, "%s (%s%s)", d->name, h->name,
             o->exclusive ? ", exclusive" : "");
    if ((int)o->channels > d->maxOutputChannels)
        return farm_fail(FARM_EUSAGE, "--channels %u: %s has %d output channels", o->channels,
                         a->description, d->maxOutputChannels);
    void *info = NULL;
    int rv = farm_pa_host_info(o->exclusive, h->type, &info);
    if (rv != FARM_OK)
        return rv;
    PaStreamParameters p = {
        .device = dev,
        .channelCount = (int)o->channels,
        .sampleFormat = paFloat32,
        .suggestedLatency = o->latency > 0 ? o->latency : d->defaultLowOutputLatency,
        .hostApiSpecificStreamInfo = info,
    };
    int q = farm_quiet_begin(o->verbose);
    PaError err = Pa_IsFormatSupported(NULL, &p, o->sample_rate);
    if (err == paNoError)
        /* The limiter already keeps samples in [-1, 1]; PortAudio need not clip or dither. */
        err = Pa_OpenStream(&b->stream, NULL, &p, o->sample_rate, o->buffer_frames,
                            paClipOff | paDitherOff, pa_callback, a);
    farm_quiet_end(q);
    free(info);
    if (err == paInvalidSampleRate)
        return farm_fail(FARM_EUSAGE, "--sr %u: %s refuses that rate (it runs at %g Hz)",
                         o->sample_rate, a->description, d->defaultSampleRate);
    if (err != paNoError) {
        char why[512];
        farm_pa_explain(err, h->type, o->exclusive, why, sizeof why);
        return farm_fail(FARM_EUSAGE, "cannot open %s: %s", a->description, why);
    }
    farm_pa_host_opened(b->stream, h->type, o->rt_priority);
    return FARM_OK;
}

int farm_pa_stream_open(farm_audio **out, const farm_audio_desc *o, farm_engine *e,
                        PaDeviceIndex dev) {
    pa_backend *b = calloc(1, sizeof *b);
    if (b == NULL)
        return farm_fail(FARM_ENOMEM, "out of memory");
    b->base.ops = &pa_ops;
    b->base.engine = e;
    int rv = open_stream(b, o, dev);
    if (rv != FARM_OK) {
        free(b);
        return rv;
    }
    *out = &b->base;
    return FARM_OK;
}
