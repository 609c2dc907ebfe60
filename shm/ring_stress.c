/* The ring under ThreadSanitizer. Criterion cannot start under TSan ("could not initialize
 * inheritable arena"), so this is a plain program: a producer thread and a consumer thread
 * pass blocks through the audio ring and commands through the command ring, each side checking
 * every item; exit status 0 only when nothing was lost, duplicated or reordered. Also run in
 * the ordinary builds. An argument B > 1 makes both sides sleep until B slots are ready, as
 * farm render does: a wake-up lost to the batching stalls a side for a second, which fails. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shm_layout.h"

#define BLOCKS 400000u

static shm_region region;
static uint32_t batch = 1;

static void *produce(void *arg) {
    (void)arg;
    shm_worker *w = shm_worker_at(&region, 0);
    const uint32_t floats = w->audio.slot_bytes / sizeof(float);
    for (uint32_t i = 0; i < BLOCKS;) {
        float *slot = shm_ring_begin_write(&w->audio, region.base);
        if (slot == NULL) {
            if (!shm_ring_wait_space(&w->audio, batch, 1000000000u)) {
                fprintf(stderr, "ring_stress: no space for a second at %u\n", i);
                exit(1);
            }
            continue;
        }
        for (uint32_t k = 0; k < floats; k++)
            slot[k] = (float)(i % 65536u) + (float)k * 0.5f;
        shm_ring_publish(&w->audio);
        /* and read the coordinator's commands, as a worker does at each block */
        shm_cmd c;
        static uint64_t next_cmd;
        while (shm_cmd_pop(w, region.base, &c)) {
            if (c.id != next_cmd++) {
                fprintf(stderr, "ring_stress: command %llu arrived as %llu\n",
                        (unsigned long long)next_cmd - 1, (unsigned long long)c.id);
                exit(1);
            }
        }
        i++;
    }
    return NULL;
}

int main(int argc, char **argv) {
    if (argc > 1)
        batch = (uint32_t)strtoul(argv[1], NULL, 10);
    shm_config cfg = {.workers = 1,
                      .channels = 2,
                      .block_frames = 64,
                      .ring_blocks = batch > 1 ? 2 * batch : 4,
                      .sample_rate = 48000};
    int rv = shm_create(&cfg, &region);
    if (rv != 0) {
        fprintf(stderr, "ring_stress: shm_create: %s\n", strerror(-rv));
        return 1;
    }
    shm_worker *w = shm_worker_at(&region, 0);
    pthread_t t;
    pthread_create(&t, NULL, produce, NULL);
    const uint32_t floats = w->audio.slot_bytes / sizeof(float);
    uint64_t cmd_id = 0;
    int failed = 0;
    for (uint32_t i = 0; i < BLOCKS && !failed;) {
        const float *slot = shm_ring_begin_read(&w->audio, region.base);
        if (slot == NULL) {
            uint32_t want = BLOCKS - i < batch ? BLOCKS - i : batch; /* the last ones */
            if (!shm_ring_wait_data(&w->audio, want, 1000000000u)) {
                fprintf(stderr, "ring_stress: no block for a second at %u\n", i);
                failed = 1;
            }
            continue;
        }
        for (uint32_t k = 0; k < floats; k++)
            if (slot[k] != (float)(i % 65536u) + (float)k * 0.5f) {
                fprintf(stderr, "ring_stress: block %u sample %u is %g\n", i, k, slot[k]);
                failed = 1;
                break;
            }
        shm_ring_release(&w->audio);
        shm_cmd c = {.op = SHM_OP_SET_AMP, .id = cmd_id};
        if (shm_cmd_push(w, region.base, &c))
            cmd_id++;
        i++;
    }
    pthread_join(t, NULL);
    shm_close(&region);
    printf("%d passed, %d failed\n", failed ? 0 : 1, failed ? 1 : 0);
    return failed;
}
