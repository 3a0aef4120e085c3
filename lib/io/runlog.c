/* The run folder's log.jsonl on resume: the lines of steps after the one a run starts
 * from are dropped (and a last line cut short by a kill), so that a resumed run never
 * logs a step twice. The rewrite is atomic: a kill during it leaves the old log. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../internal.h"

/* The "step" of a log line, or -1 when it has none. */
static long line_step(const char *line, size_t len) {
    const char *key = "\"step\": ";
    size_t kl = strlen(key);
    for (size_t i = 0; i + kl < len; i++)
        if (!memcmp(line + i, key, kl)) return strtol(line + i + kl, NULL, 10);
    return -1;
}

sadm_status sadm_log_truncate(const char *path, long step, size_t *dropped_out) {
    SADM_REQUIRE_PTR(path);
    if (dropped_out) *dropped_out = 0;
    struct stat sb;
    if (stat(path, &sb) == 0 && !S_ISREG(sb.st_mode)) return SADM_OK; /* a pipe or device: nothing to rewrite */
    FILE *f = fopen(path, "rb");
    if (!f) return errno == ENOENT ? SADM_OK : sadm_error(SADM_ERR_IO, "cannot read %s: %s", path, strerror(errno));
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap);
    for (size_t got; buf && (got = fread(buf + len, 1, cap - len, f)) > 0;) {
        len += got;
        if (len == cap) {
            char *b = realloc(buf, cap *= 2);
            if (!b) free(buf);
            buf = b;
        }
    }
    int bad = ferror(f);
    fclose(f);
    if (!buf || bad) {
        free(buf);
        return sadm_error(SADM_ERR_IO, "cannot read %s", path);
    }
    size_t keep = 0, dropped = 0;
    for (size_t at = 0; at < len;) {
        char *nl = memchr(buf + at, '\n', len - at);
        size_t end = nl ? (size_t)(nl - buf) + 1 : len;
        long s = line_step(buf + at, end - at);
        if (nl && s <= step) { /* whole lines of steps done (or without a step) stay */
            memmove(buf + keep, buf + at, end - at);
            keep += end - at;
        } else {
            dropped++;
        }
        at = end;
    }
    if (!dropped) {
        free(buf);
        return SADM_OK;
    }
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    FILE *o = fopen(tmp, "wb");
    int ok = o && fwrite(buf, 1, keep, o) == keep;
    if (o && fclose(o) != 0) ok = 0;
    if (ok && rename(tmp, path) != 0) ok = 0;
    free(buf);
    if (!ok) {
        sadm_status st = sadm_error(SADM_ERR_IO, "cannot rewrite %s: %s", path, strerror(errno));
        unlink(tmp);
        return st;
    }
    if (dropped_out) *dropped_out = dropped;
    return SADM_OK;
}
