/* farm devices and farm probe: PortAudio's view of the machine, as pyo's pa_list_host_apis,
 * pa_list_devices and the seed's driver inspector show it. */
#define _GNU_SOURCE
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audio_internal.h"

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
    farm_pa_end();
    return rv;
}

int farm_devices(const farm_listing_desc *desc) {
    int json = desc->json, rv;
    if ((rv = farm_pa_start(desc->verbose)) != FARM_OK)
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
        cJSON_AddStringToObject(o, "short_name", farm_pa_host_short_name(hi->type));
        cJSON_AddNumberToObject(o, "devices", hi->deviceCount);
        cJSON_AddNumberToObject(o, "default_output", hi->defaultOutputDevice);
        cJSON_AddNumberToObject(o, "default_input", hi->defaultInputDevice);
        cJSON_AddBoolToObject(o, "default", h == default_host);
        cJSON_AddItemToArray(hosts, o);
        if (!json)
            printf(" %c %-6s %s: %d device%s, default output %d, default input %d\n",
                   h == default_host ? '*' : ' ', farm_pa_host_short_name(hi->type), hi->name,
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
        cJSON_AddStringToObject(o, "host_short_name", farm_pa_host_short_name(hi->type));
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
                   i == default_out ? '*' : ' ', i, farm_pa_host_short_name(hi->type),
                   d->maxInputChannels, d->maxOutputChannels, d->defaultSampleRate,
                   1000 * d->defaultLowOutputLatency, 1000 * d->defaultHighOutputLatency, d->name,
                   i == default_in ? "  (default input)" : "");
    }
    if (!json && Pa_GetDeviceCount() == 0)
        printf("  (none: farm would play into its null sink)\n");
    return finish_listing(json, root);
}

/* NULL when a stream opens; else why not, into why. exclusive: WASAPI's exclusive mode. */
static const char *try_open(PaDeviceIndex in, PaDeviceIndex out, uint32_t sr, uint32_t frames,
                            uint32_t channels, int exclusive, char *why, size_t size) {
    const PaDeviceInfo *od = Pa_GetDeviceInfo(out);
    PaHostApiTypeId type = Pa_GetHostApiInfo(od->hostApi)->type;
    void *info = NULL;
    if (farm_pa_host_info(exclusive, type, &info) != FARM_OK) {
        snprintf(why, size, "%s", farm_error_message());
        return why;
    }
    PaStreamParameters op = {.device = out,
                             .channelCount = (int)channels,
                             .sampleFormat = paFloat32,
                             .suggestedLatency = od->defaultLowOutputLatency,
                             .hostApiSpecificStreamInfo = info};
    PaStreamParameters ip = op;
    if (in != paNoDevice) {
        const PaDeviceInfo *id = Pa_GetDeviceInfo(in);
        ip.device = in;
        ip.channelCount =
            id->maxInputChannels < (int)channels ? id->maxInputChannels : (int)channels;
        ip.suggestedLatency = id->defaultLowInputLatency;
    }
    PaStream *s = NULL;
    int q = farm_quiet_begin(0);
    PaError err = Pa_IsFormatSupported(in != paNoDevice ? &ip : NULL, &op, sr);
    if (err == paNoError)
        err = Pa_OpenStream(&s, in != paNoDevice ? &ip : NULL, &op, sr, frames, paClipOff, NULL,
                            NULL);
    if (s != NULL)
        Pa_CloseStream(s);
    farm_quiet_end(q);
    free(info);
    if (err == paNoError)
        return NULL;
    if (err == paInvalidSampleRate)
        snprintf(why, size, "%s; rate mismatch: the device's default is %g Hz",
                 Pa_GetErrorText(err), od->defaultSampleRate);
    else
        farm_pa_explain(err, type, exclusive, why, size);
    return why;
}

int farm_probe(const farm_listing_desc *desc) {
    int json = desc->json, rv;
    uint32_t sr = desc->sample_rate, frames = desc->buffer_frames, channels = desc->channels;
    if ((rv = farm_pa_start(desc->verbose)) != FARM_OK)
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
        cJSON_AddStringToObject(o, "short_name", farm_pa_host_short_name(hi->type));
        if (!json)
            printf("\n%s (--host %s)\n", hi->name, farm_pa_host_short_name(hi->type));
        /* WASAPI's exclusive mode is a third way to open its output (--exclusive). */
        const char *modes[3] = {"output", "duplex", "exclusive"};
        int nmodes = hi->type == paWASAPI ? 3 : 2;
        for (int m = 0; m < nmodes; m++) {
            char why[640];
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
                                   hi->defaultOutputDevice, sr, frames, channels, m == 2, why,
                                   sizeof why);
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
