/* outfile — sound files written with libsndfile, for `farm render -o` and `--record`.
 *
 * Contract
 * - The format comes from the name's extension or a format name, the sample type from a name
 *   (float, pcm16, pcm24; FLAC defaults to pcm24, Ogg is Vorbis); a combination libsndfile
 *   cannot write is refused before anything is created (FARM_EUSAGE, the message names it).
 * - The file is written under a temporary name beside the target and renamed into place when
 *   finished; a failure or finish(keep = 0) removes it, so an existing file is untouched.
 * - Not for real-time threads: every call may block on the disk.
 * - Errors as everywhere in farm (base.h).
 */
#ifndef FARM_OUTFILE_H
#define FARM_OUTFILE_H

#include <stdint.h>

#include "base.h"

typedef struct farm_outfile {
    char path[4096];
    char tmp[4096];
    struct sf_private_tag *snd; /* SNDFILE, without making every includer include sndfile.h */
    const char *type_name;      /* "float", "pcm16", "pcm24", "vorbis" */
    uint64_t frames;
} farm_outfile;

/* Chooses the format from format (or path's extension) and sample_type, opens a temporary file
 * beside path. FARM_EUSAGE names what was wrong. */
int farm_outfile_open(farm_outfile *f, const char *path, const char *format,
                      const char *sample_type, uint32_t sample_rate, uint32_t channels);
/* FARM_EFAIL naming the file and the reason (a full disk). */
int farm_outfile_write(farm_outfile *f, const float *frames, uint64_t count);
/* Closes; with keep renames the file into place, otherwise removes it. */
int farm_outfile_finish(farm_outfile *f, int keep);

#endif
