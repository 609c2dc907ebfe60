#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <sched.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "supervisor.h"

extern char **environ;

#define WORKER_FD 3                           /* where each worker finds the mapping */
#define START_TIMEOUT_NS (10 * FARM_NS_PER_S) /* a worker that is not running by then failed */
#define STOP_GRACE_NS (2 * FARM_NS_PER_S)     /* then SIGKILL */

/* farm-worker lives beside farm; FARM_WORKER overrides (tests, installs elsewhere). */
static int worker_path(char *out, size_t size) {
    const char *env = getenv("FARM_WORKER");
    if (env != NULL && env[0] != '\0') {
        snprintf(out, size, "%s", env);
        return FARM_OK;
    }
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n < 0)
        return farm_fail(FARM_EUSAGE, "cannot find farm's own path: %s", strerror(errno));
    self[n] = '\0';
    snprintf(out, size, "%s/farm-worker", dirname(self));
    return FARM_OK;
}

static const char *describe_exit(int status, char *buf, size_t size) {
    if (WIFEXITED(status))
        snprintf(buf, size, "exited with status %d", WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        snprintf(buf, size, "was killed by signal %d (%s)", WTERMSIG(status),
                 strsignal(WTERMSIG(status)));
    else
        snprintf(buf, size, "stopped (status %#x)", status);
    return buf;
}

static int spawn_one(farm_procs *p, uint32_t i, const char *path, int fd, int cpu) {
    char a_fd[16], a_index[16], a_parent[24], a_cpu[16];
    snprintf(a_fd, sizeof a_fd, "%d", WORKER_FD);
    snprintf(a_index, sizeof a_index, "%u", i);
    snprintf(a_parent, sizeof a_parent, "%ld", (long)getpid());
    snprintf(a_cpu, sizeof a_cpu, "%d", cpu);
    char *argv[] = {"farm-worker", "--fd",   a_fd,    "--index", a_index,
                    "--parent",    a_parent, "--cpu", a_cpu,     NULL};

    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    posix_spawn_file_actions_init(&fa);
    posix_spawnattr_init(&attr);
    /* fd is close-on-exec and not WORKER_FD, so dup2 gives the worker exactly one copy. */
    posix_spawn_file_actions_adddup2(&fa, fd, WORKER_FD);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    /* Its own process group: the terminal's Ctrl-C reaches only the coordinator, which then
     * stops the workers in order; PR_SET_PDEATHSIG covers a coordinator that dies. */
    sigset_t none, dflt;
    sigemptyset(&none);
    sigemptyset(&dflt);
    sigaddset(&dflt, SIGINT);
    sigaddset(&dflt, SIGTERM);
    sigaddset(&dflt, SIGPIPE);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &dflt);
    posix_spawnattr_setpgroup(&attr, 0);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK |
                                        POSIX_SPAWN_SETSIGDEF);
    int rv = posix_spawn(&p->pid[i], path, &fa, &attr, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    if (rv != 0)
        return farm_fail(FARM_EUSAGE, "worker %u cannot start: %s: %s", i, path, strerror(rv));
    return FARM_OK;
}

/* The CPUs this process may run on, in order; workers take them round-robin. */
static int usable_cpu_list(int *cpus, int max) {
    cpu_set_t set;
    int n = 0;
    if (sched_getaffinity(0, sizeof set, &set) != 0)
        return 0;
    for (int c = 0; c < CPU_SETSIZE && n < max; c++)
        if (CPU_ISSET(c, &set))
            cpus[n++] = c;
    return n;
}

static int wait_running(farm_procs *p) {
    uint64_t deadline = farm_now_ns() + START_TIMEOUT_NS;
    for (uint32_t i = 0; i < p->count; i++) {
        shm_worker *w = shm_worker_at(&p->region, i);
        for (;;) {
            uint32_t st = atomic_load_explicit(&w->state, memory_order_acquire);
            /* a very short render: the worker may have rendered all it had to already */
            if (st == SHM_WORKER_RUNNING || st == SHM_WORKER_STOPPED)
                break;
            int status;
            pid_t r = waitpid(p->pid[i], &status, WNOHANG);
            if (r == p->pid[i]) {
                p->reaped[i] = 1;
                if (WIFEXITED(status) && WEXITSTATUS(status) == 0 &&
                    atomic_load_explicit(&w->state, memory_order_acquire) == SHM_WORKER_STOPPED)
                    break;
                char why[96];
                return farm_fail(FARM_EUSAGE, "worker %u cannot start: it %s", i,
                                 describe_exit(status, why, sizeof why));
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

/* Voices shared out in order: the first total % workers workers take one more. */
static void share_voices(farm_procs *p, const shm_config *cfg) {
    uint32_t base = cfg->total_voices / cfg->workers, extra = cfg->total_voices % cfg->workers;
    uint32_t first = 0;
    for (uint32_t i = 0; i < cfg->workers; i++) {
        shm_worker *w = shm_worker_at(&p->region, i);
        w->voice_first = first;
        w->voice_count = base + (i < extra ? 1 : 0);
        first += w->voice_count;
    }
}

static int spawn_all(farm_procs *p, const char *path, uint32_t workers) {
    /* Above WORKER_FD, so the spawn's dup2 always makes a fresh copy at WORKER_FD. */
    int fd = fcntl(p->region.fd, F_DUPFD_CLOEXEC, WORKER_FD + 1);
    if (fd < 0)
        return farm_fail(FARM_ESYS, "cannot duplicate the shared memory descriptor: %s",
                         strerror(errno));
    int cpus[CPU_SETSIZE];
    int ncpu = usable_cpu_list(cpus, CPU_SETSIZE);
    int rv = FARM_OK;
    for (uint32_t i = 0; i < workers && rv == FARM_OK; i++) {
        rv = spawn_one(p, i, path, fd, ncpu > 0 ? cpus[i % (uint32_t)ncpu] : -1);
        if (rv == FARM_OK)
            p->count = i + 1;
    }
    close(fd);
    return rv;
}

int farm_procs_start(farm_procs *p, const shm_config *cfg) {
    memset(p, 0, sizeof *p);
    p->region.fd = -1;
    char path[PATH_MAX];
    int rv = worker_path(path, sizeof path);
    if (rv != FARM_OK)
        return rv;
    if (access(path, X_OK) != 0)
        return farm_fail(FARM_EUSAGE, "worker 0 cannot start: %s: %s", path, strerror(errno));
    if ((rv = shm_create(cfg, &p->region)) != FARM_OK)
        return rv;
    share_voices(p, cfg);
    if ((rv = spawn_all(p, path, cfg->workers)) == FARM_OK)
        rv = wait_running(p);
    if (rv != FARM_OK)
        farm_procs_stop(p);
    return rv;
}

void farm_procs_stop(farm_procs *p) {
    if (p->region.base == NULL)
        return;
    shm_header *h = shm_header_of(&p->region);
    atomic_store_explicit(&h->quit, 1, memory_order_release);
    for (uint32_t i = 0; i < p->count; i++) {
        /* A worker asleep on a full ring wakes at once instead of at its next deadline. */
        shm_worker *w = shm_worker_at(&p->region, i);
        shm_ring_wake(&w->audio);
    }
    uint64_t deadline = farm_now_ns() + STOP_GRACE_NS;
    for (uint32_t i = 0; i < p->count; i++) {
        while (!p->reaped[i]) {
            pid_t r = waitpid(p->pid[i], NULL, WNOHANG);
            if (r == p->pid[i] || (r < 0 && errno == ECHILD)) {
                p->reaped[i] = 1;
            } else if (farm_now_ns() > deadline) {
                kill(p->pid[i], SIGKILL);
                waitpid(p->pid[i], NULL, 0);
                p->reaped[i] = 1;
            } else {
                farm_sleep_ns(FARM_NS_PER_MS);
            }
        }
    }
    shm_close(&p->region);
    p->count = 0;
}

int farm_procs_alive(const farm_procs *p, uint32_t k) {
    return k < p->count && !p->reaped[k];
}

uint32_t farm_usable_cpus(void) {
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) != 0)
        return 1;
    int n = CPU_COUNT(&set);
    return n > 0 ? (uint32_t)n : 1;
}

int farm_procs_check(farm_procs *p) {
    for (uint32_t i = 0; i < p->count; i++) {
        if (p->reaped[i])
            continue;
        int status;
        pid_t r = waitpid(p->pid[i], &status, WNOHANG);
        if (r == p->pid[i]) {
            p->reaped[i] = 1;
            shm_worker *w = shm_worker_at(&p->region, i);
            if (WIFEXITED(status) && WEXITSTATUS(status) == 0 &&
                atomic_load(&w->state) == SHM_WORKER_STOPPED)
                continue; /* finished its block_limit */
            char why[96];
            return farm_fail(FARM_EFAIL, "worker %u (pid %ld) %s", i, (long)p->pid[i],
                             describe_exit(status, why, sizeof why));
        }
    }
    return FARM_OK;
}
