/* farm render: the offline loop. There is no deadline here, so the coordinator waits for every
 * worker's block, which makes the output complete and repeatable. */
#define _GNU_SOURCE
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "coordinator.h"
#include "dsp.h"
#include "engine.h"
#include "outfile.h"
#include "shm.h"
#include "supervisor.h"

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

static void summary(const farm_options *o, shm_region *region, farm_procs *p, uint64_t frames,
                    double wall, const char *type, uint64_t clipped, int interrupted) {
    double secs = (double)frames / o->sample_rate;
    double vps = wall > 0 ? (double)o->total_voices * (double)frames / wall : 0;
    printf("farm render: %s%.2f s of audio to %s (%u Hz, %u ch, %s)\n",
           interrupted ? "interrupted after " : "", secs, o->output, o->sample_rate, o->channels,
           type);
    printf("  wall %.3f s, %.1fx real time, %.3g voice-samples/s, %u voices on %u workers, "
           "kernel %s\n",
           wall, wall > 0 ? secs / wall : 0, vps, o->total_voices, o->workers,
           shm_config_of(region)->isa);
    double block_s = (double)o->buffer_frames / o->sample_rate;
    for (uint32_t i = 0; i < o->workers; i++) {
        shm_worker_stats ws;
        shm_worker_stats_read(region, i, &ws);
        double busy = (double)ws.render_ns_total * 1e-9;
        double load = shm_worker_load_average(&ws, block_s);
        char cpu_s[16];
        farm_cpu_text(ws.cpu, cpu_s, sizeof cpu_s);
        printf("  worker %u  %-8s %6u voices  load %5.1f%% of real time  busy %5.1f%% of wall", i,
               cpu_s, ws.voice_count, 100 * load, wall > 0 ? 100 * busy / wall : 0);
        if (farm_procs_restarts(p, i) > 0)
            printf("  restarts %u", farm_procs_restarts(p, i));
        putchar('\n');
    }
    if (o->part)
        printf("  a part: voices %u-%llu of seed %llu, without gain or limiter (see farm mix)\n",
               o->first_voice, (unsigned long long)o->first_voice + o->total_voices - 1,
               (unsigned long long)o->seed);
    if (clipped)
        printf("  clipped samples: %llu (lower --amp or --gain)\n", (unsigned long long)clipped);
}

/* ---- the loop ---- */

#define CHECK_WORKERS_NS (100 * FARM_NS_PER_MS) /* how soon a dead worker or a stop is noticed */
#define PROGRESS_NS (100 * FARM_NS_PER_MS)

/* want: how many blocks to sleep for, so that a worker wakes the coordinator once per batch. */
static const float *next_block(shm_region *region, farm_procs *p, uint32_t k, uint32_t want,
                               int *rv) {
    for (;;) {
        const float *b = shm_audio_peek(region, k);
        if (b != NULL)
            return b;
        if (farm_stop_signal)
            return NULL;
        if ((*rv = farm_procs_check(p)) != FARM_OK)
            return NULL;
        shm_audio_wait(region, k, want, CHECK_WORKERS_NS);
    }
}

typedef struct render_loop {
    const farm_options *o;
    shm_region *region;
    farm_procs *procs;
    farm_outfile *file;
    float *mixed;   /* batch blocks, written together */
    uint32_t batch; /* the rings' wake-up batch */
    uint32_t mixed_blocks;
    const float **ins;
    farm_mix_stats stats;
    farm_gain gain;
    uint64_t total_frames, written;
    int show;
} render_loop;

/* The blocks mixed so far go to the file in one write. */
static int flush(render_loop *l) {
    uint64_t frames = (uint64_t)l->mixed_blocks * l->o->buffer_frames;
    uint64_t left = l->total_frames - l->written;
    if (frames > left) /* the last block is cut to the duration */
        frames = left;
    l->mixed_blocks = 0;
    int rv = frames ? farm_outfile_write(l->file, l->mixed, frames) : FARM_OK;
    if (rv == FARM_OK)
        l->written += frames;
    return rv;
}

/* One block: every worker's, mixed in order; written once a batch of them is mixed. */
static int render_block(render_loop *l, uint64_t blocks_left) {
    const farm_options *o = l->o;
    const uint32_t samples = o->buffer_frames * o->channels;
    const uint32_t want = blocks_left < l->batch ? (uint32_t)blocks_left : l->batch;
    int rv = FARM_OK;
    for (uint32_t k = 0; k < o->workers; k++)
        if ((l->ins[k] = next_block(l->region, l->procs, k, want, &rv)) == NULL)
            return rv;
    float *out = l->mixed + (size_t)l->mixed_blocks * samples;
    if (o->part) /* summed as rendered: farm mix applies the gain and the limiter once */
        farm_sum(out, l->ins, o->workers, samples);
    else
        farm_mix(out, l->ins, o->workers, o->buffer_frames, o->channels, &l->gain, &l->stats);
    for (uint32_t k = 0; k < o->workers; k++)
        shm_audio_release(l->region, k);
    if (++l->mixed_blocks == l->batch || blocks_left == 1)
        return flush(l);
    return FARM_OK;
}

static int run_loop(render_loop *l, uint64_t blocks, double *wall) {
    uint64_t t0 = farm_now_ns(), last_progress = 0;
    int rv = FARM_OK;
    for (uint64_t b = 0; b < blocks && rv == FARM_OK && !farm_stop_signal; b++) {
        rv = render_block(l, blocks - b);
        uint64_t now = farm_now_ns();
        if (l->show && now - last_progress > PROGRESS_NS) {
            progress((double)l->written / l->o->sample_rate, l->o->duration, (now - t0) * 1e-9);
            last_progress = now;
        }
    }
    if (rv == FARM_OK) /* what was mixed before a stop is kept */
        rv = flush(l);
    *wall = (farm_now_ns() - t0) * 1e-9;
    if (l->show) {
        progress((double)l->written / l->o->sample_rate, l->o->duration, *wall);
        fputc('\n', stderr);
    }
    return rv;
}

int farm_render(const farm_options *o) {
    const uint64_t total_frames = (uint64_t)llround(o->duration * o->sample_rate);
    if (o->part_check) {
        printf("%s\n", farm_part_done(o, total_frames) ? "done" : "missing");
        return FARM_OK;
    }
    if (o->part_of != NULL && farm_part_done(o, total_frames)) {
        if (!o->quiet)
            fprintf(stderr,
                    "farm render: %s already holds part %u/%u of this render, whole: "
                    "not rendered again\n",
                    o->output, o->part_k, o->part_n);
        return FARM_OK;
    }
    farm_outfile f;
    int rv = farm_outfile_open(&f, o->output, o->format, o->sample_type, o->sample_rate,
                               o->channels, total_frames);
    if (rv != FARM_OK)
        return rv;
    if (o->part) {
        char id[FARM_PART_COMMENT_MAX];
        farm_part_comment(id, sizeof id, o);
        farm_outfile_set_comment(&f, id);
    }
    render_loop l = {.o = o,
                     .file = &f,
                     .total_frames = total_frames,
                     .gain = {.value = (float)o->gain, .target = (float)o->gain},
                     .show = !o->quiet && (o->progress == 1 || (o->progress == -1 && isatty(2)))};
    const uint64_t blocks = (l.total_frames + o->buffer_frames - 1) / o->buffer_frames;
    shm_region region;
    farm_procs *procs;
    if ((rv = farm_coordinator_start_workers(o, blocks, &region, &procs)) != FARM_OK) {
        farm_outfile_finish(&f, 0);
        return rv;
    }
    farm_coordinator_place(o, procs, pthread_self(), 0, "farm render");
    l.region = &region;
    l.procs = procs;
    const uint32_t wake_batch = shm_config_of(&region)->wake_batch;
    l.batch = wake_batch > 0 ? wake_batch : 1;
    l.mixed = malloc((size_t)l.batch * o->buffer_frames * o->channels * sizeof(float));
    l.ins = calloc(o->workers, sizeof *l.ins);
    double wall = 0;
    rv = l.mixed && l.ins ? run_loop(&l, blocks, &wall) : farm_fail(FARM_ENOMEM, "out of memory");
    /* Keep what was rendered when interrupted: the user asked to stop, not to lose it. But a
     * part is kept only whole: farm mix cannot use less, and a part under its name is done. */
    const int cut = o->part && farm_stop_signal != 0;
    int frv = farm_outfile_finish(&f, rv == FARM_OK && !cut);
    if (rv == FARM_OK && cut)
        fprintf(stderr, "farm render: interrupted: a part is kept only whole, %s not written\n",
                o->output);
    if (rv == FARM_OK)
        rv = frv;
    if (rv == FARM_OK && !o->quiet && !cut)
        summary(o, &region, procs, l.written, wall, f.type_name, l.stats.clipped,
                farm_stop_signal != 0);
    farm_coordinator_stop_workers(&region, procs);
    free(l.mixed);
    free(l.ins);
    return rv;
}
