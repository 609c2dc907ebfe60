/* farm devices and farm probe: the command line's side; audio/ does the listing. */
#include "audio.h"
#include "coordinator.h"

static farm_listing_desc listing(const farm_options *o) {
    return (farm_listing_desc){.json = o->json,
                               .verbose = o->verbose,
                               .sample_rate = o->sample_rate,
                               .buffer_frames = o->buffer_frames,
                               .channels = o->channels};
}

int farm_list_devices(const farm_options *o) {
    farm_listing_desc d = listing(o);
    return farm_devices(&d);
}

int farm_list_probe(const farm_options *o) {
    farm_listing_desc d = listing(o);
    return farm_probe(&d);
}
