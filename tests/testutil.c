#define _GNU_SOURCE
#include "testutil.h"

#include <dirent.h>
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

void tu_tmpdir(char *out, size_t size) {
    const char *base = getenv("TMPDIR");
    snprintf(out, size, "%s/farm-test-XXXXXX", base && *base ? base : "/tmp");
    if (mkdtemp(out) == NULL) {
        perror("mkdtemp");
        abort();
    }
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

void tu_rmdir(const char *dir) {
    nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
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
    for (int i = 0; i < n_started; i++) {
        kill(started[i], SIGKILL); /* its workers follow by PR_SET_PDEATHSIG */
        waitpid(started[i], NULL, 0);
    }
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
    if (n_started < 32)
        started[n_started++] = pid;
    return pid;
}

void tu_farm_wait(tu_run *r, pid_t pid, const char *dir) {
    int status;
    while (waitpid(pid, &status, 0) < 0)
        ;
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

pid_t tu_jackd_start(char *name, size_t size, int rate, int period) {
    static int counter;
    snprintf(name, size, "farmtest-%ld-%d", (long)getpid(), counter++);
    char r[16], p[16];
    snprintf(r, sizeof r, "%d", rate);
    snprintf(p, sizeof p, "%d", period);
    for (int realtime = 1; realtime >= 0; realtime--) {
        const char *argv[] = {"jackd", "-n",    name,         realtime ? "-R" : "-r",
                              "-P",    "20",    "--port-max", "64",
                              "-d",    "dummy", "-r",         r,
                              "-p",    p,       "-m",         NULL};
        if (!realtime)
            argv[4] = NULL; /* no -P without -R */
        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
        posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
        posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
        pid_t pid;
        int rv = posix_spawnp(&pid, "jackd", &fa, NULL, (char **)argv, environ);
        posix_spawn_file_actions_destroy(&fa);
        if (rv != 0) {
            fprintf(stderr, "tests need jackd (Debian's jackd2): %s\n", strerror(rv));
            abort();
        }
        /* bounded in time, not in tries: on a loaded machine jackd, and each jack_lsp that
         * asks for it, start slowly */
        int exited = 0;
        for (double end = tu_seconds() + 15; !exited && tu_seconds() < end;) {
            if (jack_ready(name))
                return pid;
            exited = waitpid(pid, NULL, WNOHANG) == pid; /* refused -R: try without */
            if (!exited)
                usleep(20000);
        }
        if (!exited) { /* not one that exited: reaped, its pid may be another process's now */
            kill(pid, SIGKILL);
            waitpid(pid, NULL, 0);
        }
    }
    fprintf(stderr, "jackd -d dummy did not start\n");
    abort();
}

void tu_jackd_stop(pid_t pid) {
    kill(pid, SIGTERM);
    for (int i = 0; i < 200; i++) {
        if (waitpid(pid, NULL, WNOHANG) == pid)
            return;
        usleep(10000);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
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
