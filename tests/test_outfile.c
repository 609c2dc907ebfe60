/* Where `farm render -o` and --record write: a symbolic link stays a link, a file keeps its
 * mode, owner and hard links, a character device is written in place, a FIFO is refused; a full
 * disk fails cleanly; a published recording killed with SIGKILL is readable under its own name;
 * a wav stays a RIFF WAVE file. The file API is called directly where farm cannot be asked. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <sched.h>
#include <signal.h>
#include <sndfile.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "coordinator.h"
#include "testutil.h"

static char dir[256];
static char mounted[300]; /* a small tmpfs to unmount before removing dir */

static void setup(void) {
    tu_tmpdir(dir, sizeof dir);
    farm_error_clear();
}

static void teardown(void) {
    tu_farm_cleanup();
    if (mounted[0] != '\0')
        umount2(mounted, MNT_DETACH);
    mounted[0] = '\0';
    tu_rmdir(dir);
}

TestSuite(outfile, .init = setup, .fini = teardown, .timeout = 60);

static const char *path_in(const char *name) {
    return tu_path(dir, name);
}

/* Every entry in d, hidden ones included: a temporary must not be left behind. */
static int entries_in(const char *d) {
    int n = 0;
    DIR *h = opendir(d);
    cr_assert_not_null(h, "%s: %s", d, strerror(errno));
    struct dirent *de;
    while ((de = readdir(h)) != NULL)
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
            n++;
    closedir(h);
    return n;
}

#define RENDER_ARGS "--duration", "0.5", "--workers", "1", "--voices", "20", "--seed", "5", "-q"
#define RENDER_FRAMES 24000

static void render_to(tu_run *r, const char *out) {
    tu_farm(r, (const char *[]){"render", "-o", out, RENDER_ARGS, NULL}, NULL);
    int left = tu_count_tagged(r->tag, NULL);
    cr_assert_eq(left, 0, "%d processes of this farm are still running", left);
}

static void render_ok(const char *out) {
    tu_run r;
    render_to(&r, out);
    cr_assert_eq(r.status, 0, "render -o %s: status %d: %s", out, r.status, r.err);
}

static void write_bytes(const char *path, char byte, size_t n) {
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f, "%s: %s", path, strerror(errno));
    for (size_t i = 0; i < n; i++)
        fputc(byte, f);
    cr_assert_eq(fclose(f), 0);
}

/* 1 when both files hold the same bytes. */
static int same_bytes(const char *a, const char *b) {
    FILE *fa = fopen(a, "rb"), *fb = fopen(b, "rb");
    cr_assert(fa != NULL && fb != NULL, "%s or %s cannot be read", a, b);
    int ca, cb, same = 1;
    do {
        ca = fgetc(fa);
        cb = fgetc(fb);
        if (ca != cb)
            same = 0;
    } while (same && ca != EOF);
    fclose(fa);
    fclose(fb);
    return same;
}

/* path holds the audio of a render with RENDER_ARGS: the same samples as reference, which is
 * checked to be a plain stereo wav of the right length with sound in it. */
static void assert_rendered(const char *path, const char *reference) {
    tu_audio a, ref;
    cr_assert_eq(tu_read(reference, &ref), 0, "%s is not a sound file", reference);
    cr_assert_eq(ref.frames, RENDER_FRAMES);
    cr_assert_eq(ref.channels, 2);
    cr_assert_eq(ref.format, SF_FORMAT_WAV | SF_FORMAT_FLOAT);
    cr_assert_gt(tu_rms(ref.data, (size_t)ref.frames, 2), 0.005);
    cr_assert_eq(tu_read(path, &a), 0, "%s is not a sound file", path);
    cr_assert_eq(a.frames, ref.frames, "%s: %lld frames", path, (long long)a.frames);
    cr_assert_eq(a.format, ref.format);
    cr_assert_arr_eq(a.data, ref.data, sizeof(float) * (size_t)a.frames * 2, "%s", path);
    tu_audio_free(&a);
    tu_audio_free(&ref);
    cr_assert(same_bytes(path, reference), "%s and %s differ", path, reference);
}

/* ---- what is at the path ---- */

Test(outfile, a_symbolic_link_stays_a_link_and_its_target_gets_the_file) {
    render_ok(path_in("ref.wav"));
    write_bytes(path_in("real.wav"), 'x', 100);
    cr_assert_eq(symlink("real.wav", path_in("link.wav")), 0);
    render_ok(path_in("link.wav"));
    struct stat st;
    cr_assert_eq(lstat(path_in("link.wav"), &st), 0);
    cr_assert(S_ISLNK(st.st_mode), "link.wav became a %o", st.st_mode);
    char target[64] = {0};
    cr_assert_eq(readlink(path_in("link.wav"), target, sizeof target - 1), 8);
    cr_assert_str_eq(target, "real.wav");
    assert_rendered(path_in("real.wav"), path_in("ref.wav"));

    /* a dangling link: the file is created where it points */
    cr_assert_eq(symlink("new.wav", path_in("dangling.wav")), 0);
    render_ok(path_in("dangling.wav"));
    cr_assert_eq(lstat(path_in("dangling.wav"), &st), 0);
    cr_assert(S_ISLNK(st.st_mode));
    assert_rendered(path_in("new.wav"), path_in("ref.wav"));
    cr_assert_eq(entries_in(dir), 5, "ref, real, link, dangling, new: no temporary left");
}

Test(outfile, an_existing_file_keeps_its_mode_and_owner) {
    render_ok(path_in("ref.wav"));
    write_bytes(path_in("private.wav"), 'x', 100);
    cr_assert_eq(chmod(path_in("private.wav"), 0600), 0);
    render_ok(path_in("private.wav"));
    struct stat st;
    cr_assert_eq(stat(path_in("private.wav"), &st), 0);
    cr_assert_eq(st.st_mode & 07777, 0600, "mode %o", st.st_mode & 07777);
    assert_rendered(path_in("private.wav"), path_in("ref.wav"));

    if (geteuid() != 0)
        return; /* only root can give a file away to test that its owner is kept */
    write_bytes(path_in("theirs.wav"), 'x', 100);
    cr_assert_eq(chown(path_in("theirs.wav"), 65534, 65534), 0);
    cr_assert_eq(chmod(path_in("theirs.wav"), 0640), 0);
    render_ok(path_in("theirs.wav"));
    cr_assert_eq(stat(path_in("theirs.wav"), &st), 0);
    cr_assert_eq(st.st_uid, 65534);
    cr_assert_eq(st.st_gid, 65534);
    cr_assert_eq(st.st_mode & 07777, 0640, "mode %o", st.st_mode & 07777);
    assert_rendered(path_in("theirs.wav"), path_in("ref.wav"));
}

Test(outfile, a_file_with_another_hard_link_keeps_both_names_on_the_new_content) {
    render_ok(path_in("ref.wav"));
    /* longer than the render, so what is past its end must be cut off */
    write_bytes(path_in("a.wav"), 'x', 1 << 20);
    cr_assert_eq(link(path_in("a.wav"), path_in("b.wav")), 0);
    struct stat before, a, b;
    cr_assert_eq(stat(path_in("a.wav"), &before), 0);
    render_ok(path_in("a.wav"));
    cr_assert_eq(stat(path_in("a.wav"), &a), 0);
    cr_assert_eq(stat(path_in("b.wav"), &b), 0);
    cr_assert_eq(a.st_ino, before.st_ino, "a.wav is another file now");
    cr_assert_eq(b.st_ino, a.st_ino);
    cr_assert_eq(a.st_nlink, 2);
    assert_rendered(path_in("b.wav"), path_in("ref.wav"));
    cr_assert_eq(entries_in(dir), 3, "no temporary left");
}

static void assert_char_device(const char *path, unsigned major_no, unsigned minor_no) {
    struct stat st;
    cr_assert_eq(lstat(path, &st), 0);
    cr_assert(S_ISCHR(st.st_mode), "%s is no longer a character device: %o", path, st.st_mode);
    cr_assert_eq(major(st.st_rdev), major_no);
    cr_assert_eq(minor(st.st_rdev), minor_no);
}

Test(outfile, a_character_device_is_written_in_place) {
    tu_run r;
    tu_farm(&r, (const char *[]){"render", "-o", "/dev/null", "--format", "wav", RENDER_ARGS, NULL},
            NULL);
    cr_assert_eq(r.status, 0, "status %d: %s", r.status, r.err);
    assert_char_device("/dev/null", 1, 3);

    struct stat st;
    if (stat("/dev/full", &st) != 0 || !S_ISCHR(st.st_mode))
        cr_skip_test("no /dev/full here");
    tu_farm(&r, (const char *[]){"render", "-o", "/dev/full", "--format", "wav", RENDER_ARGS, NULL},
            NULL);
    cr_assert_eq(r.status, 1, "status %d: %s", r.status, r.err);
    cr_assert_eq(tu_lines(r.err), 1, "%s", r.err);
    cr_assert(strstr(r.err, "/dev/full") != NULL, "%s", r.err);
    cr_assert(strstr(r.err, strerror(ENOSPC)) != NULL, "%s", r.err);
    assert_char_device("/dev/full", 1, 7);
    cr_assert_eq(tu_count_tagged(r.tag, NULL), 0);
}

static void expect_refused(const char *out, const char *mentions) {
    tu_run r;
    render_to(&r, out);
    cr_assert_eq(r.status, 2, "%s: status %d: %s", out, r.status, r.err);
    cr_assert_eq(tu_lines(r.err), 1, "%s", r.err);
    cr_assert(strstr(r.err, mentions) != NULL, "expected '%s' in: %s", mentions, r.err);
    cr_assert(strstr(r.err, "seeking") != NULL, "the reason is given: %s", r.err);
}

Test(outfile, a_fifo_or_socket_is_refused_and_left_as_it_is) {
    cr_assert_eq(mkfifo(path_in("pipe.wav"), 0644), 0);
    expect_refused(path_in("pipe.wav"), "FIFO");
    struct stat st;
    cr_assert_eq(lstat(path_in("pipe.wav"), &st), 0);
    cr_assert(S_ISFIFO(st.st_mode));
    cr_assert_eq(entries_in(dir), 1, "nothing else created");

    /* through a symbolic link too */
    cr_assert_eq(symlink("pipe.wav", path_in("to-pipe.wav")), 0);
    expect_refused(path_in("to-pipe.wav"), "FIFO");
    cr_assert_eq(entries_in(dir), 2);

    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path_in("sock.wav"));
    cr_assert_eq(bind(s, (struct sockaddr *)&addr, sizeof addr), 0, "%s", strerror(errno));
    expect_refused(path_in("sock.wav"), "socket");
    close(s);
    cr_assert_eq(lstat(path_in("sock.wav"), &st), 0);
    cr_assert(S_ISSOCK(st.st_mode));
    cr_assert_eq(entries_in(dir), 3);
}

/* ---- a full disk ---- */

/* A 1 MiB tmpfs at dir/small, in a mount namespace of this test's own; skips where that is not
 * allowed. */
static const char *small_disk(void) {
    if (geteuid() != 0)
        cr_skip_test("a full disk needs root to mount a small tmpfs");
    const char *small = path_in("small");
    cr_assert_eq(mkdir(small, 0755), 0);
    if (unshare(CLONE_NEWNS) != 0)
        cr_skip_test("no private mount namespace here: %s", strerror(errno));
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0 ||
        mount("tmpfs", small, "tmpfs", 0, "size=1m") != 0)
        cr_skip_test("cannot mount a small tmpfs here: %s", strerror(errno));
    snprintf(mounted, sizeof mounted, "%s", small);
    return small;
}

Test(outfile, a_full_disk_fails_the_render_and_leaves_the_existing_file) {
    const char *small = small_disk();
    char out[512], fresh[512];
    snprintf(out, sizeof out, "%s/out.wav", small);
    snprintf(fresh, sizeof fresh, "%s/fresh.wav", small);
    write_bytes(out, 'p', 200000);
    /* 5 s of stereo float is 1.9 MB, twice the room */
    const char *const args[] = {"render", "-o",       out,  "--duration", "5", "--workers",
                                "1",      "--voices", "20", "-q",         NULL};
    tu_run r;
    tu_farm(&r, args, NULL);
    cr_assert_eq(r.status, 1, "status %d: %s", r.status, r.err);
    cr_assert_eq(tu_lines(r.err), 1, "%s", r.err);
    cr_assert(strstr(r.err, "out.wav") != NULL, "the file is named: %s", r.err);
    cr_assert(strstr(r.err, strerror(ENOSPC)) != NULL, "the reason is given: %s", r.err);
    cr_assert_eq(tu_count_tagged(r.tag, NULL), 0);
    cr_assert_eq(entries_in(small), 1, "the temporary is removed");
    struct stat st;
    cr_assert_eq(stat(out, &st), 0);
    cr_assert_eq(st.st_size, 200000);
    FILE *f = fopen(out, "rb");
    int c, all_p = 1;
    while ((c = fgetc(f)) != EOF)
        all_p &= c == 'p';
    fclose(f);
    cr_assert(all_p, "the existing file is untouched");

    const char *const args2[] = {"render", "-o",       fresh, "--duration", "5", "--workers",
                                 "1",      "--voices", "20",  "-q",         NULL};
    tu_farm(&r, args2, NULL);
    cr_assert_eq(r.status, 1, "status %d: %s", r.status, r.err);
    cr_assert_eq(tu_lines(r.err), 1, "%s", r.err);
    cr_assert_eq(entries_in(small), 1, "nothing is left of fresh.wav");
}

/* ---- the file API: a live recording ---- */

#define BLOCK 256
#define RATE 48000

/* The test signal: distinct in every frame and channel, exact in float. */
static float sample_at(uint64_t frame, int channel) {
    return (float)((int)(frame % 4093) - 2046) / 4096.0f * (channel ? -1.0f : 1.0f);
}

static void fill_block(float *block, uint64_t first) {
    for (int i = 0; i < BLOCK; i++)
        for (int c = 0; c < 2; c++)
            block[i * 2 + c] = sample_at(first + (uint64_t)i, c);
}

/* path holds between min and max frames of the test signal from its start. */
static void assert_signal(const char *path, int64_t min, int64_t max) {
    tu_audio a;
    cr_assert_eq(tu_read(path, &a), 0, "%s is not a readable sound file", path);
    cr_assert_eq(a.channels, 2);
    cr_assert_eq(a.samplerate, RATE);
    cr_assert(a.frames >= min && a.frames <= max, "%s: %lld frames, expected %lld to %lld", path,
              (long long)a.frames, (long long)min, (long long)max);
    for (int64_t i = 0; i < a.frames; i++)
        for (int c = 0; c < 2; c++)
            cr_assert_eq(a.data[i * 2 + c], sample_at((uint64_t)i, c), "%s: frame %lld ch %d", path,
                         (long long)i, c);
    tu_audio_free(&a);
}

/* In a child: opens path, publishes it, writes blocks, then dies by SIGKILL. */
static void killed_while_recording(const char *path, int blocks) {
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        farm_outfile f;
        float block[BLOCK * 2];
        if (farm_outfile_open(&f, path, NULL, NULL, RATE, 2, 0) != FARM_OK)
            _exit(10);
        if (farm_outfile_publish(&f) != FARM_OK)
            _exit(11);
        for (int b = 0; b < blocks; b++) {
            fill_block(block, (uint64_t)b * BLOCK);
            if (farm_outfile_write(&f, block, BLOCK) != FARM_OK)
                _exit(12);
        }
        raise(SIGKILL);
        _exit(13);
    }
    int status;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "the child ended with %#x",
              status);
}

Test(outfile, a_published_recording_killed_by_sigkill_is_readable_under_its_name) {
    const int n = 100; /* blocks: 0.53 s */
    killed_while_recording(path_in("live.wav"), n);
    /* the header follows the frames at most 50 ms behind */
    assert_signal(path_in("live.wav"), n * BLOCK - RATE / 20 - BLOCK, n * BLOCK);
    cr_assert_eq(entries_in(dir), 1, "no temporary left: the file was in place");

    /* over an existing file with a second hard link: both names see the recording */
    write_bytes(path_in("a.wav"), 'x', 1 << 20);
    cr_assert_eq(link(path_in("a.wav"), path_in("b.wav")), 0);
    killed_while_recording(path_in("a.wav"), n);
    struct stat a, b;
    cr_assert_eq(stat(path_in("a.wav"), &a), 0);
    cr_assert_eq(stat(path_in("b.wav"), &b), 0);
    cr_assert_eq(a.st_ino, b.st_ino);
    assert_signal(path_in("b.wav"), n * BLOCK - RATE / 20 - BLOCK, n * BLOCK);
    cr_assert_eq(entries_in(dir), 3);
}

Test(outfile, finish_after_publish_only_closes_and_the_header_is_exact) {
    farm_outfile f;
    float block[BLOCK * 2];
    for (int keep = 0; keep < 2; keep++) {
        const char *path = path_in(keep ? "kept.wav" : "not-kept.wav");
        cr_assert_eq(farm_outfile_open(&f, path, NULL, NULL, RATE, 2, 0), FARM_OK, "%s",
                     farm_error_message());
        for (int b = 0; b < 10; b++) {
            fill_block(block, (uint64_t)b * BLOCK);
            cr_assert_eq(farm_outfile_write(&f, block, BLOCK), FARM_OK);
        }
        struct stat st;
        cr_assert_neq(stat(path, &st), 0, "not in place before publish");
        cr_assert_eq(farm_outfile_publish(&f), FARM_OK, "%s", farm_error_message());
        cr_assert_eq(stat(path, &st), 0, "in place once published");
        for (int b = 10; b < 23; b++) {
            fill_block(block, (uint64_t)b * BLOCK);
            cr_assert_eq(farm_outfile_write(&f, block, BLOCK), FARM_OK);
        }
        cr_assert_eq(farm_outfile_finish(&f, keep), FARM_OK, "%s", farm_error_message());
        assert_signal(path, 23 * BLOCK, 23 * BLOCK);
    }
    cr_assert_eq(entries_in(dir), 2);
}

Test(outfile, a_full_disk_fails_a_published_recording_which_stays_readable) {
    const char *small = small_disk();
    char path[512];
    snprintf(path, sizeof path, "%s/rec.wav", small);
    farm_outfile f;
    cr_assert_eq(farm_outfile_open(&f, path, NULL, NULL, RATE, 2, 0), FARM_OK, "%s",
                 farm_error_message());
    cr_assert_eq(farm_outfile_publish(&f), FARM_OK, "%s", farm_error_message());
    float block[BLOCK * 2];
    int rv = FARM_OK, b;
    for (b = 0; b < 1000 && rv == FARM_OK; b++) {
        fill_block(block, (uint64_t)b * BLOCK);
        rv = farm_outfile_write(&f, block, BLOCK);
    }
    cr_assert_eq(rv, FARM_EFAIL, "1 MiB holds fewer than 1000 blocks (%d written)", b);
    const char *msg = farm_error_message();
    cr_assert(strstr(msg, "rec.wav") != NULL && strstr(msg, strerror(ENOSPC)) != NULL, "%s", msg);
    cr_assert_lt(f.frames, (uint64_t)b * BLOCK);
    int64_t written = (int64_t)f.frames;
    cr_assert_eq(farm_outfile_finish(&f, 1), FARM_OK, "%s", farm_error_message());
    assert_signal(path, written, written);
    cr_assert_eq(entries_in(small), 1);
}

/* ---- what a format can hold ---- */

Test(outfile, a_small_wav_is_still_a_riff_wave_file_and_identical_twice) {
    render_ok(path_in("one.wav"));
    render_ok(path_in("two.wav"));
    for (int i = 0; i < 2; i++) {
        char head[12];
        FILE *f = fopen(path_in(i ? "two.wav" : "one.wav"), "rb");
        cr_assert_eq(fread(head, 1, 12, f), 12);
        fclose(f);
        cr_assert(memcmp(head, "RIFF", 4) == 0 && memcmp(head + 8, "WAVE", 4) == 0);
    }
    cr_assert(same_bytes(path_in("one.wav"), path_in("two.wav")));

    /* length unknown (a recording): RF64 that libsndfile writes as RIFF WAVE under 4 GiB */
    for (int i = 0; i < 2; i++) {
        const char *path = path_in(i ? "rec2.wav" : "rec1.wav");
        farm_outfile f;
        cr_assert_eq(farm_outfile_open(&f, path, NULL, NULL, RATE, 2, 0), FARM_OK);
        float block[BLOCK * 2];
        for (int b = 0; b < 20; b++) {
            fill_block(block, (uint64_t)b * BLOCK);
            cr_assert_eq(farm_outfile_write(&f, block, BLOCK), FARM_OK);
        }
        cr_assert_eq(farm_outfile_finish(&f, 1), FARM_OK);
        char head[12];
        FILE *h = fopen(path, "rb");
        cr_assert_eq(fread(head, 1, 12, h), 12);
        fclose(h);
        cr_assert(memcmp(head, "RIFF", 4) == 0 && memcmp(head + 8, "WAVE", 4) == 0, "%.4s", head);
        assert_signal(path, 20 * BLOCK, 20 * BLOCK);
    }
    cr_assert(same_bytes(path_in("rec1.wav"), path_in("rec2.wav")));
}

Test(outfile, a_format_refuses_a_length_it_cannot_hold) {
    /* 720 s of 32 channels of float: 4.4 GB */
    tu_run r;
    tu_farm(&r,
            (const char *[]){"render", "-o", path_in("big.aiff"), "--duration", "720", "--channels",
                             "32", "--workers", "1", "--voices", "32", NULL},
            NULL);
    cr_assert_eq(r.status, 2, "status %d: %s", r.status, r.err);
    cr_assert_eq(tu_lines(r.err), 1, "%s", r.err);
    cr_assert(strstr(r.err, "aiff cannot hold 720.0 s") != NULL, "%s", r.err);
    cr_assert_eq(entries_in(dir), 0, "nothing created");

    /* the same in wav is RF64 from the start: accepted (not rendered here) */
    farm_outfile f;
    cr_assert_eq(farm_outfile_open(&f, path_in("big.wav"), NULL, NULL, RATE, 32, 720 * RATE),
                 FARM_OK, "%s", farm_error_message());
    cr_assert_eq(farm_outfile_finish(&f, 0), FARM_OK);
    cr_assert_eq(entries_in(dir), 0);

    /* a length not known at the start is cut where the format is full: sds counts 21 bits */
    cr_assert_eq(farm_outfile_open(&f, path_in("x.sds"), NULL, "pcm16", RATE, 1, 0), FARM_OK, "%s",
                 farm_error_message());
    float block[4096] = {0};
    int rv = FARM_OK;
    while (rv == FARM_OK)
        rv = farm_outfile_write(&f, block, 4096);
    cr_assert_eq(rv, FARM_EFAIL);
    cr_assert(strstr(farm_error_message(), "sds holds at most") != NULL, "%s",
              farm_error_message());
    cr_assert_eq(f.frames, 511 * 4096);
    cr_assert_eq(farm_outfile_finish(&f, 1), FARM_OK, "%s", farm_error_message());
}
