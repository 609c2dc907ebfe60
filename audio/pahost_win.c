/* PortAudio's hosts on Windows: WASAPI's exclusive mode (PaWasapiStreamInfo), and what the
 * host's own error codes (HRESULTs) mean. pahost_linux.c is the Linux side of the same calls. */
#include <pa_win_wasapi.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>

#include "audio_internal.h"

/* The HRESULTs (audioclient.h) that a refused stream reports; named here rather than pulling
 * the Windows headers into audio/. */
#define AUDCLNT_E_UNSUPPORTED_FORMAT 0x88890008ul
#define AUDCLNT_E_DEVICE_IN_USE 0x8889000Aul
#define AUDCLNT_E_EXCLUSIVE_MODE_NOT_ALLOWED 0x8889000Eul
#define AUDCLNT_E_DEVICE_INVALIDATED 0x88890004ul

int farm_pa_exclusive_check(const farm_audio_desc *o, const char **host) {
    *host = o->host;
    if (!o->exclusive)
        return FARM_OK;
    if (o->null_sink)
        return farm_fail(FARM_EUSAGE, "--exclusive is WASAPI's exclusive mode: not with "
                                      "--null-sink");
    if (o->host != NULL && strcasecmp(o->host, "wasapi") != 0)
        return farm_fail(FARM_EUSAGE,
                         "--exclusive is WASAPI's exclusive mode: --host %s has none (use "
                         "--host wasapi, or leave --host out)",
                         o->host);
    *host = "wasapi"; /* --exclusive alone: WASAPI is the only host that has it */
    return FARM_OK;
}

int farm_pa_host_info(int exclusive, PaHostApiTypeId type, void **info) {
    *info = NULL;
    if (!exclusive || type != paWASAPI)
        return FARM_OK;
    PaWasapiStreamInfo *w = calloc(1, sizeof *w);
    if (w == NULL)
        return farm_fail(FARM_ENOMEM, "out of memory");
    w->size = sizeof *w;
    w->hostApiType = paWASAPI;
    w->version = 1;
    w->flags = paWinWasapiExclusive;
    *info = w;
    return FARM_OK;
}

void farm_pa_host_opened(PaStream *s, PaHostApiTypeId type, uint32_t rt_priority) {
    /* WASAPI's and MME's callback threads ask MMCSS for "Pro Audio" themselves. */
    (void)s;
    (void)type;
    (void)rt_priority;
}

static const char *wasapi_meaning(unsigned long code, int exclusive) {
    switch (code) {
    case AUDCLNT_E_DEVICE_IN_USE:
        return exclusive ? "exclusive mode refused: another program, or Windows' shared-mode "
                           "audio engine, holds the device (always so under wine); play in "
                           "shared mode (leave out --exclusive) or close what holds it"
                         : "the device is held in exclusive mode by another program; close it";
    case AUDCLNT_E_EXCLUSIVE_MODE_NOT_ALLOWED:
        return "exclusive mode is turned off for this device (Sound settings, the device's "
               "Properties, Advanced: allow applications to take exclusive control); or play in "
               "shared mode (leave out --exclusive)";
    case AUDCLNT_E_UNSUPPORTED_FORMAT:
        return exclusive ? "the device does not take this rate, channel count or 32-bit float "
                           "in exclusive mode; try its own rate (--sr, see farm devices) or "
                           "shared mode (leave out --exclusive)"
                         : "the device does not take this format; try its own rate (--sr)";
    case AUDCLNT_E_DEVICE_INVALIDATED:
        return "the device was unplugged or disabled";
    default:
        return NULL;
    }
}

void farm_wasapi_explain(unsigned long code, const char *text, int exclusive, char *buf,
                         size_t size) {
    const char *meaning = wasapi_meaning(code, exclusive);
    snprintf(buf, size, "WASAPI error 0x%08lX (%s)%s%s", code, text != NULL ? text : "?",
             meaning ? ": " : "", meaning ? meaning : "");
}

int farm_pa_host_error(PaHostApiTypeId type, int exclusive, char *buf, size_t size) {
    const PaHostErrorInfo *e = Pa_GetLastHostErrorInfo();
    if (e == NULL || e->hostApiType != type || e->hostApiType != paWASAPI)
        return 0;
    farm_wasapi_explain((unsigned long)e->errorCode & 0xFFFFFFFFul, e->errorText, exclusive, buf,
                        size);
    return 1;
}
