/* The benchmarks' pinning, through the platform layer: one CPU, checked against the ones this
 * process may use. */
#ifndef FARM_BENCH_PIN_H
#define FARM_BENCH_PIN_H

#include <stdio.h>

#include "plat.h"

/* Pins the calling thread to cpu, or to the first CPU this process may use when cpu < 0;
 * returns the CPU, or -1 with a line on stderr prefixed by who. */
static inline int bench_pin_to_one_cpu(const char *who, int cpu) {
    plat_cpuset allowed;
    plat_cpus_allowed(&allowed);
    for (int c = 0; cpu < 0 && c < PLAT_CPU_SETSIZE; c++)
        if (plat_cpuset_has(&allowed, c))
            cpu = c;
    if (!plat_cpuset_has(&allowed, cpu)) {
        fprintf(stderr, "%s: CPU %d is not one this process may use\n", who, cpu);
        return -1;
    }
    if (!plat_pin_self(cpu)) {
        fprintf(stderr, "%s: cannot pin the thread to CPU %d\n", who, cpu);
        return -1;
    }
    return cpu;
}

#endif
