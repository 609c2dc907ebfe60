/* supervisor — the coordinator's side of the worker processes: creates the shared mapping,
 * starts one farm-worker per worker through plat_spawn, watches them, replaces the ones that
 * die or hang, and stops them.
 *
 * Contract
 * - farm_procs_start creates the mapping from cfg, shares the voices out in order (the first
 *   total % workers workers take one more), chooses the kernel every worker renders with
 *   (dsp_isa_for_bank, once, for the largest worker's bank), places the workers (placement.h: by
 *   the machine's topology, or worker K on the K-th CPU of cpus, a --cpus list, with a warning
 *   when the list is shorter), starts every worker pinned to its CPU, in its own process group,
 *   with exactly one inherited descriptor (the mapping), and waits (bounded) until each is
 *   RUNNING. On failure everything started is stopped again and nothing is left: FARM_EUSAGE for
 *   a --cpus list naming a CPU this process may not use (before anything starts) or a worker
 *   that cannot start (the message names it), FARM_EFAIL when interrupted (farm_stop_signal) or
 *   when the mapping cannot be made.
 * - Then a thread of its own watches them (plat_wait_procs: one pidfd, or process handle, per
 *   worker, so a death is seen within milliseconds) and heals: a worker that dies, or that
 * publishes no block for heal.watchdog_s while its ring has room, is killed and replaced by a new
 * process on the same core, at the same priority, that continues from the snapshot of its voices
 * for the next block its ring needs (shm.h). Each fault is one line on stderr: which worker, how it
 * died, how many blocks its voices missed. A worker that dies more than heal.max_restarts times
 * within heal.restart_window_s is left dead, with a warning; its voices are silent.
 * - farm-worker lives beside farm; $FARM_WORKER overrides the path (tests, installs elsewhere).
 * - Main thread: start, stop, set_priority, check. Any thread: the getters. Nothing here is for
 *   the real-time path. The struct is the supervisor's; read it only through the functions.
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

typedef struct farm_worker_watch {
    plat_proc proc; /* its process: pid, and what plat watches it by */
    int cpu;        /* the core it is started on, -1 unpinned */
    uint64_t deaths[FARM_MAX_RESTARTS_LIMIT + 1]; /* when it died lately (ns), a ring */
    uint32_t death_count;
    uint64_t progress, progress_at; /* blocks_rendered, and when it last moved */
    uint64_t late_at_progress;      /* its late blocks then: a hang's cost counts from there */
    uint64_t waited_at_progress;    /* ns it had spent waiting for a CPU then (schedstat) */
    uint64_t ran_at_progress;       /* ns it had spent on a CPU then */
    int watchdog_killed;
    int prio_set;    /* it has the workers' real-time priority */
    char fault[192]; /* the fault being healed, reported when it is over */
    uint64_t late_at_fault, resume_block;
    uint64_t died_at, rendering_at; /* when it died, and when its replacement first rendered */
} farm_worker_watch;

typedef struct farm_procs {
    shm_region region;
    uint32_t count;
    farm_heal_desc heal;
    char path[PLAT_PATH_MAX];
    _Atomic int health[SHM_MAX_WORKERS];
    _Atomic int stalled[SHM_MAX_WORKERS]; /* alive, room in its ring, no block lately */
    _Atomic uint64_t blocks_missed[SHM_MAX_WORKERS];
    _Atomic int rt_priority;                  /* SCHED_FIFO priority for workers, 0 normal */
    farm_worker_watch watch[SHM_MAX_WORKERS]; /* the supervisor thread's, after start */
    farm_placement placement;                 /* where the workers run; read-only after start */
    pthread_t thread;
    int thread_started;
    _Atomic int stopping;
    plat_handle wake; /* plat_notifier_open's: wakes the thread to stop */
} farm_procs;

/* cpus: a --cpus list, or NULL to place by topology. */
int farm_procs_start(farm_procs *p, const shm_config *cfg, const farm_heal_desc *heal,
                     const char *cpus);
/* Stops healing, asks every worker to quit, waits a moment, kills what is left, reaps all,
 * unmaps. Safe to call twice. */
void farm_procs_stop(farm_procs *p);
/* FARM_OK while every worker plays, is being replaced or finished its block_limit; FARM_EFAIL
 * naming a worker that was left dead. */
int farm_procs_check(farm_procs *p);
/* Puts every worker, and every replacement from now on, at SCHED_FIFO prio (0: normal).
 * Returns how many workers refused. */
uint32_t farm_procs_set_priority(farm_procs *p, int prio);

farm_worker_health farm_procs_health(const farm_procs *p, uint32_t k);
/* 1 while worker k's process is alive and not left dead (it may be a replacement). */
int farm_procs_alive(const farm_procs *p, uint32_t k);
/* 1 while worker k is alive, has room in its ring, and has published nothing for a while. */
int farm_procs_stalled(const farm_procs *p, uint32_t k);
uint32_t farm_procs_restarts(const farm_procs *p, uint32_t k);
uint64_t farm_procs_blocks_missed(const farm_procs *p, uint32_t k);

/* Where the workers run (any thread, after start). */
const farm_placement *farm_procs_placement(const farm_procs *p);

/* The CPUs this process may use (at least 1). */
uint32_t farm_usable_cpus(void);

#endif
