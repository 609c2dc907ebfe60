/* Shared by the backends (portaudio.c, nullsink.c), the chooser (audio.c) and the listings
 * (portaudio_devices.c). Not part of the module's contract. */
#ifndef FARM_AUDIO_INTERNAL_H
#define FARM_AUDIO_INTERNAL_H

#include <portaudio.h>

#include "audio.h"

/* Each backend's state struct starts with this one (libsoundio's shape). */
typedef struct farm_audio_ops {
    int (*start)(farm_audio *a);
    void (*stop)(farm_audio *a);
    void (*close)(farm_audio *a); /* stops, frees the backend's state and a itself */
    int (*active)(farm_audio *a);
    double (*cpu_load)(farm_audio *a);
    uint32_t (*input_frames_max)(farm_audio *a);            /* NULL: no input */
    uint32_t (*node_connect)(farm_audio *a, uint32_t node); /* NULL: no nodes */
    uint64_t (*node_heard)(farm_audio *a, uint32_t node);
} farm_audio_ops;

struct farm_audio {
    const farm_audio_ops *ops;
    farm_engine *engine;
    int exclusive; /* WASAPI exclusive mode */
    char description[256];
};

extern const int farm_have_jack; /* 0 where there is no libjack: farm_jack_open refuses */
int farm_jack_open(farm_audio **out, const farm_audio_desc *d, farm_engine *e);
int farm_null_sink_open(farm_audio **out, const farm_audio_desc *d, farm_engine *e);
int farm_pa_stream_open(farm_audio **out, const farm_audio_desc *d, farm_engine *e,
                        PaDeviceIndex dev);

/* PortAudio, started once and quietly (see portaudio.c). */
int farm_pa_start(int verbose);
void farm_pa_end(void);
int farm_quiet_begin(int verbose); /* stderr to the null device until farm_quiet_end */
void farm_quiet_end(int saved);
const char *farm_pa_host_short_name(PaHostApiTypeId type);
int farm_pa_find_host(const char *name, PaHostApiIndex *out);
int farm_pa_find_device(const char *spec, PaHostApiIndex host, PaDeviceIndex *out);
const char *farm_pa_hint(PaError err); /* NULL when there is none */
/* err's text and, when there is one, a hint ("Invalid sample rate; rate mismatch: ...") or,
 * for a host error, the host's own code explained (farm_pa_host_error); exclusive: the stream
 * asked for WASAPI's exclusive mode. */
void farm_pa_explain(PaError err, PaHostApiTypeId type, int exclusive, char *buf, size_t size);

/* What differs between the systems' host APIs: pahost_linux.c, pahost_win.c. */
/* FARM_EUSAGE in one line when desc->exclusive cannot be had (not WASAPI, the null sink, no
 * WASAPI in this build); *host: the host to use (--exclusive alone means WASAPI). */
int farm_pa_exclusive_check(const farm_audio_desc *desc, const char **host);
/* The host-specific stream information for a stream on a host of this type (WASAPI exclusive
 * mode), malloc'd into *info (the caller frees it after Pa_OpenStream); NULL when none. */
int farm_pa_host_info(int exclusive, PaHostApiTypeId type, void **info);
/* After a stream opened: what its host needs (ALSA's real-time callback thread). */
void farm_pa_host_opened(PaStream *s, PaHostApiTypeId type, uint32_t rt_priority);
/* What the host's last error (Pa_GetLastHostErrorInfo, after paUnanticipatedHostError) means
 * and what to do, into buf; 0 when there is nothing to say. */
int farm_pa_host_error(PaHostApiTypeId type, int exclusive, char *buf, size_t size);
#ifdef _WIN32
/* WASAPI's error code with the host's text, and what it means and what to do (pahost_win.c):
 * a function of its arguments, so that refusals wine never makes are tested all the same. */
void farm_wasapi_explain(unsigned long code, const char *text, int exclusive, char *buf,
                         size_t size);
#endif

#endif
