/* Atomic file replacement: write a temporary file in the target's folder, fsync it,
 * rename it over the target, fsync the folder. A process killed at any moment leaves
 * either the previous file or the complete new one, never a torn file. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io.h"

sadm_status sadm_atomic_write(const char *path, int (*write_body)(void *ctx, FILE *f), void *ctx) {
    size_t len = strlen(path);
    char *tmp = malloc(len + 32), *dircopy = strdup(path);
    if (!tmp || !dircopy) {
        free(tmp), free(dircopy);
        return sadm_error(SADM_ERR_NOMEM, "%s: out of memory", path);
    }
    snprintf(tmp, len + 32, "%s.tmp.%ld", path, (long)getpid());
    sadm_status st = SADM_OK;
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        st = sadm_error(SADM_ERR_IO, "%s: cannot create temporary file %s: %s", path, tmp, strerror(errno));
    } else {
        int bad = write_body(ctx, f) != 0 || fflush(f) != 0 || fsync(fileno(f)) != 0;
        int saved = errno;
        if (fclose(f) != 0) bad = 1;
        if (bad) {
            st = sadm_error(SADM_ERR_IO, "%s: writing failed: %s", tmp, strerror(saved ? saved : errno));
            unlink(tmp);
        } else if (rename(tmp, path) != 0) {
            st = sadm_error(SADM_ERR_IO, "%s: cannot rename %s into place: %s", path, tmp, strerror(errno));
            unlink(tmp);
        } else {
            int dfd = open(dirname(dircopy), O_RDONLY | O_DIRECTORY);
            if (dfd >= 0) {
                fsync(dfd); /* makes the rename itself durable */
                close(dfd);
            }
        }
    }
    free(tmp);
    free(dircopy);
    return st;
}
