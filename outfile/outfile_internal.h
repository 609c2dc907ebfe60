/* outfile's system-specific half: what is at the path and how a finished file is put in place.
 * path_posix.c (Linux: symbolic links, devices, owner and hard links kept) and path_win.c
 * (Windows: regular files and NUL) implement the same four calls; outfile.c, libsndfile's side,
 * is the same everywhere. Errors as in outfile.h. */
#ifndef FARM_OUTFILE_INTERNAL_H
#define FARM_OUTFILE_INTERNAL_H

#include "outfile.h"

/* Sets f->target (where the file goes) and f->direct (a device written in place) from what is
 * at path; refuses what cannot hold a sound file (FARM_EUSAGE). */
int farm_outfile_resolve(farm_outfile *f, const char *path);
/* Opens f->path, a device, for writing in place into f->fd. */
int farm_outfile_open_device(farm_outfile *f);
/* Opens a new temporary beside f->target into f->fd and f->tmp. */
int farm_outfile_open_temporary(farm_outfile *f, const char *path);
/* Puts f->tmp in place at f->target and clears f->tmp; on failure f->tmp stays, for the caller
 * to remove. live: libsndfile goes on writing to f->fd; where an open file cannot be put in place
 * (Windows) this keeps f->tmp and succeeds, and farm_outfile_finish puts it in place. May close
 * f->fd (then -1) when not live: Windows cannot replace a file that is still open. */
int farm_outfile_put_in_place(farm_outfile *f, int live);

#endif
