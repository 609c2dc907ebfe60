/* Where a sound file goes on Windows: a regular file, through a temporary beside it replaced
 * into place (plat_replace_file), or the NUL device written in place. What the POSIX half does
 * beyond that (following symbolic links, keeping an owner, a mode and hard links) has no
 * counterpart here yet: the file at the path is replaced, as a rename onto it would. A live
 * recording is not published while it is written: it is put in place when it is finished (a
 * farm killed while recording leaves its temporary, NAME.farm-XXXXXX, readable). */
#include <errno.h>
#include <fcntl.h>
#include <io.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "outfile_internal.h"
#include "plat.h"

static int is_nul(const char *path) {
    return strcasecmp(path, "NUL") == 0 || strcasecmp(path, "\\\\.\\NUL") == 0;
}

int farm_outfile_resolve(farm_outfile *f, const char *path) {
    snprintf(f->target, sizeof f->target, "%s", path);
    if (is_nul(path)) {
        f->direct = 1;
        return FARM_OK;
    }
    struct stat st;
    if (stat(path, &st) != 0) {
        if (errno == ENOENT)
            return FARM_OK; /* created beside; a missing directory is named then */
        return farm_fail(FARM_EUSAGE, "cannot write %s: %s", path, strerror(errno));
    }
    if (S_ISDIR(st.st_mode))
        return farm_fail(FARM_EUSAGE, "cannot write %s: it is a directory", path);
    if (S_ISCHR(st.st_mode)) {
        f->direct = 1;
        return FARM_OK;
    }
    if (!S_ISREG(st.st_mode))
        return farm_fail(FARM_EUSAGE,
                         "cannot write %s: it is not a regular file; sound files go to regular "
                         "files or NUL",
                         path);
    return FARM_OK;
}

int farm_outfile_open_device(farm_outfile *f) {
    int fd = open(f->path, O_WRONLY | O_BINARY | O_NOINHERIT);
    if (fd < 0)
        return farm_fail(FARM_EUSAGE, "cannot write %s: %s", f->path, strerror(errno));
    f->fd = fd;
    return FARM_OK;
}

/* The temporary is deleted by the system if farm ends before it is put in place, a
 * TerminateProcess included (plat_temp_create); plat_temp_keep takes that back at the end. */
int farm_outfile_open_temporary(farm_outfile *f, const char *path) {
    int n = snprintf(f->tmp, sizeof f->tmp, "%s.farm-XXXXXX", f->target);
    if (n < 0 || (size_t)n >= sizeof f->tmp) {
        f->tmp[0] = '\0';
        return farm_fail(FARM_EUSAGE, "cannot write %s: path too long", path);
    }
    /* libsndfile writes binary through this descriptor: no newline translation, ever. */
    int rv = plat_temp_create(f->tmp, path, &f->fd);
    if (rv != FARM_OK)
        f->tmp[0] = '\0';
    return rv;
}

int farm_outfile_put_in_place(farm_outfile *f, int live) {
    /* A file still open cannot be moved over another on Windows: a live recording stays
     * under its temporary name until farm_outfile_finish puts it in place, but it is kept from
     * now on, so that a farm killed while recording leaves what it recorded. */
    if (live)
        return plat_temp_keep(f->fd, f->path);
    /* Windows replaces no file that is still open (the C library's descriptors do not share
     * deletion): libsndfile is done with it, so it is kept, then closed. */
    int kept = plat_temp_keep(f->fd, f->path);
    if (kept != FARM_OK) {
        close(f->fd); /* and the system deletes it */
        f->fd = -1;
        f->tmp[0] = '\0';
        return kept;
    }
    if (close(f->fd) != 0) {
        f->fd = -1;
        return farm_fail(FARM_EFAIL, "cannot finish %s: %s", f->path, strerror(errno));
    }
    f->fd = -1;
    int rv = plat_replace_file(f->tmp, f->target);
    if (rv != FARM_OK)
        return rv;
    f->tmp[0] = '\0';
    return FARM_OK;
}
