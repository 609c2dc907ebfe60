/* win_kill — the Windows side of tests/win_heal.sh: starts farm.exe, finds its workers (the
 * farm-worker.exe processes whose parent is that farm.exe, in a Toolhelp32 snapshot) and does to
 * them, or to farm.exe, what a failure would, with TerminateProcess. Under wine the process ids
 * are Windows ones, which a shell script cannot see: hence a program.
 *
 *   win_kill [--workers W] [--kill N] [--every MS] [--terminate-farm] -- FARM.EXE ARGS...
 *
 * --kill N: N times, once all W workers run and MS ms have passed since the last kill (or since
 *   they were first all seen), the worker that has run longest is terminated: the replacement of
 *   one worker is the newest, so the kills go round the workers.
 * --terminate-farm: once all W workers run and MS ms have passed, farm.exe itself is terminated;
 *   how long its workers outlive it is measured, both by waiting on their handles and by polling
 *   the snapshot. Fails (exit 1) when one is still there after a second.
 * In every case, once farm.exe has ended: the workers ever seen that are still running ("left").
 *
 * Lines starting "win_kill: " go to stdout; farm.exe's own output goes where this program's does.
 * Exit status: farm.exe's; with --terminate-farm 0; 1 when a worker was left running or
 * outlived the terminated farm.exe by a second, 3 on a usage or system error. */
#include <windows.h>
#include <tlhelp32.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>

#define MAX_SEEN 256
#define TERMINATED 137 /* as plat_win.c's TerminateProcess: a shell's 128 + SIGKILL */

typedef struct options {
    int workers, kill, every_ms, terminate_farm;
    char **argv; /* farm.exe and its arguments */
} options;

typedef struct worker {
    DWORD pid;
    ULONGLONG started; /* creation time, 100 ns units */
} worker;

static DWORD seen[MAX_SEEN];
static int n_seen;

static double now_ms(void) {
    static LARGE_INTEGER f;
    LARGE_INTEGER c;
    if (f.QuadPart == 0)
        QueryPerformanceFrequency(&f);
    QueryPerformanceCounter(&c);
    return 1e3 * (double)c.QuadPart / (double)f.QuadPart;
}

static void remember(DWORD pid) {
    for (int i = 0; i < n_seen; i++)
        if (seen[i] == pid)
            return;
    if (n_seen < MAX_SEEN)
        seen[n_seen++] = pid;
}

static ULONGLONG creation_time(DWORD pid) {
    HANDLE h = OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, FALSE, pid);
    FILETIME c, e, k, u;
    ULONGLONG t = ~0ull;
    if (h != NULL && GetProcessTimes(h, &c, &e, &k, &u))
        t = ((ULONGLONG)c.dwHighDateTime << 32) | c.dwLowDateTime;
    if (h != NULL)
        CloseHandle(h);
    return t;
}

/* The farm-worker.exe processes whose parent is farm (at most max), oldest first. */
static int workers_of(DWORD farm, worker *out, int max) {
    HANDLE snap = CreateToolhelp32Snapshot(TH32CS_SNAPPROCESS, 0);
    if (snap == INVALID_HANDLE_VALUE)
        return 0;
    PROCESSENTRY32W e = {.dwSize = sizeof e};
    int n = 0;
    for (BOOL ok = Process32FirstW(snap, &e); ok && n < max; ok = Process32NextW(snap, &e)) {
        if (e.th32ParentProcessID != farm || _wcsicmp(e.szExeFile, L"farm-worker.exe") != 0)
            continue;
        out[n++] = (worker){.pid = e.th32ProcessID, .started = creation_time(e.th32ProcessID)};
        remember(e.th32ProcessID);
    }
    CloseHandle(snap);
    for (int i = 1; i < n; i++) /* insertion sort: a handful */
        for (int j = i; j > 0 && out[j].started < out[j - 1].started; j--) {
            worker t = out[j];
            out[j] = out[j - 1];
            out[j - 1] = t;
        }
    return n;
}

/* argv as one command line, quoted the way CommandLineToArgvW reads it back. */
static int command_line(char **argv, char *out, size_t size) {
    size_t n = 0;
    for (int i = 0; argv[i] != NULL; i++) {
        int quote = argv[i][0] == '\0' || strpbrk(argv[i], " \t\"") != NULL;
        if (n + 4 >= size)
            return 0;
        if (i > 0)
            out[n++] = ' ';
        if (quote)
            out[n++] = '"';
        size_t slashes = 0;
        for (const char *c = argv[i]; *c != '\0'; c++) {
            if (n + 2 * slashes + 4 >= size)
                return 0;
            if (*c == '"')
                for (size_t s = 0; s < slashes + 1; s++)
                    out[n++] = '\\';
            slashes = *c == '\\' ? slashes + 1 : 0;
            out[n++] = *c;
        }
        if (quote) {
            for (size_t s = 0; s < slashes; s++)
                out[n++] = '\\';
            out[n++] = '"';
        }
    }
    out[n] = '\0';
    return 1;
}

static int usage(const char *why) {
    fprintf(stderr,
            "win_kill: %s\nusage: win_kill [--workers W] [--kill N] [--every MS] "
            "[--terminate-farm] -- FARM.EXE ARGS...\n",
            why);
    return 3;
}

static int parse(int argc, char **argv, options *o) {
    *o = (options){.workers = 2, .every_ms = 300};
    int i = 1;
    for (; i < argc && strcmp(argv[i], "--") != 0; i++) {
        if (strcmp(argv[i], "--terminate-farm") == 0)
            o->terminate_farm = 1;
        else if (i + 1 < argc && strcmp(argv[i], "--workers") == 0)
            o->workers = atoi(argv[++i]);
        else if (i + 1 < argc && strcmp(argv[i], "--kill") == 0)
            o->kill = atoi(argv[++i]);
        else if (i + 1 < argc && strcmp(argv[i], "--every") == 0)
            o->every_ms = atoi(argv[++i]);
        else
            return 0;
    }
    if (i + 1 >= argc || o->workers < 1 || o->workers > 64 || o->kill < 0 || o->every_ms < 0)
        return 0;
    o->argv = argv + i + 1;
    return 1;
}

/* Waits until farm has all its workers running (1), or has ended (0). */
static int all_running(HANDLE farm, DWORD pid, int want, worker *w) {
    for (;;) {
        if (WaitForSingleObject(farm, 0) == WAIT_OBJECT_0)
            return 0;
        if (workers_of(pid, w, 64) == want)
            return 1;
        Sleep(2);
    }
}

/* Waits ms while farm runs, noting the workers it starts meanwhile; 0 when farm ended. */
static int wait_running(HANDLE farm, DWORD pid, int ms) {
    worker w[64];
    for (double t0 = now_ms(); now_ms() - t0 < ms;) {
        if (WaitForSingleObject(farm, 2) == WAIT_OBJECT_0)
            return 0;
        workers_of(pid, w, 64);
    }
    return 1;
}

static void kill_workers(HANDLE farm, DWORD pid, const options *o) {
    worker w[64];
    int kills = 0;
    double t0 = now_ms(), last = 0;
    while (kills < o->kill && all_running(farm, pid, o->workers, w) &&
           wait_running(farm, pid, o->every_ms) && all_running(farm, pid, o->workers, w)) {
        HANDLE h = OpenProcess(PROCESS_TERMINATE, FALSE, w[0].pid);
        if (h != NULL && TerminateProcess(h, TERMINATED)) {
            kills++;
            last = now_ms() - t0;
            printf("win_kill: terminated worker pid %lu at %.0f ms\n", (unsigned long)w[0].pid,
                   last);
        }
        if (h != NULL)
            CloseHandle(h);
    }
    printf("win_kill: killed %d of %d\n", kills, o->kill);
    fflush(stdout);
}

/* Terminates farm with its workers running; 1 when they were gone within a second. */
static int terminate_farm(HANDLE farm, DWORD pid, const options *o) {
    worker w[64];
    if (!all_running(farm, pid, o->workers, w) || !wait_running(farm, pid, o->every_ms) ||
        !all_running(farm, pid, o->workers, w)) {
        printf("win_kill: farm ended before it could be terminated\n");
        return 0;
    }
    HANDLE h[64];
    for (int i = 0; i < o->workers; i++)
        h[i] = OpenProcess(SYNCHRONIZE, FALSE, w[i].pid);
    double t0 = now_ms();
    if (!TerminateProcess(farm, TERMINATED)) {
        printf("win_kill: cannot terminate farm.exe (error %lu)\n", GetLastError());
        return 0;
    }
    DWORD r = WaitForMultipleObjects((DWORD)o->workers, h, TRUE, 5000);
    double handles = now_ms() - t0;
    worker left[64];
    while (workers_of(pid, left, 64) > 0 && now_ms() - t0 < 5000)
        Sleep(1); /* 1 ms: this is the figure measured */
    double listed = now_ms() - t0;
    for (int i = 0; i < o->workers; i++)
        CloseHandle(h[i]);
    printf("win_kill: farm.exe terminated; its %d workers ended %.1f ms after it (their "
           "handles), none listed %.1f ms after it (snapshot)\n",
           o->workers, handles, listed);
    return r != WAIT_TIMEOUT && handles < 1000 && listed < 1000;
}

/* The workers ever seen that still run. */
static int still_running(void) {
    int n = 0;
    for (int i = 0; i < n_seen; i++) {
        HANDLE h = OpenProcess(SYNCHRONIZE, FALSE, seen[i]);
        if (h != NULL && WaitForSingleObject(h, 0) == WAIT_TIMEOUT) {
            printf("win_kill: worker pid %lu still runs\n", (unsigned long)seen[i]);
            n++;
        }
        if (h != NULL)
            CloseHandle(h);
    }
    return n;
}

int main(int argc, char **argv) {
    options o;
    if (!parse(argc, argv, &o))
        return usage("bad arguments");
    static char line[32768];
    if (!command_line(o.argv, line, sizeof line))
        return usage("command line too long");
    STARTUPINFOA si = {.cb = sizeof si};
    PROCESS_INFORMATION pi;
    if (!CreateProcessA(NULL, line, NULL, NULL, TRUE, 0, NULL, NULL, &si, &pi)) {
        fprintf(stderr, "win_kill: cannot start %s (error %lu)\n", o.argv[0], GetLastError());
        return 3;
    }
    CloseHandle(pi.hThread);
    int ok = 1;
    if (o.terminate_farm)
        ok = terminate_farm(pi.hProcess, pi.dwProcessId, &o);
    else if (o.kill > 0)
        kill_workers(pi.hProcess, pi.dwProcessId, &o);
    while (wait_running(pi.hProcess, pi.dwProcessId, 1000)) /* noting every worker started */
        ;
    DWORD code = 0;
    GetExitCodeProcess(pi.hProcess, &code);
    CloseHandle(pi.hProcess);
    int left = still_running();
    printf("win_kill: farm.exe exited with status %lu; %d workers seen, %d left running\n",
           (unsigned long)code, n_seen, left);
    fflush(stdout);
    if (!ok || left > 0)
        return 1;
    return o.terminate_farm ? 0 : (int)code;
}
