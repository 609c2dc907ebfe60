#define _GNU_SOURCE
#include "testutil.h"

#include <criterion/criterion.h>

#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

/* ---- the guard: what a test starts is stopped even when the test is not there to stop it ----
 *
 * Criterion ends a test that runs past its timeout by killing its process, and then no .fini
 * runs; an abort does the same. So each test process gets a guard: a child that holds the read
 * end of a pipe whose write end only the test holds (close-on-exec: no farm or server inherits
 * it). The test tells it each process it starts ("+ PID NAME") and each one it has seen end
 * ("- PID", before reaping it, so the pid cannot be another process's yet). When the pipe
 * closes, the test process is gone: the guard stops whatever is still on its list, SIGTERM
 * first so a JACK server removes its own files, then SIGKILL, and removes a JACK server's
 * files from /dev/shm itself. It keeps stderr, so what it had to stop is said, and ctest waits
 * for it before the next test starts. */

#define GUARD_MAX 64
#define STOP_GRACE_S 10.0 /* a JACK server with clients may take seconds to stop on a busy host */

typedef struct guarded {
    pid_t pid;
    char jack[128]; /* the JACK server's name, "" for anything else */
} guarded;

static int guard_fd = -1;
static pid_t guard_owner;       /* the test process the guard belongs to */
static guarded mine[GUARD_MAX]; /* the test's own list, to find a pid's server name */
static int n_mine;

/* A process that no longer runs: gone, or a zombie waiting for whoever reaps it. */
static int is_gone(pid_t pid) {
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%ld/stat", (long)pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return 1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *paren = strrchr(buf, ')'); /* the name may hold spaces and parentheses */
    return paren == NULL || paren[1] == '\0' || paren[2] == 'Z' || paren[2] == 'X';
}

/* Every file in /dev/shm of the JACK server called name: its semaphores (one per client) and
 * its sockets. A server stopped by SIGKILL leaves them, and so does a client it lost. */
void tu_jack_files_remove(const char *name) {
    char sem[200], sock[200];
    snprintf(sem, sizeof sem, "jack_sem.%ld_%s_", (long)getuid(), name);
    snprintf(sock, sizeof sock, "jack_%s_", name);
    DIR *d = opendir("/dev/shm");
    struct dirent *de;
    while (d != NULL && (de = readdir(d)) != NULL)
        if (strncmp(de->d_name, sem, strlen(sem)) == 0 ||
            strncmp(de->d_name, sock, strlen(sock)) == 0) {
            char path[512];
            snprintf(path, sizeof path, "/dev/shm/%s", de->d_name);
            unlink(path);
        }
    if (d)
        closedir(d);
}

/* The guard's stop of a process that is not its child: SIGTERM, up to STOP_GRACE_S to go (a
 * zombie counts as gone: its parent, or init, reaps it), then SIGKILL; 1 when it needed that. */
static int stop_orphan(pid_t pid) {
    kill(pid, SIGTERM);
    for (double end = tu_seconds() + STOP_GRACE_S; tu_seconds() < end; usleep(10000))
        if (is_gone(pid))
            return 0;
    kill(pid, SIGKILL);
    return 1;
}

#define GUARD_DIRS 16

/* What the guard looks after: the processes, and the directories tu_tmpdir made. */
typedef struct guard_list {
    guarded procs[GUARD_MAX];
    int n;
    char dirs[GUARD_DIRS][400];
    int n_dirs;
} guard_list;

/* One line from the test: "+ PID NAME" (NAME "-" when not a JACK server), "- PID", "d PATH"
 * (a directory to remove), "r PATH" (removed, or kept on purpose). */
static void guard_take(guard_list *g, const char *line) {
    long pid = 0;
    char name[128] = "";
    if (line[0] == '+' && g->n < GUARD_MAX && sscanf(line + 1, "%ld %127s", &pid, name) >= 1) {
        g->procs[g->n].pid = (pid_t)pid;
        snprintf(g->procs[g->n].jack, sizeof g->procs[g->n].jack, "%s",
                 strcmp(name, "-") ? name : "");
        g->n++;
    } else if (line[0] == '-' && sscanf(line + 1, "%ld", &pid) == 1) {
        for (int k = 0; k < g->n; k++)
            if (g->procs[k].pid == (pid_t)pid)
                g->procs[k--] = g->procs[--g->n];
    } else if (line[0] == 'd' && g->n_dirs < GUARD_DIRS) {
        snprintf(g->dirs[g->n_dirs++], sizeof g->dirs[0], "%s", line + 2);
    } else if (line[0] == 'r') {
        for (int k = 0; k < g->n_dirs; k++)
            if (strcmp(g->dirs[k], line + 2) == 0)
                memcpy(g->dirs[k--], g->dirs[--g->n_dirs], sizeof g->dirs[0]);
    }
}

/* The test process is gone, whatever ended it: what it left is stopped, then removed. */
static void guard_end(guard_list *g, const char *test) {
    for (int k = 0; k < g->n; k++) {
        int killed = stop_orphan(g->procs[k].pid);
        fprintf(stderr, "testutil guard: stopped %s%s (pid %ld) left running by %s%s\n",
                g->procs[k].jack[0] ? "JACK server " : "process", g->procs[k].jack,
                (long)g->procs[k].pid, test, killed ? " (SIGKILL)" : "");
        if (g->procs[k].jack[0])
            tu_jack_files_remove(g->procs[k].jack);
    }
    for (int k = 0; k < g->n_dirs; k++) {
        tu_rmdir(g->dirs[k]);
        fprintf(stderr, "testutil guard: removed %s, left by %s\n", g->dirs[k], test);
    }
}

static void guard_main(int rfd, const char *test) {
    signal(SIGINT, SIG_IGN); /* a ^C to the suite reaches the test first: the guard cleans up */
    signal(SIGTERM, SIG_IGN);
    signal(SIGHUP, SIG_IGN);
    int devnull = open("/dev/null", O_RDWR);
    dup2(devnull, 0);
    dup2(devnull, 1);
    for (int fd = 3; fd < 1024; fd++)
        if (fd != rfd)
            close(fd);
    static guard_list g;
    char buf[4096], line[400];
    size_t len = 0;
    ssize_t got;
    while ((got = read(rfd, buf, sizeof buf)) != 0) {
        if (got < 0)
            continue; /* EINTR */
        for (ssize_t i = 0; i < got; i++) {
            if (buf[i] != '\n') {
                if (len < sizeof line - 1)
                    line[len++] = buf[i];
                continue;
            }
            line[len] = '\0';
            len = 0;
            guard_take(&g, line);
        }
    }
    guard_end(&g, test);
    _exit(0);
}

/* One line to the guard (under PIPE_BUF: one atomic write). */
static void guard_say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void guard_say(const char *fmt, ...) {
    char line[400];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (guard_fd >= 0 && n > 0 && (size_t)n < sizeof line)
        (void)!write(guard_fd, line, (size_t)n);
}

static void guard_start(void) {
    if (guard_fd >= 0 && guard_owner == getpid())
        return;
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0) {
        perror("pipe2");
        abort();
    }
    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        abort();
    }
    if (pid == 0) {
        char test[300] = "a test that ended";
        if (criterion_current_test != NULL)
            snprintf(test, sizeof test, "%s::%s, which ended", criterion_current_test->category,
                     criterion_current_test->name);
        close(p[1]);
        guard_main(p[0], test);
    }
    close(p[0]);
    guard_fd = p[1];
    guard_owner = getpid();
    n_mine = 0;
}

static void guard_add(pid_t pid, const char *jack) {
    guard_start();
    guard_say("+ %ld %s\n", (long)pid, jack && jack[0] ? jack : "-");
    if (n_mine < GUARD_MAX) {
        mine[n_mine].pid = pid;
        snprintf(mine[n_mine].jack, sizeof mine[n_mine].jack, "%s", jack ? jack : "");
        n_mine++;
    }
}

/* pid has ended and is not reaped yet: off the guard's list, then reaped by the caller. */
static void guard_remove(pid_t pid) {
    guard_say("- %ld\n", (long)pid);
    for (int k = 0; k < n_mine; k++)
        if (mine[k].pid == pid)
            mine[k--] = mine[--n_mine];
}

static const char *jack_name_of(pid_t pid) {
    for (int k = 0; k < n_mine; k++)
        if (mine[k].pid == pid)
            return mine[k].jack;
    return "";
}

/* Waits for pid to end (it is the caller's child), leaving it unreaped; then it leaves the
 * guard's list and is reaped; its wait status returned. */
static int wait_child(pid_t pid, int flags, int *status) {
    siginfo_t si;
    memset(&si, 0, sizeof si);
    while (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOWAIT | flags) < 0)
        if (errno != EINTR)
            return -1;
    if (si.si_pid != pid)
        return 0; /* WNOHANG, still running */
    guard_remove(pid);
    while (waitpid(pid, status, 0) < 0)
        if (errno != EINTR)
            return -1;
    return 1;
}

void tu_tmpdir(char *out, size_t size) {
    guard_start(); /* here, before the test has threads of its own to fork beside */
    const char *base = getenv("TMPDIR");
    snprintf(out, size, "%s/farm-test-XXXXXX", base && *base ? base : "/tmp");
    if (mkdtemp(out) == NULL) {
        perror("mkdtemp");
        abort();
    }
    guard_say("d %s\n", out); /* removed by the guard should the test not get to it */
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

void tu_rmdir(const char *dir) {
    nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    guard_say("r %s\n", dir);
}

void tu_keep(const char *dir) {
    guard_say("r %s\n", dir);
}

const char *tu_path(const char *dir, const char *name) {
    static char buf[4][512];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", dir, name);
    return buf[k];
}

int tu_files_in(const char *dir) {
    int n = 0;
    DIR *d = opendir(dir);
    if (d == NULL)
        return -1;
    struct dirent *de;
    while ((de = readdir(d)) != NULL)
        if (de->d_name[0] != '.')
            n++;
    closedir(d);
    return n;
}

static void slurp(const char *path, char *buf, size_t size) {
    buf[0] = '\0';
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return;
    size_t n = fread(buf, 1, size - 1, f);
    buf[n] = '\0';
    fclose(f);
}

const char *const *tu_prefix;

/* farms started and not yet waited for, so a failed test still stops them */
static pid_t started[32];
static int n_started;

static void forget(pid_t pid) {
    for (int i = 0; i < n_started; i++)
        if (started[i] == pid)
            started[i] = started[--n_started];
}

void tu_farm_cleanup(void) {
    for (int i = 0; i < n_started; i++)
        tu_stop(started[i]); /* its workers follow by PR_SET_PDEATHSIG */
    n_started = 0;
}

pid_t tu_farm_start(tu_run *r, const char *dir, const char *const *args, const char *const *env) {
    static int counter;
    snprintf(r->tag, sizeof r->tag, "farmtest-%ld-%d-%ld", (long)getpid(), counter++,
             (long)random());
    const char *argv[64];
    int n = 0;
    for (int i = 0; tu_prefix != NULL && tu_prefix[i] != NULL && n < 16; i++)
        argv[n++] = tu_prefix[i];
    argv[n++] = tu_prefix != NULL ? FARM_BIN : "farm";
    for (int i = 0; args[i] != NULL && n < 63; i++)
        argv[n++] = args[i];
    argv[n] = NULL;

    char *envp[512];
    int e = 0;
    static char tagvar[96], workervar[4200];
    snprintf(tagvar, sizeof tagvar, "FARM_TEST_TAG=%s", r->tag);
    snprintf(workervar, sizeof workervar, "FARM_WORKER=%s", FARM_WORKER_BIN);
    envp[e++] = tagvar;
    int worker_overridden = 0;
    for (int i = 0; env != NULL && env[i] != NULL; i++) {
        if (strncmp(env[i], "FARM_WORKER=", 12) == 0)
            worker_overridden = 1;
        envp[e++] = (char *)env[i];
    }
    if (!worker_overridden)
        envp[e++] = workervar;
    for (int i = 0; environ[i] != NULL && e < 510; i++)
        if (strncmp(environ[i], "FARM_", 5) != 0)
            envp[e++] = environ[i];
    envp[e] = NULL;

    char out[4200], err[4200];
    snprintf(out, sizeof out, "%s/.stdout", dir);
    snprintf(err, sizeof err, "%s/.stderr", dir);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    posix_spawn_file_actions_addopen(&fa, 2, err, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    pid_t pid;
    int rv = tu_prefix != NULL ? posix_spawnp(&pid, tu_prefix[0], &fa, NULL, (char **)argv, envp)
                               : posix_spawn(&pid, FARM_BIN, &fa, NULL, (char **)argv, envp);
    posix_spawn_file_actions_destroy(&fa);
    if (rv != 0) {
        fprintf(stderr, "cannot start %s: %s\n", FARM_BIN, strerror(rv));
        abort();
    }
    guard_add(pid, NULL);
    if (n_started < 32)
        started[n_started++] = pid;
    return pid;
}

void tu_farm_wait(tu_run *r, pid_t pid, const char *dir) {
    int status = 0;
    wait_child(pid, 0, &status);
    forget(pid);
    r->status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    char out[4200], err[4200];
    snprintf(out, sizeof out, "%s/.stdout", dir);
    snprintf(err, sizeof err, "%s/.stderr", dir);
    slurp(out, r->out, sizeof r->out);
    slurp(err, r->err, sizeof r->err);
    unlink(out);
    unlink(err);
}

void tu_farm(tu_run *r, const char *const *args, const char *const *env) {
    char dir[256];
    tu_tmpdir(dir, sizeof dir);
    pid_t pid = tu_farm_start(r, dir, args, env);
    tu_farm_wait(r, pid, dir);
    tu_rmdir(dir);
}

int tu_count_tagged(const char *tag, pid_t *first) {
    int count = 0;
    if (first)
        *first = 0;
    DIR *d = opendir("/proc");
    if (d == NULL)
        return -1;
    struct dirent *de;
    char path[300], buf[65536];
    while ((de = readdir(d)) != NULL) {
        char *end;
        long pid = strtol(de->d_name, &end, 10);
        if (*end != '\0' || pid <= 0)
            continue;
        snprintf(path, sizeof path, "/proc/%ld/environ", pid);
        int fd = open(path, O_RDONLY);
        if (fd < 0)
            continue;
        ssize_t n = read(fd, buf, sizeof buf - 1);
        close(fd);
        if (n <= 0)
            continue;
        /* environ is NUL-separated; search each entry */
        for (ssize_t i = 0; i < n;) {
            const char *s = buf + i;
            size_t len = strnlen(s, (size_t)(n - i));
            if (strncmp(s, "FARM_TEST_TAG=", 14) == 0 && strncmp(s + 14, tag, len - 14) == 0 &&
                len - 14 == strlen(tag)) {
                /* zombies have an empty environ, so this one is alive */
                if (first && *first == 0)
                    *first = (pid_t)pid;
                count++;
                break;
            }
            i += (ssize_t)len + 1;
        }
    }
    closedir(d);
    return count;
}

double tu_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int tu_lines(const char *s) {
    int n = 0;
    size_t len = strlen(s);
    for (size_t i = 0; i < len; i++)
        if (s[i] == '\n')
            n++;
    if (len > 0 && s[len - 1] != '\n')
        n++;
    return n;
}

static int jack_ready(const char *name) {
    char cmd[512];
    snprintf(cmd, sizeof cmd,
             "JACK_NO_START_SERVER=1 JACK_DEFAULT_SERVER=%s jack_lsp >/dev/null 2>&1", name);
    return system(cmd) == 0;
}

pid_t tu_spawn(const char *const *argv, const char *log, const char *jack) {
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, log ? log : "/dev/null", O_WRONLY | O_CREAT | O_APPEND,
                                     0600);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    pid_t pid;
    int rv = posix_spawnp(&pid, argv[0], &fa, NULL, (char **)argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rv != 0) {
        fprintf(stderr, "cannot start %s: %s\n", argv[0], strerror(rv));
        return 0;
    }
    guard_add(pid, jack);
    return pid;
}

int tu_stop(pid_t pid) {
    if (pid <= 0)
        return -1;
    char jack[128];
    snprintf(jack, sizeof jack, "%s", jack_name_of(pid));
    int status = 0, done = 0;
    kill(pid, SIGTERM);
    for (double end = tu_seconds() + STOP_GRACE_S; !done && tu_seconds() < end;)
        if (!(done = wait_child(pid, WNOHANG, &status) != 0))
            usleep(10000);
    if (!done) {
        kill(pid, SIGKILL);
        wait_child(pid, 0, &status);
    }
    if (jack[0])
        tu_jack_files_remove(jack);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* JACK keeps the machine's servers in a registry of 8 places (/dev/shm/jack-shm-registry), and a
 * server that was killed, not stopped, keeps its place until a server of the same name starts.
 * With a new name each time, eight killed servers would leave no room for any other server on
 * the machine ("Too many servers already active"). So a test server takes the first name of a
 * small set that no live server has, and a dead one's place is taken back. */
#define JACK_NAMES 24

/* jackd's log says why it exited. */
static int log_says(const char *path, const char *text) {
    char buf[8192];
    slurp(path, buf, sizeof buf);
    return strstr(buf, text) != NULL;
}

/* One try at a server called name: its pid once it answers; 0 when it exited (*taken when
 * another live server has the name), -1 when it hung. */
static pid_t jackd_try(const char *name, int realtime, const char *r, const char *p,
                       const char *log, int *taken) {
    const char *argv[] = {"jackd", "-n",    name,         realtime ? "-R" : "-r",
                          "-P",    "20",    "--port-max", "64",
                          "-d",    "dummy", "-r",         r,
                          "-p",    p,       "-m",         NULL};
    if (!realtime)
        argv[4] = NULL; /* no -P without -R */
    truncate(log, 0);
    pid_t pid = tu_spawn(argv, log, name);
    if (pid == 0) {
        fprintf(stderr, "tests need jackd (Debian's jackd2)\n");
        abort();
    }
    /* bounded in time, not in tries: on a loaded machine jackd, and each jack_lsp that asks
     * for it, start slowly; the bound only guards against a server that hangs */
    int status;
    for (double end = tu_seconds() + 15; tu_seconds() < end; usleep(20000)) {
        if (jack_ready(name))
            return pid;
        if (wait_child(pid, WNOHANG, &status) == 1) {
            *taken = log_says(log, "already active");
            return 0;
        }
    }
    tu_stop(pid);
    return -1;
}

int tu_ended(pid_t pid) {
    char jack[128];
    snprintf(jack, sizeof jack, "%s", jack_name_of(pid));
    int status;
    if (pid <= 0 || wait_child(pid, WNOHANG, &status) == 0)
        return 0;
    if (jack[0])
        tu_jack_files_remove(jack);
    return 1;
}

pid_t tu_jackd_start(char *name, size_t size, int rate, int period) {
    char r[16], p[16], log[300];
    snprintf(r, sizeof r, "%d", rate);
    snprintf(p, sizeof p, "%d", period);
    const char *base = getenv("TMPDIR");
    snprintf(log, sizeof log, "%s/farmtest-jackd-XXXXXX", base && *base ? base : "/tmp");
    int fd = mkstemp(log);
    if (fd < 0) {
        perror("mkstemp");
        abort();
    }
    close(fd);
    for (int k = 0; k < JACK_NAMES; k++) {
        snprintf(name, size, "farmtest-%d", k);
        int taken = 0;
        pid_t pid = jackd_try(name, 1, r, p, log, &taken);
        if (pid == 0 && !taken) /* refused -R (no real-time here): the same name without */
            pid = jackd_try(name, 0, r, p, log, &taken);
        if (pid > 0) {
            unlink(log);
            return pid;
        }
        if (!taken)
            break;
    }
    char why[8192];
    slurp(log, why, sizeof why);
    unlink(log);
    fprintf(stderr, "jackd -d dummy did not start:\n%s\n", why);
    abort();
}

void tu_jackd_stop(pid_t pid) {
    tu_stop(pid);
}

double tu_number_after(const char *text, const char *label) {
    const char *p = strstr(text, label);
    if (p == NULL)
        return -1;
    return strtod(p + strlen(label), NULL);
}

int tu_wait_control_url(const char *dir, char *out, size_t size) {
    char path[600], buf[8192];
    snprintf(path, sizeof path, "%s/.stderr", dir);
    for (int i = 0; i < 500; i++) {
        slurp(path, buf, sizeof buf);
        const char *c = strstr(buf, "control "), *t = strstr(buf, "telemetry ");
        if (c && t && strchr(t, '\n')) {
            size_t n = strcspn(c + 8, " \n");
            if (n >= size)
                return 0;
            memcpy(out, c + 8, n);
            out[n] = '\0';
            return 1;
        }
        usleep(10000);
    }
    return 0;
}

int tu_children(pid_t parent, const char *name, pid_t *out, int max) {
    int n = 0;
    DIR *d = opendir("/proc");
    struct dirent *de;
    while (d != NULL && (de = readdir(d)) != NULL && n < max) {
        pid_t p = (pid_t)atoi(de->d_name);
        char path[64], line[256], comm[64] = "";
        if (p <= 0)
            continue;
        snprintf(path, sizeof path, "/proc/%d/status", p);
        FILE *f = fopen(path, "r");
        long ppid = -1;
        while (f && fgets(line, sizeof line, f)) {
            if (strncmp(line, "Name:", 5) == 0)
                sscanf(line + 5, "%63s", comm);
            if (strncmp(line, "PPid:", 5) == 0)
                ppid = atol(line + 5);
            if (strncmp(line, "State:", 6) == 0 && strchr(line, 'Z'))
                ppid = -1; /* a zombie is not alive */
        }
        if (f)
            fclose(f);
        if (ppid == parent && strcmp(comm, name) == 0)
            out[n++] = p;
    }
    if (d)
        closedir(d);
    return n;
}
