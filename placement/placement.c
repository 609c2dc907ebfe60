/* The placement policy, pure: a topology description in, a CPU per worker out. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "placement.h"

/* A core, with its PUs in the order the topology lists them. */
typedef struct core_slot {
    int id, l3;
    uint32_t first_seen; /* of its domain: domains keep the topology's order */
    uint32_t n;
    int cpu[8]; /* SMT of up to 8 ways; a 9th sibling is left out, harmlessly */
} core_slot;

enum pu_field { CORE, L3, PACKAGE };

static int field(const farm_pu *pu, enum pu_field f) {
    return f == CORE ? pu->core : f == L3 ? pu->l3 : pu->package;
}

static uint32_t distinct(const farm_topology *t, enum pu_field f) {
    uint32_t n = 0;
    for (uint32_t i = 0; i < t->count; i++) {
        uint32_t j = 0;
        while (j < i && field(&t->pu[j], f) != field(&t->pu[i], f))
            j++;
        n += j == i;
    }
    return n;
}

/* "0-3,8": CPUs as Linux lists them, sorted. */
static void format_list(const farm_topology *t, char *buf, size_t size) {
    plat_cpuset set;
    plat_cpuset_zero(&set);
    for (uint32_t i = 0; i < t->count; i++)
        plat_cpuset_add(&set, t->pu[i].cpu);
    size_t len = 0;
    buf[0] = '\0';
    for (int c = 0; c < PLAT_CPU_SETSIZE && len < size; c++) {
        if (!plat_cpuset_has(&set, c))
            continue;
        int end = c;
        while (end + 1 < PLAT_CPU_SETSIZE && plat_cpuset_has(&set, end + 1))
            end++;
        int w = end > c ? snprintf(buf + len, size - len, "%s%d-%d", len ? "," : "", c, end)
                        : snprintf(buf + len, size - len, "%s%d", len ? "," : "", c);
        len += w > 0 ? (size_t)w : 0;
        c = end;
    }
}

static void count_topology(const farm_topology *t, farm_placement *out) {
    out->pus = t->count;
    out->cores = distinct(t, CORE);
    out->l3_domains = distinct(t, L3);
    out->packages = distinct(t, PACKAGE);
}

static int by_domain(const void *a, const void *b) {
    const core_slot *x = a, *y = b;
    /* stable by construction: ties keep the order in which the cores were found */
    if (x->first_seen != y->first_seen)
        return x->first_seen < y->first_seen ? -1 : 1;
    return 0;
}

/* The cores, grouped by L3 domain (domains, and cores within one, in the order first seen). */
static uint32_t gather_cores(const farm_topology *t, core_slot *cores) {
    uint32_t n = 0;
    for (uint32_t i = 0; i < t->count; i++) {
        const farm_pu *pu = &t->pu[i];
        uint32_t c = 0;
        while (c < n && cores[c].id != pu->core)
            c++;
        if (c == n) {
            uint32_t first = 0;
            while (first < i && t->pu[first].l3 != pu->l3)
                first++;
            cores[n++] = (core_slot){.id = pu->core, .l3 = pu->l3, .first_seen = first};
        }
        if (cores[c].n < sizeof cores[c].cpu / sizeof cores[c].cpu[0])
            cores[c].cpu[cores[c].n++] = pu->cpu;
    }
    /* qsort is not stable: sort on (domain, position found), which is unique */
    for (uint32_t c = 0; c < n; c++)
        cores[c].first_seen = cores[c].first_seen * FARM_PLACE_MAX_PUS + c;
    qsort(cores, n, sizeof *cores, by_domain);
    return n;
}

void farm_place_topology(const farm_topology *t, uint32_t workers, farm_placement *out) {
    memset(out, 0, sizeof *out);
    plat_cpuset_zero(&out->audio);
    out->workers = workers;
    out->policy = "topology";
    count_topology(t, out);
    static core_slot cores[FARM_PLACE_MAX_PUS];
    uint32_t n = gather_cores(t, cores);
    /* A spare core: the last (of the last domain) is kept for the audio thread. */
    if (n > workers) {
        n--;
        for (uint32_t i = 0; i < cores[n].n; i++)
            plat_cpuset_add(&out->audio, cores[n].cpu[i]);
    }
    /* One place per PU: every core's first PU, then every core's second, ... */
    static int order[FARM_PLACE_MAX_PUS];
    uint32_t places = 0;
    for (uint32_t rank = 0; places < FARM_PLACE_MAX_PUS; rank++) {
        uint32_t before = places;
        for (uint32_t c = 0; c < n; c++)
            if (rank < cores[c].n)
                order[places++] = cores[c].cpu[rank];
        if (places == before)
            break;
    }
    for (uint32_t k = 0; k < workers && k < FARM_PLACE_MAX_WORKERS; k++)
        out->cpu[k] = order[k % places];
    out->cycled = workers > places ? workers - places : 0;
}

int farm_place_list(const farm_topology *t, const int *cpus, uint32_t n, uint32_t workers,
                    farm_placement *out) {
    memset(out, 0, sizeof *out);
    plat_cpuset_zero(&out->audio);
    for (uint32_t i = 0; i < n; i++) {
        uint32_t j = 0;
        while (j < t->count && t->pu[j].cpu != cpus[i])
            j++;
        if (j == t->count) {
            char allowed[256];
            format_list(t, allowed, sizeof allowed);
            return farm_fail(FARM_EUSAGE,
                             "--cpus: CPU %d is not one this process may use (it may use %s)",
                             cpus[i], allowed);
        }
    }
    out->workers = workers;
    out->policy = "list";
    count_topology(t, out);
    for (uint32_t k = 0; k < workers && k < FARM_PLACE_MAX_WORKERS; k++)
        out->cpu[k] = cpus[k % n];
    out->cycled = workers > n ? workers - n : 0;
    return FARM_OK;
}

/* One number of a CPU list: digits only, below PLAT_CPU_SETSIZE. */
static int list_number(const char **p, int *out) {
    const char *s = *p;
    if (*s < '0' || *s > '9')
        return -1;
    long v = 0;
    while (*s >= '0' && *s <= '9' && v < PLAT_CPU_SETSIZE)
        v = v * 10 + (*s++ - '0');
    if (v >= PLAT_CPU_SETSIZE)
        return -1;
    *out = (int)v;
    *p = s;
    return 0;
}

int farm_cpu_list_parse(const char *what, const char *text, int *cpus, uint32_t max,
                        uint32_t *count) {
    const char *p = text;
    uint32_t n = 0;
    for (;;) {
        int lo, hi;
        if (list_number(&p, &lo) != 0)
            break;
        hi = lo;
        if (*p == '-') {
            p++;
            if (list_number(&p, &hi) != 0 || hi < lo)
                break;
        }
        for (int c = lo; c <= hi; c++) {
            if (n == max)
                return farm_fail(FARM_EUSAGE, "%s: '%s' lists more than %u CPUs", what, text, max);
            cpus[n++] = c;
        }
        if (*p == '\0') {
            *count = n;
            return FARM_OK;
        }
        if (*p++ != ',')
            break;
    }
    return farm_fail(FARM_EUSAGE,
                     "%s: '%s' is not a CPU list (numbers and ranges below %d, like 0-3,8,10-11)",
                     what, text, PLAT_CPU_SETSIZE);
}

void farm_placement_describe(const farm_placement *p, char *buf, size_t size) {
    size_t len = 0;
#define PUT(...)                                                                                   \
    do {                                                                                           \
        int w_ = snprintf(buf + len, size - len, __VA_ARGS__);                                     \
        len += w_ > 0 && (size_t)w_ < size - len ? (size_t)w_ : 0;                                 \
    } while (0)
    const char *s = p->workers == 1 ? "" : "s";
    PUT("%s (%u package%s, %u core%s, %u PU%s, %u L3 domain%s): worker%s on CPU%s ", p->policy,
        p->packages, p->packages == 1 ? "" : "s", p->cores, p->cores == 1 ? "" : "s", p->pus,
        p->pus == 1 ? "" : "s", p->l3_domains, p->l3_domains == 1 ? "" : "s", s, s);
    for (uint32_t k = 0; k < p->workers && k < FARM_PLACE_MAX_WORKERS; k++)
        PUT("%s%d", k ? "," : "", p->cpu[k]);
    if (plat_cpuset_count(&p->audio) > 0) {
        PUT("; audio on CPU");
        for (int c = 0, first = 1; c < PLAT_CPU_SETSIZE; c++)
            if (plat_cpuset_has(&p->audio, c)) {
                PUT("%s%d", first ? " " : ",", c);
                first = 0;
            }
    }
#undef PUT
}
