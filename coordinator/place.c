/* Where the coordinator's own stream thread runs, beside the workers the supervisor placed. */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "coordinator.h"
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
