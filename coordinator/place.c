/* The workers, and where the coordinator's own stream thread runs beside them. */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "coordinator.h"
#include "shm.h"
#include "supervisor.h"

void farm_coordinator_place(const farm_options *o, const farm_procs *procs, pthread_t stream_thread,
                            int pin, const char *who) {
    const farm_placement *pl = farm_procs_placement(procs);
    /* Kept off the workers' cores: a worker woken beside the callback would compete with it for
     * the core. Only the core the policy kept spare; never a narrower set than it may use. */
    int pinned =
        pin && plat_cpuset_count(&pl->audio) > 0 && plat_pin_thread(stream_thread, &pl->audio);
    if (!o->verbose)
        return;
    char line[1024];
    farm_placement_describe(pl, line, sizeof line);
    fprintf(stderr, "%s: placement %s%s\n", who, line,
            pin && plat_cpuset_count(&pl->audio) > 0 && !pinned ? " (not pinned: refused)" : "");
}

int farm_coordinator_start_workers(const farm_options *o, uint64_t block_limit, shm_region *region,
                                   farm_procs **procs) {
    *procs = NULL;
    shm_config cfg = farm_shm_config(o, block_limit);
    farm_heal_desc heal = farm_heal_config(o);
    farm_procs_prepare(&cfg);
    int rv = shm_create(&cfg, region);
    if (rv != FARM_OK)
        return rv;
    if ((rv = farm_procs_start(procs, region, &heal, o->cpus)) != FARM_OK)
        shm_close(region);
    return rv;
}

void farm_coordinator_stop_workers(shm_region *region, farm_procs *procs) {
    farm_procs_stop(procs);
    shm_close(region);
}

void farm_cpu_text(int cpu, char *out, size_t size) {
    if (cpu >= 0)
        snprintf(out, size, "cpu %d", cpu);
    else
        snprintf(out, size, "unpinned");
}
