/* What farm says when WASAPI refuses, for the refusals wine never makes (it grants every
 * exclusive stream): each names the code and tells the user what to do. */
#include <criterion/criterion.h>
#include <string.h>

#include "audio_internal.h"

static const char *explain(unsigned long code, int exclusive) {
    static char buf[512];
    farm_wasapi_explain(code, "host text", exclusive, buf, sizeof buf);
    return buf;
}

Test(wasapi, exclusive_mode_refused_because_the_device_is_held_says_to_play_shared) {
    const char *m = explain(0x8889000Aul, 1); /* AUDCLNT_E_DEVICE_IN_USE */
    cr_assert(strstr(m, "0x8889000A") != NULL, "%s", m);
    cr_assert(strstr(m, "host text") != NULL, "%s", m);
    cr_assert(strstr(m, "exclusive mode refused") != NULL, "%s", m);
    cr_assert(strstr(m, "shared mode (leave out --exclusive)") != NULL, "%s", m);
}

Test(wasapi, a_device_held_by_another_program_in_shared_mode_says_what_holds_it) {
    const char *m = explain(0x8889000Aul, 0);
    cr_assert(strstr(m, "held in exclusive mode by another program") != NULL, "%s", m);
    cr_assert(strstr(m, "--exclusive") == NULL, "no advice about an option not given: %s", m);
}

Test(wasapi, exclusive_mode_turned_off_and_formats_the_device_refuses_are_explained) {
    cr_assert(strstr(explain(0x8889000Eul, 1), "allow applications to take exclusive") != NULL);
    cr_assert(strstr(explain(0x88890008ul, 1), "try its own rate") != NULL);
    cr_assert(strstr(explain(0x88890004ul, 0), "unplugged or disabled") != NULL);
}

Test(wasapi, an_unknown_code_keeps_the_hosts_own_text_and_a_short_buffer_is_not_overrun) {
    cr_assert_str_eq(explain(0x80004005ul, 1), "WASAPI error 0x80004005 (host text)");
    char small[16];
    memset(small, 'x', sizeof small);
    farm_wasapi_explain(0x8889000Aul, "t", 1, small, 8);
    cr_assert_eq(small[7], '\0');
    cr_assert_eq(small[8], 'x');
}
