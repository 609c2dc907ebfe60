#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dsp.h"
#include "plat.h"
#include "supervisor.h"

#define MAX_HANDLES 8                         /* the mapping and its wake-ups (plat.h) */
#define START_TIMEOUT_NS (10 * FARM_NS_PER_S) /* a worker that is not running by then failed */
#define STOP_GRACE_NS (2 * FARM_NS_PER_S)     /* then SIGKILL */
/* The watch's pace: a death wakes it at once (pidfd); a hang is seen at this pace. */
#define TICK_MS 10
#define STALLED_BLOCKS 4 /* no block for this many periods with room: "stalled" */
#define DEFAULT_WINDOW_S 60.0

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

struct farm_procs {
    shm_region *region; /* the coordinator's */
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
};

/* farm-worker lives beside farm; FARM_WORKER overrides (tests, installs elsewhere). */
static int worker_path(char *out, size_t size) {
    const char *env = getenv("FARM_WORKER");
    if (env != NULL && env[0] != '\0') {
        snprintf(out, size, "%s", env);
        return FARM_OK;
    }
    char dir[PLAT_PATH_MAX - 32]; /* room for the name after it */
    int rv = plat_exe_dir(dir, sizeof dir);
    if (rv == FARM_OK)
        snprintf(out, size, "%s/farm-worker%s", dir, PLAT_EXE_SUFFIX);
    return rv;
}

/* In its own process group, with exactly the handles of the mapping and its wake-ups (plat.h);
 * the mapping's is the one its command line names. */
static int spawn_one(farm_procs *p, uint32_t i, int cpu, plat_proc *proc) {
    plat_handle inherit[MAX_HANDLES];
    size_t n = shm_worker_handles(p->region, i, inherit, MAX_HANDLES);
    char a_fd[24], a_index[16], a_parent[24], a_cpu[16];
    snprintf(a_fd, sizeof a_fd, "%ld", (long)plat_child_handle(inherit, 0));
    snprintf(a_index, sizeof a_index, "%u", i);
    snprintf(a_parent, sizeof a_parent, "%ld", plat_self_pid());
    snprintf(a_cpu, sizeof a_cpu, "%d", cpu);
    char *argv[] = {"farm-worker", "--fd",   a_fd,    "--index", a_index,
                    "--parent",    a_parent, "--cpu", a_cpu,     NULL};
    if (plat_spawn(p->path, argv, inherit, n, proc) != FARM_OK) {
        char why[256];
        snprintf(why, sizeof why, "%s", farm_error_message());
        farm_error_clear();
        return farm_fail(FARM_EUSAGE, "worker %u cannot start: %s", i, why);
    }
    return FARM_OK;
}

/* Where each worker runs: by the topology, or by the --cpus list. */
static int place_workers(farm_procs *p, uint32_t workers, const char *cpus) {
    static farm_topology topo; /* 16 KB: main thread only */
    int rv = farm_topology_load(&topo, NULL, NULL);
    if (rv != FARM_OK)
        return rv;
    if (cpus == NULL) {
        farm_place_topology(&topo, workers, &p->placement);
        return FARM_OK;
    }
    static int list[FARM_PLACE_MAX_PUS];
    uint32_t n = 0;
    if ((rv = farm_cpu_list_parse("--cpus", cpus, list, FARM_PLACE_MAX_PUS, &n)) != FARM_OK ||
        (rv = farm_place_list(&topo, list, n, workers, &p->placement)) != FARM_OK)
        return rv;
    if (p->placement.cycled > 0)
        fprintf(stderr,
                "farm: warning: --cpus lists %u CPU%s for %u workers: the workers take the list "
                "in turn, so some share a CPU\n",
                n, n == 1 ? "" : "s", workers);
    return FARM_OK;
}

/* Starts worker k's process (the first or a replacement) and notes how to watch it. */
static int launch(farm_procs *p, uint32_t k) {
    farm_worker_watch *x = &p->watch[k];
    shm_worker_set_state(p->region, k, SHM_WORKER_STARTING);
    plat_proc_release(&x->proc);
    int rv = spawn_one(p, k, x->cpu, &x->proc);
    if (rv != FARM_OK)
        return rv;
    shm_worker_set_pid(p->region, k, x->proc.pid);
    plat_proc_cpu_times(&x->proc, &x->ran_at_progress, &x->waited_at_progress);
    shm_worker_stats ws;
    shm_worker_stats_read(p->region, k, &ws);
    x->progress = ws.blocks_rendered;
    x->progress_at = farm_now_ns();
    x->late_at_progress = ws.late_blocks;
    x->watchdog_killed = 0;
    x->prio_set = 0; /* given once it runs: see raise_when_running */
    return FARM_OK;
}

static uint32_t worker_state(const farm_procs *p, uint32_t k) {
    shm_worker_stats ws;
    shm_worker_stats_read(p->region, k, &ws);
    return ws.state;
}

static int wait_running(farm_procs *p) {
    uint64_t deadline = farm_now_ns() + START_TIMEOUT_NS;
    for (uint32_t i = 0; i < p->count; i++) {
        for (;;) {
            uint32_t st = worker_state(p, i);
            /* a very short render: the worker may have rendered all it had to already */
            if (st == SHM_WORKER_RUNNING || st == SHM_WORKER_STOPPED)
                break;
            plat_exit e;
            if (plat_proc_reap(&p->watch[i].proc, 0, &e)) {
                atomic_store(&p->health[i], FARM_WORKER_DONE);
                if (plat_exit_clean(&e) && worker_state(p, i) == SHM_WORKER_STOPPED)
                    break;
                char why[96];
                return farm_fail(FARM_EUSAGE, "worker %u cannot start: it %s", i,
                                 plat_exit_describe(&e, why, sizeof why));
            }
            if (st == SHM_WORKER_FAILED)
                return farm_fail(FARM_EUSAGE, "worker %u cannot start (see its message above)", i);
            if (farm_now_ns() > deadline)
                return farm_fail(FARM_EUSAGE, "worker %u cannot start: not running after %llu s", i,
                                 START_TIMEOUT_NS / FARM_NS_PER_S);
            if (farm_stop_signal)
                return farm_fail(FARM_EFAIL, "interrupted while starting the workers");
            farm_sleep_ns(FARM_NS_PER_MS);
        }
    }
    return FARM_OK;
}

/* The kernel every worker renders with, chosen once here so that every worker and every
 * replacement renders with the same one (a replacement continues its voices exactly): FARM_ISA's
 * (tests, benchmarks; the worker checks it), or the fastest for the largest worker's bank. */
static void choose_isa(shm_config *cfg, uint32_t most) {
    const char *env = getenv("FARM_ISA");
    if (env != NULL && env[0] != '\0') {
        snprintf(cfg->isa, sizeof cfg->isa, "%s", env);
        return;
    }
    dsp_bank_desc d = {.voices = most,
                       .channels = cfg->channels,
                       .sample_rate = cfg->sample_rate,
                       .max_frames = cfg->block_frames};
    snprintf(cfg->isa, sizeof cfg->isa, "%s", dsp_isa_for_bank(&d));
}

static int spawn_all(farm_procs *p, uint32_t workers) {
    for (uint32_t i = 0; i < workers; i++) {
        p->watch[i].cpu = p->placement.cpu[i];
        p->watch[i].proc = (plat_proc){.pid = -1, .watch = PLAT_NO_HANDLE, .stats = PLAT_NO_HANDLE};
        int rv = launch(p, i);
        if (rv != FARM_OK)
            return rv;
        atomic_store(&p->health[i], FARM_WORKER_UP);
        p->count = i + 1;
    }
    return FARM_OK;
}

/* ---- healing: the supervisor's thread ---- */

static double block_seconds(const farm_procs *p) {
    const shm_config *cfg = shm_config_of(p->region);
    return p->heal.block_seconds > 0 ? p->heal.block_seconds
                                     : (double)cfg->block_frames / cfg->sample_rate;
}

/* Deaths within the window, this one included. */
static uint32_t recent_deaths(farm_procs *p, uint32_t k, uint64_t now) {
    farm_worker_watch *x = &p->watch[k];
    const uint32_t ring = FARM_MAX_RESTARTS_LIMIT + 1;
    x->deaths[x->death_count++ % ring] = now;
    uint64_t window = (uint64_t)(p->heal.restart_window_s * (double)FARM_NS_PER_S);
    uint32_t n = 0;
    for (uint32_t i = 0; i < ring && i < x->death_count; i++)
        n += now - x->deaths[i] <= window;
    return n;
}

/* The fault that is being healed is over: one line, with what it cost. */
static void report_fault(farm_procs *p, uint32_t k, const char *how_it_ended) {
    farm_worker_watch *x = &p->watch[k];
    shm_worker_stats ws;
    shm_worker_stats_read(p->region, k, &ws);
    uint64_t late = ws.late_blocks;
    uint64_t missed = late - x->late_at_fault;
    atomic_fetch_add(&p->blocks_missed[k], missed);
    fprintf(stderr, "farm: worker %u %s; %s, its voices missed %llu blocks (%.1f ms)\n", k,
            x->fault, how_it_ended, (unsigned long long)missed,
            1e3 * (double)missed * block_seconds(p));
}

static void replace(farm_procs *p, uint32_t k, uint64_t now) {
    farm_worker_watch *x = &p->watch[k];
    shm_worker_stats ws;
    shm_worker_stats_read(p->region, k, &ws);
    if (recent_deaths(p, k, now) > p->heal.max_restarts) {
        atomic_store(&p->health[k], FARM_WORKER_GIVEN_UP);
        shm_worker_set_state(p->region, k, SHM_WORKER_FAILED);
        if (p->heal.render)
            return; /* the render fails, and says so itself */
        fprintf(stderr,
                "farm: warning: worker %u %s, more than %u times within %g s: left dead, its %u "
                "voices are silent\n",
                k, x->fault, p->heal.max_restarts, p->heal.restart_window_s, ws.voice_count);
        return;
    }
    shm_worker_add_restart(p->region, k);
    x->resume_block = ws.ring_write;
    if (launch(p, k) != FARM_OK) {
        atomic_store(&p->health[k], FARM_WORKER_GIVEN_UP);
        fprintf(stderr, "farm: warning: worker %u %s and cannot be replaced: %s\n", k, x->fault,
                farm_error_message());
        farm_error_clear();
        return;
    }
    atomic_store(&p->health[k], FARM_WORKER_REPLACING);
}

/* Worker k's process has ended as e says. */
static void on_worker_exit(farm_procs *p, uint32_t k, const plat_exit *e) {
    farm_worker_watch *x = &p->watch[k];
    shm_worker_stats ws;
    shm_worker_stats_read(p->region, k, &ws);
    plat_proc_release(&x->proc);
    if (plat_exit_clean(e) && ws.state == SHM_WORKER_STOPPED) {
        atomic_store(&p->health[k], FARM_WORKER_DONE); /* finished its block_limit */
        return;
    }
    if (atomic_load(&p->health[k]) == FARM_WORKER_REPLACING)
        report_fault(p, k, "its replacement died before playing");
    char why[96];
    uint64_t now = farm_now_ns();
    if (x->watchdog_killed)
        snprintf(x->fault, sizeof x->fault,
                 "(pid %ld) published no block for %.2f s: killed by "
                 "the watchdog",
                 x->proc.pid, (double)(now - x->progress_at) * 1e-9);
    else
        snprintf(x->fault, sizeof x->fault, "(pid %ld) %s", x->proc.pid,
                 plat_exit_describe(e, why, sizeof why));
    x->late_at_fault = x->watchdog_killed ? x->late_at_progress : ws.late_blocks;
    x->died_at = now;
    x->rendering_at = 0;
    replace(p, k, now);
}

/* A replacement starts at normal priority: its exec, memory locking and bank take a few
 * milliseconds of the kernel's time, which at real-time priority would compete with the audio
 * threads for nothing. It gets the workers' priority once it renders. */
static void raise_when_running(farm_procs *p, uint32_t k) {
    farm_worker_watch *x = &p->watch[k];
    int prio = atomic_load(&p->rt_priority);
    if (x->prio_set || prio <= 0 || worker_state(p, k) != SHM_WORKER_RUNNING)
        return;
    plat_proc_set_priority(x->proc.pid, prio);
    x->prio_set = 1;
}

/* A replacement is back once the stream has taken its first block. */
static void check_back(farm_procs *p, uint32_t k, uint64_t now) {
    farm_worker_watch *x = &p->watch[k];
    shm_worker_stats ws;
    shm_worker_stats_read(p->region, k, &ws);
    if (x->rendering_at == 0 && ws.blocks_rendered > x->resume_block)
        x->rendering_at = now;
    if (ws.ring_read <= x->resume_block)
        return;
    char how[96];
    snprintf(how, sizeof how, "replaced by pid %ld (restart %u), rendering %.1f ms after",
             x->proc.pid, ws.restarts,
             (double)((x->rendering_at ? x->rendering_at : now) - x->died_at) * 1e-6);
    report_fault(p, k, how);
    atomic_store(&p->health[k], FARM_WORKER_UP);
}

/* How long worker k has been stuck since its last block: the time it was neither on a CPU nor
 * waiting for one (stopped, or asleep on something while its ring has room), plus the time it
 * ran beyond a generous allowance (ten times its longest block, or ten watchdog periods before
 * its first): a worker starved by a busy machine, or one whose blocks are simply long (huge
 * banks, sanitizer builds), is working, not hung; one in an endless loop is caught all the same,
 * later. */
static uint64_t stuck_ns(farm_procs *p, uint32_t k, uint64_t idle) {
    farm_worker_watch *x = &p->watch[k];
    uint64_t ran, waited;
    if (!plat_proc_cpu_times(&x->proc, &ran, &waited))
        return idle;
    ran -= x->ran_at_progress;
    waited -= x->waited_at_progress;
    shm_worker_stats ws;
    shm_worker_stats_read(p->region, k, &ws);
    uint64_t longest = ws.render_ns_max;
    uint64_t allowance =
        10 * (longest > 0 ? longest : (uint64_t)(p->heal.watchdog_s * (double)FARM_NS_PER_S));
    uint64_t off = idle > ran + waited ? idle - ran - waited : 0;
    return off + (ran > allowance ? ran - allowance : 0);
}

/* A worker alive but not rendering while its ring has room: stalled, then killed. */
static void watchdog(farm_procs *p, uint32_t k, uint64_t now) {
    farm_worker_watch *x = &p->watch[k];
    shm_worker_stats ws;
    shm_worker_stats_read(p->region, k, &ws);
    uint64_t progress = ws.blocks_rendered;
    /* a worker sleeps until its batch of slots is free (render), so less is no room for it */
    uint32_t batch = shm_config_of(p->region)->wake_batch;
    int room = ws.ring_blocks - ws.ring_fill >= (batch > 0 ? batch : 1);
    if (progress != x->progress || !room || ws.state != SHM_WORKER_RUNNING) {
        x->progress = progress;
        x->progress_at = now;
        x->late_at_progress = ws.late_blocks;
        plat_proc_cpu_times(&x->proc, &x->ran_at_progress, &x->waited_at_progress);
        atomic_store(&p->stalled[k], 0);
        return;
    }
    double block_ns = block_seconds(p) * (double)FARM_NS_PER_S;
    uint64_t idle = now - x->progress_at;
    if ((double)idle <= STALLED_BLOCKS * block_ns)
        return; /* the usual case: no need to read schedstat */
    uint64_t stuck = stuck_ns(p, k, idle);
    atomic_store(&p->stalled[k], (double)stuck > STALLED_BLOCKS * block_ns);
    if (p->heal.watchdog_s > 0 && !x->watchdog_killed &&
        (double)stuck > p->heal.watchdog_s * (double)FARM_NS_PER_S) {
        x->watchdog_killed = 1;
        plat_proc_kill(&x->proc); /* a stopped process dies too */
    }
}

static void poll_deaths(farm_procs *p) {
    plat_proc *procs[SHM_MAX_WORKERS];
    for (uint32_t k = 0; k < p->count; k++)
        procs[k] = &p->watch[k].proc;
    /* a death wakes it at once; either way every worker is checked */
    plat_wait_procs(p->wake, procs, p->count, TICK_MS);
}

static void reap_and_heal(farm_procs *p) {
    uint64_t now = farm_now_ns();
    for (uint32_t k = 0; k < p->count; k++) {
        int h = atomic_load(&p->health[k]);
        if (h == FARM_WORKER_GIVEN_UP || h == FARM_WORKER_DONE)
            continue;
        plat_exit e;
        if (plat_proc_reap(&p->watch[k].proc, 0, &e)) {
            on_worker_exit(p, k, &e);
            continue;
        }
        if (h == FARM_WORKER_REPLACING) {
            raise_when_running(p, k);
            check_back(p, k, now);
        }
        watchdog(p, k, now);
    }
}

static void *watch_main(void *arg) {
    farm_procs *p = arg;
    while (!atomic_load(&p->stopping)) {
        poll_deaths(p);
        if (!atomic_load(&p->stopping))
            reap_and_heal(p);
    }
    return NULL;
}

static int start_watch(farm_procs *p) {
    int rv = plat_notifier_open(&p->wake);
    if (rv != FARM_OK)
        return rv;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 256 * 1024);
    rv = pthread_create(&p->thread, &attr, watch_main, p);
    pthread_attr_destroy(&attr);
    if (rv != 0)
        return farm_fail(FARM_ESYS, "cannot start the supervisor's thread: %s", strerror(rv));
    p->thread_started = 1;
    return FARM_OK;
}

/* ---- start and stop ---- */

void farm_procs_prepare(shm_config *cfg) {
    uint32_t most = (cfg->total_voices + cfg->workers - 1) / cfg->workers;
    cfg->state_bytes = (uint32_t)dsp_state_bytes(most, cfg->channels);
    choose_isa(cfg, most);
}

static int start(farm_procs *p, const farm_heal_desc *heal, const char *cpus) {
    p->heal = *heal;
    if (p->heal.restart_window_s <= 0)
        p->heal.restart_window_s = DEFAULT_WINDOW_S;
    if (p->heal.max_restarts > FARM_MAX_RESTARTS_LIMIT)
        p->heal.max_restarts = FARM_MAX_RESTARTS_LIMIT;
    int rv = worker_path(p->path, sizeof p->path);
    if (rv != FARM_OK)
        return rv;
    if (!plat_executable(p->path))
        return farm_fail(FARM_EUSAGE, "worker 0 cannot start: %s: %s", p->path, strerror(errno));
    const uint32_t workers = shm_config_of(p->region)->workers;
    if ((rv = place_workers(p, workers, cpus)) != FARM_OK)
        return rv;
    rv = spawn_all(p, workers);
    if (rv == FARM_OK)
        rv = wait_running(p);
    if (rv == FARM_OK)
        rv = start_watch(p);
    return rv;
}

int farm_procs_start(farm_procs **out, shm_region *region, const farm_heal_desc *heal,
                     const char *cpus) {
    *out = NULL;
    farm_procs *p = calloc(1, sizeof *p);
    if (p == NULL)
        return farm_fail(FARM_ENOMEM, "out of memory for the supervisor");
    p->region = region;
    p->wake = PLAT_NO_HANDLE;
    int rv = start(p, heal, cpus);
    if (rv != FARM_OK) {
        farm_procs_stop(p);
        return rv;
    }
    *out = p;
    return FARM_OK;
}

static void reap_all(farm_procs *p) {
    uint64_t deadline = farm_now_ns() + STOP_GRACE_NS;
    for (uint32_t i = 0; i < p->count; i++) {
        int h = atomic_load(&p->health[i]);
        if (h == FARM_WORKER_GIVEN_UP || h == FARM_WORKER_DONE)
            continue;
        plat_proc *proc = &p->watch[i].proc;
        plat_exit e;
        for (;;) {
            if (plat_proc_reap(proc, 0, &e))
                break;
            if (farm_now_ns() > deadline) {
                plat_proc_kill(proc);
                plat_proc_reap(proc, 1, &e);
                break;
            }
            farm_sleep_ns(FARM_NS_PER_MS);
        }
        atomic_store(&p->health[i], FARM_WORKER_DONE);
        plat_proc_release(proc);
    }
}

void farm_procs_stop(farm_procs *p) {
    if (p == NULL)
        return;
    shm_request_quit(p->region);
    if (p->thread_started) {
        /* No replacement from here on. The thread exits before the workers are reaped: a worker
         * it started dies with it (PR_SET_PDEATHSIG follows the thread), which is what stop asks
         * for anyway, after the grace below for the others. */
        atomic_store(&p->stopping, 1);
        plat_notify(p->wake); /* it would wake within a tick anyway */
        pthread_join(p->thread, NULL);
        p->thread_started = 0;
    }
    for (uint32_t i = 0; i < p->count; i++)
        /* A worker asleep on a full ring wakes at once instead of at its next deadline. */
        shm_worker_wake(p->region, i);
    reap_all(p);
    plat_notifier_close(p->wake);
    free(p);
}

/* ---- what others may ask ---- */

int farm_procs_check(farm_procs *p) {
    for (uint32_t k = 0; k < p->count; k++)
        if (atomic_load(&p->health[k]) == FARM_WORKER_GIVEN_UP)
            return farm_fail(FARM_EFAIL,
                             "worker %u %s; it died more than --max-restarts %u times within %g s",
                             k, p->watch[k].fault, p->heal.max_restarts, p->heal.restart_window_s);
    return FARM_OK;
}

uint32_t farm_procs_set_priority(farm_procs *p, int prio) {
    atomic_store(&p->rt_priority, prio);
    uint32_t refused = 0;
    for (uint32_t k = 0; k < p->count; k++) {
        shm_worker_stats ws;
        shm_worker_stats_read(p->region, k, &ws);
        long pid = ws.pid;
        refused += !plat_proc_set_priority(pid, prio);
    }
    return refused;
}

farm_worker_health farm_procs_health(const farm_procs *p, uint32_t k) {
    return (farm_worker_health)atomic_load(&p->health[k]);
}

int farm_procs_stalled(const farm_procs *p, uint32_t k) {
    return atomic_load(&p->stalled[k]);
}

uint32_t farm_procs_restarts(const farm_procs *p, uint32_t k) {
    shm_worker_stats ws;
    shm_worker_stats_read(p->region, k, &ws);
    return ws.restarts;
}

uint64_t farm_procs_blocks_missed(const farm_procs *p, uint32_t k) {
    return atomic_load(&p->blocks_missed[k]);
}

uint32_t farm_procs_count(const farm_procs *p) {
    return p->count;
}

long farm_procs_pid(const farm_procs *p, uint32_t k) {
    return p->watch[k].proc.pid;
}

const farm_placement *farm_procs_placement(const farm_procs *p) {
    return &p->placement;
}

uint32_t farm_usable_cpus(void) {
    plat_cpuset set;
    plat_cpus_allowed(&set);
    int n = plat_cpuset_count(&set);
    return n > 0 ? (uint32_t)n : 1;
}
