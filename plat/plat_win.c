/* plat on Windows (mingw-w64, winpthreads): an unnamed section, an auto-reset event per ring
 * direction, CreateProcessW suspended with a handle list and a kill-on-close job, MMCSS, the
 * performance counter and high-resolution waitable timers. shared/docs/windows-port.md records
 * what of it was seen to work under wine. */
#ifndef _WIN32_WINNT
#define _WIN32_WINNT 0x0A00 /* Windows 10: WaitOnAddress, high-resolution timers */
#endif
#include "plat.h"

#include <errno.h>
#include <fcntl.h>
#include <io.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* windows.h after the C headers: its macros (min, max, near, far) must not reach them. */
#include <windows.h>

#include <avrt.h>

#ifndef CREATE_WAITABLE_TIMER_HIGH_RESOLUTION
#define CREATE_WAITABLE_TIMER_HIGH_RESOLUTION 0x00000002
#endif

#define KILLED_STATUS 137 /* what TerminateProcess leaves: a shell's 128 + SIGKILL */
#define MAX_WAIT_PROCS (MAXIMUM_WAIT_OBJECTS - 1)

/* "what: The system cannot find the path specified (3)". */
static int win_fail(int code, const char *what) {
    DWORD err = GetLastError();
    char text[256] = "";
    FormatMessageA(FORMAT_MESSAGE_FROM_SYSTEM | FORMAT_MESSAGE_IGNORE_INSERTS, NULL, err, 0, text,
                   sizeof text, NULL);
    size_t n = strlen(text);
    while (n > 0 && (text[n - 1] == '\n' || text[n - 1] == '\r' || text[n - 1] == '.'))
        text[--n] = '\0';
    return farm_fail(code, "%s: %s (%lu)", what, n ? text : "Windows error", (unsigned long)err);
}

/* UTF-8 to UTF-16, for the W functions; 0 when it does not fit. */
static int widen(const char *s, wchar_t *out, int size) {
    return MultiByteToWideChar(CP_UTF8, 0, s, -1, out, size) > 0;
}

/* ---- the clock, sleeps and stop requests (declared in base.h) ---- */

uint64_t farm_now_ns(void) {
    static LARGE_INTEGER freq; /* constant from boot: racing first readers write the same */
    LARGE_INTEGER c;
    if (freq.QuadPart == 0)
        QueryPerformanceFrequency(&freq);
    QueryPerformanceCounter(&c);
    uint64_t f = (uint64_t)freq.QuadPart, n = (uint64_t)c.QuadPart;
    return n / f * FARM_NS_PER_S + n % f * FARM_NS_PER_S / f;
}

/* One high-resolution waitable timer per thread (Sleep's granularity is the 1-16 ms tick). */
static _Thread_local HANDLE sleep_timer;

void farm_sleep_ns(uint64_t ns) {
    if (sleep_timer == NULL) {
        sleep_timer = CreateWaitableTimerExW(NULL, NULL, CREATE_WAITABLE_TIMER_HIGH_RESOLUTION,
                                             TIMER_ALL_ACCESS);
        if (sleep_timer == NULL) /* before Windows 10 1803: an ordinary one */
            sleep_timer = CreateWaitableTimerExW(NULL, NULL, 0, TIMER_ALL_ACCESS);
    }
    LARGE_INTEGER due = {.QuadPart = -(LONGLONG)((ns + 99) / 100)}; /* relative, 100 ns units */
    if (sleep_timer != NULL && SetWaitableTimer(sleep_timer, &due, 0, NULL, NULL, FALSE))
        WaitForSingleObject(sleep_timer, INFINITE);
    else
        Sleep((DWORD)((ns + FARM_NS_PER_MS - 1) / FARM_NS_PER_MS));
}

/* winpthreads' clock_nanosleep(TIMER_ABSTIME) returns at once under wine: what is left,
 * measured again after every wake-up. */
void farm_sleep_until_ns(uint64_t deadline_ns) {
    for (uint64_t now = farm_now_ns(); now < deadline_ns; now = farm_now_ns())
        farm_sleep_ns(deadline_ns - now);
}

volatile sig_atomic_t farm_stop_signal;

static BOOL WINAPI on_console_event(DWORD type) {
    farm_stop_signal = type == CTRL_C_EVENT ? SIGINT : SIGTERM;
    return TRUE; /* handled: the program stops in order */
}

/* Local\farm-stop-PID: what `kill PID` is on Linux, for tests and service managers (a console
 * event cannot be sent to a process without a console, nor under wine). */
static DWORD WINAPI stop_event_main(LPVOID event) {
    if (WaitForSingleObject(event, INFINITE) == WAIT_OBJECT_0)
        farm_stop_signal = SIGTERM;
    return 0;
}

void farm_catch_stop_signals(void) {
    SetConsoleCtrlHandler(on_console_event, TRUE);
    wchar_t name[64];
    swprintf(name, 64, L"Local\\farm-stop-%lu", (unsigned long)GetCurrentProcessId());
    HANDLE event = CreateEventW(NULL, TRUE, FALSE, name);
    if (event == NULL)
        return;
    HANDLE t = CreateThread(NULL, 64 * 1024, stop_event_main, event, 0, NULL);
    if (t != NULL)
        CloseHandle(t); /* it lives as long as the process */
}

/* ---- the shared mapping ---- */

/* Inheritable, as the handle list requires; a child inherits only what its list names, and farm
 * starts processes only through plat_spawn. */
static SECURITY_ATTRIBUTES inheritable = {sizeof(SECURITY_ATTRIBUTES), NULL, TRUE};

int plat_map_create(size_t size, plat_map *out) {
    *out = (plat_map){.handle = PLAT_NO_HANDLE};
    HANDLE h = CreateFileMappingW(INVALID_HANDLE_VALUE, &inheritable, PAGE_READWRITE,
                                  (DWORD)((uint64_t)size >> 32), (DWORD)size, NULL);
    if (h == NULL)
        return win_fail(FARM_ESYS, "cannot create shared memory");
    void *p = MapViewOfFile(h, FILE_MAP_ALL_ACCESS, 0, 0, size);
    if (p == NULL) {
        int rv = win_fail(FARM_ESYS, "cannot map shared memory");
        CloseHandle(h);
        return rv;
    }
    *out = (plat_map){.base = p, .size = size, .handle = (plat_handle)h};
    return FARM_OK;
}

int plat_map_attach(plat_handle handle, plat_map *out) {
    *out = (plat_map){.handle = PLAT_NO_HANDLE};
    void *p = MapViewOfFile((HANDLE)handle, FILE_MAP_ALL_ACCESS, 0, 0, 0);
    if (p == NULL)
        return farm_fail(FARM_ESYS, "fd %ld: Windows error %lu", (long)handle,
                         (unsigned long)GetLastError());
    MEMORY_BASIC_INFORMATION mi;
    size_t size = VirtualQuery(p, &mi, sizeof mi) ? mi.RegionSize : 0; /* whole pages */
    *out = (plat_map){.base = p, .size = size, .handle = handle};
    return FARM_OK;
}

void plat_map_close(plat_map *m) {
    if (m->base != NULL)
        UnmapViewOfFile(m->base);
    if (m->handle != PLAT_NO_HANDLE && m->handle != 0)
        CloseHandle((HANDLE)m->handle);
    m->base = NULL;
    m->handle = PLAT_NO_HANDLE;
}

void *plat_pages_alloc(size_t size) {
    char *p = VirtualAlloc(NULL, size, MEM_COMMIT | MEM_RESERVE, PAGE_READWRITE);
    if (p == NULL) {
        errno = ENOMEM;
        return NULL;
    }
    SYSTEM_INFO si;
    GetSystemInfo(&si);
    for (size_t i = 0; i < size; i += si.dwPageSize) /* touched: no fault later */
        ((volatile char *)p)[i] = 0;
    return p;
}

void plat_pages_free(void *p, size_t size) {
    (void)size;
    if (p != NULL)
        VirtualFree(p, 0, MEM_RELEASE);
}

void *plat_aligned_alloc(size_t align, size_t size) {
    return _aligned_malloc(size, align);
}

void plat_aligned_free(void *p) {
    _aligned_free(p);
}

/* ---- wake-ups: WaitOnAddress wakes threads of one process only, so across processes an
 * auto-reset event per ring direction; set only when the peer sleeps (shm.c). ---- */

int plat_wake_create(uint64_t *id) {
    HANDLE e = CreateEventW(&inheritable, FALSE, FALSE, NULL);
    *id = (uint64_t)(uintptr_t)e;
    if (e == NULL)
        return win_fail(FARM_ESYS, "cannot make a wake-up event");
    return FARM_OK;
}

void plat_wake_destroy(uint64_t id) {
    if (id != 0)
        CloseHandle((HANDLE)(uintptr_t)id);
}

plat_handle plat_wake_handle(uint64_t id) {
    return id != 0 ? (plat_handle)id : PLAT_NO_HANDLE;
}

static DWORD to_ms(uint64_t ns) {
    uint64_t ms = (ns + FARM_NS_PER_MS - 1) / FARM_NS_PER_MS;
    return ms >= INFINITE ? INFINITE - 1 : (DWORD)ms;
}

void plat_wait(_Atomic uint32_t *word, uint32_t seen, uint64_t id, uint64_t timeout_ns) {
    if (id == 0) {
        WaitOnAddress((volatile void *)word, &seen, sizeof seen, to_ms(timeout_ns));
        return;
    }
    if (atomic_load_explicit(word, memory_order_seq_cst) != seen)
        return;
    WaitForSingleObject((HANDLE)(uintptr_t)id, to_ms(timeout_ns));
}

void plat_wake(_Atomic uint32_t *word, uint64_t id) {
    if (id == 0)
        WakeByAddressSingle((void *)word);
    else
        SetEvent((HANDLE)(uintptr_t)id);
}

/* ---- processes ---- */

plat_handle plat_child_handle(const plat_handle *inherit, size_t i) {
    return inherit[i]; /* an inherited handle keeps its value */
}

static HANDLE job;

/* One job for all the workers: when the coordinator ends, however, its last handle to the job
 * closes and every worker in it is killed. */
static BOOL CALLBACK make_job(PINIT_ONCE once, PVOID param, PVOID *ctx) {
    (void)once, (void)param, (void)ctx;
    job = CreateJobObjectW(NULL, NULL);
    JOBOBJECT_EXTENDED_LIMIT_INFORMATION li = {0};
    li.BasicLimitInformation.LimitFlags = JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE;
    if (job != NULL &&
        !SetInformationJobObject(job, JobObjectExtendedLimitInformation, &li, sizeof li)) {
        CloseHandle(job);
        job = NULL;
    }
    return TRUE;
}

/* argv as one command line, each argument quoted the way CommandLineToArgvW reads it. */
static int command_line(char *const argv[], wchar_t *out, size_t size) {
    char line[8192];
    size_t n = 0;
    for (size_t i = 0; argv[i] != NULL; i++) {
        int quote = argv[i][0] == '\0' || strpbrk(argv[i], " \t\"") != NULL;
        if (n + 2 >= sizeof line)
            return 0;
        if (i > 0)
            line[n++] = ' ';
        if (quote)
            line[n++] = '"';
        for (const char *c = argv[i]; *c != '\0' && n + 4 < sizeof line; c++) {
            if (*c == '"')
                line[n++] = '\\';
            line[n++] = *c;
        }
        if (quote)
            line[n++] = '"';
    }
    line[n] = '\0';
    return widen(line, out, (int)size);
}

/* The child's standard handles: stdin on NUL, stdout and stderr the coordinator's. */
static int std_handles(HANDLE out[3]) {
    HANDLE self = GetCurrentProcess();
    out[0] = CreateFileW(L"NUL", GENERIC_READ, FILE_SHARE_READ | FILE_SHARE_WRITE, &inheritable,
                         OPEN_EXISTING, 0, NULL);
    for (int i = 1; i < 3; i++) {
        HANDLE h = GetStdHandle(i == 1 ? STD_OUTPUT_HANDLE : STD_ERROR_HANDLE);
        out[i] = NULL;
        if (h != NULL && h != INVALID_HANDLE_VALUE)
            DuplicateHandle(self, h, self, &out[i], 0, TRUE, DUPLICATE_SAME_ACCESS);
    }
    return out[0] != INVALID_HANDLE_VALUE;
}

static void close_std(HANDLE std[3]) {
    for (int i = 0; i < 3; i++)
        if (std[i] != NULL && std[i] != INVALID_HANDLE_VALUE)
            CloseHandle(std[i]);
}

/* The attribute list naming exactly the handles the child inherits. */
static LPPROC_THREAD_ATTRIBUTE_LIST handle_list(HANDLE *handles, size_t n) {
    SIZE_T bytes = 0;
    InitializeProcThreadAttributeList(NULL, 1, 0, &bytes);
    LPPROC_THREAD_ATTRIBUTE_LIST list = malloc(bytes);
    if (list == NULL || !InitializeProcThreadAttributeList(list, 1, 0, &bytes)) {
        free(list);
        return NULL;
    }
    if (!UpdateProcThreadAttribute(list, 0, PROC_THREAD_ATTRIBUTE_HANDLE_LIST, handles,
                                   n * sizeof(HANDLE), NULL, NULL)) {
        DeleteProcThreadAttributeList(list);
        free(list);
        return NULL;
    }
    return list;
}

/* Started suspended, put in the job, then resumed: it never runs outside the job. */
static int start_in_job(const wchar_t *path, wchar_t *line, STARTUPINFOEXW *si,
                        PROCESS_INFORMATION *pi) {
    static INIT_ONCE once = INIT_ONCE_STATIC_INIT;
    InitOnceExecuteOnce(&once, make_job, NULL, NULL);
    DWORD flags = CREATE_SUSPENDED | EXTENDED_STARTUPINFO_PRESENT | CREATE_NEW_PROCESS_GROUP;
    if (!CreateProcessW(path, line, NULL, NULL, TRUE, flags, NULL, NULL, &si->StartupInfo, pi))
        return 0;
    if (job == NULL || !AssignProcessToJobObject(job, pi->hProcess)) {
        DWORD err = GetLastError();
        TerminateProcess(pi->hProcess, KILLED_STATUS);
        CloseHandle(pi->hThread);
        CloseHandle(pi->hProcess);
        SetLastError(err);
        return 0;
    }
    ResumeThread(pi->hThread);
    CloseHandle(pi->hThread);
    return 1;
}

int plat_spawn(const char *path, char *const argv[], const plat_handle *inherit, size_t n,
               plat_proc *out) {
    *out = (plat_proc){.pid = -1, .watch = PLAT_NO_HANDLE, .stats = PLAT_NO_HANDLE};
    static wchar_t wpath[PLAT_PATH_MAX], line[8192]; /* the supervisor's threads, one at a time */
    HANDLE handles[16], std[3] = {NULL, NULL, NULL};
    if (n + 3 > sizeof handles / sizeof handles[0])
        return farm_fail(FARM_EINVAL, "%zu handles to pass on: at most 13", n);
    if (!widen(path, wpath, PLAT_PATH_MAX) || !command_line(argv, line, 8192))
        return farm_fail(FARM_EUSAGE, "%s: path or arguments too long", path);
    if (!std_handles(std))
        return win_fail(FARM_ESYS, "cannot open NUL");
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        handles[k++] = (HANDLE)inherit[i];
    for (int i = 0; i < 3; i++)
        if (std[i] != NULL)
            handles[k++] = std[i];
    STARTUPINFOEXW si = {.StartupInfo = {.cb = sizeof si, .dwFlags = STARTF_USESTDHANDLES}};
    si.StartupInfo.hStdInput = std[0];
    si.StartupInfo.hStdOutput = std[1];
    si.StartupInfo.hStdError = std[2];
    si.lpAttributeList = handle_list(handles, k);
    PROCESS_INFORMATION pi;
    int ok = si.lpAttributeList != NULL && start_in_job(wpath, line, &si, &pi);
    int rv = ok ? FARM_OK : win_fail(FARM_EUSAGE, path);
    if (si.lpAttributeList != NULL) {
        DeleteProcThreadAttributeList(si.lpAttributeList);
        free(si.lpAttributeList);
    }
    close_std(std);
    if (ok) {
        out->pid = (long)pi.dwProcessId;
        out->watch = (plat_handle)pi.hProcess;
    }
    return rv;
}

int plat_proc_reap(plat_proc *p, int block, plat_exit *e) {
    if (p->watch == PLAT_NO_HANDLE) {
        *e = (plat_exit){0};
        return 1;
    }
    if (WaitForSingleObject((HANDLE)p->watch, block ? INFINITE : 0) != WAIT_OBJECT_0)
        return 0;
    DWORD code = 0;
    *e = (plat_exit){.known = GetExitCodeProcess((HANDLE)p->watch, &code) != 0};
    e->code = (int)code;
    return 1;
}

void plat_proc_kill(const plat_proc *p) {
    if (p->watch != PLAT_NO_HANDLE)
        TerminateProcess((HANDLE)p->watch, KILLED_STATUS);
}

void plat_proc_release(plat_proc *p) {
    if (p->watch != PLAT_NO_HANDLE && p->watch != 0)
        CloseHandle((HANDLE)p->watch);
    p->watch = p->stats = PLAT_NO_HANDLE;
}

/* Windows keeps no time spent waiting for a CPU: unknown, so a stall counts from the last
 * block, as on a Linux without schedstat. */
int plat_proc_cpu_times(const plat_proc *p, uint64_t *ran, uint64_t *waited) {
    (void)p;
    *ran = *waited = 0;
    return 0;
}

void plat_wait_procs(plat_handle notifier, plat_proc *const procs[], size_t n,
                     uint32_t timeout_ms) {
    HANDLE h[MAXIMUM_WAIT_OBJECTS];
    DWORD k = 0;
    if (notifier != PLAT_NO_HANDLE)
        h[k++] = (HANDLE)notifier;
    /* past 63 workers the others are seen at the tick */
    for (size_t i = 0; i < n && k < MAXIMUM_WAIT_OBJECTS; i++)
        if (procs[i]->watch != PLAT_NO_HANDLE)
            h[k++] = (HANDLE)procs[i]->watch;
    if (k == 0)
        Sleep(timeout_ms);
    else
        WaitForMultipleObjects(k, h, FALSE, timeout_ms);
}

const char *plat_exit_describe(const plat_exit *e, char *buf, size_t size) {
    unsigned code = (unsigned)e->code;
    if (!e->known)
        snprintf(buf, size, "ended");
    else if (code >= 0xC0000000u) /* an NTSTATUS: an exception nobody caught */
        snprintf(buf, size, "crashed (exception %#x)", code);
    else if (code == KILLED_STATUS)
        snprintf(buf, size, "was terminated (status %u)", code);
    else
        snprintf(buf, size, "exited with status %u", code);
    return buf;
}

int plat_exit_clean(const plat_exit *e) {
    return e->known && e->code == 0;
}

int plat_notifier_open(plat_handle *out) {
    HANDLE e = CreateEventW(NULL, TRUE, FALSE, NULL);
    *out = e != NULL ? (plat_handle)e : PLAT_NO_HANDLE;
    return e != NULL ? FARM_OK : win_fail(FARM_ESYS, "cannot make the supervisor's event");
}

void plat_notify(plat_handle notifier) {
    if (notifier != PLAT_NO_HANDLE)
        SetEvent((HANDLE)notifier);
}

void plat_notifier_close(plat_handle notifier) {
    if (notifier != PLAT_NO_HANDLE && notifier != 0)
        CloseHandle((HANDLE)notifier);
}

long plat_self_pid(void) {
    return (long)GetCurrentProcessId();
}

/* The job kills a worker with its coordinator; this only checks that the coordinator did not
 * end before the worker was put in it. */
int plat_die_with_parent(long parent) {
    /* A crash shows no dialog and waits for nobody (Windows Error Reporting would keep the
     * crashed worker alive until someone dismissed it, and the farm waiting for its death). */
    SetErrorMode(GetErrorMode() | SEM_FAILCRITICALERRORS | SEM_NOGPFAULTERRORBOX);
    HANDLE h = OpenProcess(SYNCHRONIZE, FALSE, (DWORD)parent);
    if (h == NULL)
        return 0;
    int alive = WaitForSingleObject(h, 0) == WAIT_TIMEOUT;
    CloseHandle(h);
    return alive;
}

void plat_crash_self(int sig) {
    /* raise(SIGSEGV) would be the C library's _exit(3); a crash is an exception */
    if (sig == SIGSEGV)
        RaiseException(EXCEPTION_ACCESS_VIOLATION, EXCEPTION_NONCONTINUABLE, 0, NULL);
    raise(sig);
}

int plat_exe_dir(char *out, size_t size) {
    wchar_t w[PLAT_PATH_MAX];
    DWORD n = GetModuleFileNameW(NULL, w, PLAT_PATH_MAX);
    if (n == 0 || n >= PLAT_PATH_MAX)
        return win_fail(FARM_EUSAGE, "cannot find farm's own path");
    if (WideCharToMultiByte(CP_UTF8, 0, w, -1, out, (int)size, NULL, NULL) == 0)
        return farm_fail(FARM_EUSAGE, "farm's own path is too long");
    char *slash = strrchr(out, '\\');
    if (slash != NULL)
        *slash = '\0';
    return FARM_OK;
}

int plat_executable(const char *path) {
    wchar_t w[PLAT_PATH_MAX];
    DWORD a = widen(path, w, PLAT_PATH_MAX) ? GetFileAttributesW(w) : INVALID_FILE_ATTRIBUTES;
    errno = ENOENT;
    return a != INVALID_FILE_ATTRIBUTES && !(a & FILE_ATTRIBUTE_DIRECTORY);
}

/* ---- CPUs, priority, memory: one processor group (64 CPUs) ---- */

void plat_cpus_allowed(plat_cpuset *out) {
    DWORD_PTR mine = 0, system = 0;
    plat_cpuset_zero(out);
    if (!GetProcessAffinityMask(GetCurrentProcess(), &mine, &system) || mine == 0)
        mine = 1;
    out->bits[0] = (uint64_t)mine;
}

int plat_pin_self(int cpu) {
    if (cpu < 0 || cpu >= 64 || SetThreadAffinityMask(GetCurrentThread(), 1ull << cpu) == 0) {
        errno = EINVAL;
        return 0;
    }
    return 1;
}

int plat_pin_thread(pthread_t t, const plat_cpuset *s) {
    HANDLE h = pthread_gethandle(t);
    if (h == NULL || s->bits[0] == 0 || SetThreadAffinityMask(h, (DWORD_PTR)s->bits[0]) == 0) {
        errno = EINVAL;
        return 0;
    }
    return 1;
}

/* A whole process: its priority class (REALTIME_PRIORITY_CLASS needs an administrator, and
 * would starve the system's own audio service). */
int plat_proc_set_priority(long pid, int prio) {
    HANDLE h = OpenProcess(PROCESS_SET_INFORMATION, FALSE, (DWORD)pid);
    int ok =
        h != NULL && SetPriorityClass(h, prio > 0 ? HIGH_PRIORITY_CLASS : NORMAL_PRIORITY_CLASS);
    if (h != NULL)
        CloseHandle(h);
    if (!ok)
        errno = EPERM;
    return ok;
}

typedef struct rt_start {
    void *(*fn)(void *);
    void *arg;
} rt_start;

/* MMCSS is asked for by the thread itself: "Pro Audio", at its critical priority. */
static void *rt_main(void *p) {
    rt_start s = *(rt_start *)p;
    free(p);
    DWORD task = 0;
    HANDLE mm = AvSetMmThreadCharacteristicsW(L"Pro Audio", &task);
    if (mm != NULL)
        AvSetMmThreadPriority(mm, AVRT_PRIORITY_CRITICAL);
    else
        SetThreadPriority(GetCurrentThread(), THREAD_PRIORITY_TIME_CRITICAL);
    void *rv = s.fn(s.arg);
    if (mm != NULL)
        AvRevertMmThreadCharacteristics(mm);
    return rv;
}

int plat_thread_start(pthread_t *t, size_t stack, int prio, void *(*fn)(void *), void *arg,
                      const char *who) {
    rt_start *s = prio > 0 ? malloc(sizeof *s) : NULL;
    if (s != NULL)
        *s = (rt_start){fn, arg};
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, stack);
    int rv = s != NULL ? pthread_create(t, &attr, rt_main, s) : pthread_create(t, &attr, fn, arg);
    pthread_attr_destroy(&attr);
    if (rv != 0) {
        free(s);
        return farm_fail(FARM_EFAIL, "cannot start %s's thread: %s", who, strerror(rv));
    }
    return FARM_OK;
}

int plat_thread_priority(pthread_t t, const char **policy) {
    HANDLE h = pthread_gethandle(t);
    int p = h != NULL ? GetThreadPriority(h) : THREAD_PRIORITY_NORMAL;
    if (p == THREAD_PRIORITY_ERROR_RETURN || p < THREAD_PRIORITY_HIGHEST) {
        *policy = "normal";
        return 0;
    }
    *policy = p >= THREAD_PRIORITY_TIME_CRITICAL ? "MMCSS Pro Audio" : "high";
    return p; /* 2 (highest) .. 15 (time critical) */
}

/* The working set raised to hold what is committed now and some room, then every committed
 * read-write region locked. Later allocations are not: Windows has no MCL_FUTURE. */
int plat_lock_memory(void) {
    MEMORY_BASIC_INFORMATION mi;
    size_t committed = 0;
    char *a = NULL;
    while (VirtualQuery(a, &mi, sizeof mi) == sizeof mi) {
        if (mi.State == MEM_COMMIT && mi.Protect == PAGE_READWRITE)
            committed += mi.RegionSize;
        a = (char *)mi.BaseAddress + mi.RegionSize;
    }
    size_t room = committed + 64u * 1024 * 1024;
    if (!SetProcessWorkingSetSize(GetCurrentProcess(), room, room * 2)) {
        errno = EPERM;
        return 0;
    }
    int ok = 1;
    for (a = NULL; VirtualQuery(a, &mi, sizeof mi) == sizeof mi;
         a = (char *)mi.BaseAddress + mi.RegionSize)
        if (mi.State == MEM_COMMIT && mi.Protect == PAGE_READWRITE)
            ok &= VirtualLock(mi.BaseAddress, mi.RegionSize) != 0;
    return ok;
}

void plat_thread_defaults(size_t stack) {
    (void)stack; /* no memory is locked for threads' stacks here */
}

void plat_unlock_memory(void) {
    /* the locks end with the process, a moment after this is called */
}

/* ---- files and names ---- */

int plat_replace_file(const char *from, const char *to) {
    wchar_t wf[PLAT_PATH_MAX], wt[PLAT_PATH_MAX];
    if (!widen(from, wf, PLAT_PATH_MAX) || !widen(to, wt, PLAT_PATH_MAX) ||
        !MoveFileExW(wf, wt, MOVEFILE_REPLACE_EXISTING | MOVEFILE_WRITE_THROUGH))
        return farm_fail(FARM_EFAIL, "cannot rename %s to %s: Windows error %lu", from, to,
                         (unsigned long)GetLastError());
    return FARM_OK;
}

/* errno for what CreateFileW said, so that the message reads as the POSIX build's. */
static int errno_of(DWORD err) {
    switch (err) {
    case ERROR_FILE_NOT_FOUND:
    case ERROR_PATH_NOT_FOUND:
    case ERROR_INVALID_NAME:
        return ENOENT;
    case ERROR_ACCESS_DENIED:
    case ERROR_SHARING_VIOLATION:
        return EACCES;
    case ERROR_DISK_FULL:
    case ERROR_HANDLE_DISK_FULL:
        return ENOSPC;
    case ERROR_WRITE_PROTECT:
        return EROFS;
    default:
        return EIO;
    }
}

/* The file is marked for deletion as soon as it exists (delete-on-close by disposition, not by
 * FILE_FLAG_DELETE_ON_CLOSE, which cannot be taken back before Windows 10 1709): a farm ended
 * by TerminateProcess or a crash leaves no temporary beside its target. */
static HANDLE create_doomed(const wchar_t *w) {
    HANDLE h = CreateFileW(w, GENERIC_READ | GENERIC_WRITE | DELETE,
                           FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE, NULL, CREATE_NEW,
                           FILE_ATTRIBUTE_NORMAL, NULL);
    if (h == INVALID_HANDLE_VALUE)
        return h;
    FILE_DISPOSITION_INFO d = {.DeleteFile = TRUE};
    if (!SetFileInformationByHandle(h, FileDispositionInfo, &d, sizeof d)) {
        DWORD err = GetLastError();
        CloseHandle(h);
        DeleteFileW(w);
        SetLastError(err);
        return INVALID_HANDLE_VALUE;
    }
    return h;
}

int plat_temp_create(char *tmpl, const char *name, int *fd) {
    static const char letters[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    size_t len = strlen(tmpl);
    wchar_t w[PLAT_PATH_MAX];
    *fd = -1;
    if (len < 6 || strcmp(tmpl + len - 6, "XXXXXX") != 0)
        return farm_fail(FARM_EINVAL, "%s: no XXXXXX to fill", tmpl);
    DWORD err = ERROR_FILE_EXISTS;
    for (uint64_t attempt = 0; attempt < 100 && err == ERROR_FILE_EXISTS; attempt++) {
        LARGE_INTEGER c;
        QueryPerformanceCounter(&c);
        uint64_t x = ((uint64_t)c.QuadPart + attempt) * 6364136223846793005ull +
                     GetCurrentProcessId() * 1442695040888963407ull;
        for (size_t i = 0; i < 6; i++, x /= 62)
            tmpl[len - 6 + i] = letters[(x >> 7) % 62];
        if (!widen(tmpl, w, PLAT_PATH_MAX)) {
            errno = ENAMETOOLONG;
            return farm_fail(FARM_EUSAGE, "cannot write %s: path too long", name);
        }
        HANDLE h = create_doomed(w);
        err = h == INVALID_HANDLE_VALUE ? GetLastError() : ERROR_SUCCESS;
        if (err == ERROR_SUCCESS && (*fd = _open_osfhandle((intptr_t)h, _O_BINARY)) < 0) {
            CloseHandle(h);
            err = ERROR_TOO_MANY_OPEN_FILES;
        }
    }
    if (err == ERROR_SUCCESS)
        return FARM_OK;
    errno = err == ERROR_TOO_MANY_OPEN_FILES ? EMFILE : errno_of(err);
    return farm_fail(FARM_EUSAGE, "cannot write %s: %s", name, strerror(errno));
}

int plat_temp_keep(int fd, const char *name) {
    FILE_DISPOSITION_INFO d = {.DeleteFile = FALSE};
    HANDLE h = (HANDLE)_get_osfhandle(fd);
    if (h == INVALID_HANDLE_VALUE ||
        !SetFileInformationByHandle(h, FileDispositionInfo, &d, sizeof d))
        return farm_fail(FARM_EFAIL, "cannot keep %s: Windows error %lu", name,
                         (unsigned long)GetLastError());
    return FARM_OK;
}

/* Read wide and kept as UTF-8, as every path farm hands plat is: getenv's bytes would be the
 * ANSI code page's, which a user name outside it would not survive. */
void plat_runtime_dir(char *out, size_t size) {
    const wchar_t *local = _wgetenv(L"LOCALAPPDATA");
    char dir[PLAT_PATH_MAX];
    if (local == NULL || local[0] == L'\0' ||
        WideCharToMultiByte(CP_UTF8, 0, local, -1, dir, (int)sizeof dir, NULL, NULL) == 0)
        snprintf(dir, sizeof dir, ".");
    snprintf(out, size, "%s\\farm", dir);
}

/* %LOCALAPPDATA% is the user's own: a directory made in it inherits an ACL that only the user
 * (and the system, and administrators) may enter. */
int plat_private_dir(const char *path) {
    wchar_t w[PLAT_PATH_MAX];
    if (!widen(path, w, PLAT_PATH_MAX))
        return farm_fail(FARM_EFAIL, "cannot create %s: path too long", path);
    if (!CreateDirectoryW(w, NULL) && GetLastError() != ERROR_ALREADY_EXISTS)
        return farm_fail(FARM_EFAIL, "cannot create %s: Windows error %lu", path,
                         (unsigned long)GetLastError());
    DWORD a = GetFileAttributesW(w);
    if (a == INVALID_FILE_ATTRIBUTES || !(a & FILE_ATTRIBUTE_DIRECTORY) ||
        (a & FILE_ATTRIBUTE_REPARSE_POINT))
        return farm_fail(FARM_EFAIL, "%s must be a directory that only you can enter", path);
    return FARM_OK;
}

int plat_pid_alive(long pid) {
    if (pid <= 0)
        return 0;
    HANDLE h = OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, FALSE, (DWORD)pid);
    if (h == NULL)
        return GetLastError() == ERROR_ACCESS_DENIED; /* someone else's */
    DWORD code = 0;
    int alive = GetExitCodeProcess(h, &code) && code == STILL_ACTIVE;
    CloseHandle(h);
    return alive;
}

plat_path_kind plat_path_kind_of(const char *path) {
    wchar_t w[PLAT_PATH_MAX];
    if (!widen(path, w, PLAT_PATH_MAX))
        return PLAT_PATH_NONE;
    DWORD a = GetFileAttributesW(w);
    if (a == INVALID_FILE_ATTRIBUTES)
        return PLAT_PATH_NONE;
    return (a & (FILE_ATTRIBUTE_DIRECTORY | FILE_ATTRIBUTE_REPARSE_POINT | FILE_ATTRIBUTE_DEVICE))
               ? PLAT_PATH_OTHER
               : PLAT_PATH_FILE;
}

int plat_remove_file(const char *path) {
    wchar_t w[PLAT_PATH_MAX];
    if (!widen(path, w, PLAT_PATH_MAX))
        return farm_fail(FARM_EFAIL, "cannot remove %s: path too long", path);
    if (!DeleteFileW(w) && GetLastError() != ERROR_FILE_NOT_FOUND)
        return win_fail(FARM_EFAIL, path);
    return FARM_OK;
}

int plat_list_dir(const char *dir, int (*each)(const char *name, void *arg), void *arg) {
    char pattern[PLAT_PATH_MAX];
    wchar_t w[PLAT_PATH_MAX];
    snprintf(pattern, sizeof pattern, "%s\\*", dir);
    if (!widen(pattern, w, PLAT_PATH_MAX))
        return farm_fail(FARM_EFAIL, "cannot read %s: path too long", dir);
    WIN32_FIND_DATAW f;
    HANDLE h = FindFirstFileW(w, &f);
    if (h == INVALID_HANDLE_VALUE) {
        DWORD e = GetLastError();
        return e == ERROR_FILE_NOT_FOUND || e == ERROR_PATH_NOT_FOUND ? FARM_OK
                                                                      : win_fail(FARM_EFAIL, dir);
    }
    do {
        char name[1024];
        if (WideCharToMultiByte(CP_UTF8, 0, f.cFileName, -1, name, sizeof name, NULL, NULL) == 0)
            continue; /* a name farm did not write */
        if (strcmp(name, ".") != 0 && strcmp(name, "..") != 0 && each(name, arg))
            break;
    } while (FindNextFileW(h, &f));
    FindClose(h);
    return FARM_OK;
}

/* ---- the standard error stream, the environment ---- */

/* The C library's descriptors: _dup2 onto 2 also points STD_ERROR_HANDLE at the null device. */
int plat_stderr_silence(void) {
    fflush(stderr);
    int saved = _dup(2);
    int nul = _open("NUL", _O_WRONLY | _O_NOINHERIT);
    if (saved < 0 || nul < 0) {
        if (saved >= 0)
            _close(saved);
        if (nul >= 0)
            _close(nul);
        return -1;
    }
    int moved = _dup2(nul, 2);
    _close(nul);
    if (moved < 0) {
        _close(saved);
        return -1;
    }
    return saved;
}

void plat_stderr_restore(int saved) {
    if (saved < 0)
        return;
    fflush(stderr);
    if (_dup2(saved, 2) < 0)
        perror("farm: cannot restore stderr");
    _close(saved);
}

void plat_env_default(const char *name, const char *value) {
    if (getenv(name) == NULL)
        _putenv_s(name, value);
}
