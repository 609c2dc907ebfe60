/* farm render: the offline loop. There is no deadline here, so the coordinator waits for every
 * worker's block, which makes the output complete and repeatable. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <sndfile.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "coordinator.h"
#include "dsp.h"

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

static int choose_format(const farm_options *o, SF_INFO *info, const char **type_name) {
    const char *name = o->format ? o->format : extension_of(o->output);
    if (name == NULL)
        return farm_fail(FARM_EUSAGE,
                         "%s has no extension to take the format from: name one with --format",
                         o->output);
    int major = major_format(name);
    if (major == 0)
        return farm_fail(FARM_EUSAGE, "%s '%s' is not a format libsndfile can write",
                         o->format ? "--format" : "extension", name);
    const char *t = o->sample_type;
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
    info->samplerate = (int)o->sample_rate;
    info->channels = (int)o->channels;
    if (!sf_format_check(info))
        return farm_fail(FARM_EUSAGE, "%s cannot hold %u channels of %s samples at %u Hz", name,
                         o->channels, t, o->sample_rate);
    *type_name = t;
    return FARM_OK;
}

/* ---- output file: written under a temporary name, renamed into place at the end ---- */

typedef struct out_file {
    char tmp[4096];
    SNDFILE *snd;
} out_file;

static int out_open(out_file *f, const farm_options *o, SF_INFO *info) {
    int n = snprintf(f->tmp, sizeof f->tmp, "%s.farm-XXXXXX", o->output);
    if (n < 0 || (size_t)n >= sizeof f->tmp)
        return farm_fail(FARM_EUSAGE, "%s: path too long", o->output);
    int fd = mkstemp(f->tmp);
    if (fd < 0)
        return farm_fail(FARM_EUSAGE, "cannot write %s: %s", o->output, strerror(errno));
    mode_t mask = umask(0);
    umask(mask);
    fchmod(fd, 0666 & ~mask);
    f->snd = sf_open_fd(fd, SFM_WRITE, info, SF_TRUE);
    if (f->snd == NULL) {
        int rv = farm_fail(FARM_EUSAGE, "cannot write %s: %s", o->output, sf_strerror(NULL));
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

static int out_finish(out_file *f, const char *final_path, int keep) {
    int rv = FARM_OK;
    if (sf_close(f->snd) != 0)
        rv = farm_fail(FARM_EFAIL, "cannot finish %s: %s", final_path, sf_strerror(NULL));
    f->snd = NULL;
    if (rv == FARM_OK && keep && rename(f->tmp, final_path) != 0)
        rv = farm_fail(FARM_EFAIL, "cannot rename %s to %s: %s", f->tmp, final_path,
                       strerror(errno));
    if (rv != FARM_OK || !keep)
        unlink(f->tmp);
    return rv;
}

/* ---- progress and summary ---- */

static void progress(double done, double total, double wall) {
    const int width = 30;
    int filled = total > 0 ? (int)(width * done / total) : width;
    char bar[64];
    for (int i = 0; i < width; i++)
        bar[i] = i < filled ? '#' : '.';
    bar[width] = '\0';
    fprintf(stderr, "\r[%s] %5.1f%%  %.1f / %.1f s  %.1fx real time ", bar,
            total > 0 ? 100.0 * done / total : 100.0, done, total, wall > 0 ? done / wall : 0.0);
    fflush(stderr);
}

static void summary(const farm_options *o, farm_procs *p, uint64_t frames, double wall,
                    const char *type, uint64_t clipped, int interrupted) {
    double secs = (double)frames / o->sample_rate;
    double vps = wall > 0 ? (double)o->total_voices * (double)frames / wall : 0;
    printf("farm render: %s%.2f s of audio to %s (%u Hz, %u ch, %s)\n",
           interrupted ? "interrupted after " : "", secs, o->output, o->sample_rate, o->channels,
           type);
    printf("  wall %.3f s, %.1fx real time, %.3g voice-samples/s, %u voices on %u workers, "
           "kernel %s\n",
           wall, wall > 0 ? secs / wall : 0, vps, o->total_voices, o->workers, dsp_isa());
    double block_s = (double)o->buffer_frames / o->sample_rate;
    for (uint32_t i = 0; i < o->workers; i++) {
        shm_worker *w = shm_worker_at(&p->region, i);
        uint64_t blocks = atomic_load(&w->blocks_rendered);
        double busy = (double)atomic_load(&w->render_ns_total) * 1e-9;
        double load = blocks ? busy / ((double)blocks * block_s) : 0;
        int cpu = atomic_load(&w->cpu);
        char cpu_s[16];
        if (cpu >= 0)
            snprintf(cpu_s, sizeof cpu_s, "cpu %d", cpu);
        else
            snprintf(cpu_s, sizeof cpu_s, "unpinned");
        printf("  worker %u  %-8s %6u voices  load %5.1f%% of real time  busy %5.1f%% of wall\n", i,
               cpu_s, w->voice_count, 100 * load, wall > 0 ? 100 * busy / wall : 0);
    }
    if (clipped)
        printf("  clipped samples: %llu (lower --amp or --gain)\n", (unsigned long long)clipped);
}

/* ---- the loop ---- */

static const float *next_block(farm_procs *p, uint32_t k, int *rv) {
    shm_worker *w = shm_worker_at(&p->region, k);
    for (;;) {
        const float *b = shm_ring_begin_read(&w->audio, p->region.base);
        if (b != NULL)
            return b;
        if (farm_stop_signal)
            return NULL;
        if ((*rv = farm_procs_check(p)) != FARM_OK)
            return NULL;
        shm_ring_wait_data(&w->audio, 100u * 1000u * 1000u);
    }
}

int farm_render(const farm_options *o) {
    struct stat st;
    if (stat(o->output, &st) == 0 && S_ISDIR(st.st_mode))
        return farm_fail(FARM_EUSAGE, "cannot write %s: it is a directory", o->output);
    SF_INFO info = {0};
    const char *type = NULL;
    int rv = choose_format(o, &info, &type);
    if (rv != FARM_OK)
        return rv;
    out_file f = {0};
    rv = out_open(&f, o, &info);
    if (rv != FARM_OK)
        return rv;

    const uint64_t total_frames = (uint64_t)llround(o->duration * o->sample_rate);
    const uint64_t blocks = (total_frames + o->buffer_frames - 1) / o->buffer_frames;
    farm_procs procs;
    rv = farm_procs_start(&procs, o, blocks);
    if (rv != FARM_OK) {
        out_finish(&f, o->output, 0);
        return rv;
    }
    const uint32_t block_samples = o->buffer_frames * o->channels;
    float *mixed = malloc(block_samples * sizeof(float));
    const float **ins = calloc(o->workers, sizeof *ins);
    if (mixed == NULL || ins == NULL)
        rv = farm_fail(FARM_EFAIL, "out of memory");

    const int show = !o->quiet && (o->progress == 1 || (o->progress == -1 && isatty(2)));
    farm_mix_stats stats = {0};
    uint64_t written = 0, t0 = shm_now_ns(), last_progress = 0;
    for (uint64_t b = 0; b < blocks && rv == FARM_OK && !farm_stop_signal; b++) {
        uint32_t k;
        for (k = 0; k < o->workers; k++)
            if ((ins[k] = next_block(&procs, k, &rv)) == NULL)
                break;
        if (k < o->workers)
            break;
        farm_mix(mixed, ins, o->workers, block_samples, (float)o->gain, &stats);
        for (k = 0; k < o->workers; k++)
            shm_ring_release(&shm_worker_at(&procs.region, k)->audio);
        uint64_t frames =
            total_frames - written < o->buffer_frames ? total_frames - written : o->buffer_frames;
        if (sf_writef_float(f.snd, mixed, (sf_count_t)frames) != (sf_count_t)frames)
            rv = farm_fail(FARM_EFAIL, "cannot write %s: %s", o->output, sf_strerror(f.snd));
        written += frames;
        uint64_t now = shm_now_ns();
        if (show && now - last_progress > 100000000u) {
            progress((double)written / o->sample_rate, o->duration, (now - t0) * 1e-9);
            last_progress = now;
        }
    }
    double wall = (shm_now_ns() - t0) * 1e-9;
    if (show) {
        progress((double)written / o->sample_rate, o->duration, wall);
        fputc('\n', stderr);
    }
    /* Keep what was rendered when interrupted: the user asked to stop, not to lose it. */
    int interrupted = farm_stop_signal != 0;
    int keep = rv == FARM_OK;
    int frv = out_finish(&f, o->output, keep);
    if (rv == FARM_OK)
        rv = frv;
    if (rv == FARM_OK && !o->quiet)
        summary(o, &procs, written, wall, type, stats.clipped, interrupted);
    farm_procs_stop(&procs);
    free(mixed);
    free(ins);
    return rv;
}
