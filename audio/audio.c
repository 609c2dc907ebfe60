/* Choosing the output, and the calls every backend answers through its ops table. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "audio_internal.h"

/* The device desc names: the host's or PortAudio's default unless one is given. */
static int choose_device(const farm_audio_desc *o, const char *host_name, PaDeviceIndex *dev) {
    PaHostApiIndex host = -1;
    int rv;
    *dev = paNoDevice;
    if (host_name != NULL && (rv = farm_pa_find_host(host_name, &host)) != FARM_OK)
        return rv;
    if (o->device != NULL)
        return farm_pa_find_device(o->device, host, dev);
    *dev = host >= 0 ? Pa_GetHostApiInfo(host)->defaultOutputDevice : Pa_GetDefaultOutputDevice();
    if (*dev == paNoDevice && host_name != NULL)
        return farm_fail(FARM_EUSAGE, "--host %s has no output device", host_name);
    return FARM_OK;
}

/* libjack itself, not PortAudio's JACK host, whenever farm plays into JACK: its own name,
 * its connections and the nodes' ports need it. */
static int wants_jack(const farm_audio_desc *o) {
    return (o->host != NULL && strcasecmp(o->host, "jack") == 0) || o->jack_name != NULL ||
           o->connect != NULL || o->node_count > 0;
}

/* The output chosen by default is JACK: PortAudio's JACK host, or (no sound card, ALSA's JACK
 * plugin installed) ALSA's "jack" PCM, which would put the plugin's own buffer and thread
 * between farm and the server. Either way libjack plays it; a device asked for by name is
 * played as asked. */
static int default_is_jack(const farm_audio_desc *o, PaDeviceIndex dev) {
    if (dev == paNoDevice)
        return 0;
    const PaDeviceInfo *d = Pa_GetDeviceInfo(dev);
    PaHostApiTypeId type = Pa_GetHostApiInfo(d->hostApi)->type;
    if (type == paJACK)
        return 1;
    return farm_have_jack && type == paALSA && o->host == NULL && o->device == NULL &&
           strcmp(d->name, "jack") == 0;
}

int farm_audio_open(farm_audio **out, const farm_audio_desc *o, farm_engine *e) {
    *out = NULL;
    const char *host;
    int rv = farm_pa_exclusive_check(o, &host);
    if (rv != FARM_OK)
        return rv;
    if (o->null_sink && o->node_count > 0)
        return farm_fail(FARM_EUSAGE, "--node: node audio arrives as JACK ports; play into JACK "
                                      "(--host jack), not the null sink");
    if (o->null_sink)
        return farm_null_sink_open(out, o, e);
    if (wants_jack(o)) {
        if (!farm_have_jack)
            return farm_jack_open(out, o, e); /* says no, naming what asked for JACK */
        if (o->host != NULL && strcasecmp(o->host, "jack") != 0)
            return farm_fail(FARM_EUSAGE, "--jack-name, --connect and --node need --host jack");
        if (o->device != NULL)
            return farm_fail(FARM_EUSAGE, "--device: JACK has no devices; choose the server "
                                          "with JACK_DEFAULT_SERVER and ports with --connect");
        return farm_jack_open(out, o, e);
    }
    if ((rv = farm_pa_start(o->verbose)) != FARM_OK)
        return rv;
    PaDeviceIndex dev;
    if ((rv = choose_device(o, host, &dev)) != FARM_OK) {
        farm_pa_end();
        return rv;
    }
    if (default_is_jack(o, dev)) {
        farm_pa_end(); /* play through libjack */
        return farm_jack_open(out, o, e);
    }
    if (dev != paNoDevice) {
        if ((rv = farm_pa_stream_open(out, o, e, dev)) != FARM_OK)
            farm_pa_end();
        return rv;
    }
    farm_pa_end();
    fprintf(stderr, "farm: no audio output device; playing into the null sink (paced by the "
                    "clock)\n");
    return farm_null_sink_open(out, o, e);
}

void farm_audio_set_engine(farm_audio *a, farm_engine *engine) {
    a->engine = engine;
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

int farm_audio_exclusive(farm_audio *a) {
    return a->exclusive;
}

uint32_t farm_audio_input_frames_max(farm_audio *a) {
    return a->ops->input_frames_max != NULL ? a->ops->input_frames_max(a) : 0;
}

uint32_t farm_audio_node_connect(farm_audio *a, uint32_t node) {
    return a->ops->node_connect != NULL ? a->ops->node_connect(a, node) : 0;
}

uint64_t farm_audio_node_heard(farm_audio *a, uint32_t node) {
    return a->ops->node_heard != NULL ? a->ops->node_heard(a, node) : 0;
}
