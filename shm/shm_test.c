/* The rings and the shared region: between two real processes (fork) and, for TSan, two
 * threads; over millions of blocks nothing may be lost, duplicated or reordered. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "shm_layout.h"

#define SLOT_FLOATS 16
#define SLOTS 8

typedef struct standalone {
    void *base;
    size_t size;
    shm_ring *ring;
} standalone;

static void standalone_make(standalone *s) {
    s->size = shm_ring_bytes(SLOTS, SLOT_FLOATS * sizeof(float));
    s->base = mmap(NULL, s->size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    cr_assert_neq(s->base, MAP_FAILED);
    s->ring = s->base;
    size_t header = (sizeof(shm_ring) + SHM_CACHE_LINE - 1) / SHM_CACHE_LINE * SHM_CACHE_LINE;
    shm_ring_init(s->ring, header, SLOTS, SLOT_FLOATS * sizeof(float));
}

/* Each block carries its sequence number and a pattern derived from it. */
static void fill(float *slot, uint64_t seq) {
    memcpy(slot, &seq, sizeof seq);
    for (int i = 2; i < SLOT_FLOATS; i++)
        slot[i] = (float)((seq * 31 + (uint64_t)i) % 1000003);
}

static int check(const float *slot, uint64_t expect) {
    uint64_t seq;
    memcpy(&seq, slot, sizeof seq);
    if (seq != expect)
        return 0;
    for (int i = 2; i < SLOT_FLOATS; i++)
        if (slot[i] != (float)((seq * 31 + (uint64_t)i) % 1000003))
            return 0;
    return 1;
}

static const uint64_t one_second = 1000000000ull;

/* Returns the number of waits that timed out (a lost wake-up shows as one). */
static int produce(standalone *s, uint64_t n) {
    int timeouts = 0;
    for (uint64_t i = 0; i < n;) {
        float *slot = shm_ring_begin_write(s->ring, s->base);
        if (slot == NULL) {
            if (!shm_ring_wait_space(s->ring, 1, one_second))
                timeouts++;
            continue;
        }
        fill(slot, i);
        shm_ring_publish(s->ring);
        i++;
    }
    return timeouts;
}

typedef struct consumed {
    uint64_t ok, bad_at;
    int timeouts;
} consumed;

static consumed consume(standalone *s, uint64_t n) {
    consumed c = {0, UINT64_MAX, 0};
    while (c.ok < n) {
        const float *slot = shm_ring_begin_read(s->ring, s->base);
        if (slot == NULL) {
            if (!shm_ring_wait_data(s->ring, 1, one_second) && ++c.timeouts > 5)
                break;
            continue;
        }
        if (!check(slot, c.ok)) {
            c.bad_at = c.ok;
            break;
        }
        shm_ring_release(s->ring);
        c.ok++;
    }
    return c;
}

Test(ring, two_processes_millions_of_blocks_nothing_lost_order_kept, .timeout = 120) {
    standalone s;
    standalone_make(&s);
    const uint64_t n = 3000000;
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0)
        _exit(produce(&s, n) == 0 ? 0 : 3);
    consumed c = consume(&s, n);
    int status;
    waitpid(pid, &status, 0);
    cr_assert_eq(c.bad_at, UINT64_MAX, "block %llu arrived wrong", (unsigned long long)c.bad_at);
    cr_assert_eq(c.ok, n, "received %llu of %llu blocks", (unsigned long long)c.ok,
                 (unsigned long long)n);
    cr_assert_eq(c.timeouts, 0, "the consumer slept through a publish");
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
              "the producer slept through a release");
    cr_assert_eq(shm_ring_fill(s.ring), 0);
    munmap(s.base, s.size);
}

static void *producer_thread(void *arg) {
    return (void *)(intptr_t)produce(arg, 300000);
}

Test(ring, two_threads_nothing_lost_order_kept, .timeout = 60) {
    standalone s;
    standalone_make(&s);
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, producer_thread, &s), 0);
    consumed c = consume(&s, 300000);
    void *timeouts;
    pthread_join(t, &timeouts);
    cr_assert_eq(c.ok, 300000);
    cr_assert_eq(c.timeouts, 0);
    cr_assert_eq((intptr_t)timeouts, 0);
    munmap(s.base, s.size);
}

Test(ring, full_and_empty_are_refused_without_blocking) {
    standalone s;
    standalone_make(&s);
    cr_assert_null(shm_ring_begin_read(s.ring, s.base));
    for (uint64_t i = 0; i < SLOTS; i++) {
        float *slot = shm_ring_begin_write(s.ring, s.base);
        cr_assert_not_null(slot, "slot %llu", (unsigned long long)i);
        fill(slot, i);
        shm_ring_publish(s.ring);
    }
    cr_assert_null(shm_ring_begin_write(s.ring, s.base));
    cr_assert_eq(shm_ring_fill(s.ring), SLOTS);
    uint64_t t0 = farm_now_ns();
    cr_assert_eq(shm_ring_wait_space(s.ring, 1, 20000000), 0, "no space appears");
    uint64_t waited = farm_now_ns() - t0;
    cr_assert_geq(waited, 19000000ull, "the wait keeps its deadline (%llu ns)",
                  (unsigned long long)waited);
    /* the wall clock is what a deadline is about; 100 times it catches a wait that ignored it,
     * not a machine that ran the test late */
    cr_assert_lt(waited, 2000000000ull, "and does not sleep far past it");
    cr_assert(check(shm_ring_begin_read(s.ring, s.base), 0));
    shm_ring_release(s.ring);
    cr_assert_not_null(shm_ring_begin_write(s.ring, s.base));
    munmap(s.base, s.size);
}

static int count_dev_shm(void) {
    int n = 0;
    DIR *d = opendir("/dev/shm");
    if (d == NULL)
        return 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL)
        if (strstr(de->d_name, "farm") != NULL)
            n++;
    closedir(d);
    return n;
}

static shm_config small_config(uint32_t workers) {
    shm_config c = {.workers = workers,
                    .channels = 2,
                    .block_frames = 256,
                    .ring_blocks = 4,
                    .sample_rate = 48000};
    return c;
}

Test(region, layout_is_aligned_disjoint_and_leaves_nothing_in_dev_shm) {
    int before = count_dev_shm();
    shm_region r;
    shm_config cfg = small_config(5);
    cr_assert_eq(shm_create(&cfg, &r), 0);
    cr_assert_eq(count_dev_shm(), before, "an anonymous memfd, not a name in /dev/shm");
    char *lo = r.base, *hi = lo + r.size;
    uint64_t prev_end = 0;
    for (uint32_t i = 0; i < 5; i++) {
        shm_worker *w = shm_worker_at(&r, i);
        cr_assert_eq((uintptr_t)w % SHM_CACHE_LINE, 0);
        cr_assert_eq((uintptr_t)&w->audio.read - (uintptr_t)&w->audio.write, SHM_CACHE_LINE,
                     "producer and consumer counters on separate lines");
        shm_ring *rings[2] = {&w->audio, &w->cmds};
        for (int k = 0; k < 2; k++) {
            uint64_t start = rings[k]->slots_offset;
            uint64_t end = start + (uint64_t)rings[k]->slot_count * rings[k]->slot_bytes;
            cr_assert_eq(start % SHM_CACHE_LINE, 0);
            cr_assert_geq(start, prev_end, "rings overlap");
            cr_assert_leq(lo + end, hi, "ring past the end of the mapping");
            prev_end = end;
        }
    }
    cr_assert_eq(shm_worker_at(&r, 0)->audio.slot_bytes % SHM_CACHE_LINE, 0);
    shm_close(&r);
}

Test(region, attach_sees_the_same_memory_and_rejects_strangers) {
    shm_region r, a;
    shm_config cfg = small_config(2);
    cr_assert_eq(shm_create(&cfg, &r), 0);
    cr_assert_eq(shm_attach(r.handle, &a), 0);
    cr_assert_eq(shm_header_of(&a)->config.workers, 2);
    shm_worker_at(&r, 1)->voice_count = 1234;
    cr_assert_eq(shm_worker_at(&a, 1)->voice_count, 1234);
    munmap(a.base, a.size);

    int fd = memfd_create("not-farm", 0);
    cr_assert_eq(ftruncate(fd, 1 << 20), 0); /* large enough to hold a header */
    cr_assert_eq(shm_attach(fd, &a), FARM_EINVAL);
    close(fd);
    farm_error_clear();
    cr_assert_eq(shm_attach(-1, &a), FARM_ESYS);
    cr_assert_not_null(strstr(farm_error_message(), "fd -1"), "%s", farm_error_message());
    shm_close(&r);
}

Test(region, rejects_bad_configurations) {
    shm_region r;
    shm_config c = small_config(0);
    cr_assert_eq(shm_create(&c, &r), FARM_EINVAL);
    c = small_config(2);
    c.ring_blocks = 3;
    cr_assert_eq(shm_create(&c, &r), FARM_EINVAL, "ring sizes are powers of two");
    c = small_config(SHM_MAX_WORKERS + 1);
    cr_assert_eq(shm_create(&c, &r), FARM_EINVAL);
}

Test(commands, pass_in_order_and_a_full_ring_refuses) {
    shm_region r;
    shm_config cfg = small_config(1);
    cr_assert_eq(shm_create(&cfg, &r), 0);
    shm_worker *w = shm_worker_at(&r, 0);
    uint32_t cap = w->cmds.slot_count;
    for (uint32_t i = 0; i < cap; i++) {
        shm_cmd c = {.op = SHM_OP_SET_FREQ, .first = i, .count = 1, .value = i * 1.5, .id = i};
        cr_assert_eq(shm_cmd_push(w, r.base, &c), 1);
    }
    shm_cmd extra = {.op = SHM_OP_SET_AMP};
    cr_assert_eq(shm_cmd_push(w, r.base, &extra), 0, "a full ring refuses");
    for (uint32_t i = 0; i < cap; i++) {
        shm_cmd c;
        cr_assert_eq(shm_cmd_pop(w, r.base, &c), 1);
        cr_assert_eq(c.id, i);
        cr_assert_eq(c.first, i);
        cr_assert_eq(c.value, i * 1.5);
    }
    shm_cmd c;
    cr_assert_eq(shm_cmd_pop(w, r.base, &c), 0);
    shm_close(&r);
}
