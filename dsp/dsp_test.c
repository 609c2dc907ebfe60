/* The oscillators against a double-precision reference of pyo's formulas, on every kernel the
 * CPU can run, and the ramps that keep parameter changes click-free. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "dsp.h"
#include "dsp_internal.h"
#include "testutil.h"

#define PI_D 3.14159265358979323846
#define SR 48000.0
#define BLOCK 256u

/* pyo's SineLoop in double precision (shared/docs/sineloop.md). */
typedef struct ref_osc {
    double phi, y, inc, fb;
} ref_osc;

static void ref_init(ref_osc *o, double freq, double fb, double phase) {
    o->phi = phase - floor(phase);
    o->y = 0;
    o->inc = freq / SR;
    o->fb = fb < 0 ? 0 : fb > 1 ? 1 : fb;
}

static double ref_next(ref_osc *o) {
    o->y = sin(2 * PI_D * (o->phi + o->fb * o->y));
    o->phi += o->inc;
    o->phi -= floor(o->phi);
    return o->y;
}

/* A bank whose voice i sounds alone on channel i: with 2 channels pan 0/1 are hard left and
 * right (the stereo path), with any other count the pan is the channel (the general path). */
static dsp_bank *make_bank(uint32_t voices, uint32_t channels, const double *freq, double fb) {
    dsp_bank *b;
    dsp_bank_desc d = {
        .voices = voices, .channels = channels, .sample_rate = SR, .max_frames = BLOCK};
    cr_assert_eq(dsp_bank_create(&d, &b), FARM_OK);
    for (uint32_t v = 0; v < voices; v++) {
        dsp_voice_set_freq(b, v, freq[v], 0);
        dsp_voice_set_feedback(b, v, fb, 0);
        dsp_voice_set_amp(b, v, 1.0, 0);
        dsp_voice_set_pan(b, v, (double)v, 0);
        dsp_voice_play(b, v, 0);
    }
    return b;
}

static const double test_freqs[] = {20, 100, 440, 1000, 5000, 12345, 20000};
#define N_FREQS (sizeof test_freqs / sizeof test_freqs[0])

/* Renders `seconds` of voices laid out one per channel and returns the worst difference from
 * the reference over all of them. */
static double worst_error(uint32_t channels, double fb, double seconds) {
    uint32_t voices = channels == 2 ? 2 : channels;
    double worst = 0;
    for (size_t f0 = 0; f0 < N_FREQS; f0 += voices) {
        double freq[DSP_MAX_CHANNELS];
        ref_osc ref[DSP_MAX_CHANNELS];
        for (uint32_t v = 0; v < voices; v++) {
            freq[v] = test_freqs[(f0 + v) % N_FREQS];
            ref_init(&ref[v], freq[v], fb, 0);
        }
        dsp_bank *b = make_bank(voices, channels, freq, fb);
        float out[BLOCK * DSP_MAX_CHANNELS];
        uint64_t frames = (uint64_t)(seconds * SR);
        for (uint64_t done = 0; done < frames; done += BLOCK) {
            dsp_bank_render(b, out, BLOCK);
            for (uint32_t n = 0; n < BLOCK; n++)
                for (uint32_t v = 0; v < voices; v++) {
                    double e = fabs(out[n * channels + v] - ref_next(&ref[v]));
                    if (e > worst)
                        worst = e;
                }
        }
        dsp_bank_destroy(b);
    }
    return worst;
}

static void each_isa(void (*body)(const char *isa)) {
    const char *const *isas = dsp_isa_available();
    cr_assert_not_null(isas[0], "no kernel available");
    for (int i = 0; isas[i] != NULL; i++) {
        cr_assert_eq(dsp_force_isa(isas[i]), FARM_OK);
        body(isas[i]);
    }
    dsp_force_isa(NULL);
}

Test(sine, polynomial_is_within_a_millionth_of_sin_everywhere) {
    double worst = 0;
    for (int i = -2000000; i <= 2000000; i++) {
        double x = i * 1e-6 * 1.7; /* [-3.4, 3.4] cycles: wraps several times */
        double e = fabs(dsp_sin_cycles((float)x) - sin(2 * PI_D * (double)(float)x));
        if (e > worst)
            worst = e;
    }
    cr_assert_lt(worst, 1e-6, "worst error %g", worst);
}

static void low_feedback_body(const char *isa) {
    static const double fbs[] = {0, 0.05, 0.1, 0.15};
    static const uint32_t layouts[] = {1, 2, 7};
    for (size_t l = 0; l < 3; l++)
        for (size_t i = 0; i < 4; i++) {
            double e = worst_error(layouts[l], fbs[i], 10.0);
            cr_expect_leq(e, 1e-4, "%s, %u channels, feedback %g: worst error %g over 10 s", isa,
                          layouts[l], fbs[i], e);
        }
}

Test(sineloop, matches_reference_within_1e4_sample_by_sample_for_10s_20Hz_to_20kHz_feedback_to_0_15,
     .timeout = 120) {
    each_isa(low_feedback_body);
}

/* Above fb ~ 1/(2 pi) the loop stops contracting: by fb 0.4 two correct implementations, or the
 * reference with its frequency changed by one part in 1e9, part ways within a second (measured
 * while writing this test). So the periodic regime (0.2, 0.3) is compared harmonic by harmonic,
 * and the chaotic one (0.5 .. 1) by what does not depend on the trajectory: level, and how the
 * power spreads over the fundamental's band, the low harmonics and the rest. */
static void render_mono(double f, double fb, size_t n, float *ours, float *theirs) {
    double freq[1] = {f};
    dsp_bank *b = make_bank(1, 1, freq, fb);
    ref_osc ref;
    ref_init(&ref, f, fb, 0);
    float out[BLOCK];
    for (size_t done = 0; done < n; done += BLOCK) {
        dsp_bank_render(b, out, BLOCK);
        for (uint32_t k = 0; k < BLOCK && done + k < n; k++) {
            ours[done + k] = out[k];
            theirs[done + k] = (float)ref_next(&ref);
        }
    }
    dsp_bank_destroy(b);
}

static void high_feedback_body(const char *isa) {
    const double f = 441.0;
    const size_t n = 4 * 48000;
    float *ours = malloc(sizeof(float) * n), *theirs = malloc(sizeof(float) * n);
    double *a = malloc(sizeof(double) * n), *r = malloc(sizeof(double) * n);
    static const double periodic[] = {0.2, 0.3};
    for (size_t i = 0; i < 2; i++) {
        render_mono(f, periodic[i], 48000, ours, theirs);
        for (size_t k = 0; k < 48000; k++) {
            a[k] = ours[k];
            r[k] = theirs[k];
        }
        for (int h = 1; h <= 8; h++) {
            double ta = tu_tone(a, 48000, SR, f * h), tr = tu_tone(r, 48000, SR, f * h);
            cr_expect_leq(fabs(ta - tr), 2e-3, "%s, feedback %g, harmonic %d: %g vs reference %g",
                          isa, periodic[i], h, ta, tr);
        }
    }
    static const double chaotic[] = {0.5, 0.8, 1.0};
    static const double bands[][2] = {{f / 2, 1.5 * f}, {1.5 * f, 4.5 * f}, {4.5 * f, 24000}};
    for (size_t i = 0; i < 3; i++) {
        render_mono(f, chaotic[i], n, ours, theirs);
        double ra = tu_rms(ours, n, 1), rr = tu_rms(theirs, n, 1);
        cr_expect_float_eq(ra, rr, 0.05 * rr, "%s, feedback %g: rms %g vs reference %g", isa,
                           chaotic[i], ra, rr);
        for (int k = 0; k < 3; k++) {
            double fa = tu_band_fraction(ours, n, 1, SR, bands[k][0], bands[k][1], NULL);
            double fr = tu_band_fraction(theirs, n, 1, SR, bands[k][0], bands[k][1], NULL);
            cr_expect_float_eq(fa, fr, 0.05, "%s, feedback %g, %g-%g Hz: %g of the power vs %g",
                               isa, chaotic[i], bands[k][0], bands[k][1], fa, fr);
        }
    }
    free(ours);
    free(theirs);
    free(a);
    free(r);
}

Test(sineloop, high_feedback_has_the_reference_spectrum, .timeout = 60) {
    each_isa(high_feedback_body);
}

Test(sineloop, first_sample_is_zero_and_feedback_is_clamped) {
    double freq[1] = {1000};
    dsp_bank *b = make_bank(1, 1, freq, 5.0); /* pyo clamps to 1 */
    float out[BLOCK];
    dsp_bank_render(b, out, BLOCK);
    cr_assert_eq(out[0], 0.0f);
    ref_osc ref;
    ref_init(&ref, 1000, 1.0, 0);
    for (int i = 0; i < 6; i++) { /* at fb 1 the loop is chaotic: only the start is comparable */
        double expected = ref_next(&ref); /* Criterion's macros evaluate arguments twice */
        cr_assert_float_eq(out[i], expected, 1e-4, "sample %d", i);
    }
    dsp_bank_destroy(b);
}

Test(sine, phase_offset_matches_pyo_sine) {
    double freq[1] = {300};
    dsp_bank *b = make_bank(1, 1, freq, 0);
    dsp_voice_set_phase(b, 0, 0.25); /* Sine(freq=300, phase=0.25) starts at sin(pi/2) */
    float out[BLOCK];
    ref_osc ref;
    ref_init(&ref, 300, 0, 0.25);
    double worst = 0;
    for (int blk = 0; blk < 200; blk++) {
        dsp_bank_render(b, out, BLOCK);
        for (uint32_t i = 0; i < BLOCK; i++) {
            double e = fabs(out[i] - ref_next(&ref));
            worst = e > worst ? e : worst;
        }
    }
    cr_assert_lt(worst, 1e-5, "worst %g", worst);
    dsp_bank_destroy(b);
}

Test(bank, block_size_does_not_change_the_signal) {
    float a[8 * 2 * 256], c[2 * 256];
    dsp_bank *b1, *b2;
    dsp_bank_desc d = {.voices = 100, .channels = 2, .sample_rate = SR, .max_frames = 8 * 256};
    cr_assert_eq(dsp_bank_create(&d, &b1), FARM_OK);
    cr_assert_eq(dsp_bank_create(&d, &b2), FARM_OK);
    for (uint32_t v = 0; v < 100; v++) {
        dsp_bank *bs[2] = {b1, b2};
        for (int k = 0; k < 2; k++) {
            dsp_voice_set_freq(bs[k], v, dsp_voice_default_freq(7, v, 400, 800), 0);
            dsp_voice_set_feedback(bs[k], v, 0.1, 0);
            dsp_voice_set_amp(bs[k], v, 0.01, 0);
            dsp_voice_play(bs[k], v, 0);
        }
    }
    for (int round = 0; round < 20; round++) {
        dsp_bank_render(b1, a, 8 * 256);
        for (int k = 0; k < 32; k++) {
            dsp_bank_render(b2, c, 64);
            for (int i = 0; i < 128; i++)
                cr_assert_float_eq(c[i], a[k * 128 + i], 1e-6, "round %d frame %d", round,
                                   k * 64 + i / 2);
        }
    }
    dsp_bank_destroy(b1);
    dsp_bank_destroy(b2);
}

/* ---- ramps ---- */

/* Largest change between neighbouring samples of channel c. A sine of amplitude A at f moves at
 * most 2*pi*f/sr*A per sample; anything much above that is a click. */
static double max_step(const float *x, size_t frames, uint32_t channels, uint32_t c) {
    double m = 0;
    for (size_t i = 1; i < frames; i++) {
        double d = fabs(x[i * channels + c] - x[(i - 1) * channels + c]);
        m = d > m ? d : m;
    }
    return m;
}

static float *render_frames(dsp_bank *b, uint32_t channels, size_t blocks) {
    float *x = malloc(sizeof(float) * channels * BLOCK * blocks);
    for (size_t k = 0; k < blocks; k++)
        dsp_bank_render(b, x + k * BLOCK * channels, BLOCK);
    return x;
}

static double peak(const float *x, size_t from, size_t to, uint32_t channels, uint32_t c) {
    double m = 0;
    for (size_t i = from; i < to; i++)
        m = fabs(x[i * channels + c]) > m ? fabs(x[i * channels + c]) : m;
    return m;
}

Test(ramp, amp_change_is_linear_and_click_free_and_a_jump_is_detected) {
    double freq[1] = {200};
    for (int ramped = 0; ramped < 2; ramped++) {
        dsp_bank *b = make_bank(1, 1, freq, 0);
        float x[20 * BLOCK];
        for (int k = 0; k < 20; k++) {
            /* 4 blocks in (1024 frames) the 200 Hz wave is near its peak, where a jump shows */
            if (k == 4)
                dsp_voice_set_amp(b, 0, 0.1, ramped ? 480 : 0);
            dsp_bank_render(b, x + k * BLOCK, BLOCK);
        }
        double limit = 2 * PI_D * 200 / SR * 1.0 * 1.05 + 1.0 / 480;
        if (ramped) {
            cr_assert_leq(max_step(x, 20 * BLOCK, 1, 0), limit);
            /* Halfway through, the level is halfway; after the ramp it is the target's. */
            cr_assert_float_eq(peak(x, 0, 1024, 1, 0), 1.0, 2e-3);
            cr_assert_float_eq(fabs(x[1024 + 240]) / fabs(sin(2 * PI_D * 200 * 1264 / SR)), 0.55,
                               0.01);
            cr_assert_float_eq(peak(x, 2000, 5000, 1, 0), 0.1, 2e-3);
        } else {
            /* the detector sees the click it exists to catch: the first sample falls from
             * about sin(2*pi*200*1024/48000) to a tenth of it */
            cr_assert_gt(max_step(x, 20 * BLOCK, 1, 0), limit);
        }
        dsp_bank_destroy(b);
    }
}

Test(ramp, freq_ramp_is_continuous_and_arrives) {
    double freq[1] = {440};
    dsp_bank *b = make_bank(1, 1, freq, 0);
    float *x = malloc(sizeof(float) * 200 * BLOCK);
    for (int k = 0; k < 200; k++) {
        if (k == 3)
            dsp_voice_set_freq(b, 0, 880, 600); /* ends mid-block: exercises the segment split */
        dsp_bank_render(b, x + k * BLOCK, BLOCK);
    }
    cr_assert_leq(max_step(x, 200 * BLOCK, 1, 0), 2 * PI_D * 880 / SR * 1.01);
    double *d = malloc(sizeof(double) * 32768);
    for (size_t i = 0; i < 32768; i++)
        d[i] = x[8192 + i];
    cr_assert_gt(tu_tone(d, 32768, SR, 880), 0.9);
    cr_assert_lt(tu_tone(d, 32768, SR, 440), 0.01);
    free(d);
    free(x);
    dsp_bank_destroy(b);
}

Test(ramp, pan_moves_power_between_channels_without_a_click) {
    double freq[2] = {300, 300};
    dsp_bank *b = make_bank(1, 2, freq, 0);
    float *x = malloc(sizeof(float) * 2 * 40 * BLOCK);
    for (int k = 0; k < 40; k++) {
        if (k == 2)
            dsp_voice_set_pan(b, 0, 1.0, 1000);
        dsp_bank_render(b, x + k * 2 * BLOCK, BLOCK);
    }
    double limit = 2 * PI_D * 300 / SR * 1.05 + 1.0 / 1000 * 1.6;
    cr_assert_leq(max_step(x, 40 * BLOCK, 2, 0), limit);
    cr_assert_leq(max_step(x, 40 * BLOCK, 2, 1), limit);
    cr_assert_lt(peak(x, 2000, 10240, 2, 0), 1e-6, "left must be silent once panned right");
    cr_assert_float_eq(peak(x, 2000, 10240, 2, 1), 1.0, 2e-3);
    free(x);
    dsp_bank_destroy(b);
}

Test(ramp, stop_fades_out_then_costs_nothing_and_play_fades_in) {
    double freq[1] = {500};
    dsp_bank *b = make_bank(1, 1, freq, 0);
    float x0[10 * BLOCK];
    for (int k = 0; k < 10; k++) {
        if (k == 2) {
            dsp_voice_stop(b, 0, 300);
            cr_assert(dsp_voice_playing(b, 0), "still fading out");
        }
        dsp_bank_render(b, x0 + k * BLOCK, BLOCK);
    }
    cr_assert_leq(max_step(x0, 10 * BLOCK, 1, 0), 2 * PI_D * 500 / SR * 1.01 + 1.0 / 300);
    cr_assert_gt(peak(x0, 2 * BLOCK, 2 * BLOCK + 100, 1, 0), 0.5,
                 "still sounding early in the fade");
    cr_assert_eq(peak(x0, 2 * BLOCK + 300, 10 * BLOCK, 1, 0), 0.0, "silent after the fade");
    cr_assert_not(dsp_voice_playing(b, 0));
    cr_assert_eq(dsp_bank_playing(b), 0);
    dsp_voice_play(b, 0, 300);
    float *x = render_frames(b, 1, 8);
    cr_assert_eq(x[0], 0.0f, "restarts from phase 0");
    cr_assert_leq(max_step(x, 8 * BLOCK, 1, 0), 2 * PI_D * 500 / SR * 1.05 + 1.0 / 300);
    cr_assert_float_eq(peak(x, 400, 8 * BLOCK, 1, 0), 1.0, 2e-3);
    free(x);
    dsp_bank_destroy(b);
}

Test(bank, stopped_voices_are_silent_and_others_unchanged) {
    /* 64 voices = two groups; stopping all of group 0 must not disturb group 1 */
    dsp_bank *a, *b;
    dsp_bank_desc d = {.voices = 64, .channels = 2, .sample_rate = SR, .max_frames = BLOCK};
    cr_assert_eq(dsp_bank_create(&d, &a), FARM_OK);
    cr_assert_eq(dsp_bank_create(&d, &b), FARM_OK);
    for (uint32_t v = 0; v < 64; v++) {
        dsp_voice_set_freq(a, v, 400 + v, 0);
        dsp_voice_set_freq(b, v, 400 + v, 0);
        dsp_voice_set_amp(a, v, 0.01, 0);
        dsp_voice_set_amp(b, v, 0.01, 0);
        dsp_voice_set_pan(a, v, dsp_voice_default_pan(v, 2), 0);
        dsp_voice_set_pan(b, v, dsp_voice_default_pan(v, 2), 0);
        if (v >= 32)
            dsp_voice_play(a, v, 0);
        dsp_voice_play(b, v, 0);
    }
    for (uint32_t v = 0; v < 32; v++)
        dsp_voice_stop(b, v, 0);
    float xa[2 * BLOCK], xb[2 * BLOCK];
    for (int k = 0; k < 20; k++) {
        dsp_bank_render(a, xa, BLOCK);
        dsp_bank_render(b, xb, BLOCK);
        cr_assert_arr_eq(xa, xb, sizeof xa);
    }
    cr_assert_eq(dsp_bank_playing(b), 32);
    dsp_bank_destroy(a);
    dsp_bank_destroy(b);
}

Test(bank, rejects_bad_descriptions) {
    dsp_bank *b;
    dsp_bank_desc zero = {0};
    cr_assert_eq(dsp_bank_create(&zero, &b), FARM_EINVAL);
    dsp_bank_desc many = {.voices = 1, .channels = DSP_MAX_CHANNELS + 1};
    farm_error_clear();
    cr_assert_eq(dsp_bank_create(&many, &b), FARM_EINVAL);
    cr_assert_null(b);
    cr_assert_not_null(strstr(farm_error_message(), "33 channels"), "%s", farm_error_message());
    farm_error_clear();
    cr_assert_eq(dsp_force_isa("no-such-isa"), FARM_EINVAL);
    cr_assert_not_null(strstr(farm_error_message(), "no-such-isa"), "%s", farm_error_message());
}

Test(voices, depend_only_on_seed_and_index) {
    double a = dsp_voice_default_freq(42, 1234, 400, 800);
    cr_assert_eq(a, dsp_voice_default_freq(42, 1234, 400, 800));
    cr_assert_neq(a, dsp_voice_default_freq(43, 1234, 400, 800));
    double lo = 1e9, hi = 0, sum = 0;
    for (uint64_t i = 0; i < 100000; i++) {
        double f = dsp_voice_default_freq(1, i, 400, 800);
        cr_assert(f >= 400 && f < 800);
        lo = f < lo ? f : lo;
        hi = f > hi ? f : hi;
        sum += f;
    }
    cr_assert_lt(lo, 401);
    cr_assert_gt(hi, 799);
    cr_assert_float_eq(sum / 100000, 600, 2, "uniform: mean %g", sum / 100000);
    cr_assert_eq(dsp_voice_default_pan(5, 2), 1.0);
    cr_assert_eq(dsp_voice_default_pan(5, 4), 1.0);
    cr_assert_eq(dsp_voice_default_pan(6, 4), 2.0);
}

/* ---- state that outlives the process ---- */

/* Some voices ramping, some stopping, some stopped: every kind of state a snapshot must keep. */
static dsp_bank *busy_bank(uint32_t voices, uint32_t channels) {
    dsp_bank_desc d = {
        .voices = voices, .channels = channels, .sample_rate = SR, .max_frames = 256};
    dsp_bank *b;
    cr_assert_eq(dsp_bank_create(&d, &b), FARM_OK);
    for (uint32_t v = 0; v < voices; v++) {
        dsp_voice_set_freq(b, v, dsp_voice_default_freq(7, v, 200, 2000), 0);
        dsp_voice_set_feedback(b, v, 0.1 + 0.001 * v, 0);
        dsp_voice_set_amp(b, v, 0.01, 0);
        dsp_voice_play(b, v, 0);
    }
    return b;
}

static void command(dsp_bank *b, uint32_t voices, int step) {
    for (uint32_t v = (uint32_t)step % 7; v < voices; v += 7) {
        dsp_voice_set_freq(b, v, 300 + 10.0 * step + v, 1000); /* ramps over several blocks */
        dsp_voice_set_pan(b, v, (step % 3) * 0.4, 300);
    }
    if (step == 3)
        for (uint32_t v = 0; v < voices; v += 5)
            dsp_voice_stop(b, v, 2000);
    if (step == 6)
        for (uint32_t v = 0; v < voices; v += 10)
            dsp_voice_play(b, v, 100);
    if (step == 11 || step == 26) /* a whole group stops: it is skipped, saves and all */
        for (uint32_t v = DSP_GROUP; v < 2 * DSP_GROUP && v < voices; v++)
            dsp_voice_stop(b, v, 500);
    if (step == 21)
        for (uint32_t v = DSP_GROUP; v < 2 * DSP_GROUP && v < voices; v++)
            dsp_voice_play(b, v, 500);
}

static void continues_exactly_body(const char *isa) {
    enum { VOICES = 150, BLOCKS = 40, FRAMES = 256 };
    const uint32_t channels = 2;
    dsp_bank *a = busy_bank(VOICES, channels);
    size_t bytes = dsp_state_bytes(VOICES, channels);
    char *slot[2] = {calloc(1, bytes), calloc(1, bytes)};
    float ref[FRAMES * 2], out[FRAMES * 2];
    /* Blocks saved alternately into two slots, as a worker does; the phases-only path is taken
     * whenever nothing but the phases moved (the blocks between ramps). Every fourth block, a
     * new bank loads the last snapshot and must render exactly what the original renders next,
     * commands and all; the original then goes on, its next saves landing on stale slots. */
    for (int k = 0; k < BLOCKS; k++) {
        if (k % 5 == 1)
            command(a, VOICES, k);
        dsp_bank_render(a, ref, FRAMES);
        dsp_bank_save(a, slot[k % 2], 42);
        if (k % 4 != 3)
            continue;
        dsp_bank *b = busy_bank(VOICES, channels);
        cr_assert_eq(dsp_bank_load(b, slot[k % 2]), FARM_OK);
        cr_assert_eq(dsp_bank_playing(b), dsp_bank_playing(a));
        for (int j = 0; j < 6; j++) {
            if (j == 3) {
                command(a, VOICES, k + j);
                command(b, VOICES, k + j);
            }
            dsp_bank_render(a, ref, FRAMES);
            dsp_bank_render(b, out, FRAMES);
            cr_assert_eq(memcmp(ref, out, sizeof ref), 0, "%s: block %d after a load at %d", isa, j,
                         k);
        }
        dsp_bank_destroy(b);
    }
    /* and once more from a snapshot taken on the phases-only path, with commands after it */
    dsp_bank_render(a, ref, FRAMES);
    dsp_bank_save(a, slot[0], 42);
    dsp_bank_render(a, ref, FRAMES);
    dsp_bank_save(a, slot[0], 42);
    dsp_bank *b = busy_bank(VOICES, channels);
    cr_assert_eq(dsp_bank_load(b, slot[0]), FARM_OK);
    for (int j = 0; j < 8; j++) {
        if (j == 2) {
            command(a, VOICES, 6);
            command(b, VOICES, 6);
        }
        dsp_bank_render(a, ref, FRAMES);
        dsp_bank_render(b, out, FRAMES);
        cr_assert_eq(memcmp(ref, out, sizeof ref), 0, "%s: block %d after the last load", isa, j);
    }
    dsp_bank_destroy(a);
    dsp_bank_destroy(b);
    free(slot[0]);
    free(slot[1]);
}

Test(state, a_loaded_bank_continues_exactly_where_the_saved_one_was) {
    each_isa(continues_exactly_body);
}

/* A group where nothing ramps takes a short path (its control records are not read again). A bank
 * reloaded from its own snapshot before every block never takes it: both must render the same
 * bits, through ramps starting, ending, stops and plays. */
static void steady_groups_body(const char *isa) {
    enum { VOICES = 150, BLOCKS = 60, FRAMES = 256 };
    dsp_bank *a = busy_bank(VOICES, 2), *b = busy_bank(VOICES, 2);
    char *snap = calloc(1, dsp_state_bytes(VOICES, 2));
    float ref[FRAMES * 2], out[FRAMES * 2];
    for (int k = 0; k < BLOCKS; k++) {
        if (k % 9 == 1) {
            command(a, VOICES, k);
            command(b, VOICES, k);
        }
        dsp_bank_save(b, snap, 7);
        cr_assert_eq(dsp_bank_load(b, snap), FARM_OK);
        dsp_bank_render(a, ref, FRAMES);
        dsp_bank_render(b, out, FRAMES);
        cr_assert_eq(memcmp(ref, out, sizeof ref), 0, "%s: block %d", isa, k);
    }
    dsp_bank_destroy(a);
    dsp_bank_destroy(b);
    free(snap);
}

Test(bank, a_group_without_ramps_renders_what_a_full_segment_renders) {
    each_isa(steady_groups_body);
}

Test(state, a_snapshot_of_another_size_is_refused) {
    dsp_bank *a = busy_bank(64, 2), *b = busy_bank(65, 2);
    char *slot = calloc(1, dsp_state_bytes(64, 2));
    dsp_bank_save(a, slot, 1);
    farm_error_clear();
    cr_assert_eq(dsp_bank_load(b, slot), FARM_EINVAL);
    memset(slot, 0, 64); /* no snapshot at all */
    cr_assert_eq(dsp_bank_load(a, slot), FARM_EINVAL);
    free(slot);
    dsp_bank_destroy(a);
    dsp_bank_destroy(b);
}

/* ---- kernel choice ---- */

static const dsp_kernel *kernel_of(const char *name) {
#if defined(__x86_64__)
    if (strcmp(name, "avx512") == 0)
        return &dsp_kernel_avx512;
    if (strcmp(name, "avx2") == 0)
        return &dsp_kernel_avx2;
    if (strcmp(name, "sse2") == 0)
        return &dsp_kernel_sse2;
#endif
    return &dsp_kernel_generic;
}

/* Every kernel's reduce is the pairwise sum lane j += lane j + w, w = width/2 .. 1, bit for bit:
 * the order is part of what makes a render repeatable, and the vectorised form must keep it. */
Test(kernel, reduce_sums_the_lanes_pairwise_in_a_fixed_order) {
    enum { FRAMES = 64, CH = 3 };
    static float acc[FRAMES * CH * DSP_MAX_VW] __attribute__((aligned(64)));
    srand(7);
    for (size_t i = 0; i < sizeof acc / sizeof acc[0]; i++) /* mixed magnitudes: order shows */
        acc[i] = (float)(rand() - RAND_MAX / 2) * powf(2.0f, (float)(rand() % 40 - 20));
    for (const char *const *isa = dsp_isa_available(); *isa != NULL; isa++) {
        const dsp_kernel *k = kernel_of(*isa);
        float out[FRAMES * CH];
        k->reduce(acc, FRAMES, CH, out);
        for (uint32_t i = 0; i < FRAMES * CH; i++) {
            float lane[DSP_MAX_VW];
            memcpy(lane, acc + (size_t)i * k->width, k->width * sizeof(float));
            for (uint32_t w = k->width / 2; w > 0; w /= 2)
                for (uint32_t j = 0; j < w; j++)
                    lane[j] += lane[j + w];
            cr_assert_eq(memcmp(&out[i], &lane[0], sizeof(float)), 0, "%s, output %u: %a vs %a",
                         *isa, i, (double)out[i], (double)lane[0]);
        }
    }
}

/* A bank created for a named kernel renders with it, exactly as one created while it is forced. */
Test(kernel, a_bank_renders_with_the_kernel_its_description_names) {
    for (const char *const *isa = dsp_isa_available(); *isa != NULL; isa++) {
        dsp_bank *named, *forced;
        dsp_bank_desc d = {.voices = 100, .channels = 2, .isa = *isa};
        cr_assert_eq(dsp_bank_create(&d, &named), FARM_OK);
        cr_assert_str_eq(dsp_bank_isa(named), *isa);
        cr_assert_eq(dsp_force_isa(*isa), FARM_OK);
        d.isa = NULL;
        cr_assert_eq(dsp_bank_create(&d, &forced), FARM_OK);
        dsp_force_isa(NULL);
        float a[256 * 2], b[256 * 2];
        for (uint32_t v = 0; v < 100; v++) {
            dsp_voice_set_freq(named, v, 300 + 7 * v, 0);
            dsp_voice_set_freq(forced, v, 300 + 7 * v, 0);
            dsp_voice_play(named, v, 64);
            dsp_voice_play(forced, v, 64);
        }
        dsp_bank_render(named, a, 256);
        dsp_bank_render(forced, b, 256);
        cr_assert_eq(memcmp(a, b, sizeof a), 0, "%s", *isa);
        dsp_bank_destroy(named);
        dsp_bank_destroy(forced);
    }
    dsp_bank *b;
    dsp_bank_desc bad = {.voices = 1, .isa = "no-such-isa"};
    farm_error_clear();
    cr_assert_eq(dsp_bank_create(&bad, &b), FARM_EINVAL);
    cr_assert_not_null(strstr(farm_error_message(), "no-such-isa"), "%s", farm_error_message());
}

/* The choice for a bank: the forced kernel when one is; otherwise one this CPU runs, and the best
 * where there is nothing to choose between (one kernel of 8 lanes or more) or the bank is big. */
Test(kernel, the_choice_for_a_bank_is_a_kernel_this_cpu_runs) {
    dsp_bank_desc d = {.voices = 500, .channels = 2, .max_frames = 256};
    const char *pick = dsp_isa_for_bank(&d);
    int known = 0, wide = 0;
    for (const char *const *isa = dsp_isa_available(); *isa != NULL; isa++) {
        known |= strcmp(pick, *isa) == 0;
        wide += kernel_of(*isa)->width >= 8;
    }
    cr_assert(known, "%s", pick);
    if (wide < 2)
        cr_assert_str_eq(pick, dsp_isa());
    d.voices = DSP_CALIBRATION_MAX_VOICES;
    cr_assert_str_eq(dsp_isa_for_bank(&d), dsp_isa());
    const char *last = NULL;
    for (const char *const *isa = dsp_isa_available(); *isa != NULL; isa++)
        last = *isa;
    cr_assert_eq(dsp_force_isa(last), FARM_OK);
    d.voices = 500;
    cr_assert_str_eq(dsp_isa_for_bank(&d), last);
    dsp_force_isa(NULL);
}

/* The choice from the measured times: the widest (first) unless another is faster by more than
 * the margin. Decided on given times, so no machine's timing can flip it. */
Test(kernel, calibration_keeps_the_widest_unless_another_is_clearly_faster) {
    const double tie[2] = {1000, 990}, clear[2] = {1000, 900}, slower[3] = {1000, 1500, 2000};
    cr_assert_eq(dsp_calibration_pick(tie, 2), 0, "1% faster is a tie: the widest stays");
    cr_assert_eq(dsp_calibration_pick(clear, 2), 1, "10% faster wins");
    cr_assert_eq(dsp_calibration_pick(slower, 3), 0);
    const double three[3] = {1000, 950, 800};
    cr_assert_eq(dsp_calibration_pick(three, 3), 2, "the fastest of those clearly faster");
    const double unmeasured[2] = {0, 500};
    cr_assert_eq(dsp_calibration_pick(unmeasured, 2), 0, "no time, no switch");
}

/* The measurement itself: every candidate timed, one of them returned. */
Test(kernel, calibration_times_every_candidate) {
    const char *order[2] = {"sse2", "generic"};
    dsp_bank_desc d = {.voices = 500, .channels = 2, .max_frames = 256};
    double ns[2] = {0, 0};
    const char *pick = dsp_isa_calibrate(&d, order, 2, ns);
    cr_assert(strcmp(pick, "sse2") == 0 || strcmp(pick, "generic") == 0, "%s", pick);
    cr_assert(ns[0] > 0 && ns[1] > 0, "%.0f and %.0f ns a block", ns[0], ns[1]);
}

/* A group in which no voice has feedback takes Sine's loop (no chain from frame to frame); one
 * voice with feedback sends the group back to SineLoop's. That voice is silent here (amp 0, so it
 * adds exact zeros), so both banks must render the same bits: Sine's loop is SineLoop's at
 * fb = 0, for every kernel, block after block, through a frequency ramp and a pair of groups. */
static void sine_loop_is_sineloop_at_zero_feedback_body(const char *isa) {
    enum { VOICES = 200, FRAMES = 256, BLOCKS = 40 };
    dsp_bank *sine, *loop;
    dsp_bank_desc d = {.voices = VOICES, .channels = 2};
    cr_assert_eq(dsp_bank_create(&d, &sine), FARM_OK);
    cr_assert_eq(dsp_bank_create(&d, &loop), FARM_OK);
    for (uint32_t v = 0; v < VOICES; v++) {
        dsp_bank *both[] = {sine, loop};
        for (int i = 0; i < 2; i++) {
            dsp_voice_set_freq(both[i], v, dsp_voice_default_freq(3, v, 100, 5000), 0);
            dsp_voice_set_amp(both[i], v, v % DSP_GROUP == 5 ? 0 : 0.004, 0);
            dsp_voice_set_pan(both[i], v, (v % 7) / 6.0, 0);
            dsp_voice_play(both[i], v, 0);
        }
        if (v % DSP_GROUP == 5)
            dsp_voice_set_feedback(loop, v, 0.5, 0); /* the silent voice of every group */
    }
    float a[FRAMES * 2], b[FRAMES * 2];
    double level = 0;
    for (int k = 0; k < BLOCKS; k++) {
        if (k == 10)
            for (uint32_t v = 0; v < VOICES; v += 3) {
                dsp_voice_set_freq(sine, v, 440 + v, 700);
                dsp_voice_set_freq(loop, v, 440 + v, 700);
            }
        dsp_bank_render(sine, a, FRAMES);
        dsp_bank_render(loop, b, FRAMES);
        cr_assert_eq(memcmp(a, b, sizeof a), 0, "%s: block %d", isa, k);
        for (int i = 0; i < FRAMES * 2; i++)
            level += fabs(a[i]);
    }
    cr_assert_gt(level, 1, "%s: the banks play", isa);
    dsp_bank_destroy(sine);
    dsp_bank_destroy(loop);
}

Test(bank, a_group_without_feedback_renders_sineloop_s_bits_through_sine_s_loop) {
    each_isa(sine_loop_is_sineloop_at_zero_feedback_body);
}
