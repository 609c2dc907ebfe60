/* What plat_test and plat_child share: the layout of the test's mapping. */
#ifndef FARM_PLAT_TEST_H
#define FARM_PLAT_TEST_H

#include <stdatomic.h>
#include <stdint.h>

#define PLAT_TEST_ANSWER 0x6661726dull
/* How long either side waits for the other: a wake-up that works takes microseconds. */
#define PLAT_TEST_WAIT_NS (20 * FARM_NS_PER_S)

typedef struct shared_words {
    _Atomic uint32_t to_child, to_parent;   /* bumped by the other side, then woken */
    uint64_t to_child_wake, to_parent_wake; /* plat_wake_create's ids */
    uint64_t answer;                        /* the child's proof that it mapped the same pages */
    uint64_t child_size;                    /* the size the child's attach saw */
} shared_words;

#endif
