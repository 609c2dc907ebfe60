/* Helpers shared by the tests: running the farm binary as a user would, checking that nothing
 * is left behind, and looking at audio by its content. */
#ifndef FARM_TESTUTIL_H
#define FARM_TESTUTIL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* A fresh directory per test (Criterion runs tests in parallel); removed by tu_rmdir, or by the
 * test's guard (below) when the test ends without removing it. */
void tu_tmpdir(char *out, size_t size);
void tu_rmdir(const char *dir);
/* dir (of tu_tmpdir) is kept on purpose, for what it says about a failure: the guard leaves it. */
void tu_keep(const char *dir);
/* dir/name, in one of 4 rotating buffers (valid until the 4th next call). */
const char *tu_path(const char *dir, const char *name);
/* Files in dir, not counting the hidden ones the helpers use for farm's output. */
int tu_files_in(const char *dir);

typedef struct tu_run {
    int status;      /* exit status, or 128 + signal */
    char out[16384]; /* stdout */
    char err[16384]; /* stderr */
    char tag[64];    /* FARM_TEST_TAG given to the farm and inherited by its workers */
} tu_run;

/* When set, farm runs under this command (NULL-terminated, e.g. {"setpriv", ..., NULL}). */
extern const char *const *tu_prefix;

/* Runs farm with argv (NULL-terminated, without argv[0]) and extra "NAME=VALUE" environment
 * entries (NULL-terminated, may be NULL); waits for it. */
void tu_farm(tu_run *r, const char *const *args, const char *const *env);
/* Starts farm without waiting; returns its pid. Output goes to files in dir. */
pid_t tu_farm_start(tu_run *r, const char *dir, const char *const *args, const char *const *env);
void tu_farm_wait(tu_run *r, pid_t pid, const char *dir);
/* Kills every farm this test started and has not waited for (with its workers): call it from
 * each suite's .fini, which Criterion runs after a failed assertion too. */
void tu_farm_cleanup(void);

/* Waits (up to 5 s) for the farm started with output in dir to print its control URL; 1 when
 * it did, with the URL in out. */
int tu_wait_control_url(const char *dir, char *out, size_t size);
/* The live children of parent whose name (comm) is name, up to max; returns how many. */
int tu_children(pid_t parent, const char *name, pid_t *out, int max);

/* Processes whose environment carries tag; the first pid found in *first (0 if none). */
int tu_count_tagged(const char *tag, pid_t *first);
/* Seconds on CLOCK_MONOTONIC, for waits bounded in time rather than in tries. */
double tu_seconds(void);

/* Number of lines in s (a last line without newline counts). */
int tu_lines(const char *s);

/* Audio */
typedef struct tu_audio {
    float *data; /* interleaved */
    int64_t frames;
    int channels;
    int samplerate;
    int format;
} tu_audio;
int tu_read(const char *path, tu_audio *a); /* 0 on success */
void tu_audio_free(tu_audio *a);

double tu_rms(const float *x, size_t n, size_t stride);
/* Fraction of the power of x (n samples, stride) between lo and hi Hz, by FFT over the
 * largest power of two <= n, Hann window, the mean removed first (a DC offset would leak into
 * the lowest bins). peak_hz gets the strongest bin's frequency. */
double tu_band_fraction(const float *x, size_t n, size_t stride, double sr, double lo, double hi,
                        double *peak_hz);
/* Fraction of the power of x, measured as tu_band_fraction does, within halfwidth Hz of a
 * multiple of f0 (f0, 2 f0, 3 f0, ...): near 1 for any periodic signal of fundamental f0,
 * whatever the phases of the sines that make it up. */
double tu_harmonic_fraction(const float *x, size_t n, size_t stride, double sr, double f0,
                            double halfwidth);
/* Magnitude of the frequency component f in x (Goertzel), normalised so a sine of amplitude A
 * gives about A. */
double tu_tone(const double *x, size_t n, double sr, double f);

#endif

/* A private JACK server with the dummy driver (real-time when allowed), named uniquely; its
 * name goes in *name for JACK_DEFAULT_SERVER. Returns its pid; aborts the test if it cannot
 * start. */
pid_t tu_jackd_start(char *name, size_t size, int rate, int period);
void tu_jackd_stop(pid_t pid);

/* Every process a test starts is guarded: should the test's process end without stopping it (a
 * crash, Criterion's timeout, which kills the test and skips .fini), a guard process stops it
 * (SIGTERM, then SIGKILL) and removes a JACK server's files from /dev/shm. */
/* Starts argv (argv[0] looked up in PATH) with the test's environment, stdin from /dev/null,
 * stdout and stderr appended to log (NULL: /dev/null). jack: the name of the JACK server it is
 * (NULL if none), whose files are removed when it stops. Returns its pid, 0 if it cannot start. */
pid_t tu_spawn(const char *const *argv, const char *log, const char *jack);
/* Stops a process of tu_spawn, tu_jackd_start or tu_farm_start: SIGTERM, SIGKILL if it has not
 * ended within 10 s; reaps it and, for a JACK server, removes its files in /dev/shm. Returns
 * its exit status (128 + signal when killed by one). */
int tu_stop(pid_t pid);
/* 1 when a process of tu_spawn, tu_jackd_start or tu_farm_start has ended by itself: it is then
 * reaped, off the guard's list, and a JACK server's files are removed; 0 while it runs. */
int tu_ended(pid_t pid);
/* Removes the files in /dev/shm of the JACK server called name (its clients' semaphores, its
 * sockets): what a server killed, or a client it lost, leaves. */
void tu_jack_files_remove(const char *name);

/* The number after the first occurrence of label in text (e.g. "late blocks "), or -1. */
double tu_number_after(const char *text, const char *label);
