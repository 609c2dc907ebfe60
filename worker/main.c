/* farm-worker: see worker.h. Only the coordinator starts it. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dsp.h"
#include "plat.h"
#include "worker.h"

/* FARM_ISA=NAME (tests, benchmarks): render with that kernel instead of the best this CPU has.
 * A name dsp does not know, or one this CPU cannot run, is an error: the worker names the kernels
 * it could use and exits 1, so farm reports that the worker cannot start. */
static void force_isa_from_env(long index) {
    const char *isa = getenv("FARM_ISA");
    if (isa == NULL || isa[0] == '\0')
        return;
    int rv = dsp_force_isa(isa);
    if (rv == FARM_OK)
        return;
    char names[128] = "";
    size_t len = 0;
    for (const char *const *n = dsp_isa_available(); *n != NULL; n++) {
        int w = snprintf(names + len, sizeof names - len, "%s%s", len ? ", " : "", *n);
        if (w < 0 || (size_t)w >= sizeof names - len)
            break;
        len += (size_t)w;
    }
    fprintf(stderr, "farm-worker %ld: FARM_ISA=%s: %s (this CPU runs %s)\n", index, isa,
            rv == FARM_ENOISA ? "this CPU cannot run that kernel" : "unknown kernel", names);
    exit(1);
}

static long parse_long(const char *s, const char *what) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0') {
        fprintf(stderr, "farm-worker: %s must be an integer, not '%s'\n", what, s);
        exit(1);
    }
    return v;
}

int main(int argc, char **argv) {
    long fd = -1, index = -1, parent = -1, cpu = -1;
    static const struct option opts[] = {{"fd", required_argument, NULL, 'f'},
                                         {"index", required_argument, NULL, 'i'},
                                         {"parent", required_argument, NULL, 'p'},
                                         {"cpu", required_argument, NULL, 'c'},
                                         {NULL, 0, NULL, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (ch) {
        case 'f':
            fd = parse_long(optarg, "--fd");
            break;
        case 'i':
            index = parse_long(optarg, "--index");
            break;
        case 'p':
            parent = parse_long(optarg, "--parent");
            break;
        case 'c':
            cpu = parse_long(optarg, "--cpu");
            break;
        default:
            fprintf(stderr, "usage: farm-worker --fd FD --index K --parent PID [--cpu CPU]\n"
                            "(started by farm; not meant to be run by hand)\n");
            return 1;
        }
    }
    if (fd < 0 || index < 0 || parent <= 0) {
        fprintf(stderr, "farm-worker: --fd, --index and --parent are required (started by farm; "
                        "not meant to be run by hand)\n");
        return 1;
    }
    force_isa_from_env(index);
    /* Die with the coordinator; and if it died before this line, go now. */
    if (!plat_die_with_parent(parent))
        return 1;

    shm_region region;
    int rv = shm_attach((plat_handle)fd, &region);
    if (rv != FARM_OK) {
        fprintf(stderr, "farm-worker %ld: cannot map the shared memory: %s\n", index,
                farm_error_message());
        return 1;
    }
    rv = worker_run(&region, (uint32_t)index, (int)cpu);
    shm_close(&region);
    return rv;
}
