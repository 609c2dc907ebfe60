/* placement — which CPU each worker runs on, from the machine's topology (hwloc) or a list given
 * by hand (--cpus).
 *
 * Contract
 * - The policy (farm_place_topology) is a pure function of a topology description: processing
 *   units (PUs, the CPUs Linux numbers) with the core, L3 domain and package each belongs to,
 *   listing only the PUs this process may use. It places one worker per physical core before any
 *   core gets a second (an SMT sibling shares its core's execution units); fills one L3 domain's
 *   cores before the next (neighbouring workers share a cache, and the coordinator reads their
 *   rings in order); and, when there are more cores than workers, keeps the last core free for the
 *   coordinator (`audio`): playing, its audio callback's thread is pinned there. With more workers
 *   than PUs it cycles: worker K takes the (K mod PUs)-th place of that order.
 * - farm_place_list: worker K on the K-th CPU of a list (cycling when the list is shorter, which
 *   the caller warns about); every CPU must be one the topology lists.
 * - farm_topology_load reads this machine (or an hwloc synthetic description, for tests) with
 *   hwloc, keeping only the PUs in the allowed set: plat_cpus_allowed's (sched_getaffinity's),
 * which the kernel already narrows to the cgroup's cpuset, and hwloc's own view of the cpuset.
 * Without hwloc's answer it falls back to a flat description (every allowed CPU its own core, one
 * domain).
 * - Main thread, at start-up; nothing here is for the real-time path. Errors as everywhere in farm
 *   (base.h): FARM_EUSAGE for a bad --cpus, naming it.
 */
#ifndef FARM_PLACEMENT_H
#define FARM_PLACEMENT_H

#include "plat.h"
#include <stddef.h>
#include <stdint.h>

#include "base.h"

#define FARM_PLACE_MAX_PUS PLAT_CPU_SETSIZE
#define FARM_PLACE_MAX_WORKERS 256

typedef struct farm_pu {
    int cpu;  /* the OS's number, as in sched_setaffinity and --cpus */
    int core; /* ids: equal for PUs of the same core (domain, package); any numbering */
    int l3;   /* the L3 cache domain; the package where none is known */
    int package;
} farm_pu;

typedef struct farm_topology {
    uint32_t count; /* allowed PUs, siblings of a core and cores of a domain in any order */
    farm_pu pu[FARM_PLACE_MAX_PUS];
    const char *source; /* "hwloc", "synthetic" or "flat" */
} farm_topology;

typedef struct farm_placement {
    uint32_t workers;
    int cpu[FARM_PLACE_MAX_WORKERS];           /* worker K's CPU */
    plat_cpuset audio;                         /* the core kept for the audio thread; empty: none */
    uint32_t packages, cores, pus, l3_domains; /* of the allowed part of the machine */
    const char *policy;                        /* "topology" or "list" */
    uint32_t cycled; /* workers beyond the list's (or the machine's) CPUs, sharing one */
} farm_placement;

/* hwloc's description of this machine (synthetic NULL; allowed NULL: this process's affinity) or
 * of a synthetic one (e.g. "pack:1 l3:2 core:8 pu:2"; allowed NULL: all of it). FARM_EINVAL for
 * a synthetic description hwloc refuses. */
int farm_topology_load(farm_topology *t, const char *synthetic, const plat_cpuset *allowed);

/* The policy above: out's cpu, audio and counts for `workers` workers (1..FARM_PLACE_MAX_WORKERS)
 * on t (at least one PU). */
void farm_place_topology(const farm_topology *t, uint32_t workers, farm_placement *out);
/* Worker K on cpus[K % n]. FARM_EUSAGE naming the first CPU t does not list. */
int farm_place_list(const farm_topology *t, const int *cpus, uint32_t n, uint32_t workers,
                    farm_placement *out);

/* Linux's list syntax ("0-3,8,10-11"), in order, into cpus (at most max). FARM_EUSAGE naming
 * what is wrong (what = the option's name, for the message). */
int farm_cpu_list_parse(const char *what, const char *text, int *cpus, uint32_t max,
                        uint32_t *count);

/* One line for people: "topology (1 package, 2 cores, 2 PUs, 1 L3 domain): workers on CPUs
 * 1,0; audio on CPU 2". */
void farm_placement_describe(const farm_placement *p, char *buf, size_t size);

#endif
