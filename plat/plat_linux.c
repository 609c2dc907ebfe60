/* plat on Linux: memfd, futex, posix_spawn, pidfd, PDEATHSIG, SCHED_FIFO, mlockall. */
#define _GNU_SOURCE
#include "plat.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <linux/futex.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define CHILD_FIRST_FD 3 /* inherit[i] is the child's descriptor 3 + i */

/* ---- the clock, sleeps and stop requests (declared in base.h) ---- */

uint64_t farm_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * FARM_NS_PER_S + (uint64_t)ts.tv_nsec;
}

void farm_sleep_ns(uint64_t ns) {
    struct timespec ts = {(time_t)(ns / FARM_NS_PER_S), (long)(ns % FARM_NS_PER_S)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

void farm_sleep_until_ns(uint64_t deadline_ns) {
    struct timespec ts = {(time_t)(deadline_ns / FARM_NS_PER_S),
                          (long)(deadline_ns % FARM_NS_PER_S)};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
        ;
}

volatile sig_atomic_t farm_stop_signal;

static void on_stop_signal(int sig) {
    farm_stop_signal = sig;
}

void farm_catch_stop_signals(void) {
    struct sigaction sa = {0};
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN); /* a closed pipe or socket is an error return, not a death */
}

/* ---- the shared mapping ---- */

static int map_fd(int fd, size_t size, plat_map *out) {
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED)
        return farm_fail(FARM_ESYS, "cannot map %zu bytes of shared memory: %s", size,
                         strerror(errno));
    out->base = p;
    out->size = size;
    out->handle = fd;
    return FARM_OK;
}

int plat_map_create(size_t size, plat_map *out) {
    *out = (plat_map){.handle = PLAT_NO_HANDLE};
    /* Close-on-exec: a worker gets it only through the spawn's explicit dup2. */
    int fd = memfd_create("farm", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0)
        return farm_fail(FARM_ESYS, "cannot create shared memory: %s", strerror(errno));
    if (ftruncate(fd, (off_t)size) != 0 ||
        fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) != 0) {
        int rv = farm_fail(FARM_ESYS, "cannot size shared memory to %zu bytes: %s", size,
                           strerror(errno));
        close(fd);
        return rv;
    }
    int rv = map_fd(fd, size, out);
    if (rv != FARM_OK)
        close(fd);
    return rv;
}

int plat_map_attach(plat_handle handle, plat_map *out) {
    *out = (plat_map){.handle = PLAT_NO_HANDLE};
    int fd = (int)handle;
    struct stat st;
    if (fstat(fd, &st) != 0)
        return farm_fail(FARM_ESYS, "fd %d: %s", fd, strerror(errno));
    if (st.st_size <= 0)
        return farm_fail(FARM_EINVAL, "fd %d is not farm's shared memory", fd);
    return map_fd(fd, (size_t)st.st_size, out);
}

void plat_map_close(plat_map *m) {
    if (m->base != NULL)
        munmap(m->base, m->size);
    if (m->handle >= 0)
        close((int)m->handle);
    m->base = NULL;
    m->handle = PLAT_NO_HANDLE;
}

void *plat_pages_alloc(size_t size) {
    void *p =
        mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

void plat_pages_free(void *p, size_t size) {
    if (p != NULL)
        munmap(p, size);
}

void *plat_aligned_alloc(size_t align, size_t size) {
    return aligned_alloc(align, size);
}

void plat_aligned_free(void *p) {
    free(p);
}

/* ---- wake-ups: the word itself is the futex ---- */

int plat_wake_create(uint64_t *id) {
    *id = 0;
    return FARM_OK;
}

void plat_wake_destroy(uint64_t id) {
    (void)id;
}

plat_handle plat_wake_handle(uint64_t id) {
    (void)id;
    return PLAT_NO_HANDLE;
}

static long futex(_Atomic uint32_t *word, int op, uint32_t val, const struct timespec *ts) {
    /* Not FUTEX_PRIVATE_FLAG: the waiter and the waker are different processes. */
    return syscall(SYS_futex, (uint32_t *)word, op, val, ts, NULL, 0);
}

void plat_wait(_Atomic uint32_t *word, uint32_t seen, uint64_t id, uint64_t timeout_ns) {
    (void)id;
    struct timespec ts = {(time_t)(timeout_ns / FARM_NS_PER_S), (long)(timeout_ns % FARM_NS_PER_S)};
    futex(word, FUTEX_WAIT, seen, &ts);
}

void plat_wake(_Atomic uint32_t *word, uint64_t id) {
    (void)id;
    futex(word, FUTEX_WAKE, 1, NULL);
}

/* ---- processes ---- */

plat_handle plat_child_handle(const plat_handle *inherit, size_t i) {
    (void)inherit;
    return (plat_handle)(CHILD_FIRST_FD + i);
}

/* Each inherited descriptor dup2'ed to 3 + i. The sources are close-on-exec; one that already
 * sits at its target would keep that flag through dup2, so it is first copied above the targets. */
static int child_fds(posix_spawn_file_actions_t *fa, const plat_handle *inherit, size_t n,
                     int *tmp) {
    int rv = 0;
    for (size_t i = 0; i < n && rv == 0; i++) {
        tmp[i] = fcntl((int)inherit[i], F_DUPFD_CLOEXEC, (int)(CHILD_FIRST_FD + n));
        if (tmp[i] < 0)
            return errno;
        rv = posix_spawn_file_actions_adddup2(fa, tmp[i], (int)(CHILD_FIRST_FD + i));
    }
    if (rv == 0)
        rv = posix_spawn_file_actions_addopen(fa, 0, "/dev/null", O_RDONLY, 0);
    /* Whatever else is open without close-on-exec (a library's descriptor, a test harness's
     * pipe) stays behind: the child gets exactly its handles and the standard three. */
    if (rv == 0)
        rv = posix_spawn_file_actions_addclosefrom_np(fa, (int)(CHILD_FIRST_FD + n));
    return rv;
}

/* Its own process group: the terminal's Ctrl-C reaches only the coordinator, which then stops
 * the workers in order; PR_SET_PDEATHSIG covers a coordinator that dies. */
static void child_signals(posix_spawnattr_t *attr) {
    sigset_t none, dflt;
    sigemptyset(&none);
    sigemptyset(&dflt);
    sigaddset(&dflt, SIGINT);
    sigaddset(&dflt, SIGTERM);
    sigaddset(&dflt, SIGPIPE);
    posix_spawnattr_setsigmask(attr, &none);
    posix_spawnattr_setsigdefault(attr, &dflt);
    posix_spawnattr_setpgroup(attr, 0);
    posix_spawnattr_setflags(attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK |
                                       POSIX_SPAWN_SETSIGDEF);
}

static int open_pidfd(pid_t pid) {
#ifdef SYS_pidfd_open
    return (int)syscall(SYS_pidfd_open, pid, 0);
#else
    (void)pid;
    return -1;
#endif
}

int plat_spawn(const char *path, char *const argv[], const plat_handle *inherit, size_t n,
               plat_proc *out) {
    *out = (plat_proc){.pid = -1, .watch = PLAT_NO_HANDLE, .stats = PLAT_NO_HANDLE};
    int tmp[8];
    if (n > sizeof tmp / sizeof tmp[0])
        return farm_fail(FARM_EINVAL, "%zu handles to pass on: at most 8", n);
    for (size_t i = 0; i < n; i++)
        tmp[i] = -1;
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    posix_spawn_file_actions_init(&fa);
    posix_spawnattr_init(&attr);
    child_signals(&attr);
    pid_t pid = -1;
    int rv = child_fds(&fa, inherit, n, tmp);
    if (rv == 0)
        rv = posix_spawn(&pid, path, &fa, &attr, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    for (size_t i = 0; i < n; i++)
        if (tmp[i] >= 0)
            close(tmp[i]);
    if (rv != 0)
        return farm_fail(FARM_EUSAGE, "%s: %s", path, strerror(rv));
    out->pid = pid;
    out->watch = open_pidfd(pid);
    char stat_path[64];
    snprintf(stat_path, sizeof stat_path, "/proc/%ld/schedstat", (long)pid);
    out->stats = open(stat_path, O_RDONLY | O_CLOEXEC);
    return FARM_OK;
}

static void to_exit(int status, plat_exit *e) {
    *e = (plat_exit){.known = 1};
    if (WIFEXITED(status))
        e->code = WEXITSTATUS(status);
    else if (WIFSIGNALED(status))
        e->signal = WTERMSIG(status);
    else
        e->known = 0;
}

int plat_proc_reap(plat_proc *p, int block, plat_exit *e) {
    int status;
    pid_t r = waitpid((pid_t)p->pid, &status, block ? 0 : WNOHANG);
    if (r == (pid_t)p->pid) {
        to_exit(status, e);
        return 1;
    }
    if (r < 0 && errno == ECHILD) { /* gone, reaped already */
        *e = (plat_exit){0};
        return 1;
    }
    return 0;
}

void plat_proc_kill(const plat_proc *p) {
    if (p->pid > 0)
        kill((pid_t)p->pid, SIGKILL); /* a stopped process dies too */
}

void plat_proc_release(plat_proc *p) {
    if (p->watch >= 0)
        close((int)p->watch);
    if (p->stats >= 0)
        close((int)p->stats);
    p->watch = p->stats = PLAT_NO_HANDLE;
}

/* The first two fields of /proc/PID/schedstat. */
int plat_proc_cpu_times(const plat_proc *p, uint64_t *ran, uint64_t *waited) {
    char buf[96];
    unsigned long long r = 0, w = 0;
    ssize_t n = p->stats >= 0 ? pread((int)p->stats, buf, sizeof buf - 1, 0) : -1;
    int known = 0;
    if (n > 0) {
        buf[n] = '\0';
        known = sscanf(buf, "%llu %llu", &r, &w) == 2;
        if (!known)
            r = w = 0;
    }
    *ran = r;
    *waited = w;
    return p->stats >= 0;
}

void plat_wait_procs(plat_handle notifier, plat_proc *const procs[], size_t n,
                     uint32_t timeout_ms) {
    struct pollfd fds[257];
    nfds_t k = 0;
    if (notifier >= 0)
        fds[k++] = (struct pollfd){.fd = (int)notifier, .events = POLLIN};
    for (size_t i = 0; i < n && k < sizeof fds / sizeof fds[0]; i++)
        if (procs[i]->watch >= 0)
            fds[k++] = (struct pollfd){.fd = (int)procs[i]->watch, .events = POLLIN};
    poll(fds, k, (int)timeout_ms);
}

const char *plat_exit_describe(const plat_exit *e, char *buf, size_t size) {
    if (!e->known)
        snprintf(buf, size, "ended");
    else if (e->signal)
        snprintf(buf, size, "was killed by signal %d (%s)", e->signal, strsignal(e->signal));
    else
        snprintf(buf, size, "exited with status %d", e->code);
    return buf;
}

int plat_exit_clean(const plat_exit *e) {
    return e->known && e->signal == 0 && e->code == 0;
}

int plat_notifier_open(plat_handle *out) {
    int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    *out = fd;
    if (fd < 0)
        return farm_fail(FARM_ESYS, "cannot make the supervisor's event: %s", strerror(errno));
    return FARM_OK;
}

void plat_notify(plat_handle notifier) {
    uint64_t one = 1;
    if (notifier >= 0 && write((int)notifier, &one, sizeof one) < 0) {
        /* full: it is raised already */
    }
}

void plat_notifier_close(plat_handle notifier) {
    if (notifier >= 0)
        close((int)notifier);
}

long plat_self_pid(void) {
    return (long)getpid();
}

int plat_die_with_parent(long parent) {
    /* and if it died before this line, go now */
    return prctl(PR_SET_PDEATHSIG, SIGKILL) == 0 && getppid() == (pid_t)parent;
}

void plat_crash_self(int sig) {
    raise(sig);
}

int plat_exe_dir(char *out, size_t size) {
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n < 0)
        return farm_fail(FARM_EUSAGE, "cannot find farm's own path: %s", strerror(errno));
    self[n] = '\0';
    snprintf(out, size, "%s", dirname(self));
    return FARM_OK;
}

int plat_executable(const char *path) {
    return access(path, X_OK) == 0;
}

/* ---- CPUs, priority, memory ---- */

static void to_cpu_set(const plat_cpuset *s, cpu_set_t *set) {
    CPU_ZERO(set);
    for (int c = 0; c < PLAT_CPU_SETSIZE && c < CPU_SETSIZE; c++)
        if (plat_cpuset_has(s, c))
            CPU_SET(c, set);
}

void plat_cpus_allowed(plat_cpuset *out) {
    cpu_set_t set;
    plat_cpuset_zero(out);
    if (sched_getaffinity(0, sizeof set, &set) != 0) {
        plat_cpuset_add(out, 0);
        return;
    }
    for (int c = 0; c < PLAT_CPU_SETSIZE && c < CPU_SETSIZE; c++)
        if (CPU_ISSET(c, &set))
            plat_cpuset_add(out, c);
}

int plat_pin_self(int cpu) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    return sched_setaffinity(0, sizeof set, &set) == 0;
}

int plat_pin_thread(pthread_t t, const plat_cpuset *s) {
    cpu_set_t set;
    to_cpu_set(s, &set);
    int rv = pthread_setaffinity_np(t, sizeof set, &set);
    errno = rv;
    return rv == 0;
}

int plat_proc_set_priority(long pid, int prio) {
    struct sched_param sp = {.sched_priority = prio};
    return sched_setscheduler(
               (pid_t)pid, (prio > 0 ? SCHED_FIFO : SCHED_OTHER) | SCHED_RESET_ON_FORK, &sp) == 0;
}

int plat_thread_start(pthread_t *t, size_t stack, int prio, void *(*fn)(void *), void *arg,
                      const char *who) {
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, stack);
    int rv = EPERM;
    if (prio > 0) {
        struct sched_param sp = {.sched_priority = prio};
        pthread_attr_setinheritsched(&attr, PTHREAD_EXPLICIT_SCHED);
        pthread_attr_setschedpolicy(&attr, SCHED_FIFO);
        pthread_attr_setschedparam(&attr, &sp);
        rv = pthread_create(t, &attr, fn, arg);
    }
    if (rv != 0) { /* refused: normal priority; the caller reports it if it cares */
        pthread_attr_destroy(&attr);
        pthread_attr_init(&attr);
        pthread_attr_setstacksize(&attr, stack);
        rv = pthread_create(t, &attr, fn, arg);
    }
    pthread_attr_destroy(&attr);
    if (rv != 0)
        return farm_fail(FARM_EFAIL, "cannot start %s's thread: %s", who, strerror(rv));
    return FARM_OK;
}

int plat_thread_priority(pthread_t t, const char **policy) {
    int pol = SCHED_OTHER;
    struct sched_param sp = {0};
    if (pthread_getschedparam(t, &pol, &sp) != 0)
        pol = SCHED_OTHER;
    *policy = pol == SCHED_FIFO ? "SCHED_FIFO" : pol == SCHED_RR ? "SCHED_RR" : "normal";
    return pol == SCHED_FIFO || pol == SCHED_RR ? sp.sched_priority : 0;
}

void plat_thread_defaults(size_t stack) {
#ifdef __GLIBC__
    mallopt(M_ARENA_MAX, 1);
    pthread_attr_t attr;
    if (pthread_attr_init(&attr) != 0)
        return;
    if (pthread_attr_setstacksize(&attr, stack) == 0)
        pthread_setattr_default_np(&attr);
    pthread_attr_destroy(&attr);
#else
    (void)stack;
#endif
}

int plat_lock_memory(void) {
    return mlockall(MCL_CURRENT | MCL_FUTURE) == 0;
}

void plat_unlock_memory(void) {
    munlockall();
}

/* ---- files and names ---- */

int plat_replace_file(const char *from, const char *to) {
    if (rename(from, to) != 0)
        return farm_fail(FARM_EFAIL, "cannot rename %s to %s: %s", from, to, strerror(errno));
    return FARM_OK;
}

void plat_runtime_dir(char *out, size_t size) {
    const char *xdg = getenv("XDG_RUNTIME_DIR");
    if (xdg != NULL && xdg[0] == '/')
        snprintf(out, size, "%s/farm", xdg);
    else
        snprintf(out, size, "/tmp/farm-%ld", (long)getuid());
}

int plat_private_dir(const char *path) {
    if (mkdir(path, 0700) != 0 && errno != EEXIST)
        return farm_fail(FARM_EFAIL, "cannot create %s: %s", path, strerror(errno));
    struct stat st;
    if (lstat(path, &st) != 0 || !S_ISDIR(st.st_mode) || st.st_uid != getuid() ||
        (st.st_mode & 077) != 0)
        return farm_fail(FARM_EFAIL, "%s must be a directory that only you can enter", path);
    return FARM_OK;
}

int plat_pid_alive(long pid) {
    return pid > 0 && (kill((pid_t)pid, 0) == 0 || errno == EPERM);
}

plat_path_kind plat_path_kind_of(const char *path) {
    struct stat st;
    if (lstat(path, &st) != 0)
        return PLAT_PATH_NONE;
    if (S_ISSOCK(st.st_mode))
        return PLAT_PATH_SOCKET;
    return S_ISREG(st.st_mode) ? PLAT_PATH_FILE : PLAT_PATH_OTHER;
}

int plat_remove_file(const char *path) {
    if (unlink(path) != 0 && errno != ENOENT)
        return farm_fail(FARM_EFAIL, "cannot remove %s: %s", path, strerror(errno));
    return FARM_OK;
}

int plat_list_dir(const char *dir, int (*each)(const char *name, void *arg), void *arg) {
    DIR *d = opendir(dir);
    if (d == NULL)
        return errno == ENOENT ? FARM_OK
                               : farm_fail(FARM_EFAIL, "cannot read %s: %s", dir, strerror(errno));
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0 && each(e->d_name, arg))
            break;
    closedir(d);
    return FARM_OK;
}

/* ---- the standard error stream, the environment ---- */

int plat_stderr_silence(void) {
    fflush(stderr);
    int saved = dup(2);
    int devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
    if (saved < 0 || devnull < 0) {
        if (saved >= 0)
            close(saved);
        if (devnull >= 0)
            close(devnull);
        return -1;
    }
    int moved = dup2(devnull, 2);
    close(devnull);
    if (moved < 0) {
        close(saved);
        return -1;
    }
    return saved;
}

void plat_stderr_restore(int saved) {
    if (saved < 0)
        return;
    fflush(stderr);
    if (dup2(saved, 2) < 0)
        perror("farm: cannot restore stderr"); /* goes wherever stderr points now */
    close(saved);
}

void plat_env_default(const char *name, const char *value) {
    setenv(name, value, 0);
}
