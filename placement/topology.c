/* This machine's topology, read by hwloc: the only file of the module that knows hwloc. A build
 * without hwloc (Windows: not among the cross-built dependencies yet) has the flat description
 * alone, which the policy already falls back to when hwloc fails. */
#if FARM_HAVE_HWLOC
#include <hwloc.h>
#endif
#include <string.h>

#include "placement.h"

#if FARM_HAVE_HWLOC

static int ancestor_id(hwloc_topology_t topo, hwloc_obj_type_t type, hwloc_obj_t pu) {
    hwloc_obj_t a = hwloc_get_ancestor_obj_by_type(topo, type, pu);
    return a != NULL ? (int)a->logical_index : -1;
}

/* hwloc's PUs that are also in allowed, in hwloc's order (package, cache, core, PU). */
static void read_pus(hwloc_topology_t topo, const plat_cpuset *allowed, farm_topology *t) {
    int n = hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_PU);
    t->count = 0;
    for (int i = 0; i < n && t->count < FARM_PLACE_MAX_PUS; i++) {
        hwloc_obj_t pu = hwloc_get_obj_by_type(topo, HWLOC_OBJ_PU, (unsigned)i);
        if (pu->os_index >= PLAT_CPU_SETSIZE ||
            (allowed && !plat_cpuset_has(allowed, (int)pu->os_index)))
            continue;
        int package = ancestor_id(topo, HWLOC_OBJ_PACKAGE, pu);
        int core = ancestor_id(topo, HWLOC_OBJ_CORE, pu);
        int l3 = ancestor_id(topo, HWLOC_OBJ_L3CACHE, pu);
        t->pu[t->count++] = (farm_pu){
            .cpu = (int)pu->os_index,
            .core = core >= 0 ? core : (int)(FARM_PLACE_MAX_PUS + pu->logical_index),
            /* no L3 known: the package is the cache domain (offset: ids must not collide) */
            .l3 = l3 >= 0 ? l3 : FARM_PLACE_MAX_PUS + (package >= 0 ? package : 0),
            .package = package >= 0 ? package : 0,
        };
    }
}

#endif

/* Every allowed CPU a core of its own, in one domain: what is known without hwloc. */
static void flat(const plat_cpuset *allowed, farm_topology *t) {
    t->count = 0;
    for (int c = 0; c < PLAT_CPU_SETSIZE && t->count < FARM_PLACE_MAX_PUS; c++)
        if (plat_cpuset_has(allowed, c))
            t->pu[t->count++] = (farm_pu){.cpu = c, .core = c, .l3 = 0, .package = 0};
    t->source = "flat";
}

int farm_topology_load(farm_topology *t, const char *synthetic, const plat_cpuset *allowed) {
    plat_cpuset mine;
    if (synthetic == NULL && allowed == NULL) {
        plat_cpus_allowed(&mine);
        allowed = &mine;
    }
#if !FARM_HAVE_HWLOC
    if (synthetic != NULL)
        return farm_fail(FARM_EINVAL, "no hwloc in this build: synthetic topology '%s' refused",
                         synthetic);
    flat(allowed, t);
    return FARM_OK;
#else
    hwloc_topology_t topo;
    if (hwloc_topology_init(&topo) != 0) {
        if (synthetic != NULL)
            return farm_fail(FARM_ENOMEM, "hwloc cannot start");
        flat(allowed, t);
        return FARM_OK;
    }
    int rv = 0;
    if (synthetic != NULL && hwloc_topology_set_synthetic(topo, synthetic) != 0)
        rv = farm_fail(FARM_EINVAL, "hwloc refuses the synthetic topology '%s'", synthetic);
    if (rv == FARM_OK && hwloc_topology_load(topo) != 0)
        rv = synthetic ? farm_fail(FARM_EINVAL, "hwloc cannot build '%s'", synthetic) : -1;
    if (rv == FARM_OK) {
        read_pus(topo, allowed, t);
        t->source = synthetic ? "synthetic" : "hwloc";
    }
    hwloc_topology_destroy(topo);
    if (synthetic == NULL && (rv != FARM_OK || t->count == 0)) {
        flat(allowed, t); /* hwloc failed, or sees none of our CPUs (a container, say) */
        return FARM_OK;
    }
    return rv;
#endif
}
