/* PortAudio's hosts on Linux: ALSA's callback thread made real-time; no WASAPI, so no
 * exclusive mode. pahost_win.c is the Windows side of the same four calls. */
#include <pa_linux_alsa.h>
#include <stdlib.h>

#include "audio_internal.h"

int farm_pa_exclusive_check(const farm_audio_desc *o, const char **host) {
    *host = o->host;
    if (o->exclusive)
        return farm_fail(FARM_EUSAGE, "--exclusive is WASAPI's exclusive mode, which only the "
                                      "Windows build has (ALSA's hw: devices are exclusive "
                                      "already: --host alsa --device hw:0)");
    return FARM_OK;
}

int farm_pa_host_info(int exclusive, PaHostApiTypeId type, void **info) {
    (void)exclusive;
    (void)type;
    *info = NULL;
    return FARM_OK;
}

void farm_pa_host_opened(PaStream *s, PaHostApiTypeId type, uint32_t rt_priority) {
    if (type == paALSA)
        PaAlsa_EnableRealtimeScheduling(s, rt_priority > 0);
}

int farm_pa_host_error(PaHostApiTypeId type, int exclusive, char *buf, size_t size) {
    (void)type;
    (void)exclusive;
    (void)buf;
    (void)size;
    return 0;
}
