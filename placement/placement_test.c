/* The placement policy on synthetic machines (hand-made and hwloc's), and --cpus lists. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>

#include "placement.h"

static farm_topology topo; /* big: not on the stack */
static farm_placement pl;

/* cores x smt PUs; PU s of core c numbered c + s * cores (Intel) or c * smt + s (some AMD);
 * core c in L3 domain c / per_l3, or c % l3s when interleaved. Listed in CPU order, as a flat
 * reading of /proc would list them. */
static void make(uint32_t cores, uint32_t smt, int intel, uint32_t l3s, int interleaved) {
    memset(&topo, 0, sizeof topo);
    uint32_t total = cores * smt;
    for (uint32_t cpu = 0; cpu < total; cpu++) {
        uint32_t c = intel ? cpu % cores : cpu / smt;
        uint32_t l3 = interleaved ? c % l3s : c / (cores / l3s);
        topo.pu[topo.count++] = (farm_pu){.cpu = (int)cpu, .core = (int)c, .l3 = (int)l3};
    }
}

static const farm_pu *pu_of(int cpu) {
    for (uint32_t i = 0; i < topo.count; i++)
        if (topo.pu[i].cpu == cpu)
            return &topo.pu[i];
    cr_assert_fail("CPU %d is not in the topology", cpu);
    return NULL;
}

/* No two of the first n workers on one core. */
static void assert_distinct_cores(uint32_t n) {
    for (uint32_t a = 0; a < n; a++)
        for (uint32_t b = a + 1; b < n; b++)
            cr_assert_neq(pu_of(pl.cpu[a])->core, pu_of(pl.cpu[b])->core,
                          "workers %u and %u share a core (CPUs %d, %d)", a, b, pl.cpu[a],
                          pl.cpu[b]);
}

static void assert_cpus(const int *want, uint32_t n) {
    for (uint32_t k = 0; k < n; k++)
        cr_assert_eq(pl.cpu[k], want[k], "worker %u on CPU %d, not %d", k, pl.cpu[k], want[k]);
}

Test(policy, intel_smt_numbering_takes_every_core_before_a_sibling) {
    make(16, 2, 1, 1, 0); /* siblings i and i + 16 */
    farm_place_topology(&topo, 16, &pl);
    cr_assert_eq(pl.cores, 16);
    cr_assert_eq(pl.pus, 32);
    for (int k = 0; k < 16; k++)
        cr_assert_eq(pl.cpu[k], k);
    cr_assert_eq(plat_cpuset_count(&pl.audio), 0, "16 workers on 16 cores: no core to spare");
    farm_place_topology(&topo, 20, &pl);
    assert_cpus((const int[]){0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19},
                20);
    farm_place_topology(&topo, 32, &pl);
    cr_assert_eq(pl.cycled, 0);
    for (int k = 0; k < 32; k++)
        cr_assert_eq(pl.cpu[k], k);
}

Test(policy, amd_smt_numbering_takes_every_core_before_a_sibling) {
    make(16, 2, 0, 1, 0); /* siblings 2i and 2i + 1 */
    farm_place_topology(&topo, 16, &pl);
    for (int k = 0; k < 16; k++)
        cr_assert_eq(pl.cpu[k], 2 * k, "worker %d on CPU %d", k, pl.cpu[k]);
    assert_distinct_cores(16);
    farm_place_topology(&topo, 18, &pl);
    cr_assert_eq(pl.cpu[16], 1);
    cr_assert_eq(pl.cpu[17], 3);
}

Test(policy, a_spare_core_is_kept_for_the_audio_thread) {
    make(16, 2, 1, 1, 0);
    farm_place_topology(&topo, 8, &pl);
    assert_distinct_cores(8);
    cr_assert_eq(plat_cpuset_count(&pl.audio), 2, "both PUs of the audio core");
    cr_assert(plat_cpuset_has(&pl.audio, 15) && plat_cpuset_has(&pl.audio, 31));
    farm_place_topology(&topo, 15, &pl);
    assert_distinct_cores(15);
    for (uint32_t k = 0; k < 15; k++)
        cr_assert(!plat_cpuset_has(&pl.audio, pl.cpu[k]), "worker %u on the audio core", k);
}

Test(policy, workers_fill_one_l3_domain_before_the_next) {
    make(16, 2, 0, 2, 1); /* even cores in one domain, odd in the other: numbering mixes them */
    farm_place_topology(&topo, 8, &pl);
    cr_assert_eq(pl.l3_domains, 2);
    assert_distinct_cores(8);
    for (uint32_t k = 1; k < 8; k++)
        cr_assert_eq(pu_of(pl.cpu[k])->l3, pu_of(pl.cpu[0])->l3, "worker %u in another domain", k);
    farm_place_topology(&topo, 12, &pl);
    uint32_t in_first = 0;
    for (uint32_t k = 0; k < 12; k++)
        in_first += pu_of(pl.cpu[k])->l3 == pu_of(pl.cpu[0])->l3;
    cr_assert_eq(in_first, 8, "the first domain's 8 cores, then 4 of the other's");
    for (uint32_t k = 8; k < 12; k++)
        cr_assert_neq(pu_of(pl.cpu[k])->l3, pu_of(pl.cpu[0])->l3);
}

Test(policy, fewer_cores_than_workers_cycle) {
    make(2, 1, 0, 1, 0);
    farm_place_topology(&topo, 5, &pl);
    assert_cpus((const int[]){0, 1, 0, 1, 0}, 5);
    cr_assert_eq(pl.cycled, 3);
    cr_assert_eq(plat_cpuset_count(&pl.audio), 0);
    farm_place_topology(&topo, 1, &pl);
    cr_assert_eq(pl.cpu[0], 0);
    cr_assert(plat_cpuset_has(&pl.audio, 1),
              "1 worker on 2 cores: the other is the audio thread's");
}

Test(policy, one_core_takes_every_worker) {
    make(1, 1, 0, 1, 0);
    farm_place_topology(&topo, 3, &pl);
    assert_cpus((const int[]){0, 0, 0}, 3);
    cr_assert_eq(plat_cpuset_count(&pl.audio), 0);
    cr_assert_eq(pl.cores, 1);
}

/* ---- through hwloc ---- */

Test(hwloc, a_synthetic_machine_reads_as_described) {
    cr_assert_eq(farm_topology_load(&topo, "pack:2 l3:2 core:4 pu:2", NULL), FARM_OK);
    cr_assert_str_eq(topo.source, "synthetic");
    farm_place_topology(&topo, 8, &pl);
    cr_assert_eq(pl.packages, 2);
    cr_assert_eq(pl.l3_domains, 4);
    cr_assert_eq(pl.cores, 16);
    cr_assert_eq(pl.pus, 32);
    assert_distinct_cores(8);
    for (uint32_t k = 0; k < 4; k++) /* a domain has 4 cores */
        cr_assert_eq(pu_of(pl.cpu[k])->l3, pu_of(pl.cpu[0])->l3);
    cr_assert_neq(pu_of(pl.cpu[4])->l3, pu_of(pl.cpu[0])->l3);
}

Test(hwloc, intel_numbering_from_a_synthetic_description) {
    char desc[512] = "pack:1 core:16 pu:2(indexes=";
    for (int c = 0; c < 16; c++) {
        size_t len = strlen(desc);
        snprintf(desc + len, sizeof desc - len, "%s%d,%d", c ? "," : "", c, c + 16);
    }
    strcat(desc, ")");
    cr_assert_eq(farm_topology_load(&topo, desc, NULL), FARM_OK, "%s", farm_error_message());
    farm_place_topology(&topo, 16, &pl);
    for (int k = 0; k < 16; k++)
        cr_assert_eq(pl.cpu[k], k, "worker %d on CPU %d", k, pl.cpu[k]);
}

Test(hwloc, only_the_allowed_cpus_count) {
    plat_cpuset allowed;
    plat_cpuset_zero(&allowed);
    for (int c = 4; c < 12; c++) /* half of each L3 domain's PUs, as a cgroup might allow */
        plat_cpuset_add(&allowed, c);
    cr_assert_eq(farm_topology_load(&topo, "pack:1 l3:2 core:4 pu:2", &allowed), FARM_OK);
    farm_place_topology(&topo, 4, &pl);
    cr_assert_eq(pl.pus, 8);
    cr_assert_eq(pl.cores, 4);
    cr_assert_eq(pl.l3_domains, 2);
    for (uint32_t k = 0; k < 4; k++)
        cr_assert(plat_cpuset_has(&allowed, pl.cpu[k]), "worker %u on CPU %d", k, pl.cpu[k]);
    assert_cpus((const int[]){4, 6, 8, 10}, 4);
}

Test(hwloc, this_machine_lists_the_cpus_this_process_may_use) {
    cpu_set_t mine;
    cr_assert_eq(sched_getaffinity(0, sizeof mine, &mine), 0);
    cr_assert_eq(farm_topology_load(&topo, NULL, NULL), FARM_OK);
    cr_assert_eq(topo.count, (uint32_t)CPU_COUNT(&mine));
    for (uint32_t i = 0; i < topo.count; i++)
        cr_assert(CPU_ISSET(topo.pu[i].cpu, &mine));
    farm_error_clear();
    cr_assert_eq(farm_topology_load(&topo, "no such machine", NULL), FARM_EINVAL);
}

/* ---- --cpus ---- */

Test(list, linux_list_syntax) {
    int cpus[64];
    uint32_t n = 0;
    cr_assert_eq(farm_cpu_list_parse("--cpus", "0-3,8,10-11", cpus, 64, &n), FARM_OK);
    cr_assert_eq(n, 7);
    const int want[] = {0, 1, 2, 3, 8, 10, 11};
    cr_assert_arr_eq(cpus, want, sizeof want);
    cr_assert_eq(farm_cpu_list_parse("--cpus", "5", cpus, 64, &n), FARM_OK);
    cr_assert(n == 1 && cpus[0] == 5);
    const char *bad[] = {"", "3-1", "a", "1,,2", "1-", "-1", "1 2", "1,", "99999", "0-2000", "+1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        farm_error_clear();
        cr_assert_eq(farm_cpu_list_parse("--cpus", bad[i], cpus, 64, &n), FARM_EUSAGE, "'%s'",
                     bad[i]);
        cr_assert_not_null(strstr(farm_error_message(), "--cpus"), "%s", farm_error_message());
    }
}

Test(list, worker_k_on_the_kth_cpu_cycling) {
    make(4, 1, 0, 1, 0);
    cr_assert_eq(farm_place_list(&topo, (const int[]){3, 1}, 2, 5, &pl), FARM_OK);
    assert_cpus((const int[]){3, 1, 3, 1, 3}, 5);
    cr_assert_eq(pl.cycled, 3);
    cr_assert_str_eq(pl.policy, "list");
    cr_assert_eq(plat_cpuset_count(&pl.audio), 0);
    farm_error_clear();
    cr_assert_eq(farm_place_list(&topo, (const int[]){1, 7}, 2, 2, &pl), FARM_EUSAGE);
    cr_assert_not_null(strstr(farm_error_message(), "CPU 7"), "%s", farm_error_message());
    cr_assert_not_null(strstr(farm_error_message(), "0-3"), "%s", farm_error_message());
}

Test(list, described_in_one_line) {
    make(2, 1, 0, 1, 0);
    farm_place_topology(&topo, 1, &pl);
    char line[256];
    farm_placement_describe(&pl, line, sizeof line);
    cr_assert_str_eq(line, "topology (1 package, 2 cores, 2 PUs, 1 L3 domain): worker on CPU 0; "
                           "audio on CPU 1");
}
