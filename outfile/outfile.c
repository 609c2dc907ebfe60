/* Sound files written whole or not at all: under a temporary name beside the target, renamed
 * into place when finished, removed on failure. Used by render and by --record. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sndfile.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "outfile.h"

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

static int choose_format(const char *path, const char *format, const char *sample_type,
                         uint32_t sample_rate, uint32_t channels, SF_INFO *info,
                         const char **type_name) {
    const char *name = format ? format : extension_of(path);
    if (name == NULL)
        return farm_fail(FARM_EUSAGE,
                         "%s has no extension to take the format from: name one with --format",
                         path);
    int major = major_format(name);
    if (major == 0)
        return farm_fail(FARM_EUSAGE, "%s '%s' is not a format libsndfile can write",
                         format ? "--format" : "extension", name);
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
    return FARM_OK;
}

/* ---- the file ---- */

int farm_outfile_open(farm_outfile *f, const char *path, const char *format,
                      const char *sample_type, uint32_t sample_rate, uint32_t channels) {
    memset(f, 0, sizeof *f);
    struct stat st;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
        return farm_fail(FARM_EUSAGE, "cannot write %s: it is a directory", path);
    SF_INFO sfinfo = {0}, *info = &sfinfo;
    int rv = choose_format(path, format, sample_type, sample_rate, channels, info, &f->type_name);
    if (rv != FARM_OK)
        return rv;
    int n = snprintf(f->tmp, sizeof f->tmp, "%s.farm-XXXXXX", path);
    if (n < 0 || (size_t)n >= sizeof f->tmp)
        return farm_fail(FARM_EUSAGE, "%s: path too long", path);
    snprintf(f->path, sizeof f->path, "%s", path);
    int fd = mkstemp(f->tmp);
    if (fd < 0)
        return farm_fail(FARM_EUSAGE, "cannot write %s: %s", path, strerror(errno));
    mode_t mask = umask(0);
    umask(mask);
    fchmod(fd, 0666 & ~mask);
    f->snd = sf_open_fd(fd, SFM_WRITE, info, SF_TRUE);
    if (f->snd == NULL) {
        rv = farm_fail(FARM_EUSAGE, "cannot write %s: %s", path, sf_strerror(NULL));
        close(fd);
        unlink(f->tmp);
        return rv;
    }
    /* libsndfile's PEAK chunk carries a time stamp; without it two renders are identical. */
    sf_command(f->snd, SFC_SET_ADD_PEAK_CHUNK, NULL, SF_FALSE);
    if ((info->format & SF_FORMAT_SUBMASK) != SF_FORMAT_FLOAT)
        sf_command(f->snd, SFC_SET_CLIPPING, NULL, SF_TRUE);
    return FARM_OK;
}

int farm_outfile_write(farm_outfile *f, const float *frames, uint64_t count) {
    if (sf_writef_float(f->snd, frames, (sf_count_t)count) != (sf_count_t)count)
        return farm_fail(FARM_EFAIL, "cannot write %s: %s", f->path, sf_strerror(f->snd));
    f->frames += count;
    return FARM_OK;
}

int farm_outfile_finish(farm_outfile *f, int keep) {
    if (f->snd == NULL)
        return FARM_OK;
    int rv = FARM_OK;
    if (sf_close(f->snd) != 0)
        rv = farm_fail(FARM_EFAIL, "cannot finish %s: %s", f->path, sf_strerror(NULL));
    f->snd = NULL;
    if (rv == FARM_OK && keep && rename(f->tmp, f->path) != 0)
        rv = farm_fail(FARM_EFAIL, "cannot rename %s to %s: %s", f->tmp, f->path, strerror(errno));
    if (rv != FARM_OK || !keep)
        unlink(f->tmp);
    return rv;
}
