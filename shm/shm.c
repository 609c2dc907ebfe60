#include <string.h>

#include "dsp.h"
#include "shm_layout.h"

#define CMD_SLOTS 256u

/* ---- layout ---- */

static size_t audio_slot_bytes(const shm_config *cfg) {
    return farm_align_up((size_t)cfg->block_frames * cfg->channels * sizeof(float), SHM_CACHE_LINE);
}

/* Room for a few commands' worth of one value per voice of the largest worker. */
static size_t value_floats(const shm_config *cfg) {
    size_t most = (cfg->total_voices + cfg->workers - 1) / cfg->workers;
    return farm_align_up(4 * (most > 1024 ? most : 1024), SHM_CACHE_LINE / sizeof(float));
}

static size_t layout(const shm_config *cfg, size_t *workers_off, size_t *per_worker_data) {
    size_t off = farm_align_up(sizeof(shm_header), SHM_CACHE_LINE);
    *workers_off = off;
    off += farm_align_up(sizeof(shm_worker) * cfg->workers, SHM_CACHE_LINE);
    *per_worker_data = audio_slot_bytes(cfg) * cfg->ring_blocks +
                       farm_align_up(sizeof(shm_cmd) * CMD_SLOTS, SHM_CACHE_LINE) +
                       2 * farm_align_up(cfg->state_bytes, SHM_CACHE_LINE) +
                       value_floats(cfg) * sizeof(float);
    return off + *per_worker_data * cfg->workers;
}

static void set_region(const plat_map *m, shm_region *out) {
    out->base = m->base;
    out->size = m->size;
    out->handle = m->handle;
}

static plat_map map_of(const shm_region *r) {
    return (plat_map){.base = r->base, .size = r->size, .handle = r->handle};
}

static int make_wakes(shm_ring *r) {
    int rv = plat_wake_create(&r->data_wake);
    return rv == FARM_OK ? plat_wake_create(&r->space_wake) : rv;
}

/* Worker i's rings at their offsets, with their wake-ups. */
static int lay_out_worker(shm_region *out, const shm_config *cfg, uint32_t i, size_t base) {
    shm_worker *w = shm_worker_at(out, i);
    shm_ring_init(&w->audio, base, cfg->ring_blocks, (uint32_t)audio_slot_bytes(cfg));
    size_t cmds = base + audio_slot_bytes(cfg) * cfg->ring_blocks;
    shm_ring_init(&w->cmds, cmds, CMD_SLOTS, sizeof(shm_cmd));
    size_t snaps = cmds + farm_align_up(sizeof(shm_cmd) * CMD_SLOTS, SHM_CACHE_LINE);
    for (uint32_t j = 0; j < 2; j++) {
        w->snap[j].data_offset = snaps + j * farm_align_up(cfg->state_bytes, SHM_CACHE_LINE);
        atomic_store(&w->snap[j].block, SHM_NO_SNAPSHOT);
    }
    w->values.data_offset = snaps + 2 * farm_align_up(cfg->state_bytes, SHM_CACHE_LINE);
    w->values.capacity = value_floats(cfg);
    atomic_store(&w->cpu, -1);
    atomic_store(&w->min_fill, UINT32_MAX);
    /* voices shared out in order (base.h's rule, which the protocol's worker:K follows too),
     * each worker's numbered globally: from the farm's first voice */
    farm_voice_share(cfg->total_voices, cfg->workers, i, &w->voice_first, &w->voice_count);
    w->voice_first += cfg->first_voice;
    int rv = make_wakes(&w->audio);
    return rv == FARM_OK ? make_wakes(&w->cmds) : rv;
}

int shm_create(const shm_config *cfg, shm_region *out) {
    memset(out, 0, sizeof *out);
    out->handle = PLAT_NO_HANDLE;
    if (cfg->workers == 0 || cfg->workers > SHM_MAX_WORKERS || cfg->channels == 0 ||
        cfg->block_frames == 0 || cfg->ring_blocks < 2 ||
        (cfg->ring_blocks & (cfg->ring_blocks - 1)) != 0)
        return farm_fail(FARM_EINVAL,
                         "shared memory for %u workers, %u channels, %u frames, %u ring blocks "
                         "is out of range",
                         cfg->workers, cfg->channels, cfg->block_frames, cfg->ring_blocks);
    size_t workers_off, per_worker;
    size_t size = layout(cfg, &workers_off, &per_worker);
    plat_map m;
    int rv = plat_map_create(size, &m);
    if (rv != FARM_OK)
        return rv;
    set_region(&m, out);
    out->owner = 1;
    shm_header *h = out->base;
    h->magic = SHM_MAGIC;
    h->version = SHM_VERSION;
    h->size = size;
    h->config = *cfg;
    h->workers_offset = workers_off;
    size_t data = workers_off + farm_align_up(sizeof(shm_worker) * cfg->workers, SHM_CACHE_LINE);
    /* Touch every page now so no page fault lands on the real-time path later. */
    memset((char *)out->base + data, 0, size - data);
    for (uint32_t i = 0; i < cfg->workers && rv == FARM_OK; i++)
        rv = lay_out_worker(out, cfg, i, data + per_worker * i);
    if (rv != FARM_OK)
        shm_close(out);
    return rv;
}

int shm_attach(plat_handle handle, shm_region *out) {
    memset(out, 0, sizeof *out);
    out->handle = PLAT_NO_HANDLE;
    plat_map m;
    int rv = plat_map_attach(handle, &m);
    if (rv != FARM_OK)
        return rv;
    const shm_header *h = m.base;
    if (m.size < sizeof(shm_header) || h->magic != SHM_MAGIC || h->version != SHM_VERSION ||
        h->size > (uint64_t)m.size) {
        m.handle = PLAT_NO_HANDLE; /* the caller's */
        plat_map_close(&m);
        return farm_fail(FARM_EINVAL, "fd %ld is not farm's shared memory of version %u",
                         (long)handle, SHM_VERSION);
    }
    set_region(&m, out);
    return FARM_OK;
}

static void destroy_wakes(shm_region *r) {
    const shm_header *h = r->base;
    for (uint32_t i = 0; i < h->config.workers; i++) {
        shm_worker *w = shm_worker_at(r, i);
        plat_wake_destroy(w->audio.data_wake);
        plat_wake_destroy(w->audio.space_wake);
        plat_wake_destroy(w->cmds.data_wake);
        plat_wake_destroy(w->cmds.space_wake);
    }
}

void shm_close(shm_region *r) {
    if (r->base != NULL && r->owner)
        destroy_wakes(r);
    plat_map m = map_of(r);
    plat_map_close(&m);
    r->base = NULL;
    r->handle = PLAT_NO_HANDLE;
    r->owner = 0;
}

size_t shm_worker_handles(const shm_region *r, uint32_t k, plat_handle *out, size_t max) {
    const shm_worker *w = shm_worker_at(r, k);
    const uint64_t ids[] = {w->audio.data_wake, w->audio.space_wake, w->cmds.data_wake,
                            w->cmds.space_wake};
    size_t n = 0;
    if (max > 0)
        out[n++] = r->handle;
    for (size_t i = 0; i < sizeof ids / sizeof ids[0] && n < max; i++)
        if (plat_wake_handle(ids[i]) != PLAT_NO_HANDLE)
            out[n++] = plat_wake_handle(ids[i]);
    return n;
}

const shm_config *shm_config_of(const shm_region *r) {
    return &shm_header_of(r)->config;
}

void shm_request_quit(shm_region *r) {
    shm_header *h = shm_header_of(r);
    atomic_store_explicit(&h->quit, 1, memory_order_release);
    for (uint32_t k = 0; k < h->config.workers; k++)
        shm_ring_wake(&shm_worker_at(r, k)->audio); /* one asleep on a full ring wakes now */
}

void shm_voice_defaults(const shm_config *cfg, uint64_t voice, shm_voice_values *out) {
    out->freq = dsp_voice_default_freq(cfg->seed, voice, cfg->freq_min, cfg->freq_max);
    out->feedback = cfg->oscillator == SHM_OSC_SINE ? 0.0 : cfg->feedback;
    out->amp = cfg->amp;
    out->pan = dsp_voice_default_pan(voice, cfg->channels);
}

shm_header *shm_header_of(const shm_region *r) {
    return r->base;
}

shm_worker *shm_worker_at(const shm_region *r, uint32_t index) {
    const shm_header *h = r->base;
    return (shm_worker *)((char *)r->base + h->workers_offset) + index;
}

/* ---- rings ---- */

size_t shm_ring_bytes(uint32_t slot_count, uint32_t slot_bytes) {
    return farm_align_up(sizeof(shm_ring), SHM_CACHE_LINE) + (size_t)slot_count * slot_bytes;
}

shm_ring *shm_ring_make(void *mem, uint32_t slot_count, uint32_t slot_bytes) {
    shm_ring *r = mem;
    shm_ring_init(r, farm_align_up(sizeof(shm_ring), SHM_CACHE_LINE), slot_count, slot_bytes);
    return r;
}

void shm_ring_init(shm_ring *r, uint64_t slots_offset, uint32_t slot_count, uint32_t slot_bytes) {
    memset(r, 0, sizeof *r);
    r->slots_offset = slots_offset;
    r->slot_count = slot_count;
    r->slot_bytes = slot_bytes;
}

static void *slot_at(const shm_ring *r, void *base, uint64_t index) {
    return (char *)base + r->slots_offset + (index & (r->slot_count - 1)) * r->slot_bytes;
}

/* The slots the sleeper on this side waits for: data for the consumer, space for the producer. */
static uint32_t data_ready(const shm_ring *r) {
    return (uint32_t)(atomic_load_explicit(&r->write, memory_order_seq_cst) -
                      atomic_load_explicit(&r->read, memory_order_seq_cst));
}

static uint32_t space_ready(const shm_ring *r) {
    return r->slot_count - data_ready(r);
}

/* seq is bumped on every change, so a sleeper that read it before the change never sleeps past
 * it (futex's EAGAIN); the system call is made only when the sleeper's batch is complete. */
static void wake_if_sleeping(shm_ring *r, _Atomic uint32_t *seq, _Atomic uint32_t *sleeping,
                             _Atomic uint32_t *want, uint32_t (*ready)(const shm_ring *),
                             uint64_t id) {
    atomic_fetch_add_explicit(seq, 1, memory_order_seq_cst);
    if (atomic_load_explicit(sleeping, memory_order_seq_cst) &&
        ready(r) >= atomic_load_explicit(want, memory_order_relaxed))
        plat_wake(seq, id);
}

void *shm_ring_begin_write(shm_ring *r, void *base) {
    uint64_t w = atomic_load_explicit(&r->write, memory_order_relaxed);
    if (w - r->read_cache >= r->slot_count) {
        r->read_cache = atomic_load_explicit(&r->read, memory_order_acquire);
        if (w - r->read_cache >= r->slot_count)
            return NULL;
    }
    return slot_at(r, base, w);
}

void shm_ring_publish(shm_ring *r) {
    uint64_t w = atomic_load_explicit(&r->write, memory_order_relaxed);
    atomic_store_explicit(&r->write, w + 1, memory_order_release);
    wake_if_sleeping(r, &r->data_seq, &r->consumer_sleeping, &r->consumer_want, data_ready,
                     r->data_wake);
}

const void *shm_ring_begin_read(shm_ring *r, void *base) {
    uint64_t rd = atomic_load_explicit(&r->read, memory_order_relaxed);
    if (rd == r->write_cache) {
        r->write_cache = atomic_load_explicit(&r->write, memory_order_acquire);
        if (rd == r->write_cache)
            return NULL;
    }
    return slot_at(r, base, rd);
}

void shm_ring_release(shm_ring *r) {
    uint64_t rd = atomic_load_explicit(&r->read, memory_order_relaxed);
    atomic_store_explicit(&r->read, rd + 1, memory_order_release);
    wake_if_sleeping(r, &r->space_seq, &r->producer_sleeping, &r->producer_want, space_ready,
                     r->space_wake);
}

uint32_t shm_ring_fill(const shm_ring *r) {
    uint64_t w = atomic_load_explicit(&r->write, memory_order_acquire);
    uint64_t rd = atomic_load_explicit(&r->read, memory_order_acquire);
    return (uint32_t)(w - rd);
}

/* Sleeps on seq until ready() reaches want or the deadline passes. want is stored before the
 * sleeping flag is raised, and the flag before the last check; the other side bumps seq before it
 * reads the flag (and then want), so a wake-up cannot slip between the check and the sleep: at
 * worst the wait returns at once (futex's EAGAIN; an event left set) and checks again. */
static int wait_until(shm_ring *r, _Atomic uint32_t *seq, _Atomic uint32_t *sleeping,
                      _Atomic uint32_t *want_word, uint64_t wake,
                      uint32_t (*ready)(const shm_ring *), uint32_t want, uint64_t timeout_ns) {
    want = want < 1 ? 1 : want > r->slot_count ? r->slot_count : want;
    uint64_t deadline = farm_now_ns() + timeout_ns;
    atomic_store_explicit(want_word, want, memory_order_relaxed);
    for (;;) {
        if (ready(r) >= want)
            return 1;
        uint32_t s = atomic_load_explicit(seq, memory_order_seq_cst);
        atomic_store_explicit(sleeping, 1, memory_order_seq_cst);
        if (ready(r) >= want) {
            atomic_store_explicit(sleeping, 0, memory_order_relaxed);
            return 1;
        }
        uint64_t now = farm_now_ns();
        if (now >= deadline) {
            atomic_store_explicit(sleeping, 0, memory_order_relaxed);
            return 0;
        }
        plat_wait(seq, s, wake, deadline - now);
        atomic_store_explicit(sleeping, 0, memory_order_relaxed);
    }
}

int shm_ring_wait_space(shm_ring *r, uint32_t want, uint64_t timeout_ns) {
    return wait_until(r, &r->space_seq, &r->producer_sleeping, &r->producer_want, r->space_wake,
                      space_ready, want, timeout_ns);
}

int shm_ring_wait_data(shm_ring *r, uint32_t want, uint64_t timeout_ns) {
    return wait_until(r, &r->data_seq, &r->consumer_sleeping, &r->consumer_want, r->data_wake,
                      data_ready, want, timeout_ns);
}

void shm_ring_wake(shm_ring *r) {
    atomic_fetch_add_explicit(&r->space_seq, 1, memory_order_seq_cst);
    atomic_fetch_add_explicit(&r->data_seq, 1, memory_order_seq_cst);
    plat_wake(&r->space_seq, r->space_wake);
    plat_wake(&r->data_seq, r->data_wake);
}

int shm_cmd_push(shm_worker *w, void *base, const shm_cmd *cmd) {
    void *slot = shm_ring_begin_write(&w->cmds, base);
    if (slot == NULL)
        return 0;
    memcpy(slot, cmd, sizeof *cmd);
    shm_ring_publish(&w->cmds);
    return 1;
}

int shm_cmd_peek(shm_worker *w, void *base, uint32_t i, shm_cmd *cmd) {
    shm_ring *r = &w->cmds;
    uint64_t rd = atomic_load_explicit(&r->read, memory_order_relaxed) + i;
    if (rd >= r->write_cache) {
        r->write_cache = atomic_load_explicit(&r->write, memory_order_acquire);
        if (rd >= r->write_cache)
            return 0;
    }
    memcpy(cmd, slot_at(r, base, rd), sizeof *cmd);
    return 1;
}

void shm_cmd_release(shm_worker *w, uint32_t n) {
    if (n == 0)
        return;
    shm_ring *r = &w->cmds;
    uint64_t rd = atomic_load_explicit(&r->read, memory_order_relaxed);
    atomic_store_explicit(&r->read, rd + n, memory_order_release);
    wake_if_sleeping(r, &r->space_seq, &r->producer_sleeping, &r->producer_want, space_ready,
                     r->space_wake);
}

float *shm_values_reserve(shm_worker *w, void *base, uint32_t n, uint64_t *at) {
    shm_values *v = &w->values;
    uint64_t pos = atomic_load_explicit(&v->write, memory_order_relaxed);
    uint64_t read = atomic_load_explicit(&v->read, memory_order_acquire);
    if (pos % v->capacity + n > v->capacity) /* never wrap inside a command's values */
        pos += v->capacity - pos % v->capacity;
    if (n > v->capacity || pos + n - read > v->capacity)
        return NULL;
    *at = pos;
    return (float *)(void *)((char *)base + v->data_offset) + pos % v->capacity;
}

void shm_values_commit(shm_worker *w, uint64_t end) {
    atomic_store_explicit(&w->values.write, end, memory_order_release);
}

const float *shm_values_at(const shm_worker *w, const void *base, uint64_t at) {
    return (const float *)(const void *)((const char *)base + w->values.data_offset) +
           at % w->values.capacity;
}

void *shm_snapshot_data(const shm_region *r, const shm_worker *w, uint32_t i) {
    return (char *)r->base + w->snap[i].data_offset;
}

int shm_cmd_pop(shm_worker *w, void *base, shm_cmd *cmd) {
    const void *slot = shm_ring_begin_read(&w->cmds, base);
    if (slot == NULL)
        return 0;
    memcpy(cmd, slot, sizeof *cmd);
    shm_ring_release(&w->cmds);
    return 1;
}

/* ---- callback duration histogram ---- */

uint32_t shm_cb_bucket(uint64_t ns) {
    uint64_t us = ns / 1000u;
    if (us < 256)
        return (uint32_t)us;
    uint64_t b = 256 + (us - 256) / 64;
    return b < SHM_CB_BUCKETS ? (uint32_t)b : SHM_CB_BUCKETS - 1;
}

uint64_t shm_cb_bucket_upper_ns(uint32_t b) {
    if (b < 256)
        return (uint64_t)(b + 1) * 1000u;
    return (256u + (uint64_t)(b - 255) * 64u) * 1000u;
}

uint64_t shm_cb_percentile_ns(const shm_stream_counters *s, double pct) {
    uint64_t total = 0;
    for (uint32_t b = 0; b < SHM_CB_BUCKETS; b++)
        total += atomic_load_explicit(&s->cb_hist[b], memory_order_relaxed);
    if (total == 0)
        return 0;
    uint64_t want = (uint64_t)((double)total * pct / 100.0 + 0.5), seen = 0;
    if (want == 0)
        want = 1;
    for (uint32_t b = 0; b < SHM_CB_BUCKETS; b++) {
        seen += atomic_load_explicit(&s->cb_hist[b], memory_order_relaxed);
        if (seen >= want)
            return shm_cb_bucket_upper_ns(b);
    }
    return shm_cb_bucket_upper_ns(SHM_CB_BUCKETS - 1);
}

/* ---- the coordinator's side: a worker ---- */

void shm_worker_voices(const shm_region *r, uint32_t k, uint32_t *first, uint32_t *count) {
    const shm_worker *w = shm_worker_at(r, k);
    *first = w->voice_first;
    *count = w->voice_count;
}

void shm_worker_stats_read(const shm_region *r, uint32_t k, shm_worker_stats *out) {
    shm_worker *w = shm_worker_at(r, k);
    out->state = atomic_load_explicit(&w->state, memory_order_acquire);
    out->pid = atomic_load(&w->pid);
    out->cpu = atomic_load(&w->cpu);
    out->voice_first = w->voice_first;
    out->voice_count = w->voice_count;
    out->voices_playing = atomic_load(&w->voices_playing);
    out->mem_locked = atomic_load(&w->mem_locked);
    out->restarts = atomic_load(&w->restarts);
    out->blocks_rendered = atomic_load(&w->blocks_rendered);
    out->render_ns_last = atomic_load_explicit(&w->render_ns_last, memory_order_relaxed);
    out->render_ns_max = atomic_load(&w->render_ns_max);
    out->render_ns_total = atomic_load_explicit(&w->render_ns_total, memory_order_relaxed);
    out->last_cmd_id = atomic_load(&w->last_cmd_id);
    out->last_cmd_block = atomic_load(&w->last_cmd_block);
    out->late_blocks = atomic_load(&w->late_blocks);
    out->min_fill = atomic_load(&w->min_fill);
    out->ring_blocks = w->audio.slot_count;
    out->ring_fill = shm_ring_fill(&w->audio);
    out->ring_read = atomic_load(&w->audio.read);
    out->ring_write = atomic_load(&w->audio.write);
}

void shm_worker_set_state(shm_region *r, uint32_t k, shm_worker_state state) {
    atomic_store(&shm_worker_at(r, k)->state, (uint32_t)state);
}

void shm_worker_set_pid(shm_region *r, uint32_t k, long pid) {
    atomic_store(&shm_worker_at(r, k)->pid, (int32_t)pid);
}

uint32_t shm_worker_add_restart(shm_region *r, uint32_t k) {
    return atomic_fetch_add(&shm_worker_at(r, k)->restarts, 1) + 1;
}

const float *shm_audio_peek(shm_region *r, uint32_t k) {
    return shm_ring_begin_read(&shm_worker_at(r, k)->audio, r->base);
}

void shm_audio_release(shm_region *r, uint32_t k) {
    shm_ring_release(&shm_worker_at(r, k)->audio);
}

int shm_audio_wait(shm_region *r, uint32_t k, uint32_t want, uint64_t timeout_ns) {
    return shm_ring_wait_data(&shm_worker_at(r, k)->audio, want, timeout_ns);
}

void shm_worker_wake(shm_region *r, uint32_t k) {
    shm_ring_wake(&shm_worker_at(r, k)->audio);
}

/* ---- the coordinator's side: commands ---- */

/* A worker's ring index i plays in stream block i + late: each late block put its ring one
 * behind the stream. */
uint64_t shm_worker_next_block(const shm_region *r, uint32_t k) {
    shm_worker *w = shm_worker_at(r, k);
    return atomic_load(&w->audio.write) + 1 + atomic_load(&w->late_blocks);
}

int shm_cmd_room(const shm_region *r, uint32_t k, uint32_t cmds, uint64_t floats) {
    shm_worker *w = shm_worker_at(r, k);
    uint64_t used = atomic_load(&w->values.write) - atomic_load(&w->values.read);
    /* 2x: a command's values never wrap, so each may skip up to its own size */
    return shm_ring_fill(&w->cmds) + cmds <= w->cmds.slot_count &&
           used + 2 * floats <= w->values.capacity;
}

uint32_t shm_cmd_waiting(const shm_region *r, uint32_t k) {
    return shm_ring_fill(&shm_worker_at(r, k)->cmds);
}

/* Worker w's voices among c's, as [lo, hi): 0 when none. */
static int share_of(const shm_worker *w, const shm_change *c, uint64_t *lo, uint64_t *hi) {
    uint64_t a = c->first, b = (uint64_t)c->first + c->count;
    uint64_t wa = w->voice_first, wb = (uint64_t)w->voice_first + w->voice_count;
    *lo = a > wa ? a : wa;
    *hi = b < wb ? b : wb;
    return *lo < *hi;
}

int shm_cmd_send(shm_region *r, uint32_t k, const shm_change *c, uint64_t stream_block) {
    shm_worker *w = shm_worker_at(r, k);
    uint64_t lo, hi;
    if (!share_of(w, c, &lo, &hi))
        return 0;
    uint64_t late = atomic_load(&w->late_blocks), write = atomic_load(&w->audio.write);
    shm_cmd cmd = {.op = (uint32_t)c->op,
                   .first = c->first,
                   .count = c->count,
                   .ramp_frames = c->ramp_frames,
                   .form = SHM_FORM_ONE,
                   /* in the worker's own blocks: each late block put its ring one behind */
                   .at_block = stream_block > late + write ? stream_block - late : write + 1,
                   .value = c->value,
                   .values_end = atomic_load(&w->values.write),
                   .id = c->id};
    if (c->fill != NULL) {
        uint64_t at;
        float *dst = shm_values_reserve(w, r->base, (uint32_t)(hi - lo), &at);
        if (dst == NULL || shm_ring_fill(&w->cmds) >= w->cmds.slot_count)
            return 0;
        c->fill(c->fill_arg, (uint32_t)(lo - c->first), (uint32_t)(hi - lo), dst);
        cmd.form = SHM_FORM_VALUES;
        cmd.values_at = at;
        cmd.values_end = at + (hi - lo);
        shm_values_commit(w, cmd.values_end);
    }
    return shm_cmd_push(w, r->base, &cmd);
}

/* ---- the coordinator's side: the stream ---- */

void shm_stream_stats_read(const shm_region *r, shm_stream_stats *out) {
    const shm_stream_counters *s = &shm_header_of(r)->stream;
    out->callbacks = atomic_load(&s->callbacks);
    out->frames = atomic_load(&s->frames);
    out->underflows = atomic_load(&s->underflows);
    out->clipped = atomic_load(&s->clipped);
    out->late_blocks = atomic_load(&s->late_blocks);
    out->record_dropped = atomic_load(&s->record_dropped);
    out->cb_ns_last = atomic_load(&s->cb_ns_last);
    out->cb_ns_max = atomic_load(&s->cb_ns_max);
    out->cb_ns_median = shm_cb_percentile_ns(s, 50);
    out->cb_ns_p99 = shm_cb_percentile_ns(s, 99);
    out->cpu_load = atomic_load(&s->cpu_load_permille) / 1000.0;
    for (uint32_t i = 0; i < SHM_UNDERFLOWS_KEPT; i++)
        out->underflow_at[i] = atomic_load(&s->underflow_at[i]);
}

uint64_t shm_stream_frames(const shm_region *r) {
    return atomic_load(&shm_header_of(r)->stream.frames);
}

void shm_stream_set_cpu_load(shm_region *r, double load) {
    atomic_store(&shm_header_of(r)->stream.cpu_load_permille, (uint32_t)(load * 1000));
}

/* ---- worker load ---- */

double shm_worker_load(const shm_worker_stats *s, double block_seconds, int peak) {
    uint64_t ns = peak ? s->render_ns_max : s->render_ns_last;
    return (double)ns * 1e-9 / block_seconds;
}

double shm_worker_load_average(const shm_worker_stats *s, double block_seconds) {
    double busy = (double)s->render_ns_total * 1e-9;
    return s->blocks_rendered ? busy / ((double)s->blocks_rendered * block_seconds) : 0;
}
