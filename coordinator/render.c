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
    const uint64_t total_frames = (uint64_t)llround(o->duration * o->sample_rate);
    farm_outfile f;
    int rv = farm_outfile_open(&f, o->output, o->format, o->sample_type, o->sample_rate,
                               o->channels, total_frames);
    if (rv != FARM_OK)
        return rv;

    const uint64_t blocks = (total_frames + o->buffer_frames - 1) / o->buffer_frames;
    farm_procs procs;
    rv = farm_procs_start(&procs, o, blocks);
    if (rv != FARM_OK) {
        farm_outfile_finish(&f, 0);
        return rv;
    }
    const uint32_t block_samples = o->buffer_frames * o->channels;
    float *mixed = malloc(block_samples * sizeof(float));
    const float **ins = calloc(o->workers, sizeof *ins);
    if (mixed == NULL || ins == NULL)
        rv = farm_fail(FARM_EFAIL, "out of memory");

    const int show = !o->quiet && (o->progress == 1 || (o->progress == -1 && isatty(2)));
    farm_mix_stats stats = {0};
    farm_gain gain = {.value = (float)o->gain, .target = (float)o->gain};
    uint64_t written = 0, t0 = shm_now_ns(), last_progress = 0;
    for (uint64_t b = 0; b < blocks && rv == FARM_OK && !farm_stop_signal; b++) {
        uint32_t k;
        for (k = 0; k < o->workers; k++)
            if ((ins[k] = next_block(&procs, k, &rv)) == NULL)
                break;
        if (k < o->workers)
            break;
        farm_mix(mixed, ins, o->workers, o->buffer_frames, o->channels, &gain, &stats);
        for (k = 0; k < o->workers; k++)
            shm_ring_release(&shm_worker_at(&procs.region, k)->audio);
        uint64_t frames =
            total_frames - written < o->buffer_frames ? total_frames - written : o->buffer_frames;
        rv = farm_outfile_write(&f, mixed, frames);
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
    int frv = farm_outfile_finish(&f, keep);
    if (rv == FARM_OK)
        rv = frv;
    if (rv == FARM_OK && !o->quiet)
        summary(o, &procs, written, wall, f.type_name, stats.clipped, interrupted);
    farm_procs_stop(&procs);
    free(mixed);
    free(ins);
    return rv;
}
