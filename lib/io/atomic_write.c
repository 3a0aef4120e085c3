/* Atomic file replacement: write a temporary file in the target's folder, fsync it,
 * rename it over the target, fsync the folder. A process killed at any moment leaves
 * either the previous file or the complete new one, never a torn file. */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io.h"

/* Removes "<path>.tmp.<pid>" files of processes that no longer exist: the temporaries a
 * kill -9 during a write left behind (a full checkpoint each). A pid that is alive, or
 * that this process cannot signal (another user's), is left alone. On a folder shared
 * between machines a pid may be another host's: do not share run folders that way. */
void sadm_remove_stale_temporaries(const char *path) {
    if (!path) return;
    char *dircopy = strdup(path), *basecopy = strdup(path);
    if (!dircopy || !basecopy) {
        free(dircopy), free(basecopy);
        return;
    }
    const char *dir = dirname(dircopy), *base = basename(basecopy);
    size_t bl = strlen(base);
    DIR *d = opendir(dir);
    for (struct dirent *e; d && (e = readdir(d));) {
        const char *n = e->d_name;
        if (strncmp(n, base, bl) || strncmp(n + bl, ".tmp.", 5)) continue;
        char *end;
        long pid = strtol(n + bl + 5, &end, 10);
        if (*end || pid <= 0 || pid == (long)getpid()) continue;
        if (kill((pid_t)pid, 0) == 0 || errno != ESRCH) continue;
        char full[4096];
        if (snprintf(full, sizeof full, "%s/%s", dir, n) < (int)sizeof full) unlink(full);
    }
    if (d) closedir(d);
    free(dircopy), free(basecopy);
}

sadm_status sadm_atomic_write(const char *path, int (*write_body)(void *ctx, FILE *f), void *ctx) {
    size_t len = strlen(path);
    char *tmp = malloc(len + 32), *dircopy = strdup(path);
    if (!tmp || !dircopy) {
        free(tmp), free(dircopy);
        return sadm_error(SADM_ERR_NOMEM, "%s: out of memory", path);
    }
    snprintf(tmp, len + 32, "%s.tmp.%ld", path, (long)getpid());
    sadm_remove_stale_temporaries(path);
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
