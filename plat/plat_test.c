/* plat's contract on this system: a mapping and wake-ups across a real process boundary,
 * children with exactly their handles, how they end, the clock, CPU sets, files. The Windows
 * build runs it too (under wine); what only one system can check is marked. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#ifdef _WIN32
#include <direct.h>
#include <io.h>
#define KILLED "was terminated (status 137)"
#else
#include <sched.h>
#include <unistd.h>
#define KILLED "was killed by signal 9 (Killed)"
#endif

#include "plat.h"
#include "plat_test.h"

#define MAP_BYTES (1u << 20)

static int spawn_child(char **argv, const plat_handle *inherit, size_t n, plat_proc *p) {
    argv[0] = PLAT_CHILD;
    return plat_spawn(PLAT_CHILD, argv, inherit, n, p);
}

static plat_exit reap(plat_proc *p) {
    plat_exit e;
    cr_assert_eq(plat_proc_reap(p, 1, &e), 1);
    plat_proc_release(p);
    return e;
}

Test(map, a_child_maps_the_same_pages_and_wakes_and_is_woken) {
    plat_map m;
    cr_assert_eq(plat_map_create(MAP_BYTES, &m), FARM_OK);
    cr_assert_geq(m.size, MAP_BYTES);
    const unsigned char *bytes = m.base;
    for (size_t i = 0; i < MAP_BYTES; i += 4096)
        cr_assert_eq(bytes[i], 0, "fresh pages read as zero");
    shared_words *w = m.base;
    cr_assert_eq(plat_wake_create(&w->to_child_wake), FARM_OK);
    cr_assert_eq(plat_wake_create(&w->to_parent_wake), FARM_OK);
    plat_handle inherit[3] = {m.handle};
    size_t n = 1;
    if (plat_wake_handle(w->to_child_wake) != PLAT_NO_HANDLE) {
        inherit[n++] = plat_wake_handle(w->to_child_wake);
        inherit[n++] = plat_wake_handle(w->to_parent_wake);
    }
    char handle[32];
    snprintf(handle, sizeof handle, "%ld", (long)plat_child_handle(inherit, 0));
    char *argv[] = {NULL, "map", handle, NULL};
    plat_proc p;
    cr_assert_eq(spawn_child(argv, inherit, n, &p), FARM_OK, "%s", farm_error_message());

    uint64_t deadline = farm_now_ns() + PLAT_TEST_WAIT_NS;
    while (atomic_load(&w->to_parent) == 0 && farm_now_ns() < deadline)
        plat_wait(&w->to_parent, 0, w->to_parent_wake, deadline - farm_now_ns());
    cr_assert_eq(atomic_load(&w->to_parent), 1, "the child's wake-up never came");
    cr_assert_eq(w->answer, PLAT_TEST_ANSWER);
    cr_assert_geq(w->child_size, MAP_BYTES);
    atomic_fetch_add(&w->to_child, 1);
    plat_wake(&w->to_child, w->to_child_wake);
    plat_exit e = reap(&p);
    cr_assert(plat_exit_clean(&e), "the child was not woken (status %d)", e.code);
    plat_wake_destroy(w->to_child_wake);
    plat_wake_destroy(w->to_parent_wake);
    plat_map_close(&m);
    cr_assert_null(m.base);
}

/* The waits below are about the wall clock, so they are timed by it; their bounds (10 s for a
 * 20 ms or immediate wait) catch a wait that ignored its deadline or its wake-up, never a loaded
 * machine that ran the test late. */
Test(map, a_wait_returns_at_its_deadline_when_nobody_wakes_it) {
    _Atomic uint32_t word = 0;
    uint64_t t0 = farm_now_ns();
    plat_wait(&word, 0, 0, 20 * FARM_NS_PER_MS);
    cr_assert_lt(farm_now_ns() - t0, 10 * FARM_NS_PER_S);
    plat_wait(&word, 1, 0, 10 * FARM_NS_PER_S); /* the word differs: no sleep at all */
    cr_assert_lt(farm_now_ns() - t0, 10 * FARM_NS_PER_S);
}

Test(spawn, a_child_gets_exactly_the_handles_it_is_given) {
    plat_map m;
    cr_assert_eq(plat_map_create(4096, &m), FARM_OK);
    plat_map other; /* not passed: the child must not see it */
    cr_assert_eq(plat_map_create(4096, &other), FARM_OK);
    char *argv[] = {NULL, "fds", NULL};
    plat_proc p;
    cr_assert_eq(spawn_child(argv, &m.handle, 1, &p), FARM_OK);
    plat_exit e = reap(&p);
    cr_assert(plat_exit_clean(&e), "the child saw other descriptors (status %d)", e.code);
    plat_map_close(&m);
    plat_map_close(&other);
}

Test(spawn, how_a_child_ended_is_told) {
    char *argv[] = {NULL, "exit", "3", NULL};
    plat_proc p;
    cr_assert_eq(spawn_child(argv, NULL, 0, &p), FARM_OK);
    plat_exit e = reap(&p);
    char why[96];
    cr_assert_not(plat_exit_clean(&e));
    cr_assert_str_eq(plat_exit_describe(&e, why, sizeof why), "exited with status 3");
}

Test(spawn, a_killed_child_wakes_the_watcher_and_is_told_apart) {
    char *argv[] = {NULL, "sleep", NULL};
    plat_proc p;
    cr_assert_eq(spawn_child(argv, NULL, 0, &p), FARM_OK);
    plat_exit e;
    cr_assert_eq(plat_proc_reap(&p, 0, &e), 0, "running");
    cr_assert(plat_pid_alive(p.pid));
    plat_handle n;
    cr_assert_eq(plat_notifier_open(&n), FARM_OK);
    plat_proc_kill(&p);
    plat_proc *procs[] = {&p};
    uint64_t t0 = farm_now_ns();
    plat_wait_procs(n, procs, 1, 20000);
    cr_assert_lt(farm_now_ns() - t0, 10 * FARM_NS_PER_S, "the death did not wake the watcher");
    e = reap(&p);
    char why[96];
    cr_assert_not(plat_exit_clean(&e));
    cr_assert_str_eq(plat_exit_describe(&e, why, sizeof why), KILLED);
    plat_notifier_close(n);
}

/* The watchdog's evidence that a worker is busy, not hung. */
Test(spawn, a_busy_child_s_cpu_time_is_read) {
    char *argv[] = {NULL, "spin", NULL};
    plat_proc p;
    cr_assert_eq(spawn_child(argv, NULL, 0, &p), FARM_OK);
    uint64_t ran = 0, waited = 0, deadline = farm_now_ns() + 10 * FARM_NS_PER_S;
    int known = plat_proc_cpu_times(&p, &ran, &waited);
    while (known && ran < 10 * FARM_NS_PER_MS && farm_now_ns() < deadline) {
        farm_sleep_ns(FARM_NS_PER_MS);
        known = plat_proc_cpu_times(&p, &ran, &waited);
    }
    plat_proc_kill(&p);
    reap(&p);
#ifdef _WIN32
    cr_assert_not(known, "Windows does not say how long a process waited for a CPU");
#else
    cr_assert(known, "/proc/PID/schedstat");
    cr_assert_geq(ran, 10 * FARM_NS_PER_MS, "it ran %llu ns", (unsigned long long)ran);
#endif
}

Test(spawn, a_raised_notifier_wakes_the_watcher) {
    plat_handle n;
    cr_assert_eq(plat_notifier_open(&n), FARM_OK);
    plat_notify(n);
    uint64_t t0 = farm_now_ns();
    plat_wait_procs(n, NULL, 0, 20000);
    cr_assert_lt(farm_now_ns() - t0, 10 * FARM_NS_PER_S);
    plat_notifier_close(n);
}

Test(spawn, a_missing_program_is_named) {
    char *argv[] = {"nothing", NULL};
    plat_proc p;
    farm_error_clear();
    cr_assert_eq(plat_spawn("/nonexistent/farm-worker", argv, NULL, 0, &p), FARM_EUSAGE);
    cr_assert_not_null(strstr(farm_error_message(), "/nonexistent/farm-worker"), "%s",
                       farm_error_message());
}

Test(clock, sleeps_last_at_least_what_they_are_asked) {
    uint64_t t0 = farm_now_ns();
    farm_sleep_ns(5 * FARM_NS_PER_MS);
    uint64_t t1 = farm_now_ns();
    cr_assert_geq(t1 - t0, 5 * FARM_NS_PER_MS);
    uint64_t deadline = t1 + 20 * FARM_NS_PER_MS;
    farm_sleep_until_ns(deadline);
    cr_assert_geq(farm_now_ns(), deadline);
    farm_sleep_until_ns(deadline - FARM_NS_PER_MS); /* in the past: at once */
}

Test(cpus, sets_and_the_allowed_cpus) {
    plat_cpuset s;
    plat_cpuset_zero(&s);
    plat_cpuset_add(&s, 0);
    plat_cpuset_add(&s, 65);
    plat_cpuset_add(&s, PLAT_CPU_SETSIZE); /* beyond: ignored */
    cr_assert_eq(plat_cpuset_count(&s), 2);
    cr_assert(plat_cpuset_has(&s, 65) && !plat_cpuset_has(&s, 64) && !plat_cpuset_has(&s, -1));
    plat_cpus_allowed(&s);
    cr_assert_geq(plat_cpuset_count(&s), 1);
#ifndef _WIN32
    cpu_set_t mine;
    cr_assert_eq(sched_getaffinity(0, sizeof mine, &mine), 0);
    cr_assert_eq(plat_cpuset_count(&s), CPU_COUNT(&mine));
#endif
    int first = 0;
    while (!plat_cpuset_has(&s, first))
        first++;
    cr_assert_eq(plat_pin_self(first), 1);
#ifndef _WIN32
    cr_assert_eq(sched_getcpu(), first);
#endif
}

/* A fresh directory of the test's own. */
static void temp_dir(char *out, size_t size) {
#ifdef _WIN32
    const char *tmp = getenv("TEMP");
    snprintf(out, size, "%s\\plat-test-%ld", tmp ? tmp : ".", plat_self_pid());
    cr_assert_eq(_mkdir(out), 0);
#else
    snprintf(out, size, "/tmp/plat-test-XXXXXX");
    cr_assert_not_null(mkdtemp(out));
#endif
}

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs(text, f);
    fclose(f);
}

Test(files, a_replacement_takes_the_place_of_what_was_there) {
    char dir[512], from[600], to[600], text[16] = "";
    temp_dir(dir, sizeof dir);
    snprintf(from, sizeof from, "%s/new", dir);
    snprintf(to, sizeof to, "%s/old", dir);
    write_file(to, "old");
    write_file(from, "new");
    cr_assert_eq(plat_replace_file(from, to), FARM_OK);
    FILE *f = fopen(to, "r");
    cr_assert_not_null(fgets(text, sizeof text, f));
    fclose(f);
    cr_assert_str_eq(text, "new");
    cr_assert_null(fopen(from, "r"), "the temporary name is gone");
    cr_assert_eq(plat_replace_file(from, to), FARM_EFAIL);
    remove(to);
    rmdir(dir);
}

Test(files, a_private_directory_is_made_or_refused) {
    char dir[512], sub[600];
    temp_dir(dir, sizeof dir);
    snprintf(sub, sizeof sub, "%s/farm", dir);
    cr_assert_eq(plat_private_dir(sub), FARM_OK);
    cr_assert_eq(plat_private_dir(sub), FARM_OK, "an existing one of the user's own");
    struct stat st;
    cr_assert_eq(stat(sub, &st), 0);
    cr_assert(S_ISDIR(st.st_mode));
#ifndef _WIN32 /* Windows: an ACL inherited from %LOCALAPPDATA%, not mode bits */
    cr_assert_eq(st.st_mode & 0777, 0700);
    char open_dir[600];
    snprintf(open_dir, sizeof open_dir, "%s/open", dir);
    cr_assert_eq(mkdir(open_dir, 0755), 0);
    farm_error_clear();
    cr_assert_eq(plat_private_dir(open_dir), FARM_EFAIL);
    cr_assert_not_null(strstr(farm_error_message(), "only you can enter"));
    rmdir(open_dir);
#endif
    rmdir(sub);
    rmdir(dir);
    cr_assert(plat_pid_alive(plat_self_pid()));
    cr_assert_not(plat_pid_alive(0));
}

static int collect(const char *name, void *arg) {
    char *names = arg;
    strcat(names, name);
    strcat(names, ";");
    return 0;
}

Test(files, a_directory_is_listed_and_a_file_told_and_removed) {
    char dir[512], file[600], sub[600], names[256] = "";
    temp_dir(dir, sizeof dir);
    snprintf(file, sizeof file, "%s/123.farm", dir);
    snprintf(sub, sizeof sub, "%s/sub", dir);
    write_file(file, "pid 123\n");
    cr_assert_eq(plat_private_dir(sub), FARM_OK);
    cr_assert_eq(plat_list_dir(dir, collect, names), FARM_OK);
    cr_assert(strcmp(names, "123.farm;sub;") == 0 || strcmp(names, "sub;123.farm;") == 0, "%s",
              names);
    cr_assert_eq(plat_path_kind_of(file), PLAT_PATH_FILE);
    cr_assert_eq(plat_path_kind_of(sub), PLAT_PATH_OTHER);
    cr_assert_eq(plat_remove_file(file), FARM_OK);
    cr_assert_eq(plat_path_kind_of(file), PLAT_PATH_NONE);
    cr_assert_eq(plat_remove_file(file), FARM_OK, "nothing there is no failure");
    rmdir(sub);
    rmdir(dir);
    names[0] = '\0';
    cr_assert_eq(plat_list_dir(dir, collect, names), FARM_OK, "a missing directory is empty");
    cr_assert_str_eq(names, "");
}

Test(sockets, a_datagram_goes_both_ways_on_loopback) {
    plat_socket a, b;
    int port_a = 0, port_b = 0;
    cr_assert_eq(plat_sock_bind("127.0.0.1", "0", 0, "a", &a, &port_a), FARM_OK, "%s",
                 farm_error_message());
    cr_assert_eq(plat_sock_bind("127.0.0.1", "0", 0, "b", &b, &port_b), FARM_OK);
    cr_assert(port_a > 0 && port_b > 0 && port_a != port_b);
    char port[16], buf[64];
    snprintf(port, sizeof port, "%d", port_b);
    plat_addr to, from;
    cr_assert_eq(plat_sock_resolve("127.0.0.1", port, 0, "b", &to), FARM_OK);
    int ready = 1;
    cr_assert_eq(plat_sock_poll(&b, 1, 0, &ready, 0), 0, "nothing to read yet");
    cr_assert_eq(ready, 0);
    cr_assert_eq(plat_sock_recv(b, buf, sizeof buf, &from), 0, "would block, not fail");
    cr_assert_eq(plat_sock_send(a, "ping", 4, &to), 4);
    cr_assert_eq(plat_sock_poll(&b, 1, 0, &ready, 5000), 1);
    cr_assert_eq(plat_sock_recv(b, buf, sizeof buf, &from), 4);
    cr_assert_eq(memcmp(buf, "ping", 4), 0);
    cr_assert_eq(plat_sock_send(b, "pong", 4, &from), 4, "the reply goes where it came from");
    cr_assert_eq(plat_sock_poll(&a, 1, 0, &ready, 5000), 1);
    cr_assert_eq(plat_sock_recv(a, buf, sizeof buf, NULL), 4);
    cr_assert_eq(memcmp(buf, "pong", 4), 0);
    plat_socket c;
    int port_c = 0;
    farm_error_clear();
    cr_assert_eq(plat_sock_bind("127.0.0.1", port, 0, "--osc taken", &c, &port_c), FARM_EUSAGE,
                 "a port in use is refused");
    cr_assert(strncmp(farm_error_message(), "--osc taken: ", 13) == 0, "%s", farm_error_message());
    plat_sock_close(a);
    plat_sock_close(b);
}

Test(sockets, a_connection_is_accepted_and_its_end_seen) {
    plat_socket l, c, k;
    int port = 0;
    cr_assert_eq(plat_sock_bind("127.0.0.1", "0", 1, "listener", &l, &port), FARM_OK, "%s",
                 farm_error_message());
    char ps[16], buf[16];
    snprintf(ps, sizeof ps, "%d", port);
    plat_addr a;
    cr_assert_eq(plat_sock_resolve("127.0.0.1", ps, 1, "listener", &a), FARM_OK);
    cr_assert_eq(plat_sock_connect(&a, 5000, "listener", &c), FARM_OK, "%s", farm_error_message());
    int ready = 0;
    cr_assert_eq(plat_sock_poll(&l, 1, 0, &ready, 5000), 1);
    cr_assert_eq(plat_sock_accept(l, &k), 1);
    cr_assert_eq(plat_sock_recv(k, buf, sizeof buf, NULL), 0, "nothing yet: still open");
    cr_assert_eq(plat_sock_send(c, "abc", 3, NULL), 3);
    cr_assert_eq(plat_sock_poll(&k, 1, 0, &ready, 5000), 1);
    cr_assert_eq(plat_sock_recv(k, buf, sizeof buf, NULL), 3);
    plat_sock_close(c);
    cr_assert_eq(plat_sock_poll(&k, 1, 0, &ready, 5000), 1);
    cr_assert_eq(plat_sock_recv(k, buf, sizeof buf, NULL), -1, "the peer's end");
    plat_sock_close(k);
    plat_sock_close(l);
}

/* What PortAudio prints while it scans goes nowhere, and stderr is whole again afterwards.
 * stderr points at a file for the test (Criterion's own capture is a pipe it reads elsewhere). */
Test(stderr_, silenced_then_restored) {
    char dir[512], path[600], text[64] = "";
    temp_dir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/stderr", dir);
    FILE *f = fopen(path, "w+b");
    cr_assert_not_null(f);
    fflush(stderr);
    int keep = dup(2);
    cr_assert_geq(dup2(fileno(f), 2), 0);
    fprintf(stderr, "before ");
    int saved = plat_stderr_silence();
    fprintf(stderr, "noise a scan prints ");
    plat_stderr_restore(saved);
    fprintf(stderr, "after");
    fflush(stderr);
    dup2(keep, 2);
    close(keep);
    cr_assert_geq(saved, 0, "silenced");
    rewind(f);
    cr_assert_not_null(fgets(text, sizeof text, f));
    fclose(f);
    cr_assert_str_eq(text, "before after");
    remove(path);
    rmdir(dir);
}

Test(env, a_default_is_set_only_where_nothing_is) {
    plat_env_default("FARM_PLAT_TEST_VAR", "first");
    cr_assert_str_eq(getenv("FARM_PLAT_TEST_VAR"), "first");
    plat_env_default("FARM_PLAT_TEST_VAR", "second");
    cr_assert_str_eq(getenv("FARM_PLAT_TEST_VAR"), "first", "a value already set is kept");
}
