/* Sound files written whole or not at all: under a temporary name beside the target, put in
 * place when finished, removed on failure; or, for a live recording, put in place early with a
 * header kept up to date. Used by render and by --record. */
#define _GNU_SOURCE
#include <errno.h>
#include <sndfile.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "outfile_internal.h"

/* ---- output format ---- */

static const char *extension_of(const char *path) {
    const char *slash = strrchr(path, '/');
    const char *dot = strrchr(path, '.');
    if (dot == NULL || (slash != NULL && dot < slash) || dot[1] == '\0')
        return NULL;
    return dot + 1;
}

/* A name or extension to libsndfile's major format, from libsndfile's own table, plus the
 * names people type that differ from its extensions. */
static int major_format(const char *name) {
    static const struct {
        const char *name;
        int format;
    } aliases[] = {{"ogg", SF_FORMAT_OGG},  {"aif", SF_FORMAT_AIFF},  {"aifc", SF_FORMAT_AIFF},
                   {"wave", SF_FORMAT_WAV}, {"rf64", SF_FORMAT_RF64}, {"w64", SF_FORMAT_W64}};
    for (size_t i = 0; i < sizeof aliases / sizeof aliases[0]; i++)
        if (strcasecmp(name, aliases[i].name) == 0)
            return aliases[i].format;
    int count = 0;
    sf_command(NULL, SFC_GET_FORMAT_MAJOR_COUNT, &count, sizeof count);
    for (int i = 0; i < count; i++) {
        SF_FORMAT_INFO info = {.format = i};
        if (sf_command(NULL, SFC_GET_FORMAT_MAJOR, &info, sizeof info) != 0)
            continue;
        if (info.extension != NULL && strcasecmp(name, info.extension) == 0)
            return info.format;
    }
    return 0;
}

/* The major format --format names, or else the path's extension does, into *major (and its
 * name into *name). */
static int format_named(const char *path, const char *format, int *major, const char **name) {
    *name = format ? format : extension_of(path);
    if (*name == NULL)
        return farm_fail(FARM_EUSAGE,
                         "%s has no extension to take the format from: name one with --format",
                         path);
    *major = major_format(*name);
    if (*major == 0)
        return farm_fail(FARM_EUSAGE, "%s '%s' is not a format libsndfile can write",
                         format ? "--format" : "extension", *name);
    return FARM_OK;
}

static int choose_format(const char *path, const char *format, const char *sample_type,
                         uint32_t sample_rate, uint32_t channels, SF_INFO *info,
                         const char **type_name, const char **format_name) {
    const char *name;
    int major, rv = format_named(path, format, &major, &name);
    if (rv != FARM_OK)
        return rv;
    const char *t = sample_type;
    int sub;
    if (major == SF_FORMAT_OGG) {
        if (t != NULL)
            return farm_fail(FARM_EUSAGE, "--sample-type: ogg holds Vorbis, not %s samples", t);
        sub = SF_FORMAT_VORBIS;
        t = "vorbis";
    } else {
        if (t == NULL)
            t = major == SF_FORMAT_FLAC ? "pcm24" : "float";
        sub = strcmp(t, "float") == 0   ? SF_FORMAT_FLOAT
              : strcmp(t, "pcm16") == 0 ? SF_FORMAT_PCM_16
                                        : SF_FORMAT_PCM_24;
    }
    info->format = major | sub;
    info->samplerate = (int)sample_rate;
    info->channels = (int)channels;
    if (!sf_format_check(info))
        return farm_fail(FARM_EUSAGE, "%s cannot hold %u channels of %s samples at %u Hz", name,
                         channels, t, sample_rate);
    *type_name = t;
    *format_name = name;
    return FARM_OK;
}

/* ---- what a format can hold ---- */

#define HEADER_ROOM 65536u /* bytes left for a header below a 32-bit size */

/* The most frames the format holds, 0 for no limit. libsndfile writes a size that does not fit
 * without complaint, and the file is corrupt (a 4.4 GB wav whose header says 21 s). */
static uint64_t format_max_frames(int major, uint64_t frame_bytes) {
    switch (major) {
    case SF_FORMAT_RAW:
    case SF_FORMAT_W64:
    case SF_FORMAT_RF64:
    case SF_FORMAT_CAF:
    case SF_FORMAT_OGG:
    case SF_FORMAT_NIST:  /* the count is text */
    case SF_FORMAT_IRCAM: /* no size in the header */
    case SF_FORMAT_PVF:   /* likewise */
    case SF_FORMAT_AU:    /* past 2 GiB libsndfile writes the size as unknown: read to the end */
        return 0;
    case SF_FORMAT_FLAC: /* STREAMINFO counts frames in 36 bits */
        return (UINT64_C(1) << 36) - 1;
    case SF_FORMAT_SDS: /* a 21-bit sample count */
        return (UINT64_C(1) << 21) - 1;
    case SF_FORMAT_VOC: /* a 24-bit block size */
        return (UINT64_C(0xffffff) - 16) / frame_bytes;
    case SF_FORMAT_WAV:
    case SF_FORMAT_WAVEX:
    case SF_FORMAT_AIFF:
        return (UINT64_C(0xffffffff) - HEADER_ROOM) / frame_bytes;
    default: /* sizes in signed 32-bit fields, or not known to be wider */
        return (UINT64_C(0x7fffffff) - HEADER_ROOM) / frame_bytes;
    }
}

static uint64_t bytes_per_sample(int format) {
    switch (format & SF_FORMAT_SUBMASK) {
    case SF_FORMAT_PCM_16:
        return 2;
    case SF_FORMAT_PCM_24:
        return 3;
    default:
        return 4;
    }
}

/* Formats whose frames go straight to the file, so a header rewritten now describes them. */
static int header_follows_frames(int major) {
    return major != SF_FORMAT_FLAC && major != SF_FORMAT_OGG;
}

/* ---- the file ---- */

/* libsndfile on the open descriptor, with farm's settings. */
static int open_sound(farm_outfile *f, const char *path, SF_INFO *info, int rf64) {
    /* The descriptor stays ours: publish may move libsndfile onto another file under it. */
    errno = 0;
    f->snd = sf_open_fd(f->fd, SFM_WRITE, info, SF_FALSE);
    if (f->snd == NULL) {
        int err = errno, rv;
        if (sf_error(NULL) == SF_ERR_SYSTEM) /* the disk or device failed: /dev/full */
            rv = farm_fail(FARM_EFAIL, "cannot write %s: %s", path,
                           err ? strerror(err) : sf_strerror(NULL));
        else
            rv = farm_fail(FARM_EUSAGE, "cannot write %s: %s", path, sf_strerror(NULL));
        close(f->fd);
        f->fd = -1;
        if (f->tmp[0] != '\0')
            unlink(f->tmp);
        f->tmp[0] = '\0';
        return rv;
    }
    /* libsndfile's PEAK chunk carries a time stamp; without it two renders are identical. */
    sf_command(f->snd, SFC_SET_ADD_PEAK_CHUNK, NULL, SF_FALSE);
    if (rf64)
        sf_command(f->snd, SFC_RF64_AUTO_DOWNGRADE, NULL, SF_TRUE);
    if ((info->format & SF_FORMAT_SUBMASK) != SF_FORMAT_FLOAT)
        sf_command(f->snd, SFC_SET_CLIPPING, NULL, SF_TRUE);
    /* Once published, the header is rewritten every 50 ms of audio. Measured with 256-frame
     * stereo float blocks on tmpfs: SFC_SET_UPDATE_HEADER_AUTO (a stat, three seeks and a write
     * after every write) cost about 2.7 us more CPU per block; this, under 1 us. Both are far
     * below a block's 5.3 ms; the price of the cheaper is that a SIGKILL may lose the last
     * 50 ms. */
    if (header_follows_frames(info->format & SF_FORMAT_TYPEMASK) && !f->direct)
        f->header_every = f->sample_rate / 20 > 0 ? f->sample_rate / 20 : 1;
    return FARM_OK;
}

int farm_outfile_open(farm_outfile *f, const char *path, const char *format,
                      const char *sample_type, uint32_t sample_rate, uint32_t channels,
                      uint64_t expected_frames) {
    memset(f, 0, sizeof *f);
    f->fd = -1;
    if (strlen(path) >= sizeof f->path)
        return farm_fail(FARM_EUSAGE, "cannot write %.64s...: path too long", path);
    snprintf(f->path, sizeof f->path, "%s", path);
    int rv = farm_outfile_resolve(f, f->path);
    if (rv != FARM_OK)
        return rv;
    SF_INFO info = {0};
    rv = choose_format(f->path, format, sample_type, sample_rate, channels, &info, &f->type_name,
                       &f->format_name);
    if (rv != FARM_OK)
        return rv;
    const int major = info.format & SF_FORMAT_TYPEMASK;
    f->sample_rate = sample_rate;
    f->max_frames = format_max_frames(major, bytes_per_sample(info.format) * channels);
    /* A wav of unknown or too great a length is RF64, which libsndfile writes as a RIFF WAVE
     * file (WAVE_FORMAT_EXTENSIBLE) when it ends under 4 GiB. One known to fit stays plain
     * WAV, byte for byte as before. */
    const int rf64 =
        major == SF_FORMAT_WAV && (expected_frames == 0 || expected_frames > f->max_frames);
    if (rf64) {
        info.format = SF_FORMAT_RF64 | (info.format & SF_FORMAT_SUBMASK);
        f->max_frames = 0;
    }
    if (f->max_frames != 0 && expected_frames > f->max_frames)
        return farm_fail(FARM_EUSAGE,
                         "%s cannot hold %.1f s of %u channels of %s at %u Hz, only %.1f s: "
                         "use wav, w64 or caf",
                         f->format_name, (double)expected_frames / sample_rate, channels,
                         f->type_name, sample_rate, (double)f->max_frames / sample_rate);
    rv = f->direct ? farm_outfile_open_device(f) : farm_outfile_open_temporary(f, path);
    if (rv != FARM_OK)
        return rv;
    return open_sound(f, path, &info, rf64);
}

int farm_outfile_takes_float(const char *path, const char *format, uint32_t sample_rate,
                             uint32_t channels, int *yes) {
    const char *name;
    int major, rv = format_named(path, format, &major, &name);
    if (rv != FARM_OK)
        return rv;
    SF_INFO info = {.format = major | SF_FORMAT_FLOAT,
                    .samplerate = (int)sample_rate,
                    .channels = (int)channels};
    *yes = sf_format_check(&info) != 0;
    return FARM_OK;
}

int farm_outfile_set_comment(farm_outfile *f, const char *text) {
    return f->snd != NULL && sf_set_string(f->snd, SF_STR_COMMENT, text) == 0;
}

int farm_outfile_write(farm_outfile *f, const float *frames, uint64_t count) {
    if (f->max_frames != 0 && count > f->max_frames - f->frames)
        return farm_fail(FARM_EFAIL, "cannot write more to %s: %s holds at most %.1f s of it",
                         f->path, f->format_name, (double)f->max_frames / f->sample_rate);
    errno = 0;
    sf_count_t n = sf_writef_float(f->snd, frames, (sf_count_t)count);
    int err = errno;
    if (n > 0)
        f->frames += (uint64_t)n;
    if (n != (sf_count_t)count)
        return farm_fail(FARM_EFAIL, "cannot write %s: %s", f->path,
                         sf_error(f->snd) == SF_ERR_SYSTEM && err != 0 ? strerror(err)
                                                                       : sf_strerror(f->snd));
    if (f->published && f->header_every != 0 && f->frames - f->header_frames >= f->header_every) {
        sf_command(f->snd, SFC_UPDATE_HEADER_NOW, NULL, 0);
        f->header_frames = f->frames;
    }
    return FARM_OK;
}

int farm_outfile_publish(farm_outfile *f) {
    if (f->snd == NULL)
        return farm_fail(FARM_EFAIL, "cannot publish %s: it is not open", f->path);
    if (f->published)
        return FARM_OK;
    if (f->tmp[0] != '\0') {
        int rv = farm_outfile_put_in_place(f, 1);
        if (rv != FARM_OK)
            return rv;
    }
    f->published = 1;
    if (f->header_every != 0) {
        sf_command(f->snd, SFC_UPDATE_HEADER_NOW, NULL, 0);
        f->header_frames = f->frames;
    }
    return FARM_OK;
}

int farm_outfile_finish(farm_outfile *f, int keep) {
    if (f->snd == NULL)
        return FARM_OK;
    int rv = FARM_OK;
    if (sf_close(f->snd) != 0)
        rv = farm_fail(FARM_EFAIL, "cannot finish %s: %s", f->path, sf_strerror(NULL));
    f->snd = NULL;
    /* Published but still under its temporary (Windows): it stays, as a published file does. */
    if (rv == FARM_OK && (keep || f->published) && f->tmp[0] != '\0')
        rv = farm_outfile_put_in_place(f, 0);
    if (f->fd >= 0 && close(f->fd) != 0 && rv == FARM_OK)
        rv = farm_fail(FARM_EFAIL, "cannot finish %s: %s", f->path, strerror(errno));
    f->fd = -1;
    if (f->tmp[0] != '\0')
        unlink(f->tmp);
    f->tmp[0] = '\0';
    return rv;
}
