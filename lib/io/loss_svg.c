/* The picture of a run: the training loss of log.jsonl against the step, as an SVG file
 * (no plotting library needed; every browser shows it). Log-scale loss axis, because the
 * loss of a diffusion run falls by more than a decade in its first hundred steps; the raw
 * logged values in a light line, a running mean over about a twentieth of the points in a
 * dark one, and the FD_fmnist lines of the log in the title. */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../internal.h"
#include "io.h"

typedef struct curve {
    double *step, *loss, *mean;
    size_t n, cap;
    double fd, fd_step; /* the last FD_fmnist line (fd < 0: none) */
    char fd_weights[16];
} curve;

static int curve_push(curve *c, double step, double loss) {
    if (c->n == c->cap) {
        size_t cap = c->cap ? 2 * c->cap : 256;
        double *s = realloc(c->step, cap * sizeof(double));
        if (!s) return -1;
        c->step = s;
        double *l = realloc(c->loss, cap * sizeof(double));
        if (!l) return -1;
        c->loss = l;
        c->cap = cap;
    }
    c->step[c->n] = step, c->loss[c->n] = loss, c->n++;
    return 0;
}

/* Every line of the log with a numeric "step" and a finite positive "loss"; lines that
 * are not JSON (a line cut short by a kill) are skipped, as the resume logic does. */
static sadm_status read_log(const char *path, curve *c) {
    FILE *f = fopen(path, "rb");
    if (!f) return sadm_error(SADM_ERR_IO, "cannot read %s", path);
    char line[4096];
    c->fd = -1;
    while (fgets(line, sizeof line, f)) {
        json_t *j = json_loads(line, 0, NULL);
        if (!j) continue;
        json_t *s = json_object_get(j, "step"), *l = json_object_get(j, "loss"), *fd = json_object_get(j, "fd_fmnist");
        if (json_is_number(s) && json_is_number(l) && json_number_value(l) > 0 && isfinite(json_number_value(l)) &&
            curve_push(c, json_number_value(s), json_number_value(l))) {
            json_decref(j);
            fclose(f);
            return sadm_error(SADM_ERR_NOMEM, "%s: out of memory for the loss curve", path);
        }
        if (json_is_number(s) && json_is_number(fd)) {
            c->fd = json_number_value(fd), c->fd_step = json_number_value(s);
            const char *w = json_string_value(json_object_get(j, "fd_weights"));
            snprintf(c->fd_weights, sizeof c->fd_weights, "%s", w ? w : "?");
        }
        json_decref(j);
    }
    fclose(f);
    if (!c->n) return sadm_error(SADM_ERR_FORMAT, "%s: no line has a \"step\" and a positive \"loss\": nothing to plot", path);
    return SADM_OK;
}

/* A 1, 2 or 5 times a power of ten close to span / 5: the step between x ticks. */
static double nice_tick(double span) {
    double raw = span / 5, p = pow(10, floor(log10(raw))), m = raw / p;
    return (m < 1.5 ? 1 : m < 3.5 ? 2 : m < 7.5 ? 5 : 10) * p;
}

enum { W = 760, H = 420, LEFT = 70, RIGHT = 20, TOP = 40, BOTTOM = 50 };

typedef struct plot {
    curve *c;
    double x1, y0, y1; /* x from 0 to x1; log10 loss from y0 to y1 */
} plot;

static double px(const plot *p, double step) { return LEFT + (W - LEFT - RIGHT) * step / p->x1; }
static double py(const plot *p, double loss) {
    return TOP + (H - TOP - BOTTOM) * (p->y1 - log10(loss)) / (p->y1 - p->y0);
}

static void polyline(FILE *f, const plot *p, const double *y, const char *style) {
    fprintf(f, "<polyline fill=\"none\" %s points=\"", style);
    for (size_t i = 0; i < p->c->n; i++) fprintf(f, "%s%.1f,%.1f", i ? " " : "", px(p, p->c->step[i]), py(p, y[i]));
    fprintf(f, "\"/>\n");
}

static int write_body(void *ctx, FILE *f) {
    const plot *p = ctx;
    const curve *c = p->c;
    fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
               "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" "
               "font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n",
            W, H, W, H);
    char title[160];
    int tl = snprintf(title, sizeof title, "training loss (MSE + VB), %zu log lines to step %.0f", c->n, c->step[c->n - 1]);
    if (c->fd >= 0 && tl > 0 && (size_t)tl < sizeof title)
        snprintf(title + tl, sizeof title - (size_t)tl, "; FD_fmnist %.6g (%s weights, step %.0f)", c->fd, c->fd_weights,
                 c->fd_step);
    fprintf(f, "<text x=\"%d\" y=\"22\" font-size=\"14\">%s</text>\n", LEFT, title);
    /* y grid: 1, 2, 5 times each power of ten inside the range */
    for (int e = (int)floor(p->y0); e <= (int)ceil(p->y1); e++)
        for (int m = 1; m <= 5; m += m == 1 ? 1 : 3) {
            double v = m * pow(10, e), lv = log10(v);
            if (lv < p->y0 - 1e-9 || lv > p->y1 + 1e-9) continue;
            fprintf(f, "<line x1=\"%d\" x2=\"%d\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>\n", LEFT, W - RIGHT, py(p, v),
                    py(p, v));
            fprintf(f, "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%g</text>\n", LEFT - 6, py(p, v) + 4, v);
        }
    double tick = nice_tick(p->x1);
    for (double s = 0; s <= p->x1 * (1 + 1e-9); s += tick) {
        fprintf(f, "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%d\" y2=\"%d\" stroke=\"#ddd\"/>\n", px(p, s), px(p, s), TOP,
                H - BOTTOM);
        fprintf(f, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%g</text>\n", px(p, s), H - BOTTOM + 16, s);
    }
    fprintf(f, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"none\" stroke=\"black\"/>\n", LEFT, TOP,
            W - LEFT - RIGHT, H - TOP - BOTTOM);
    fprintf(f, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">step</text>\n", (LEFT + W - RIGHT) / 2, H - 12);
    fprintf(f, "<text transform=\"translate(18 %d) rotate(-90)\" text-anchor=\"middle\">loss (log scale)</text>\n",
            (TOP + H - BOTTOM) / 2);
    polyline(f, p, c->loss, "stroke=\"#9cc3e6\" stroke-width=\"1\"");
    polyline(f, p, c->mean, "stroke=\"#1f4e79\" stroke-width=\"2\"");
    fprintf(f, "<text x=\"%d\" y=\"%d\" fill=\"#1f4e79\">running mean</text>\n", W - RIGHT - 100, TOP + 16);
    fprintf(f, "</svg>\n");
    return ferror(f) ? -1 : 0;
}

sadm_status sadm_write_loss_svg(const char *log_path, const char *svg_path) {
    SADM_REQUIRE_PTR(log_path);
    SADM_REQUIRE_PTR(svg_path);
    curve c = {0};
    sadm_status st = read_log(log_path, &c);
    if (!st && !(c.mean = malloc(c.n * sizeof(double))))
        st = sadm_error(SADM_ERR_NOMEM, "%s: out of memory for the loss curve", log_path);
    if (st) {
        free(c.step), free(c.loss);
        return st;
    }
    /* running mean over a centred window of about n/20 points */
    size_t half = c.n / 40;
    double lo = INFINITY, hi = 0, last = 0;
    for (size_t i = 0; i < c.n; i++) {
        size_t a = i > half ? i - half : 0, b = i + half < c.n ? i + half : c.n - 1;
        double s = 0;
        for (size_t k = a; k <= b; k++) s += c.loss[k];
        c.mean[i] = s / (double)(b - a + 1);
        lo = fmin(lo, c.loss[i]), hi = fmax(hi, c.loss[i]), last = fmax(last, c.step[i]);
    }
    plot p = {&c, last > 0 ? last : 1, floor(log10(lo) * 2) / 2, ceil(log10(hi) * 2) / 2};
    if (p.y1 - p.y0 < 0.5) p.y1 = p.y0 + 0.5;
    st = sadm_atomic_write(svg_path, write_body, &p);
    free(c.step), free(c.loss), free(c.mean);
    return st;
}
