/* supervisor — the coordinator's side of the worker processes: starts one farm-worker per worker
 * of the shared mapping through plat_spawn, watches them, replaces the ones that die or hang,
 * and stops them.
 *
 * Contract
 * - The coordinator owns the mapping: farm_procs_prepare fills in the snapshot size and chooses
 *   the kernel every worker renders with (dsp_isa_for_bank, once, for the largest worker's
 *   bank), the coordinator creates the mapping from that configuration (shm_create, which shares
 *   the voices out), hands it to farm_procs_start, and closes it after farm_procs_stop.
 * - farm_procs_start places the workers (placement.h: by
 *   the machine's topology, or worker K on the K-th CPU of cpus, a --cpus list, with a warning
 *   when the list is shorter), starts every worker pinned to its CPU, in its own process group,
 *   with exactly one inherited descriptor (the mapping), and waits (bounded) until each is
 *   RUNNING. On failure everything started is stopped again and nothing is left: FARM_EUSAGE for
 *   a --cpus list naming a CPU this process may not use (before anything starts) or a worker
 *   that cannot start (the message names it), FARM_EFAIL when interrupted (farm_stop_signal).
 * - Then a thread of its own watches them (plat_wait_procs: one pidfd, or process handle, per
 *   worker, so a death is seen within milliseconds) and heals: a worker that dies, or that
 * publishes no block for heal.watchdog_s while its ring has room, is killed and replaced by a new
 * process on the same core, at the same priority, that continues from the snapshot of its voices
 * for the next block its ring needs (shm.h). Each fault is one line on stderr: which worker, how it
 * died, how many blocks its voices missed. A worker that dies more than heal.max_restarts times
 * within heal.restart_window_s is left dead, with a warning; its voices are silent.
 * - farm-worker lives beside farm; $FARM_WORKER overrides the path (tests, installs elsewhere).
 * - Main thread: start, stop, set_priority, check. Any thread: the getters. Nothing here is for
 *   the real-time path. The struct is opaque: the functions are its only readers.
 * - Errors as everywhere in farm (base.h).
 */
#ifndef FARM_SUPERVISOR_H
#define FARM_SUPERVISOR_H

#include <pthread.h>
#include <stdatomic.h>

#include "placement.h"
#include "plat.h"
#include "shm.h"

#define FARM_MAX_RESTARTS_LIMIT 64

typedef struct farm_heal_desc {
    double watchdog_s;       /* a worker with room in its ring and no block for this long is
                                killed and replaced; 0: no watchdog */
    uint32_t max_restarts;   /* at most this many replacements within restart_window_s */
    double restart_window_s; /* 0: 60 s */
    double block_seconds;    /* the stream's block period, for reports; 0: from cfg */
    int render;              /* offline: the coordinator waits, so no block is ever missed */
} farm_heal_desc;

typedef enum farm_worker_health {
    FARM_WORKER_UP,        /* its process runs */
    FARM_WORKER_REPLACING, /* died; a replacement is starting or not yet heard */
    FARM_WORKER_GIVEN_UP,  /* died too often: left dead, its voices silent */
    FARM_WORKER_DONE,      /* finished its block_limit (render) */
} farm_worker_health;

/* The supervisor's state: opaque, read through the functions below. */
typedef struct farm_procs farm_procs;

/* What the supervisor decides in a configuration before the coordinator creates the mapping
 * from it: the room for a snapshot of the largest worker's voices, and the kernel. */
void farm_procs_prepare(shm_config *cfg);
/* Starts the workers of region (made by shm_create from a prepared configuration; it outlives
 * the supervisor, and the coordinator closes it after farm_procs_stop). cpus: a --cpus list, or
 * NULL to place by topology. */
int farm_procs_start(farm_procs **out, shm_region *region, const farm_heal_desc *heal,
                     const char *cpus);
/* Stops healing, asks every worker to quit, waits a moment, kills what is left, reaps all, and
 * frees p. NULL is nothing to stop. */
void farm_procs_stop(farm_procs *p);
/* FARM_OK while every worker plays, is being replaced or finished its block_limit; FARM_EFAIL
 * naming a worker that was left dead. */
int farm_procs_check(farm_procs *p);
/* Puts every worker, and every replacement from now on, at SCHED_FIFO prio (0: normal).
 * Returns how many workers refused. */
uint32_t farm_procs_set_priority(farm_procs *p, int prio);

/* The workers started: all of the configuration's once farm_procs_start succeeded. */
uint32_t farm_procs_count(const farm_procs *p);
/* Worker k's process as the supervisor started it (its latest replacement's). */
long farm_procs_pid(const farm_procs *p, uint32_t k);
farm_worker_health farm_procs_health(const farm_procs *p, uint32_t k);
/* 1 while worker k is alive, has room in its ring, and has published nothing for a while. */
int farm_procs_stalled(const farm_procs *p, uint32_t k);
uint32_t farm_procs_restarts(const farm_procs *p, uint32_t k);
uint64_t farm_procs_blocks_missed(const farm_procs *p, uint32_t k);

/* Where the workers run (any thread, after start). */
const farm_placement *farm_procs_placement(const farm_procs *p);

/* The CPUs this process may use (at least 1). */
uint32_t farm_usable_cpus(void);

#endif
