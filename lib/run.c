/* A training run in a folder, as `sadm train` runs it: stale temporaries removed, the
 * log cut back to the starting step, then steps with a JSON line every log_every steps,
 * a checkpoint (and EMA model) every checkpoint_every steps and at the end, and the
 * structure encoder's collapse detected. Programs linking libsadm get the same loop; the
 * caller's callback sees every step (progress display, stop on a signal). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "internal.h"

/* Every real embedding (nearly) the same point for this many steps switches SADM off
 * silently (the distance goes to 0): warned about unless the encoder restarts sooner. */
#define COLLAPSE_STEPS 100

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static sadm_status save_all(sadm_trainer *tr, const sadm_run_config *c) {
    SADM_TRY(sadm_trainer_save(tr, c->checkpoint));
    return c->ema_model ? sadm_trainer_save_ema_model(tr, c->ema_model) : SADM_OK;
}

static void log_line(FILE *log, sadm_trainer *tr, const sadm_step_stats *s, double ips, int collapsed) {
    fprintf(log, "{\"step\": %ld, \"loss\": %.6g, \"mse\": %.6g, \"vb\": %.6g, \"grad_norm\": %.6g, \"images_per_s\": %.4g, \"lr\": %.6g",
            s->step, s->loss, s->mse, s->vb, s->grad_norm, ips, sadm_trainer_config(tr)->lr);
    if (sadm_trainer_encoder(tr))
        fprintf(log,
                ", \"struct\": %.6g, \"real_cos\": %.6g, \"fake_cos\": %.6g, \"disc_grad_norm\": %.6g, "
                "\"lambda_eff\": %.6g, \"grad_share\": %.6g, \"disc_restarts\": %ld%s",
                s->l_struct, s->real_cos, s->fake_cos, s->disc_grad_norm, s->lambda_eff, s->grad_share,
                s->disc_restarts, collapsed ? ", \"collapsed\": true" : "");
    fprintf(log, "}\n");
}

sadm_status sadm_run(sadm_trainer *tr, const sadm_run_config *c, sadm_run_callback cb, void *ctx, sadm_run_result *res) {
    SADM_REQUIRE_PTR(tr);
    SADM_REQUIRE_PTR(c);
    SADM_REQUIRE_PTR(c->checkpoint);
    SADM_REQUIRE(c->steps >= 0 && c->log_every > 0 && c->checkpoint_every > 0,
                 "sadm_run: steps %ld must not be negative, log_every %ld and checkpoint_every %ld must be positive",
                 c->steps, c->log_every, c->checkpoint_every);
    sadm_run_result r = {0};
    if (res) *res = r;
    /* no step is logged twice: a run that resumes (or starts again after a kill before its
     * first checkpoint) drops the lines after its starting step; stale temporary files
     * of killed writers go too */
    sadm_remove_stale_temporaries(c->checkpoint);
    if (c->ema_model) sadm_remove_stale_temporaries(c->ema_model);
    FILE *log = NULL;
    if (c->log) {
        SADM_TRY(sadm_log_truncate(c->log, sadm_trainer_steps_done(tr), &r.log_lines_dropped));
        if (!(log = fopen(c->log, "a"))) return sadm_error(SADM_ERR_IO, "cannot open %s: %s", c->log, strerror(errno));
    }
    int B = sadm_trainer_config(tr)->batch_size;
    double t_last = now_seconds();
    long since = 0, collapsed_for = 0;
    sadm_status st = SADM_OK;
    while (sadm_trainer_steps_done(tr) < c->steps) {
        sadm_step_stats s;
        if ((st = sadm_trainer_step(tr, &s))) break;
        since++;
        const sadm_sadm_config *sc = sadm_trainer_sadm_config(tr);
        collapsed_for = sc && s.real_cos > sc->restart_cos ? collapsed_for + 1 : 0;
        int restarts_first = sc && sc->disc_restart > 0 && sc->disc_restart <= COLLAPSE_STEPS;
        sadm_run_event ev = {&s,
                             c->steps,
                             0.0,
                             collapsed_for == COLLAPSE_STEPS && !restarts_first,
                             sc ? sc->restart_cos : SADM_COLLAPSE_COS,
                             COLLAPSE_STEPS};
        if (log && (s.step % c->log_every == 0 || s.step == c->steps)) {
            double now = now_seconds();
            ev.images_per_s = since * B / (now - t_last);
            log_line(log, tr, &s, ev.images_per_s, collapsed_for >= COLLAPSE_STEPS);
            if (fflush(log) != 0 || ferror(log)) {
                st = sadm_error(SADM_ERR_IO, "cannot write %s: %s; stopping", c->log, strerror(errno));
                break;
            }
            t_last = now, since = 0;
        }
        if (cb && cb(ctx, &ev)) {
            r.stopped = 1;
            break;
        }
        if (s.step % c->checkpoint_every == 0 && s.step < c->steps && (st = save_all(tr, c))) break;
    }
    if (!st) st = save_all(tr, c); /* the end, or a stop: the state of the last step */
    r.steps_done = sadm_trainer_steps_done(tr);
    if (log && fclose(log) != 0 && !st) st = sadm_error(SADM_ERR_IO, "cannot write %s: %s", c->log, strerror(errno));
    if (res) *res = r;
    return st;
}
