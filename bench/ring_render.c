/* ring_render WORKER WORKERS VOICES BLOCKS ISA OUT.f32 — farm-worker processes started through
 * plat, their rings read and summed in worker order as `farm render` sums them (no gain, no
 * limiter), raw floats written to OUT. The same program on Linux and, built for Windows, under
 * wine (bench/wine_render.sh): how much of a render a system's processes and wake-ups cost, and
 * whether both systems render the same bits. Prints the wall time of the blocks. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dsp.h"
#include "plat.h"
#include "shm.h"

#define FRAMES 256
#define CHANNELS 2

static shm_config config(uint32_t workers, uint32_t voices, uint32_t blocks, const char *isa) {
    shm_config c = {.workers = workers,
                    .channels = CHANNELS,
                    .block_frames = FRAMES,
                    .ring_blocks = 4,
                    .total_voices = voices,
                    .oscillator = SHM_OSC_SINELOOP,
                    .sample_rate = 48000,
                    .freq_min = 400,
                    .freq_max = 800,
                    .feedback = 0.1,
                    .amp = 0.005,
                    .ramp_seconds = 0.005,
                    .seed = 1,
                    .block_limit = blocks};
    c.state_bytes = (uint32_t)dsp_state_bytes((voices + workers - 1) / workers, CHANNELS);
    snprintf(c.isa, sizeof c.isa, "%s", isa);
    return c;
}

static int start(const char *path, shm_region *r, uint32_t k, plat_proc *p) {
    plat_handle inherit[8];
    size_t n = shm_worker_handles(r, k, inherit, 8);
    char fd[24], index[16], parent[24];
    snprintf(fd, sizeof fd, "%ld", (long)plat_child_handle(inherit, 0));
    snprintf(index, sizeof index, "%u", k);
    snprintf(parent, sizeof parent, "%ld", plat_self_pid());
    char *argv[] = {"farm-worker", "--fd", fd, "--index", index, "--parent", parent, NULL};
    return plat_spawn(path, argv, inherit, n, p);
}

/* One block from every worker, summed in worker order into mix. */
static int mix_block(shm_region *r, float *mix) {
    const shm_config *c = shm_config_of(r);
    for (uint32_t k = 0; k < c->workers; k++) {
        const float *slot;
        uint64_t deadline = farm_now_ns() + 10 * FARM_NS_PER_S;
        while ((slot = shm_audio_peek(r, k)) == NULL && farm_now_ns() < deadline)
            shm_audio_wait(r, k, 1, 100 * FARM_NS_PER_MS);
        if (slot == NULL)
            return farm_fail(FARM_EFAIL, "worker %u sent no block for 10 s", k);
        for (uint32_t i = 0; i < FRAMES * CHANNELS; i++)
            mix[i] = k == 0 ? slot[i] : mix[i] + slot[i];
        shm_audio_release(r, k);
    }
    return FARM_OK;
}

static void stop(shm_region *r, plat_proc *procs, uint32_t started) {
    shm_request_quit(r);
    for (uint32_t k = 0; k < started; k++) {
        plat_exit e;
        plat_proc_reap(&procs[k], 1, &e);
        char why[96];
        if (!plat_exit_clean(&e))
            fprintf(stderr, "ring_render: worker %u %s\n", k,
                    plat_exit_describe(&e, why, sizeof why));
        plat_proc_release(&procs[k]);
    }
}

static int render(const char *path, shm_region *r, uint32_t blocks, FILE *out) {
    static plat_proc procs[SHM_MAX_WORKERS];
    static float mix[FRAMES * CHANNELS];
    uint32_t workers = shm_config_of(r)->workers, started = 0;
    int rv = FARM_OK;
    while (started < workers && (rv = start(path, r, started, &procs[started])) == FARM_OK)
        started++;
    uint64_t t0 = farm_now_ns();
    for (uint32_t b = 0; b < blocks && rv == FARM_OK; b++)
        if ((rv = mix_block(r, mix)) == FARM_OK && fwrite(mix, sizeof mix, 1, out) != 1)
            rv = farm_fail(FARM_EFAIL, "cannot write the output");
    double s = (double)(farm_now_ns() - t0) * 1e-9;
    stop(r, procs, started);
    if (rv == FARM_OK)
        printf("%.3f\n", s);
    return rv;
}

int main(int argc, char **argv) {
    uint32_t workers, voices, blocks;
    if (argc != 7) {
        fprintf(stderr, "usage: ring_render WORKER WORKERS VOICES BLOCKS ISA OUT.f32\n");
        return 2;
    }
    int rv = farm_parse_u32("WORKERS", argv[2], 1, SHM_MAX_WORKERS, &workers);
    if (rv == FARM_OK)
        rv = farm_parse_u32("VOICES", argv[3], 1, 1u << 24, &voices);
    if (rv == FARM_OK)
        rv = farm_parse_u32("BLOCKS", argv[4], 1, 1u << 30, &blocks);
    shm_config c;
    shm_region r;
    if (rv == FARM_OK)
        c = config(workers, voices, blocks, argv[5]);
    if (rv == FARM_OK && (rv = shm_create(&c, &r)) == FARM_OK) {
        FILE *out = fopen(argv[6], "wb");
        rv = out ? render(argv[1], &r, blocks, out)
                 : farm_fail(FARM_EUSAGE, "cannot write %s", argv[6]);
        if (out != NULL)
            fclose(out);
        shm_close(&r);
    }
    if (rv != FARM_OK)
        fprintf(stderr, "ring_render: %s\n", farm_error_message());
    return farm_exit_status(rv);
}
