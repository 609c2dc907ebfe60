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
 * - Host APIs by short name: alsa, jack, oss (Linux); wasapi, mme, ds, wdmks, asio (Windows);
 *   coreaudio. One PortAudio was not built with is refused naming the hosts this build has.
 *   JACK through libjack (jack.c) is Linux's: on Windows --host jack, a JACK client name,
 *   connections and nodes are refused in one line. desc->exclusive is WASAPI's exclusive mode:
 *   refused with any other host, with the null sink, and where there is no WASAPI.
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
    int exclusive;      /* WASAPI exclusive mode (Windows): the device is farm's alone */
    int verbose;        /* let PortAudio's start-up messages through */
    uint32_t sample_rate, buffer_frames, channels;
    uint32_t rt_priority; /* the null sink's thread (SCHED_FIFO), ALSA's through PortAudio */
    /* JACK (libjack itself: chosen by --host jack, by these, or when the default output is
     * JACK's) */
    const char *jack_name; /* farm's client name, exactly; NULL: "farm" (or farm-01, ...) */
    const char *connect;   /* where the outputs go: system (NULL), none, a client's name, or a
                              comma-separated list of ports, one per channel */
    const char *const *node_names; /* NetJACK2 nodes: their clients on this server, whose
                                      from_slave_N ports join the mix */
    uint32_t node_count;
} farm_audio_desc;

#define JACK_NODE_NAME_MAX 64 /* bytes of a node's name, with its NUL */

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
int farm_audio_exclusive(farm_audio *a);        /* 1: WASAPI exclusive mode */
/* The most frames one callback brings from outside (the nodes): what the engine's
 * input_frames_max must be; 0 without nodes. */
uint32_t farm_audio_input_frames_max(farm_audio *a);
/* Not the callback's thread: connects node K's NetJACK2 ports that exist and are not yet
 * connected (a node that returns gets new ports); returns its channels connected now. */
uint32_t farm_audio_node_connect(farm_audio *a, uint32_t node);
/* any thread: periods in which node K's ports carried a sample, since the start. */
uint64_t farm_audio_node_heard(farm_audio *a, uint32_t node);

/* farm devices / farm probe: print to stdout, as text or one JSON document. */
typedef struct farm_listing_desc {
    int json, verbose;
    uint32_t sample_rate, buffer_frames, channels; /* probe only */
} farm_listing_desc;
int farm_devices(const farm_listing_desc *desc);
int farm_probe(const farm_listing_desc *desc);

#endif
