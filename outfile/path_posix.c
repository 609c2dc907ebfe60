/* Where a sound file goes on a POSIX system: what is at the path (symbolic links followed,
 * devices written in place, FIFOs and sockets refused), the temporary beside the target, and
 * putting it in place with the existing file's owner, mode and hard links kept. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include "outfile_internal.h"
#include "plat.h"

static const char *kind_of(mode_t mode) {
    return S_ISFIFO(mode)   ? "FIFO"
           : S_ISSOCK(mode) ? "socket"
           : S_ISBLK(mode)  ? "block device"
           : S_ISCHR(mode)  ? "character device"
           : S_ISDIR(mode)  ? "directory"
           : S_ISLNK(mode)  ? "symbolic link"
           : S_ISREG(mode)  ? "regular file"
                            : "special file";
}

/* A symbolic link's final target, when that does not exist yet (a dangling link): writing
 * creates it there, as a shell's > would. */
static int dangling_target(const char *path, char *out, size_t size) {
    char cur[4096], link[4096];
    snprintf(cur, sizeof cur, "%s", path);
    for (int hops = 0; hops < 40; hops++) {
        struct stat st;
        if (lstat(cur, &st) != 0 || !S_ISLNK(st.st_mode)) {
            if (strlen(cur) >= size)
                return farm_fail(FARM_EUSAGE, "cannot write %s: path too long", path);
            snprintf(out, size, "%s", cur);
            return FARM_OK;
        }
        ssize_t n = readlink(cur, link, sizeof link - 1);
        if (n < 0)
            return farm_fail(FARM_EUSAGE, "cannot write %s: %s", path, strerror(errno));
        link[n] = '\0';
        if (link[0] == '/') {
            snprintf(cur, sizeof cur, "%s", link);
        } else {
            char *slash = strrchr(cur, '/');
            size_t dir = slash ? (size_t)(slash - cur) + 1 : 0;
            if (dir + (size_t)n >= sizeof cur)
                return farm_fail(FARM_EUSAGE, "cannot write %s: path too long", path);
            memcpy(cur + dir, link, (size_t)n + 1);
        }
    }
    return farm_fail(FARM_EUSAGE, "cannot write %s: %s", path, strerror(ELOOP));
}

/* Decides where the file goes: f->target (path, or a symbolic link's final target), and
 * whether it is a character device written in place. Refuses what cannot hold a sound file. */
int farm_outfile_resolve(farm_outfile *f, const char *path) {
    struct stat lst, st;
    snprintf(f->target, sizeof f->target, "%s", path);
    if (lstat(path, &lst) != 0) {
        if (errno == ENOENT)
            return FARM_OK; /* created beside; a missing directory is named then */
        return farm_fail(FARM_EUSAGE, "cannot write %s: %s", path, strerror(errno));
    }
    if (!S_ISLNK(lst.st_mode)) {
        st = lst;
    } else if (stat(path, &st) != 0) {
        if (errno == ENOENT)
            return dangling_target(path, f->target, sizeof f->target);
        return farm_fail(FARM_EUSAGE, "cannot write %s: %s", path, strerror(errno));
    }
    if (S_ISDIR(st.st_mode))
        return farm_fail(FARM_EUSAGE, "cannot write %s: it is a directory", path);
    if (S_ISCHR(st.st_mode)) {
        f->direct = 1;
        return FARM_OK;
    }
    if (S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode))
        return farm_fail(FARM_EUSAGE,
                         "cannot write %s: it is a %s, and a sound file's header is patched at "
                         "the end by seeking back, which a %s cannot do",
                         path, kind_of(st.st_mode), kind_of(st.st_mode));
    if (!S_ISREG(st.st_mode))
        return farm_fail(FARM_EUSAGE,
                         "cannot write %s: it is a %s; sound files go to regular files or "
                         "character devices",
                         path, kind_of(st.st_mode));
    if (S_ISLNK(lst.st_mode) && realpath(path, f->target) == NULL)
        return farm_fail(FARM_EUSAGE, "cannot write %s: %s", path, strerror(errno));
    return FARM_OK;
}

/* Opens the character device at path for writing in place; it must be able to seek. */
int farm_outfile_open_device(farm_outfile *f) {
    int fd = open(f->path, O_WRONLY | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return farm_fail(FARM_EUSAGE, "cannot write %s: %s", f->path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISCHR(st.st_mode)) {
        close(fd);
        return farm_fail(FARM_EUSAGE, "cannot write %s: it changed while being opened", f->path);
    }
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    if (lseek(fd, 0, SEEK_CUR) < 0) {
        close(fd);
        return farm_fail(FARM_EUSAGE,
                         "cannot write %s: this device cannot seek, and a sound file's header "
                         "is patched at the end by seeking back",
                         f->path);
    }
    f->fd = fd;
    return FARM_OK;
}

/* Copies the temporary's bytes into the existing file at target, which keeps its inode (so its
 * hard links, mode and owner). Room is reserved first where the file system can, so a full disk
 * leaves the existing file as it was. live: libsndfile goes on writing, now into target. */
static int copy_in_place(farm_outfile *f, int live) {
    struct stat st;
    if (fstat(f->fd, &st) != 0)
        return farm_fail(FARM_EFAIL, "cannot write %s: %s", f->path, strerror(errno));
    int dst = open(f->target, O_WRONLY | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
    if (dst < 0)
        return farm_fail(FARM_EFAIL, "cannot write %s: %s", f->path, strerror(errno));
    struct stat dst_st;
    if (fstat(dst, &dst_st) != 0 || !S_ISREG(dst_st.st_mode)) {
        close(dst);
        return farm_fail(FARM_EFAIL, "cannot write %s: it changed while being written", f->path);
    }
    int rv = FARM_OK;
    if (st.st_size > 0 && fallocate(dst, FALLOC_FL_KEEP_SIZE, 0, st.st_size) != 0 &&
        (errno == ENOSPC || errno == EDQUOT))
        rv = farm_fail(FARM_EFAIL, "cannot write %s: %s", f->path, strerror(errno));
    char buf[1 << 16];
    for (off_t off = 0; rv == FARM_OK && off < st.st_size;) {
        ssize_t n = pread(f->fd, buf, sizeof buf, off);
        if (n <= 0) {
            rv = farm_fail(FARM_EFAIL, "cannot read back %s: %s", f->tmp,
                           n < 0 ? strerror(errno) : "it is shorter than it was");
            break;
        }
        for (ssize_t done = 0; rv == FARM_OK && done < n;) {
            ssize_t w = pwrite(dst, buf + done, (size_t)(n - done), off + done);
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0)
                rv = farm_fail(FARM_EFAIL, "cannot write %s: %s", f->path,
                               w < 0 ? strerror(errno) : "nothing written");
            else
                done += w;
        }
        off += n;
    }
    if (rv == FARM_OK && ftruncate(dst, st.st_size) != 0)
        rv = farm_fail(FARM_EFAIL, "cannot write %s: %s", f->path, strerror(errno));
    if (rv == FARM_OK && live) {
        off_t pos = lseek(f->fd, 0, SEEK_CUR);
        if (pos < 0 || lseek(dst, pos, SEEK_SET) != pos || dup3(dst, f->fd, O_CLOEXEC) < 0)
            rv = farm_fail(FARM_EFAIL, "cannot write %s: %s", f->path, strerror(errno));
    }
    if (close(dst) != 0 && rv == FARM_OK)
        rv = farm_fail(FARM_EFAIL, "cannot write %s: %s", f->path, strerror(errno));
    return rv;
}

/* Puts the temporary in place at target: renamed over nothing or over a regular file (taking
 * its mode and owner), copied into a regular file with other hard links, then removed. On
 * failure the temporary stays, for the caller to remove. live: libsndfile goes on writing. */
int farm_outfile_put_in_place(farm_outfile *f, int live) {
    struct stat st;
    int exists = lstat(f->target, &st) == 0;
    if (!exists && errno != ENOENT)
        return farm_fail(FARM_EFAIL, "cannot write %s: %s", f->path, strerror(errno));
    if (!exists) {
        /* nothing there: the mode chosen at open stands */
    } else if (!S_ISREG(st.st_mode)) {
        return farm_fail(FARM_EFAIL, "cannot write %s: it has become a %s", f->path,
                         kind_of(st.st_mode));
    } else if (st.st_nlink > 1) {
        int rv = copy_in_place(f, live);
        if (rv == FARM_OK) {
            unlink(f->tmp);
            f->tmp[0] = '\0';
        }
        return rv;
    } else {
        /* The owner first: changing it clears set-user-ID bits that the mode then restores.
         * Only root can give a file away; a group of one's own is allowed to anyone. */
        if ((st.st_uid != geteuid() || st.st_gid != getegid()) &&
            fchown(f->fd, st.st_uid, st.st_gid) != 0)
            (void)!fchown(f->fd, (uid_t)-1, st.st_gid);
        fchmod(f->fd, st.st_mode & 07777);
    }
    int rv = plat_replace_file(f->tmp, f->target);
    if (rv != FARM_OK)
        return rv;
    f->tmp[0] = '\0';
    return FARM_OK;
}

/* The temporary file beside the target, with the mode a new file would get. */
int farm_outfile_open_temporary(farm_outfile *f, const char *path) {
    int n = snprintf(f->tmp, sizeof f->tmp, "%s.farm-XXXXXX", f->target);
    if (n < 0 || (size_t)n >= sizeof f->tmp) {
        f->tmp[0] = '\0';
        return farm_fail(FARM_EUSAGE, "cannot write %s: path too long", path);
    }
    int fd = mkostemp(f->tmp, O_CLOEXEC);
    if (fd < 0) {
        f->tmp[0] = '\0';
        return farm_fail(FARM_EUSAGE, "cannot write %s: %s", path, strerror(errno));
    }
    mode_t mask = umask(0);
    umask(mask);
    if (fchmod(fd, 0666 & ~mask) != 0) {
        int rv = farm_fail(FARM_EUSAGE, "cannot write %s: %s", path, strerror(errno));
        close(fd);
        unlink(f->tmp);
        f->tmp[0] = '\0';
        return rv;
    }
    f->fd = fd;
    return FARM_OK;
}
