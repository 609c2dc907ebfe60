/* worker — the farm-worker process: renders one bank of voices into its ring in shared memory.
 *
 * Contract
 * - Started only by the coordinator (plat_spawn), as
 *       farm-worker --fd FD --index K --parent PID [--cpu CPU]
 *   with the shared mapping (see shm.h) open on FD (a HANDLE's value on Windows). It dies with
 *   its parent (plat_die_with_parent: PR_SET_PDEATHSIG, or the job it was started in) and exits
 *   at once if the parent is already gone.
 * - It pins itself to CPU (a failure is a warning, and its slot's cpu stays -1), enables
 *   flush-to-zero, locks its memory when asked, builds its bank from the configuration (voices
 * voice_first .. voice_first + voice_count - 1, global numbers that count the farm's
 * --first-voice in, each derived from the seed and that global index), sets its state to RUNNING
 * and renders ahead until its ring is full, then sleeps on the ring's wake-up (plat_wait, with a
 * deadline, so it notices quit and a dead parent).
 * - Commands from its command ring apply at the start of the next block it renders.
 * - It exits 0 after the header's quit flag or block_limit blocks; 1 when it
 *   could not set itself up (state FAILED, reason on stderr).
 * - The render loop allocates nothing, takes no lock and does no I/O.
 */
#ifndef FARM_WORKER_H
#define FARM_WORKER_H

#include <stdint.h>

#include "shm.h"

/* The worker's body, run in the farm-worker process after it has attached the region. */
int worker_run(shm_region *region, uint32_t index, int cpu);

#endif
