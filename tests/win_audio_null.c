/* Until audio/ builds on Windows (its PortAudio hosts are being ported on another branch), the
 * Windows control tests link audio.c and the null sink (nullsink.c) as they are, and these
 * answer for the PortAudio and JACK backends, which the null sink does not need: each says "not
 * yet on Windows" in one line. Linked only where the audio library itself is not built (the
 * top-level CMakeLists.txt). */
#include "audio_internal.h"

static int unported(const char *what) {
    return farm_fail(FARM_EUSAGE, "%s: not yet on Windows (this build plays into the null sink)",
                     what);
}

int farm_jack_open(farm_audio **out, const farm_audio_desc *d, farm_engine *e) {
    (void)out, (void)d, (void)e;
    return unported("JACK");
}

int farm_pa_stream_open(farm_audio **out, const farm_audio_desc *d, farm_engine *e,
                        PaDeviceIndex dev) {
    (void)out, (void)d, (void)e, (void)dev;
    return unported("PortAudio");
}

int farm_pa_start(int verbose) {
    (void)verbose;
    return unported("PortAudio");
}

void farm_pa_end(void) {}

int farm_pa_find_host(const char *name, PaHostApiIndex *out) {
    (void)out;
    return unported(name);
}

int farm_pa_find_device(const char *spec, PaHostApiIndex host, PaDeviceIndex *out) {
    (void)host, (void)out;
    return unported(spec);
}
