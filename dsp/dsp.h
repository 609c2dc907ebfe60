/* dsp — banks of pyo-compatible SineLoop / Sine voices, rendered block by block.
 *
 * Contract
 * - A voice is pyo's SineLoop: y[n] = sin(2*pi*(phi[n] + fb*y[n-1])), phi advancing by freq/sr
 *   (mod 1), fb clamped to [0, 1], first sample sin(0) = 0 (shared/docs/sineloop.md). pyo's Sine
 *   is the same voice with fb = 0 and a phase offset (dsp_voice_set_phase).
 * - Output gains: stereo pans with equal power (pan 0 = left, 1 = right); with any other channel
 *   count, pan is a channel index (0 .. channels-1) and the voice sounds on that channel only.
 *   A voice's gain on each channel is amp times its pan gain.
 * - freq, feedback, amp, pan and play/stop ramp linearly over the given number of frames, so a
 *   change never clicks. A stopped voice is silent and costs nothing (whole groups of
 *   DSP_GROUP voices are skipped); play restarts it from phase 0 and fades it in.
 * - dsp_bank_create (and the calibration, which creates banks) is the only call that allocates.
 *   Every other call is real-time safe: no allocation, lock, I/O or system call. A bank belongs
 *   to one thread at a time.
 * - The kernel is chosen at run time from the instruction sets the CPU has (AVX-512, AVX2 with
 *   FMA, SSE2, or the portable build elsewhere); one binary runs on any x86-64. A bank keeps the
 *   kernel it was created with; dsp_isa_for_bank picks one for a bank's size by measuring.
 * - Errors as everywhere in farm (base.h): FARM_OK or a farm_status code, with the calling
 *   thread's message naming the cause.
 */
#ifndef FARM_DSP_H
#define FARM_DSP_H

#include <stdint.h>

#include "base.h"

#define DSP_MAX_CHANNELS 32
/* The largest block a bank renders; max_frames above it is refused. */
#define DSP_MAX_FRAMES (1u << 20)
#define DSP_GROUP 64 /* voices processed together; also the granularity of "stopped is free" */

typedef struct dsp_bank dsp_bank;

/* Zero fields take defaults: channels 2, sample_rate 48000, max_frames 256, isa dsp_isa(). */
typedef struct dsp_bank_desc {
    uint32_t voices;     /* required, >= 1 */
    uint32_t channels;   /* 1 .. DSP_MAX_CHANNELS */
    double sample_rate;  /* Hz */
    uint32_t max_frames; /* largest block dsp_bank_render is asked for */
    const char *isa; /* the kernel to render with (dsp_isa_for_bank's answer); NULL: dsp_isa() */
} dsp_bank_desc;

/* FARM_EINVAL for a description out of range or an unknown isa, FARM_ENOISA for an isa this CPU
 * cannot run, FARM_ENOMEM. */
int dsp_bank_create(const dsp_bank_desc *desc, dsp_bank **out);
void dsp_bank_destroy(dsp_bank *bank);

/* Parameter setters; ramp_frames 0 applies at once. Out-of-range voice indices are ignored. */
void dsp_voice_set_freq(dsp_bank *bank, uint32_t voice, double hz, uint32_t ramp_frames);
void dsp_voice_set_feedback(dsp_bank *bank, uint32_t voice, double fb, uint32_t ramp_frames);
void dsp_voice_set_amp(dsp_bank *bank, uint32_t voice, double amp, uint32_t ramp_frames);
void dsp_voice_set_pan(dsp_bank *bank, uint32_t voice, double pan, uint32_t ramp_frames);
/* Sine's phase offset in cycles; applies at once (it only shifts where the voice reads). */
void dsp_voice_set_phase(dsp_bank *bank, uint32_t voice, double phase);
void dsp_voice_play(dsp_bank *bank, uint32_t voice, uint32_t ramp_frames);
void dsp_voice_stop(dsp_bank *bank, uint32_t voice, uint32_t ramp_frames);
int dsp_voice_playing(const dsp_bank *bank, uint32_t voice); /* 1 while playing or fading out */
uint32_t dsp_bank_playing(const dsp_bank *bank);             /* voices playing or fading out */

/* Renders frames (<= max_frames) interleaved frames into out, overwriting it. */
void dsp_bank_render(dsp_bank *bank, float *out, uint32_t frames);

/* The voice every farm process derives from (seed, global index): a frequency uniform in
 * [freq_min, freq_max), pan = index % channels for stereo's 0/1 and other counts' channel index
 * alike (pyo sends voice i of a list to channel i % channels). */
double dsp_voice_default_freq(uint64_t seed, uint64_t index, double freq_min, double freq_max);
double dsp_voice_default_pan(uint64_t index, uint32_t channels);

/* ---- state that outlives its process ----
 * A bank's whole state (phases, feedback state, parameters, ramps, play/stop) as plain bytes, so
 * that a bank created with the same description in another process and loaded from it renders
 * exactly the samples this one would have rendered next. farm keeps one per block in shared
 * memory, so a worker that dies is replaced where it was. */
size_t dsp_state_bytes(uint32_t voices, uint32_t channels);
/* Writes the state into dst (dsp_state_bytes of the bank's size). writer names the saver; when
 * dst already holds this writer's snapshot of the same parameters and only the phases have
 * moved since (the usual block), only they are written. Real-time safe. */
void dsp_bank_save(const dsp_bank *bank, void *dst, uint64_t writer);
/* FARM_EINVAL when src is not a snapshot of a bank of this size. Real-time safe. */
int dsp_bank_load(dsp_bank *bank, const void *src);

/* sin(2*pi*x) for x in cycles, |x| <= 2^22, by the kernel's polynomial (error < 1e-6). */
float dsp_sin_cycles(float x);

/* Kernel selection: the name of the one in use, and a way to force one ("avx512", "avx2",
 * "sse2", "generic") for tests and benchmarks. FARM_ENOISA when the CPU lacks it, FARM_EINVAL for
 * an unknown name. */
const char *dsp_isa(void);
int dsp_force_isa(const char *name);
/* The names this CPU can run, best first, NULL-terminated. */
const char *const *dsp_isa_available(void);
/* The kernel a bank renders with. */
const char *dsp_bank_isa(const dsp_bank *bank);

/* The kernel for banks of this description (isa ignored): the forced one if any; else, where the
 * CPU runs more than one kernel of 8 lanes or more (AVX-512 and AVX2), the one that renders such
 * a bank fastest in a short calibration, the widest unless a narrower one is at least
 * DSP_CALIBRATION_MARGIN faster; else the best. Why a measurement: a wider kernel renders each
 * voice faster but pays more per block (docs/kernels.md), so which wins depends on the bank's
 * size and on the CPU. Banks of DSP_CALIBRATION_MAX_VOICES or more take the widest unmeasured:
 * the per-block cost is lost among their groups. Allocates and takes a few milliseconds: call
 * it once, at start-up, never on the real-time path. FARM_ENOMEM leaves the best kernel's name. */
#define DSP_CALIBRATION_MARGIN 0.03
#define DSP_CALIBRATION_MAX_VOICES 8192
const char *dsp_isa_for_bank(const dsp_bank_desc *desc);
/* The same calibration among the named kernels (each one this CPU runs), best first; ns_per_block
 * (may be NULL) receives each one's fastest block. Tests and bench_kernel. */
const char *dsp_isa_calibrate(const dsp_bank_desc *desc, const char *const *candidates,
                              uint32_t count, double *ns_per_block);

/* Flush denormals to zero in the calling thread; every rendering thread calls it once. */
void dsp_enable_ftz(void);

#endif
