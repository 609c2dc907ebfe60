/* Running farms, found in the runtime directory: one code path for both systems, which differ
 * only in what the record of a farm is (PLAT_IPC_FILES): its control socket file on Linux, its
 * discovery file on Windows, where ipc:// sockets are named pipes and leave no file. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plat.h"
#include "proto.h"

#define DISCOVERY_FILE_MAX 4096 /* a discovery file is a few short lines */

void farm_default_url(char *out, size_t size, const char *dir, long pid, const char *suffix) {
    if (PLAT_IPC_FILES)
        snprintf(out, size, "ipc://%s/%ld%s", dir, pid, suffix);
    else
        snprintf(out, size, "ipc://farm-%ld%s", pid, suffix);
}

/* The pid in a record's name (PID.control, PID.farm), or -1 when name is not a record. */
static long record_pid(const char *name) {
    return farm_socket_pid(name, PLAT_IPC_FILES ? FARM_CONTROL_SUFFIX : FARM_DISCOVERY_SUFFIX);
}

/* The record at path, of kind that records are (a socket file, or a regular file). */
static int is_record(const char *path) {
    return plat_path_kind_of(path) == (PLAT_IPC_FILES ? PLAT_PATH_SOCKET : PLAT_PATH_FILE);
}

int farm_discovery_read(const char *path, const char *key, char *out, size_t size) {
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return farm_fail(FARM_EFAIL, "cannot read %s", path);
    char line[DISCOVERY_FILE_MAX];
    size_t k = strlen(key);
    int found = 0;
    while (!found && fgets(line, sizeof line, f) != NULL) {
        line[strcspn(line, "\r\n")] = '\0';
        if (strncmp(line, key, k) == 0 && line[k] == ' ' && line[k + 1] != '\0') {
            snprintf(out, size, "%s", line + k + 1);
            found = 1;
        }
    }
    fclose(f);
    return found ? FARM_OK : farm_fail(FARM_EFAIL, "%s names no %s", path, key);
}

typedef struct scan {
    const char *dir;
    farm_found *out;
    size_t max, live, stale;
} scan;

static int found_one(const char *name, void *arg) {
    scan *s = arg;
    long pid = record_pid(name);
    char path[FARM_URL_MAX - 8]; /* room for "ipc://" before it */
    snprintf(path, sizeof path, "%s" PLAT_DIR_SEP "%s", s->dir, name);
    if (pid <= 0 || !is_record(path))
        return 0;
    if (!plat_pid_alive(pid)) {
        s->stale++; /* a farm that was killed and could not remove its record */
        return 0;
    }
    char url[FARM_URL_MAX];
    if (PLAT_IPC_FILES)
        snprintf(url, sizeof url, "ipc://%s", path);
    else if (farm_discovery_read(path, "control", url, sizeof url) != FARM_OK)
        return 0; /* not farm's, or being replaced: not a farm to talk to */
    if (s->live < s->max) {
        s->out[s->live].pid = pid;
        snprintf(s->out[s->live].control, sizeof s->out[s->live].control, "%s", url);
    }
    s->live++;
    return 0;
}

int farm_discover(const char *dir, farm_found *out, size_t max, size_t *live, size_t *stale) {
    scan s = {.dir = dir, .out = out, .max = max};
    int rv = plat_list_dir(dir, found_one, &s);
    *live = s.live;
    *stale = s.stale;
    return rv;
}

/* What a farm that died left: on Linux its two sockets, on Windows its discovery file (and the
 * temporary of one it was writing). */
static int remove_stale(const char *name, void *arg) {
    const char *dir = arg;
    long pid;
    if (PLAT_IPC_FILES) {
        pid = farm_socket_pid(name, FARM_CONTROL_SUFFIX);
        if (pid < 0)
            pid = farm_socket_pid(name, FARM_TELEMETRY_SUFFIX);
    } else {
        pid = farm_socket_pid(name, FARM_DISCOVERY_SUFFIX);
        if (pid < 0)
            pid = farm_socket_pid(name, FARM_DISCOVERY_SUFFIX ".new");
    }
    if (pid <= 0 || plat_pid_alive(pid))
        return 0;
    char path[PLAT_PATH_MAX];
    snprintf(path, sizeof path, "%s" PLAT_DIR_SEP "%s", dir, name);
    if (plat_path_kind_of(path) == (PLAT_IPC_FILES ? PLAT_PATH_SOCKET : PLAT_PATH_FILE))
        plat_remove_file(path);
    return 0;
}

void farm_discover_clean(const char *dir) {
    plat_list_dir(dir, remove_stale, (void *)dir);
}

int farm_announce(const char *dir, long pid, const char *control, const char *telemetry,
                  const char *osc) {
    if (PLAT_IPC_FILES)
        return FARM_OK;
    char path[PLAT_PATH_MAX], tmp[PLAT_PATH_MAX];
    snprintf(path, sizeof path, "%s" PLAT_DIR_SEP "%ld" FARM_DISCOVERY_SUFFIX, dir, pid);
    snprintf(tmp, sizeof tmp, "%s.new", path);
    FILE *f = fopen(tmp, "w");
    if (f == NULL)
        return farm_fail(FARM_EFAIL, "cannot write the discovery file %s", tmp);
    fprintf(f, "pid %ld\ncontrol %s\ntelemetry %s\n", pid, control, telemetry);
    if (osc != NULL)
        fprintf(f, "osc %s\n", osc);
    int ok = !ferror(f);
    ok = fclose(f) == 0 && ok;
    int rv = ok ? plat_replace_file(tmp, path)
                : farm_fail(FARM_EFAIL, "cannot write the discovery file %s", tmp);
    if (rv != FARM_OK)
        plat_remove_file(tmp);
    return rv;
}

void farm_withdraw(const char *dir, long pid) {
    if (PLAT_IPC_FILES)
        return;
    char path[PLAT_PATH_MAX];
    snprintf(path, sizeof path, "%s" PLAT_DIR_SEP "%ld" FARM_DISCOVERY_SUFFIX, dir, pid);
    plat_remove_file(path);
}
