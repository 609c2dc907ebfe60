/* Where there is no libjack (the Windows build): every way of asking for JACK is refused in one
 * line, before anything starts. jack.c is the backend where there is. */
#include "audio_internal.h"

const int farm_have_jack = 0;

int farm_jack_open(farm_audio **out, const farm_audio_desc *o, farm_engine *e) {
    (void)e;
    *out = NULL;
    const char *what = o->node_count > 0      ? "--node (NetJACK2)"
                       : o->connect != NULL   ? "--connect"
                       : o->jack_name != NULL ? "--jack-name"
                                              : "--host jack";
    return farm_fail(FARM_EUSAGE,
                     "%s: JACK is not in this build (Windows: play through --host wasapi or "
                     "--host mme)",
                     what);
}
