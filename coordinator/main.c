/* farm: the coordinator's entry point. See coordinator.h for the exit statuses. */
#include <stdio.h>
#include <string.h>

#include "coordinator.h"
#include "dsp.h"
#include "plat.h"

#ifndef FARM_VERSION
#define FARM_VERSION "0.1.0"
#endif

static const struct {
    const char *name;
    farm_mode mode;
    int (*run)(const farm_options *opt);
} commands[] = {
    {"render", FARM_RENDER, farm_render},
    {"mix", FARM_MIX, farm_mix_parts},
    {"devices", FARM_DEVICES, farm_list_devices},
    {"probe", FARM_PROBE, farm_list_probe},
    {"play", FARM_PLAY, farm_play},
};

static int finish(int rv) {
    if (rv != FARM_OK) {
        fprintf(stderr, "farm: %s\n", farm_error_message());
        return farm_exit_status(rv);
    }
    if (farm_stop_signal)
        return 128 + farm_stop_signal;
    return 0;
}

/* farm help [COMMAND] */
static int help(int argc, char **argv) {
    if (argc < 3) {
        farm_overview(stdout);
        return 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(argv[2], commands[i].name) == 0) {
            farm_usage(commands[i].mode, stdout);
            return 0;
        }
    return finish(farm_fail(
        FARM_EUSAGE, "help: no command '%s' (play, render, mix, devices or probe)", argv[2]));
}

/* argv[0] stands for the command: options start at argv[1]. */
static int run(farm_mode mode, int (*body)(const farm_options *), int argc, char **argv) {
    farm_options opt;
    int rv = farm_parse_options(mode, argc, argv, &opt);
    if (rv == FARM_HELP_ASKED) {
        farm_usage(mode, stdout);
        return 0;
    }
    if (rv != FARM_OK)
        return finish(rv);
    farm_catch_stop_signals();
    return finish(body(&opt));
}

/* Playing locks memory (mlockall), and the limit counts every mapping: every thread of this
 * process, ours and the libraries' (NNG's, PortAudio's, JACK's), gets a small stack unless it
 * asks for one (the default 8 MiB each would be locked for nothing), and malloc keeps one arena
 * instead of reserving 64 MiB more per thread (no real-time path allocates, so nothing waits
 * on its lock). */
#define THREAD_STACK_DEFAULT (512 * 1024)

int main(int argc, char **argv) {
    const char *cmd = argc > 1 ? argv[1] : "";
    plat_thread_defaults(THREAD_STACK_DEFAULT);
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
        farm_overview(stdout);
        printf(
            "\nPlaying options: farm help play. Render options: farm help render. Mixing parts:\n"
            "farm help mix.\n");
        return 0;
    }
    if (strcmp(cmd, "help") == 0)
        return help(argc, argv);
    if (strcmp(cmd, "--version") == 0) {
        printf("farm %s (kernel %s)\n", FARM_VERSION, dsp_isa());
        return 0;
    }
    if (cmd[0] == '\0' || cmd[0] == '-')
        return run(FARM_PLAY, farm_play, argc, argv);
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(cmd, commands[i].name) == 0)
            return run(commands[i].mode, commands[i].run, argc - 1, argv + 1);
    fprintf(stderr, "farm: unknown command '%s' (try farm --help)\n", cmd);
    return farm_exit_status(FARM_EUSAGE);
}
