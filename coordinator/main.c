/* farm: the coordinator's entry point. See coordinator.h for the exit statuses. */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "coordinator.h"
#include "dsp.h"

#ifndef FARM_VERSION
#define FARM_VERSION "0.1.0"
#endif

volatile sig_atomic_t farm_stop_signal;

static void on_signal(int sig) {
    farm_stop_signal = sig;
}

void farm_install_signal_handlers(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

static int finish(int rv) {
    if (rv != FARM_OK) {
        fprintf(stderr, "farm: %s\n", farm_error_message());
        return rv;
    }
    if (farm_stop_signal)
        return 128 + farm_stop_signal;
    return 0;
}

int main(int argc, char **argv) {
    const char *cmd = argc > 1 ? argv[1] : "";
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
        farm_usage(stdout);
        printf("\nPlaying options: farm help play. Render options: farm help render.\n");
        return 0;
    }
    if (strcmp(cmd, "help") == 0) {
        if (argc > 2 && strcmp(argv[2], "render") == 0)
            farm_render_usage(stdout);
        else if (argc > 2 && strcmp(argv[2], "play") == 0)
            farm_play_usage(stdout);
        else
            farm_usage(stdout);
        return 0;
    }
    if (strcmp(cmd, "--version") == 0) {
        printf("farm %s (kernel %s)\n", FARM_VERSION, dsp_isa());
        return 0;
    }
    if (strcmp(cmd, "devices") == 0)
        return finish(farm_devices(argc - 1, argv + 1));
    if (strcmp(cmd, "probe") == 0)
        return finish(farm_probe(argc - 1, argv + 1));
    if (cmd[0] == '\0' || cmd[0] == '-') {
        /* farm [options]: play. getopt starts at argv[1], so argv[0] stands in. */
        farm_options opt;
        int rv = farm_parse_options(FARM_PLAY, argc, argv, &opt);
        if (rv == 1) {
            farm_play_usage(stdout);
            return 0;
        }
        if (rv != FARM_OK)
            return finish(rv);
        farm_install_signal_handlers();
        return finish(farm_play(&opt));
    }
    if (strcmp(cmd, "render") == 0) {
        farm_options opt;
        int rv = farm_parse_options(FARM_RENDER, argc - 1, argv + 1, &opt);
        if (rv == 1) {
            farm_render_usage(stdout);
            return 0;
        }
        if (rv != FARM_OK)
            return finish(rv);
        farm_install_signal_handlers();
        return finish(farm_render(&opt));
    }
    fprintf(stderr, "farm: unknown command '%s' (try farm --help)\n", cmd);
    return FARM_EUSAGE;
}
