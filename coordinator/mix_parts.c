/* farm mix: parts rendered apart (farm render --first-voice, on this host or on others) summed
 * into one file, with the gain and the limiter render gives a whole farm (engine's farm_mix).
 * The parts are read a block at a time, so memory stays the same whatever their length; every
 * check comes before the output is opened, and the output is put in place only when complete. */
#define _GNU_SOURCE
#include <math.h>
#include <sndfile.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "coordinator.h"
#include "engine.h"
#include "outfile.h"

#define MIX_FRAMES 4096 /* frames read from each part at a time */
#define PART_FORMAT "farm part: first_voice=%u voices=%u seed=%llu sr=%u channels=%u"

/* What mix reads (PART_FORMAT), then what else makes the part's sound, for render --part. */
void farm_part_comment(char *out, size_t size, const farm_options *o) {
    static const char *const osc[] = {"sineloop", "sine"};
    int n = snprintf(out, size, PART_FORMAT, o->first_voice, o->total_voices,
                     (unsigned long long)o->seed, o->sample_rate, o->channels);
    if (n > 0 && (size_t)n < size)
        snprintf(out + n, size - (size_t)n,
                 " oscillator=%s freq=%.17g-%.17g feedback=%.17g amp=%.17g buffersize=%u "
                 "frames=%llu",
                 o->oscillator < 2 ? osc[o->oscillator] : "?", o->freq_min, o->freq_max,
                 o->feedback, o->amp, o->buffer_frames,
                 (unsigned long long)llround(o->duration * o->sample_rate));
}

int farm_part_done(const farm_options *o, uint64_t frames) {
    struct stat st; /* a regular file only: opening a FIFO to read it would wait for a writer */
    if (stat(o->output, &st) != 0 || !S_ISREG(st.st_mode))
        return 0;
    SF_INFO info = {0};
    SNDFILE *snd = sf_open(o->output, SFM_READ, &info);
    if (snd == NULL)
        return 0;
    char want[FARM_PART_COMMENT_MAX];
    farm_part_comment(want, sizeof want, o);
    const char *c = sf_get_string(snd, SF_STR_COMMENT);
    int done = c != NULL && strcmp(c, want) == 0 && info.frames == (sf_count_t)frames &&
               info.channels == (int)o->channels && info.samplerate == (int)o->sample_rate &&
               (info.format & SF_FORMAT_SUBMASK) == SF_FORMAT_FLOAT;
    sf_close(snd);
    return done;
}

typedef struct part {
    const char *path;
    SNDFILE *snd;
    SF_INFO info;
    float *buf;
    int known; /* its comment says which voices it holds */
    uint32_t first, voices;
    unsigned long long seed;
} part;

static void read_identity(part *p) {
    const char *c = sf_get_string(p->snd, SF_STR_COMMENT);
    unsigned sr, ch;
    p->known = c != NULL &&
               sscanf(c, PART_FORMAT, &p->first, &p->voices, &p->seed, &sr, &ch) == 5 &&
               p->voices > 0;
}

/* Part i against the first: the same rate, channels and length, or nothing is mixed. */
static int check_agrees(const part *p, const part *p0) {
    if (p->info.samplerate != p0->info.samplerate)
        return farm_fail(FARM_EUSAGE, "parts differ in sample rate: %s is %d Hz, %s is %d Hz",
                         p0->path, p0->info.samplerate, p->path, p->info.samplerate);
    if (p->info.channels != p0->info.channels)
        return farm_fail(FARM_EUSAGE, "parts differ in channels: %s has %d, %s has %d", p0->path,
                         p0->info.channels, p->path, p->info.channels);
    if (p->info.frames != p0->info.frames)
        return farm_fail(FARM_EUSAGE,
                         "parts differ in length: %s has %lld frames (%.3f s), %s has %lld "
                         "(%.3f s)",
                         p0->path, (long long)p0->info.frames,
                         (double)p0->info.frames / p0->info.samplerate, p->path,
                         (long long)p->info.frames, (double)p->info.frames / p->info.samplerate);
    return FARM_OK;
}

static int open_parts(part *parts, uint32_t n, char *const *paths) {
    for (uint32_t i = 0; i < n; i++) {
        part *p = &parts[i];
        p->path = paths[i];
        p->snd = sf_open(p->path, SFM_READ, &p->info);
        if (p->snd == NULL)
            return farm_fail(FARM_EUSAGE, "cannot read part %s: %s", p->path, sf_strerror(NULL));
        if (p->info.frames < 0 || p->info.frames == SF_COUNT_MAX)
            return farm_fail(FARM_EUSAGE, "cannot read part %s: its length is not known", p->path);
        int rv = i > 0 ? check_agrees(p, &parts[0]) : FARM_OK;
        if (rv != FARM_OK)
            return rv;
        read_identity(p);
        p->buf = malloc(sizeof(float) * MIX_FRAMES * (size_t)p->info.channels);
        if (p->buf == NULL)
            return farm_fail(FARM_ENOMEM, "out of memory for part %s", p->path);
    }
    return FARM_OK;
}

static void close_parts(part *parts, uint32_t n) {
    for (uint32_t i = 0; i < n; i++) {
        if (parts[i].snd != NULL)
            sf_close(parts[i].snd);
        free(parts[i].buf);
    }
}

/* ---- which voices the parts hold ---- */

static int by_first(const void *a, const void *b) {
    const part *x = *(const part *const *)a, *y = *(const part *const *)b;
    return (x->first > y->first) - (x->first < y->first);
}

/* Warnings, not refusals: summing any float files is a mix, but parts of one farm that overlap
 * or leave a gap, or come from different seeds, are most likely a mistake. Writes the parts'
 * voices, when every part names them and they follow one another, into range. */
static void check_voices(part *parts, uint32_t n, char *range, size_t size) {
    range[0] = '\0';
    const part **known = malloc(n * sizeof *known);
    uint32_t m = 0;
    for (uint32_t i = 0; known != NULL && i < n; i++)
        if (parts[i].known)
            known[m++] = &parts[i];
    if (m == 0) {
        free(known);
        return;
    }
    qsort(known, m, sizeof *known, by_first);
    int whole = m == n;
    for (uint32_t i = 1; i < m; i++) {
        const part *a = known[i - 1], *b = known[i];
        uint64_t a_end = (uint64_t)a->first + a->voices; /* one past a's last */
        if (b->seed != known[0]->seed)
            fprintf(stderr,
                    "farm: warning: %s and %s are parts of farms of other seeds (%llu, %llu)\n",
                    known[0]->path, b->path, known[0]->seed, b->seed);
        if (b->first < a_end)
            fprintf(stderr, "farm: warning: voices %u-%llu are in both %s and %s\n", b->first,
                    (unsigned long long)(a_end < (uint64_t)b->first + b->voices
                                             ? a_end
                                             : (uint64_t)b->first + b->voices) -
                        1,
                    a->path, b->path);
        else if (b->first > a_end)
            fprintf(stderr, "farm: warning: no part holds voices %llu-%u (between %s and %s)\n",
                    (unsigned long long)a_end, b->first - 1, a->path, b->path);
        whole &= b->first == a_end && b->seed == known[0]->seed;
    }
    if (whole)
        snprintf(range, size, "voices %u-%llu of seed %llu", known[0]->first,
                 (unsigned long long)known[m - 1]->first + known[m - 1]->voices - 1,
                 known[0]->seed);
    free(known);
}

/* ---- the loop ---- */

typedef struct mix_loop {
    const farm_options *o;
    part *parts;
    farm_outfile *file;
    const float **ins;
    float *out;
    farm_gain gain;
    farm_mix_stats stats;
    uint64_t total, done;
    uint32_t channels;
} mix_loop;

static int mix_block(mix_loop *m, uint32_t frames) {
    for (uint32_t k = 0; k < m->o->part_count; k++) {
        part *p = &m->parts[k];
        sf_count_t got = sf_readf_float(p->snd, p->buf, frames);
        if (got != (sf_count_t)frames)
            return farm_fail(FARM_EFAIL, "part %s ended after %.3f s of the %.3f s it should hold",
                             p->path,
                             (double)(m->done + (uint64_t)(got > 0 ? got : 0)) / p->info.samplerate,
                             (double)m->total / p->info.samplerate);
        m->ins[k] = p->buf;
    }
    farm_mix(m->out, m->ins, m->o->part_count, frames, m->channels, &m->gain, &m->stats);
    int rv = farm_outfile_write(m->file, m->out, frames);
    m->done += frames;
    return rv;
}

static int run_loop(mix_loop *m) {
    int rv = FARM_OK;
    while (rv == FARM_OK && m->done < m->total && !farm_stop_signal) {
        uint64_t left = m->total - m->done;
        rv = mix_block(m, left < MIX_FRAMES ? (uint32_t)left : MIX_FRAMES);
    }
    return rv;
}

static void summary(const mix_loop *m, double wall, const char *range) {
    const farm_options *o = m->o;
    const double secs = (double)m->done / m->parts[0].info.samplerate;
    printf("farm mix: %.2f s of audio from %u part%s to %s (%d Hz, %u ch, %s)\n", secs,
           o->part_count, o->part_count == 1 ? "" : "s", o->output, m->parts[0].info.samplerate,
           m->channels, m->file->type_name);
    printf("  wall %.3f s, %.1fx real time%s%s\n", wall, wall > 0 ? secs / wall : 0,
           range[0] ? ", " : "", range);
    if (m->stats.clipped)
        printf("  clipped samples: %llu (lower --gain)\n", (unsigned long long)m->stats.clipped);
}

static int mix_into(mix_loop *m, const char *range) {
    const farm_options *o = m->o;
    m->ins = calloc(o->part_count, sizeof *m->ins);
    m->out = malloc(sizeof(float) * MIX_FRAMES * m->channels);
    uint64_t t0 = farm_now_ns();
    int rv = m->ins && m->out ? run_loop(m) : farm_fail(FARM_ENOMEM, "out of memory");
    double wall = (farm_now_ns() - t0) * 1e-9;
    /* Interrupted, it is not the mix that was asked for: what was at -o stays. */
    int keep = rv == FARM_OK && !farm_stop_signal;
    int frv = farm_outfile_finish(m->file, keep);
    if (rv == FARM_OK)
        rv = frv;
    if (rv == FARM_OK && !o->quiet && keep)
        summary(m, wall, range);
    if (rv == FARM_OK && !keep)
        fprintf(stderr, "farm: mix interrupted: %s left as it was\n", o->output);
    free(m->ins);
    free(m->out);
    return rv;
}

int farm_mix_parts(const farm_options *o) {
    part *parts = calloc(o->part_count, sizeof *parts);
    if (parts == NULL)
        return farm_fail(FARM_ENOMEM, "out of memory for %u parts", o->part_count);
    int rv = open_parts(parts, o->part_count, o->parts);
    farm_outfile f;
    mix_loop m = {.o = o,
                  .parts = parts,
                  .file = &f,
                  .gain = {.value = (float)o->gain, .target = (float)o->gain},
                  .total = (uint64_t)parts[0].info.frames,
                  .channels = (uint32_t)parts[0].info.channels};
    if (rv == FARM_OK)
        rv = farm_outfile_open(&f, o->output, o->format, o->sample_type,
                               (uint32_t)parts[0].info.samplerate, m.channels, m.total);
    if (rv == FARM_OK) {
        char range[96];
        check_voices(parts, o->part_count, range, sizeof range);
        rv = mix_into(&m, range);
    }
    close_parts(parts, o->part_count);
    free(parts);
    return rv;
}
