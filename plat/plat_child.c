/* The child that plat_test starts through plat_spawn: what a worker does with what it inherits.
 *   plat_child map HANDLE   attach, answer through the mapping, wait (bounded) to be woken
 *   plat_child exit N       exit with status N
 *   plat_child sleep        sleep a minute (to be killed)
 *   plat_child spin         run on a CPU for a minute (to be killed)
 *   plat_child fds          exit 0 when descriptors 0-3 are open and none above (Linux)
 * The mapping's layout is plat_test.c's (shared_words). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifndef _WIN32
#include <fcntl.h>
#endif

#include "plat.h"
#include "plat_test.h"

static int map_child(plat_handle h) {
    plat_map m;
    if (plat_map_attach(h, &m) != FARM_OK) {
        fprintf(stderr, "plat_child: %s\n", farm_error_message());
        return 2;
    }
    shared_words *w = m.base;
    w->answer = PLAT_TEST_ANSWER;
    w->child_size = m.size;
    atomic_fetch_add(&w->to_parent, 1);
    plat_wake(&w->to_parent, w->to_parent_wake);
    uint64_t deadline = farm_now_ns() + PLAT_TEST_WAIT_NS;
    while (atomic_load(&w->to_child) == 0 && farm_now_ns() < deadline)
        plat_wait(&w->to_child, 0, w->to_child_wake, deadline - farm_now_ns());
    int woken = atomic_load(&w->to_child) != 0;
    plat_map_close(&m);
    return woken ? 0 : 3;
}

static int only_inherited(void) {
#ifdef _WIN32
    return 0;
#else
    for (int fd = 0; fd < 256; fd++)
        if ((fcntl(fd, F_GETFD) != -1) != (fd <= 3))
            return 4;
    return 0;
#endif
}

int main(int argc, char **argv) {
    if (argc == 3 && strcmp(argv[1], "map") == 0)
        return map_child((plat_handle)strtoll(argv[2], NULL, 10));
    if (argc == 3 && strcmp(argv[1], "exit") == 0)
        return atoi(argv[2]);
    if (argc == 2 && strcmp(argv[1], "sleep") == 0) {
        farm_sleep_ns(60 * FARM_NS_PER_S);
        return 0;
    }
    if (argc == 2 && strcmp(argv[1], "spin") == 0) {
        volatile uint64_t n = 0;
        for (uint64_t end = farm_now_ns() + 60 * FARM_NS_PER_S; farm_now_ns() < end;)
            n++;
        return 0;
    }
    if (argc >= 2 && strcmp(argv[1], "fds") == 0)
        return only_inherited();
    fprintf(stderr, "usage: plat_child map HANDLE | exit N | sleep | spin | fds\n");
    return 2;
}
