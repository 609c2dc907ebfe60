/* Choosing the output, and the calls every backend answers through its ops table. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>

#include "audio_internal.h"

/* The device desc names: the host's or PortAudio's default unless one is given. */
static int choose_device(const farm_audio_desc *o, PaDeviceIndex *dev) {
    PaHostApiIndex host = -1;
    int rv;
    *dev = paNoDevice;
    if (o->host != NULL && (rv = farm_pa_find_host(o->host, &host)) != FARM_OK)
        return rv;
    if (o->device != NULL)
        return farm_pa_find_device(o->device, host, dev);
    *dev = host >= 0 ? Pa_GetHostApiInfo(host)->defaultOutputDevice : Pa_GetDefaultOutputDevice();
    if (*dev == paNoDevice && o->host != NULL)
        return farm_fail(FARM_EUSAGE, "--host %s has no output device", o->host);
    return FARM_OK;
}

int farm_audio_open(farm_audio **out, const farm_audio_desc *o, farm_engine *e) {
    *out = NULL;
    if (o->null_sink)
        return farm_null_sink_open(out, o, e);
    int rv = farm_pa_start(o->verbose);
    if (rv != FARM_OK)
        return rv;
    PaDeviceIndex dev;
    if ((rv = choose_device(o, &dev)) != FARM_OK) {
        farm_pa_end();
        return rv;
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
