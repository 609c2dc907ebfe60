/* audio — where the mixed stream goes: a PortAudio output stream (ALSA, JACK, OSS, and the
 * other platforms' hosts), or the null sink, a thread paced by the clock that machines without
 * an output device and the tests use. Both drive farm_engine_process, so every path runs the
 * real engine. Also `farm devices` and `farm probe`, PortAudio's view of the machine.
 *
 * Contract
 * - farm_audio_open chooses and checks the output (host, device, rate, channels, buffer size)
 *   before anything plays: what the device refuses is FARM_EUSAGE with one line naming it
 *   and a hint. On a machine with no output device it says so on stderr and opens the null
 *   sink.
 * - PortAudio's and ALSA's start-up noise on stderr is silenced unless desc->verbose.
 * - Main thread only. The backend's own thread calls the engine; nothing here runs on it but
 *   the engine call and, for the null sink, the clock.
 * - Errors as everywhere in farm (base.h).
 */
#ifndef FARM_AUDIO_H
#define FARM_AUDIO_H

#include <stdint.h>

#include "engine.h"

typedef struct farm_audio farm_audio;

typedef struct farm_audio_desc {
    const char *host;   /* host API short name (alsa, jack, ...); NULL: PortAudio's default */
    const char *device; /* index, exact name or unique part of one; NULL: the host's default */
    double latency;     /* suggested output latency in seconds; 0: the device's low latency */
    int null_sink;      /* the null sink even when a device exists */
    int verbose;        /* let PortAudio's start-up messages through */
    uint32_t sample_rate, buffer_frames, channels;
    uint32_t rt_priority; /* the null sink's thread (SCHED_FIFO), ALSA's through PortAudio */
} farm_audio_desc;

/* engine may be NULL here and given with farm_audio_set_engine before the stream starts:
 * the device is checked before the workers (and so the engine) exist. */
int farm_audio_open(farm_audio **out, const farm_audio_desc *desc, farm_engine *engine);
void farm_audio_set_engine(farm_audio *a, farm_engine *engine);
int farm_audio_start(farm_audio *a);
void farm_audio_stop(farm_audio *a);
void farm_audio_close(farm_audio *a); /* stops first; NULL is fine */
int farm_audio_active(farm_audio *a);
double farm_audio_cpu_load(farm_audio *a);      /* the backend's estimate, 0..1 */
const char *farm_audio_describe(farm_audio *a); /* "system (JACK Audio Connection Kit)" */

/* farm devices / farm probe: print to stdout, as text or one JSON document. */
typedef struct farm_listing_desc {
    int json, verbose;
    uint32_t sample_rate, buffer_frames, channels; /* probe only */
} farm_listing_desc;
int farm_devices(const farm_listing_desc *desc);
int farm_probe(const farm_listing_desc *desc);

#endif
