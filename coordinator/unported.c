/* The commands the Windows build does not have yet: playing needs audio/ (PortAudio's WASAPI
 * and MME hosts), control/ (named pipes, discovery files) and nodes/, which are not ported
 * (docs/windows.md, "What is left"). Each says so in one line and exits 2, before anything
 * starts. render and mix are whole on Windows. */
#include "coordinator.h"

static int unported(const char *what) {
    return farm_fail(FARM_EUSAGE,
                     "%s: not yet on Windows (this build renders: farm render, farm mix)", what);
}

int farm_play(const farm_options *opt) {
    (void)opt;
    return unported("playing");
}

int farm_list_devices(const farm_options *opt) {
    (void)opt;
    return unported("devices");
}

int farm_list_probe(const farm_options *opt) {
    (void)opt;
    return unported("probe");
}
