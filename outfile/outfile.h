/* outfile — sound files written with libsndfile, for `farm render -o` and `--record`.
 *
 * Contract
 * - The format comes from the name's extension or a format name, the sample type from a name
 *   (float, pcm16, pcm24; FLAC defaults to pcm24, Ogg is Vorbis); a combination libsndfile
 *   cannot write is refused before anything is created (FARM_EUSAGE, the message names it).
 * - A render's file is written under a temporary name beside the target and put into place
 *   when finished; a failure or finish(keep = 0) removes it, so an existing file is untouched.
 *   A live recording is published (in place, its header kept current) once playing starts.
 * - Not for real-time threads: every call may block on the disk.
 * - Errors as everywhere in farm (base.h).
 */
#ifndef FARM_OUTFILE_H
#define FARM_OUTFILE_H

#include <stdint.h>

#include "base.h"

/* Where the output goes: a regular file is written under a temporary name beside it and put in
 * place when finished (keeping an existing file's mode, owner and hard links); a symbolic link
 * is followed to its final target, so the link stays a link; a character device (/dev/null) is
 * written in place. FIFOs, sockets and block devices are refused: a sound file's header is
 * patched at the end by seeking back. A wav known to fit in 4 GiB is plain WAV; one longer or
 * of unknown length is RF64, which stays a RIFF WAVE file (WAVE_FORMAT_EXTENSIBLE) if it ends
 * under 4 GiB. Other formats refuse a length they cannot hold, at open or when it is reached. */
typedef struct farm_outfile {
    char path[4096];            /* as named, for messages */
    char target[4096];          /* path, or the final target of the symbolic link path */
    char tmp[4096];             /* the temporary beside target; "" once in place or direct */
    struct sf_private_tag *snd; /* SNDFILE, without making every includer include sndfile.h */
    int fd;                     /* the descriptor libsndfile writes */
    int direct;                 /* a character device, written in place */
    int published;              /* in place while writing; the header follows the frames */
    const char *type_name;      /* "float", "pcm16", "pcm24", "vorbis" */
    const char *format_name;    /* "wav", "aiff", ... as named */
    uint32_t sample_rate;
    uint64_t frames;
    uint64_t max_frames;    /* what the format can hold; 0: no limit */
    uint64_t header_frames; /* frames when the header was last brought up to date */
    uint32_t header_every;  /* frames between header updates once published; 0: none */
} farm_outfile;

/* Chooses the format from format (or path's extension) and sample_type, checks what is at path
 * (see above) and opens a temporary file beside it (or the device). expected_frames: how long
 * the file will be, 0 if not known; a format that cannot hold that many is refused here.
 * FARM_EUSAGE names what was wrong; FARM_EFAIL for a device that fails (/dev/full). */
int farm_outfile_open(farm_outfile *f, const char *path, const char *format,
                      const char *sample_type, uint32_t sample_rate, uint32_t channels,
                      uint64_t expected_frames);
/* Whether the format named by format (or path's extension) holds float samples at this rate
 * and channel count, into *yes (1 or 0). FARM_EUSAGE when nothing names a format or libsndfile
 * knows none by that name. Creates nothing. */
int farm_outfile_takes_float(const char *path, const char *format, uint32_t sample_rate,
                             uint32_t channels, int *yes);
/* Keeps text as the file's comment (libsndfile's SF_STR_COMMENT) in formats that hold one;
 * before the first write. 1 when kept, 0 when the format keeps no comment. */
int farm_outfile_set_comment(farm_outfile *f, const char *text);
/* FARM_EFAIL naming the file and the reason (a full disk) or that the format is full. */
int farm_outfile_write(farm_outfile *f, const float *frames, uint64_t count);
/* Puts the file in place now, while it is still being written, and from then on keeps its
 * header up to date (at most header_every frames behind), so the file is readable under its
 * own name even if the process is killed. For a live recording; render does not call it.
 * Windows cannot move an open file over another: there the file stays under its temporary
 * name (its header kept current all the same) until farm_outfile_finish puts it in place. */
int farm_outfile_publish(farm_outfile *f);
/* Closes; with keep puts the file in place, otherwise removes it. After publish it only
 * closes: the file stays, with keep or not. */
int farm_outfile_finish(farm_outfile *f, int keep);

#endif
