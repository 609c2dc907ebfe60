/* supervisor — the coordinator's side of the worker processes: creates the shared mapping,
 * starts one farm-worker per worker with posix_spawn, watches them, and stops them.
 *
 * Contract
 * - farm_procs_start creates the mapping from cfg, shares the voices out in order (the first
 *   total % workers workers take one more), starts every worker pinned round-robin over the
 *   usable CPUs, in its own process group, with exactly one inherited descriptor (the mapping),
 *   and waits (bounded) until each is RUNNING. On failure everything started is stopped again and
 *   nothing is left: FARM_EUSAGE for a worker that cannot start (the message names it), FARM_EFAIL
 *   when interrupted (farm_stop_signal) or when the mapping cannot be made.
 * - farm-worker lives beside farm; $FARM_WORKER overrides the path (tests, installs elsewhere).
 * - Main thread only; nothing here is for the real-time path. The struct is read-only outside.
 * - Errors as everywhere in farm (base.h).
 */
#ifndef FARM_SUPERVISOR_H
#define FARM_SUPERVISOR_H

#include <sys/types.h>

#include "shm.h"

typedef struct farm_procs {
    shm_region region;
    uint32_t count;
    pid_t pid[SHM_MAX_WORKERS];
    int reaped[SHM_MAX_WORKERS];
} farm_procs;

int farm_procs_start(farm_procs *p, const shm_config *cfg);
/* Asks every worker to quit, waits a moment, kills what is left, reaps all, unmaps. Safe to
 * call twice. */
void farm_procs_stop(farm_procs *p);
/* FARM_OK while every worker lives or finished its block_limit; otherwise FARM_EFAIL naming the
 * first that died, and how. */
int farm_procs_check(farm_procs *p);
/* 1 while worker k has not been seen to exit. */
int farm_procs_alive(const farm_procs *p, uint32_t k);

/* The CPUs this process may use (at least 1). */
uint32_t farm_usable_cpus(void);

#endif
