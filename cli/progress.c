/* A one-line progress bar on a terminal; plain lines now and then otherwise (logs, CI). */
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

double cli_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void format_duration(double s, char *buf, size_t len) {
    long t = s > 0 && s < 1e9 ? (long)(s + 0.5) : 0;
    if (t >= 3600)
        snprintf(buf, len, "%ldh%02ldm", t / 3600, t / 60 % 60);
    else
        snprintf(buf, len, "%ldm%02lds", t / 60, t % 60);
}

void cli_progress(cli_progress_state *p, long done, long total, const char *status) {
    double now = cli_now();
    if (!p->started) {
        p->start = now, p->start_done = done, p->started = 1, p->tty = isatty(2);
        p->last_print = 0;
    }
    int last = done >= total;
    if (!last && now - p->last_print < (p->tty ? 0.2 : 30.0)) return;
    p->last_print = now;
    double rate = now > p->start ? (done - p->start_done) / (now - p->start) : 0;
    char eta[32];
    format_duration(rate > 0 ? (total - done) / rate : 0, eta, sizeof eta);
    if (p->tty) {
        char bar[31];
        int fill = total > 0 ? (int)(30.0 * done / total) : 0;
        for (int i = 0; i < 30; i++) bar[i] = i < fill ? '#' : '.';
        bar[30] = 0;
        fprintf(stderr, "\r[%s] %ld/%ld %s ETA %s\033[K", bar, done, total, status, eta);
        if (last) fputc('\n', stderr);
    } else {
        fprintf(stderr, "%ld/%ld %s ETA %s\n", done, total, status, eta);
    }
    fflush(stderr);
}
