/* The audio helpers of testutil.h: reading sound files and looking at audio by its content.
 * Apart from the process helpers (testutil.c) because they need no platform layer: the Windows
 * build's dsp tests use them too. */
#include "testutil.h"

#include <complex.h>
#include <math.h>
#include <sndfile.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PI_D 3.14159265358979323846

int tu_read(const char *path, tu_audio *a) {
    SF_INFO info = {0};
    SNDFILE *f = sf_open(path, SFM_READ, &info);
    memset(a, 0, sizeof *a);
    if (f == NULL)
        return -1;
    a->frames = info.frames;
    a->channels = info.channels;
    a->samplerate = info.samplerate;
    a->format = info.format;
    a->data =
        malloc(sizeof(float) * (size_t)(info.frames > 0 ? info.frames : 1) * (size_t)info.channels);
    sf_count_t got = sf_readf_float(f, a->data, info.frames);
    sf_close(f);
    return got == info.frames ? 0 : -1;
}

void tu_audio_free(tu_audio *a) {
    free(a->data);
    a->data = NULL;
}

double tu_rms(const float *x, size_t n, size_t stride) {
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s += (double)x[i * stride] * x[i * stride];
    return n ? sqrt(s / (double)n) : 0;
}

static void fft(double complex *a, size_t n) {
    for (size_t i = 1, j = 0; i < n; i++) {
        size_t bit = n >> 1;
        for (; j & bit; bit >>= 1)
            j ^= bit;
        j ^= bit;
        if (i < j) {
            double complex t = a[i];
            a[i] = a[j];
            a[j] = t;
        }
    }
    for (size_t len = 2; len <= n; len <<= 1) {
        double complex w = cexp(-2.0 * I * PI_D / (double)len);
        for (size_t i = 0; i < n; i += len) {
            double complex u = 1;
            for (size_t k = 0; k < len / 2; k++) {
                double complex t = a[i + k + len / 2] * u;
                a[i + k + len / 2] = a[i + k] - t;
                a[i + k] += t;
                u *= w;
            }
        }
    }
}

/* The Hann-windowed power spectrum of x (mean removed) over the largest power of two <= n:
 * bins 1 .. m/2 - 1 in *power (caller frees), their count in the return value, the bin width in
 * *bin_hz. */
static size_t power_spectrum(const float *x, size_t n, size_t stride, double sr, double **power,
                             double *bin_hz) {
    if (n < 2 || n > ((size_t)1 << 40)) {
        fprintf(stderr, "tu_band_fraction: %zu samples is no signal\n", n);
        abort(); /* a caller's size underflowed: fail loudly instead of looping */
    }
    size_t m = 1;
    while (m * 2 <= n)
        m *= 2;
    double complex *a = malloc(sizeof *a * m);
    double mean = 0;
    for (size_t i = 0; i < m; i++)
        mean += x[i * stride];
    mean /= (double)m;
    for (size_t i = 0; i < m; i++) {
        double w = 0.5 - 0.5 * cos(2 * PI_D * (double)i / (double)(m - 1));
        a[i] = w * (x[i * stride] - mean);
    }
    fft(a, m);
    double *p = calloc(m / 2, sizeof *p);
    for (size_t k = 1; k < m / 2; k++)
        p[k] = creal(a[k]) * creal(a[k]) + cimag(a[k]) * cimag(a[k]);
    free(a);
    *power = p;
    *bin_hz = sr / (double)m;
    return m / 2;
}

double tu_band_fraction(const float *x, size_t n, size_t stride, double sr, double lo, double hi,
                        double *peak_hz) {
    double *p, bin;
    size_t bins = power_spectrum(x, n, stride, sr, &p, &bin);
    double total = 0, band = 0, best = -1;
    for (size_t k = 1; k < bins; k++) {
        double f = (double)k * bin;
        total += p[k];
        if (f >= lo && f <= hi)
            band += p[k];
        if (p[k] > best) {
            best = p[k];
            if (peak_hz)
                *peak_hz = f;
        }
    }
    free(p);
    return total > 0 ? band / total : 0;
}

double tu_harmonic_fraction(const float *x, size_t n, size_t stride, double sr, double f0,
                            double halfwidth) {
    double *p, bin;
    size_t bins = power_spectrum(x, n, stride, sr, &p, &bin);
    double total = 0, near = 0;
    for (size_t k = 1; k < bins; k++) {
        double f = (double)k * bin, h = floor(f / f0 + 0.5);
        total += p[k];
        if (h >= 1 && fabs(f - h * f0) <= halfwidth)
            near += p[k];
    }
    free(p);
    return total > 0 ? near / total : 0;
}

double tu_tone(const double *x, size_t n, double sr, double f) {
    double complex acc = 0;
    double complex w = cexp(-2.0 * I * PI_D * f / sr), u = 1;
    for (size_t i = 0; i < n; i++) {
        double win = 0.5 - 0.5 * cos(2 * PI_D * (double)i / (double)(n - 1));
        acc += win * x[i] * u;
        u *= w;
        if ((i & 1023) == 1023) /* keep the rotating phasor on the unit circle */
            u /= cabs(u);
    }
    return 4.0 * cabs(acc) / (double)n; /* Hann's coherent gain is 1/2 */
}
