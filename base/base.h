/* base — what every module of farm shares: one way to report errors, the clock, sleeps with a
 * deadline, and a few small helpers. Nothing here allocates.
 *
 * Errors (the one convention of every library module: plat, dsp, shm, proto, engine, audio,
 * outfile, supervisor, control):
 * - A function that can fail returns FARM_OK (0) or one of the farm_status codes below, never
 *   -1 or -errno. The code says what kind of failure it was; farm_strerror() names it and never
 *   returns NULL.
 * - The function that detects a failure calls farm_fail(code, fmt, ...), which keeps a one-line
 *   message naming the cause in the calling thread (thread-local storage: threads never see or
 *   overwrite each other's messages) and returns code, so `return farm_fail(...)` is the usual
 *   shape. The first message since farm_error_clear() is kept: it names the cause, and callers
 *   up the stack need not add to it.
 * - farm_error_message() reads the calling thread's message. A thread whose failure must reach
 *   another thread copies the message into its own state (see the recorder).
 * - Predicates that are not failures (a ring is full, a queue is empty) return 0 or 1 instead.
 * - Real-time paths never fail and never call farm_fail: it formats text.
 * - Exit statuses of the programs come from farm_exit_status(): 2 for bad input, 1 for a
 *   failure while running.
 */
#ifndef FARM_BASE_H
#define FARM_BASE_H

#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

/* X(name, value, message, exit status) */
#define FARM_STATUS_LIST(X)                                                                        \
    X(FARM_OK, 0, "no error", 0)                                                                   \
    X(FARM_EFAIL, 1, "failed while running", 1)                                                    \
    X(FARM_EUSAGE, 2, "bad input", 2)                                                              \
    X(FARM_ENOMEM, 3, "out of memory", 1)                                                          \
    X(FARM_EINVAL, 4, "invalid argument", 2)                                                       \
    X(FARM_ENOISA, 5, "instruction set not available on this CPU", 2)                              \
    X(FARM_ESYS, 6, "a system call failed", 1)                                                     \
    X(FARM_EBUSY, 7, "busy: a queue is full", 1)

typedef enum farm_status {
#define FARM_STATUS_ENUM(name, value, message, exit) name = value,
    FARM_STATUS_LIST(FARM_STATUS_ENUM)
#undef FARM_STATUS_ENUM
} farm_status;

/* printf-style checking of a function's format and arguments. On Windows farm uses mingw's C99
 * printf (__USE_MINGW_ANSI_STDIO), whose checks are gnu_printf's: GCC's "printf" there means
 * msvcrt's, which knows no %zu. */
#ifdef _WIN32
#define FARM_PRINTF(fmt, args) __attribute__((format(gnu_printf, fmt, args)))
#else
#define FARM_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#endif

/* Keeps the calling thread's first message since farm_error_clear(); returns code. */
int farm_fail(int code, const char *fmt, ...) FARM_PRINTF(2, 3);
/* The calling thread's message, or farm_strerror of its last code when it has none. */
const char *farm_error_message(void);
void farm_error_clear(void);
const char *farm_strerror(int code);
int farm_exit_status(int code);

/* ---- time: CLOCK_MONOTONIC, read through the vDSO (no system call, real-time safe); on
 * Windows QueryPerformanceCounter. These and the stop requests below are defined per system in
 * plat/ (plat_linux.c, plat_win.c), which every program links through base. ---- */

#define FARM_NS_PER_S 1000000000ull
#define FARM_NS_PER_MS 1000000ull
#define FARM_NS_PER_US 1000ull

uint64_t farm_now_ns(void);
/* Sleeps ns (relative), or until the absolute time deadline_ns of farm_now_ns's clock. Not for
 * real-time paths. */
void farm_sleep_ns(uint64_t ns);
void farm_sleep_until_ns(uint64_t deadline_ns);

/* ---- stop requests ---- */

/* The signal that asked the program to stop (SIGINT, SIGTERM; on Windows a console event or
 * the farm's named stop event), 0 while none did: set by the handlers farm_catch_stop_signals()
 * installs. Long waits outside real-time paths give up
 * when it is set. */
extern volatile sig_atomic_t farm_stop_signal;
void farm_catch_stop_signals(void);

/* ---- small helpers ---- */

static inline size_t farm_align_up(size_t n, size_t a) {
    return (n + a - 1) / a * a;
}

/* Raises *slot to v if v is larger; only one thread writes slot (relaxed: a statistic). */
static inline void farm_store_max(_Atomic uint64_t *slot, uint64_t v) {
    if (v > atomic_load_explicit(slot, memory_order_relaxed))
        atomic_store_explicit(slot, v, memory_order_relaxed);
}

/* The one rule for sharing `total` voices out over `workers` in order: the first total % workers
 * workers take one more. Worker k holds voices [*first, *first + *count). */
static inline void farm_voice_share(uint32_t total, uint32_t workers, uint32_t k, uint32_t *first,
                                    uint32_t *count) {
    uint32_t base = total / workers, extra = total % workers;
    *count = base + (k < extra ? 1 : 0);
    *first = k * base + (k < extra ? k : extra);
}

/* Numbers as the user typed them, each failure naming what: "--sr: 'x' is not a number". All
 * return FARM_OK or FARM_EUSAGE. Whole numbers take no sign and no spaces. */
int farm_parse_double(const char *what, const char *s, double lo, double hi, double *out);
int farm_parse_u64(const char *what, const char *s, uint64_t lo, uint64_t hi, uint64_t *out);
int farm_parse_u32(const char *what, const char *s, uint32_t lo, uint32_t hi, uint32_t *out);

#endif
