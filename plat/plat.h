/* plat — everything farm asks of the operating system, behind one header: the shared mapping,
 * wake-ups between processes, starting and watching the workers, pinning, real-time priority,
 * memory locking, the clock (base.h's farm_now_ns and sleeps are defined here), stop requests,
 * the runtime directory and atomic file replacement. plat_linux.c is today's farm; plat_win.c
 * the same contract on Windows (mingw-w64). No other module includes a system-specific header.
 *
 * Contract
 * - A plat_handle is what a process holds of an object: a file descriptor on Linux, a HANDLE on
 *   Windows. A child gets exactly the handles plat_spawn is given (and the standard three):
 *   on Linux every descriptor plat makes is close-on-exec and the spawn closes all others; on
 *   Windows the mapping and the events are inheritable, as PROC_THREAD_ATTRIBUTE_HANDLE_LIST
 *   requires, and each child's list names only its own.
 * - The shared mapping is anonymous (a sealed memfd; an unnamed section): nothing on a file
 *   system, gone with the last process that maps it. Fresh pages read as zero.
 * - Wake-ups: plat_wait sleeps until *word differs from seen, a plat_wake, or the timeout,
 * whichever comes first; it may also return early for no reason, so callers re-check their
 * condition in a loop. A wake-up is tied to the word (futex) and, across processes on Windows, to
 * the event id that plat_wake_create made (id 0: within one process). Both are real-time safe: no
 * allocation, no lock, a bounded system call.
 * - Processes: plat_spawn starts PATH with argv, exactly the handles in `inherit` (the child finds
 *   inherit[i] as plat_child_handle(inherit, i)), stdin on the null device, in a process group of
 *   its own (a terminal's Ctrl-C reaches only the coordinator), default signal dispositions. A
 * child that calls plat_die_with_parent dies when the coordinator does, however it ends (PDEATHSIG;
 * a job object with KILL_ON_JOB_CLOSE on Windows, which every child is put in before it runs).
 * - Refusals that are answers, not failures (pinning, priority, memory locking) return 1 when
 *   granted and 0 when refused, set errno, and leave the thread's farm_fail message alone.
 *   Everything else that can fail returns FARM_OK or a farm_status code with farm_fail's message
 *   (base.h).
 * - Threads: any, except where a function says otherwise. plat_wait, plat_wake and the clock are
 *   the only ones for real-time paths.
 *
 * What a macOS implementation (plat_mac.c) would need, from shared/docs/windows-port.md:
 * - mapping: shm_open(O_EXCL) of a random name, shm_unlink at once, ftruncate, mmap; the
 *   descriptor passed by posix_spawn as on Linux (no sealing: the size is fixed by the creator).
 * - wake-ups: os_sync_wait_on_address / os_sync_wake_by_address_any with the SHARED flag (macOS
 *   14.4+), or a named semaphore per direction before that.
 * - spawn, reap, kill: as Linux (posix_spawn, waitpid, kill); no pidfd: a kqueue EVFILT_PROC
 *   NOTE_EXIT per worker for plat_wait_procs.
 * - dying with the parent: no PDEATHSIG; kqueue EVFILT_PROC on the parent, or EOF on a pipe whose
 *   other end only the parent holds, watched by a thread of the worker.
 * - pinning: none (thread_policy_set THREAD_AFFINITY_POLICY is a hint only): plat_pin_* refuse.
 * - real-time priority: THREAD_TIME_CONSTRAINT_POLICY (period, computation, constraint from the
 *   block period) and the audio device's workgroup (os_workgroup_join) for the stream thread.
 * - memory locking: mlock of the ranges that matter (mlockall is not there).
 * - the clock: mach_absolute_time with mach_timebase_info; mach_wait_until for absolute sleeps.
 * - stop requests, runtime directory, file replacement: as Linux (signals, ipc:// paths in a 0700
 *   directory, but sun_path holds 104 bytes; rename).
 * - the executable's path: _NSGetExecutablePath; CPU times of a worker: proc_pidinfo.
 */
#ifndef FARM_PLAT_H
#define FARM_PLAT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "base.h"

#define PLAT_PATH_MAX 4096 /* room for a path (Linux's PATH_MAX; Windows' long paths) */

typedef intptr_t plat_handle; /* a file descriptor, or a HANDLE */
#define PLAT_NO_HANDLE ((plat_handle)-1)

/* What a program's file name ends with: farm-worker beside farm, farm-worker.exe beside farm.exe.
 */
#ifdef _WIN32
#define PLAT_EXE_SUFFIX ".exe"
#else
#define PLAT_EXE_SUFFIX ""
#endif

/* ---- the shared mapping ---- */

typedef struct plat_map {
    void *base;
    size_t size;
    plat_handle handle; /* PLAT_NO_HANDLE once closed */
} plat_map;

/* size bytes, read-write, zeroed, of fixed size. */
int plat_map_create(size_t size, plat_map *out);
/* The whole mapping that handle (inherited from the creator) names; out->size its size. */
int plat_map_attach(plat_handle handle, plat_map *out);
/* Unmaps and closes the handle; safe on a closed or zeroed map. */
void plat_map_close(plat_map *m);

/* Private, zeroed, already-touched memory for a real-time path (no page fault there later). */
void *plat_pages_alloc(size_t size);
void plat_pages_free(void *p, size_t size);

/* size bytes of the heap aligned to align (a power of two that divides size), or NULL; freed
 * only with plat_aligned_free (Windows' C runtime has no aligned_alloc, and its free() cannot
 * release what _aligned_malloc returns). NULL is fine to free. */
void *plat_aligned_alloc(size_t align, size_t size);
void plat_aligned_free(void *p);

/* ---- wake-ups ---- */

/* What wakes a sleeper in another process: 0 where the word alone does (Linux), an inheritable
 * auto-reset event on Windows. */
int plat_wake_create(uint64_t *id);
void plat_wake_destroy(uint64_t id);
/* The handle a child must inherit for id, or PLAT_NO_HANDLE when there is none. */
plat_handle plat_wake_handle(uint64_t id);
void plat_wait(_Atomic uint32_t *word, uint32_t seen, uint64_t id, uint64_t timeout_ns);
void plat_wake(_Atomic uint32_t *word, uint64_t id);

/* ---- processes ---- */

typedef struct plat_proc {
    long pid;
    plat_handle watch; /* pidfd or process handle: plat_wait_procs; PLAT_NO_HANDLE */
    plat_handle stats; /* /proc/PID/schedstat; PLAT_NO_HANDLE */
} plat_proc;

/* How a process ended. */
typedef struct plat_exit {
    int code;   /* its exit status, when it exited */
    int signal; /* the signal that killed it, 0 when it exited */
    int known;  /* 0: reaped elsewhere, nothing known */
} plat_exit;

/* How a child finds inherit[i]. */
plat_handle plat_child_handle(const plat_handle *inherit, size_t i);
/* Starts path (argv[0] is its name) as described above; FARM_EUSAGE naming path when it
 * cannot start. */
int plat_spawn(const char *path, char *const argv[], const plat_handle *inherit, size_t n,
               plat_proc *out);
/* 1 once p has ended (reaped; *e says how), 0 while it runs. block: wait for it. */
int plat_proc_reap(plat_proc *p, int block, plat_exit *e);
/* Ends p at once, whatever it is doing (SIGKILL; TerminateProcess). */
void plat_proc_kill(const plat_proc *p);
/* Closes what plat holds to watch p (not the process). */
void plat_proc_release(plat_proc *p);
/* The ns p has spent on a CPU and runnable waiting for one; 0 when not known (then both 0). */
int plat_proc_cpu_times(const plat_proc *p, uint64_t *ran, uint64_t *waited);
/* Sleeps until one of procs ends, notifier is raised, or timeout_ms passes. */
void plat_wait_procs(plat_handle notifier, plat_proc *const procs[], size_t n, uint32_t timeout_ms);
/* "exited with status 3", "was killed by signal 9 (Killed)". */
const char *plat_exit_describe(const plat_exit *e, char *buf, size_t size);
/* 1 when it exited of itself with status 0. */
int plat_exit_clean(const plat_exit *e);

/* An event for plat_wait_procs, raised from any thread. */
int plat_notifier_open(plat_handle *out);
void plat_notify(plat_handle notifier);
void plat_notifier_close(plat_handle notifier);

long plat_self_pid(void);
/* In a child: die when parent (the coordinator's pid) ends; 0 when it has ended already. On
 * Windows also: a crash ends the child at once (no error-reporting dialog keeps it alive). */
int plat_die_with_parent(long parent);
/* Ends this process as a crash would (test hooks): raise(sig) on Linux; on Windows SIGSEGV is
 * an access violation no handler takes (exit status 0xC0000005), anything else raise(sig). */
void plat_crash_self(int sig);
/* The directory of this program's executable (/proc/self/exe; GetModuleFileNameW). */
int plat_exe_dir(char *out, size_t size);
/* 1 when path names a file this process may run. */
int plat_executable(const char *path);

/* ---- CPUs, priority, memory ---- */

#define PLAT_CPU_SETSIZE 1024
typedef struct plat_cpuset {
    uint64_t bits[PLAT_CPU_SETSIZE / 64];
} plat_cpuset;

static inline void plat_cpuset_zero(plat_cpuset *s) {
    for (size_t i = 0; i < PLAT_CPU_SETSIZE / 64; i++)
        s->bits[i] = 0;
}
static inline void plat_cpuset_add(plat_cpuset *s, int cpu) {
    if (cpu >= 0 && cpu < PLAT_CPU_SETSIZE)
        s->bits[cpu / 64] |= 1ull << (cpu % 64);
}
static inline int plat_cpuset_has(const plat_cpuset *s, int cpu) {
    return cpu >= 0 && cpu < PLAT_CPU_SETSIZE && ((s->bits[cpu / 64] >> (cpu % 64)) & 1u);
}
static inline int plat_cpuset_count(const plat_cpuset *s) {
    int n = 0;
    for (size_t i = 0; i < PLAT_CPU_SETSIZE / 64; i++)
        n += __builtin_popcountll(s->bits[i]);
    return n;
}

/* The CPUs this process may run on (sched_getaffinity; the process affinity mask); at least
 * CPU 0 when the system will not say. */
void plat_cpus_allowed(plat_cpuset *out);
/* Pins the calling thread to cpu; 1 granted, 0 refused (errno says why). */
int plat_pin_self(int cpu);
/* Pins thread t to the CPUs of s; 1 granted, 0 refused. */
int plat_pin_thread(pthread_t t, const plat_cpuset *s);

/* Process pid (a worker) at real-time priority prio (SCHED_FIFO, reset on fork), or back to
 * normal for 0; 1 granted, 0 refused. Windows: the REALTIME/HIGH priority class. */
int plat_proc_set_priority(long pid, int prio);
/* Starts a thread with the given stack size at real-time priority prio, or at normal priority
 * when prio is 0 or the system refuses. FARM_EFAIL naming who when no thread starts. */
int plat_thread_start(pthread_t *t, size_t stack, int prio, void *(*fn)(void *), void *arg,
                      const char *who);
/* What real-time scheduling is called here, for reports, and what to do when it is refused. */
#ifdef _WIN32
#define PLAT_RT_POLICY "HIGH_PRIORITY_CLASS"
#define PLAT_RT_REFUSED_HINT                                                                       \
    "the stream's thread runs at normal priority (MMCSS gave it none; wine has no MMCSS), or "     \
    "the working set could not be locked"
#else
#define PLAT_RT_POLICY "SCHED_FIFO"
#define PLAT_RT_REFUSED_HINT "grant RLIMIT_RTPRIO / RLIMIT_MEMLOCK"
#endif
/* Thread t's real-time priority (0: normal scheduling) and its policy's name for reports. */
int plat_thread_priority(pthread_t t, const char **policy);

/* Before any other thread starts (main thread): every thread that asks for no stack size gets
 * stack bytes (the libraries' included), and malloc keeps one arena instead of one per thread,
 * so that plat_lock_memory locks little. glibc only (its default thread attributes and
 * M_ARENA_MAX); nothing elsewhere: Windows locks no memory for them. */
void plat_thread_defaults(size_t stack);

/* Locks every page of this process, now and later (mlockall; the working set + VirtualLock of
 * what is mapped). 1 granted, 0 refused. */
int plat_lock_memory(void);
void plat_unlock_memory(void);

/* ---- files and names ---- */

/* Renames from onto to, replacing what is there in one step. FARM_EFAIL on failure. */
int plat_replace_file(const char *from, const char *to);
#ifdef _WIN32
/* Windows only: a new file at tmpl (its last six characters, XXXXXX, made unique), open for
 * reading and writing as a C descriptor in binary mode, that the system deletes when its last
 * handle closes, however this process ends (TerminateProcess included), until plat_temp_keep
 * says otherwise. Failures are FARM_EUSAGE, "cannot write NAME: why", with errno set. (Linux
 * keeps its mkostemp in outfile: a killed farm leaves its temporary there, as documented.) */
int plat_temp_create(char *tmpl, const char *name, int *fd);
/* The file that fd names (from plat_temp_create) stays when it is closed. FARM_EFAIL naming
 * name on failure. */
int plat_temp_keep(int fd, const char *name);
#endif
/* Where a user's farms put their default sockets (and on Windows their discovery files):
 * $XDG_RUNTIME_DIR/farm, else /tmp/farm-UID; %LOCALAPPDATA%\\farm on Windows. */
void plat_runtime_dir(char *out, size_t size);
/* Creates path as a directory only this user can enter, or checks that it is one: FARM_EFAIL
 * naming it otherwise. */
int plat_private_dir(const char *path);
/* 1 while process pid exists (it may belong to someone else). */
int plat_pid_alive(long pid);

/* Where NNG's ipc:// leads. Linux: a socket file, ipc://PATH, which is itself the record that a
 * farm runs (farmctl finds it in the runtime directory). Windows: a named pipe, ipc://NAME is
 * \\.\pipe\NAME, which leaves no file: farms write discovery files there instead. */
#ifdef _WIN32
#define PLAT_IPC_FILES 0
#define PLAT_DIR_SEP "\\"
#else
#define PLAT_IPC_FILES 1
#define PLAT_DIR_SEP "/"
#endif

/* What is at a path (not following a symbolic link or reparse point). */
typedef enum plat_path_kind {
    PLAT_PATH_NONE,   /* nothing */
    PLAT_PATH_FILE,   /* a regular file */
    PLAT_PATH_SOCKET, /* a Unix socket (never on Windows) */
    PLAT_PATH_OTHER   /* a directory, a link, a device ... */
} plat_path_kind;
plat_path_kind plat_path_kind_of(const char *path);
/* Removes the file at path; FARM_EFAIL naming it when it cannot (nothing there is FARM_OK). */
int plat_remove_file(const char *path);
/* Calls each(name, arg) for every entry of dir but . and .., in no order, until it returns
 * nonzero. A dir that does not exist has no entries (FARM_OK); FARM_EFAIL naming dir when it
 * cannot be read. */
int plat_list_dir(const char *dir, int (*each)(const char *name, void *arg), void *arg);

/* ---- sockets: UDP and TCP, for OSC (plat_sock_linux.c, plat_sock_win.c) ----
 * Non-blocking, never inherited by a child. On Windows Winsock is started on first use
 * (WSAStartup) and left to the process's exit. */

typedef intptr_t plat_socket;
#define PLAT_NO_SOCKET ((plat_socket)-1)

/* A peer's address, as a datagram came from it (a sockaddr_storage's bytes). */
#define PLAT_ADDR_MAX 128 /* a sockaddr_storage */
typedef struct plat_addr {
    unsigned char bytes[PLAT_ADDR_MAX];
    uint32_t len;
} plat_addr;

/* A socket bound to host:port (host "": every address; a name is looked up, its IPv4 addresses
 * tried before IPv6), UDP or (stream) TCP listening; *port the port it got (port "0": one the
 * system chose). FARM_EUSAGE "what: why" when it cannot bind. */
int plat_sock_bind(const char *host, const char *port, int stream, const char *what,
                   plat_socket *out, int *bound_port);
/* host:port as an address to send to (UDP) or connect to (TCP); FARM_EUSAGE "what: why". */
int plat_sock_resolve(const char *host, const char *port, int stream, const char *what,
                      plat_addr *out);
/* A TCP connection to a (waits at most timeout_ms for it); FARM_EFAIL "what: why". */
int plat_sock_connect(const plat_addr *a, int timeout_ms, const char *what, plat_socket *out);
/* A connection waiting on listener s: 1 and *out, or 0 when none is waiting. */
int plat_sock_accept(plat_socket s, plat_socket *out);
/* Bytes received (from: the sender, for UDP; NULL otherwise); 0 when nothing is there now;
 * -1 when the connection is over or failed. */
long plat_sock_recv(plat_socket s, void *buf, size_t size, plat_addr *from);
/* Bytes sent (to: the peer, for UDP; NULL otherwise); 0 when there is no room now; -1 on
 * failure. Never raises SIGPIPE. */
long plat_sock_send(plat_socket s, const void *buf, size_t n, const plat_addr *to);
/* Waits at most timeout_ms until one of socks[0..n) can be read (or written: out); ready[i]
 * says which. The number ready, 0 after the timeout. */
int plat_sock_poll(const plat_socket *socks, size_t n, int out, int *ready, int timeout_ms);
void plat_sock_close(plat_socket s); /* PLAT_NO_SOCKET is fine */

/* ---- the standard error stream, the environment ---- */

/* Points this process's standard error (descriptor 2) at the null device until
 * plat_stderr_restore(saved): libraries that print while they start (PortAudio's ALSA and JACK
 * scans) are silenced. Returns what to restore, or -1 when nothing was changed. Main thread. */
int plat_stderr_silence(void);
void plat_stderr_restore(int saved);
/* Sets the environment variable name to value unless it is set already. Main thread, before
 * other threads read the environment. */
void plat_env_default(const char *name, const char *value);

#endif
