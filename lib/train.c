/* The training loop of facebookresearch/DiT train.py on libsadm's operators: per step a
 * batch in this epoch's order, class dropout, uniform timesteps, noise, the loss and its
 * gradients, optional clipping, AdamW on the trainable tensors, EMA on all of them.
 * Randomness comes from Philox streams keyed by (seed, step), never from state that a
 * checkpoint would have to carry. A loader thread prepares the next step's batch while
 * the current one computes (decoding images can take as long as a small model's step). */
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "internal.h"
#include "models/dit_internal.h"
#include "models/encoder_internal.h"
#include "sadm_objective.h"

/* RNG streams of the training loop */
enum { STREAM_SHUFFLE = 1 << 20, STREAM_FLIP = 2, STREAM_DROP = 3, STREAM_T = 4, STREAM_NOISE = 5 };

/* One step's inputs. */
typedef struct batch_buf {
    float *x0, *noise, *u;
    int64_t *t, *y;
    long step; /* which step it holds; -1: none */
} batch_buf;

struct sadm_trainer {
    sadm_train_config cfg;
    sadm_dit *model;
    const sadm_dataset *data;
    sadm_diffusion *diffusion;
    sadm_backend *be;   /* the model's */
    float *ema, *m, *v; /* the model's parameter layout, on be */
    long step;
    float *loss, *mse, *vb;       /* host copies of the per-sample losses */
    float *dev_x0, *dev_noise;    /* the step's batch on be */
    float *dev_loss;              /* loss, mse, vb (B each) on be */
    int64_t *dev_t;               /* t, then y (B each) on be */
    batch_buf buf[2];
    int cur; /* buf[cur] feeds the step; the loader fills buf[1 - cur] */
    uint32_t *perm;
    long perm_epoch;
    /* loader thread: one request at a time */
    pthread_t thread;
    int thread_started, quit, busy;
    long request; /* step to load into buf[1 - cur]; -1: none */
    pthread_mutex_t lock;
    pthread_cond_t wake, done;
    /* SADM (NULL encoder: plain training) */
    sadm_encoder *enc;
    sadm_sadm_config scfg;
    float *em, *ev;  /* the encoder's Adam moments, its parameter layout */
    long disc_step;  /* encoder Adam steps taken (bias correction) */
    long sadm_start; /* the trainer's step when SADM began (the encoder warm-up counts from it) */
    long collapsed_for, disc_restarts; /* steps in a row with real_cos > restart_cos; fresh encoders */
    sadm_objective obj;
};

void sadm_train_config_default(sadm_train_config *c) {
    memset(c, 0, sizeof *c);
    c->batch_size = 64;
    c->lr = 1e-4f, c->beta1 = 0.9f, c->beta2 = 0.999f, c->eps = 1e-8f, c->weight_decay = 0.0f;
    c->ema_decay = 0.9999f;
    c->flip = 1;
    c->diffusion_steps = 1000;
    snprintf(c->schedule, sizeof c->schedule, "linear");
}

float sadm_ema_decay_at(const sadm_train_config *c, long step) {
    if (!c->ema_warmup) return c->ema_decay;
    double ramp = (1.0 + (double)step) / (10.0 + (double)step);
    return ramp < c->ema_decay ? (float)ramp : c->ema_decay;
}

void sadm_trainer_free(sadm_trainer *tr) {
    if (!tr) return;
    if (tr->thread_started) {
        pthread_mutex_lock(&tr->lock);
        tr->quit = 1;
        pthread_cond_broadcast(&tr->wake);
        pthread_mutex_unlock(&tr->lock);
        pthread_join(tr->thread, NULL);
    }
    pthread_mutex_destroy(&tr->lock);
    pthread_cond_destroy(&tr->wake);
    pthread_cond_destroy(&tr->done);
    sadm_dit_free(tr->model);
    sadm_diffusion_free(tr->diffusion);
    if (tr->be) {
        tr->be->free(tr->be, tr->ema), tr->be->free(tr->be, tr->m), tr->be->free(tr->be, tr->v);
        tr->be->free(tr->be, tr->dev_x0), tr->be->free(tr->be, tr->dev_loss), tr->be->free(tr->be, tr->dev_t);
    }
    for (int i = 0; i < 2; i++) {
        batch_buf *b = &tr->buf[i];
        sadm_free(b->x0), sadm_free(b->noise), free(b->u), free(b->t), free(b->y);
    }
    free(tr->loss), free(tr->mse), free(tr->vb), free(tr->perm);
    sadm_encoder_free(tr->enc);
    if (tr->be) tr->be->free(tr->be, tr->em), tr->be->free(tr->be, tr->ev);
    sobj_free(&tr->obj);
    free(tr);
}

static sadm_status check_fit(const sadm_dit *m, const sadm_dataset *d, const sadm_train_config *c) {
    const sadm_dit_config *mc = sadm_dit_get_config(m);
    SADM_REQUIRE(mc->in_channels == sadm_dataset_channels(d) && mc->input_size == sadm_dataset_image_size(d),
                 "the model takes %d×%d×%d inputs but the data set has %d×%d×%d samples", mc->in_channels,
                 mc->input_size, mc->input_size, sadm_dataset_channels(d), sadm_dataset_image_size(d),
                 sadm_dataset_image_size(d));
    SADM_REQUIRE(mc->num_classes == sadm_dataset_num_classes(d), "the model has %d classes, the data set %d",
                 mc->num_classes, sadm_dataset_num_classes(d));
    SADM_REQUIRE(c->batch_size > 0 && (size_t)c->batch_size <= sadm_dataset_size(d),
                 "batch size %d must lie between 1 and the data set's %zu samples", c->batch_size, sadm_dataset_size(d));
    SADM_REQUIRE(c->lr >= 0 && c->ema_decay >= 0 && c->ema_decay <= 1 && c->grad_clip >= 0,
                 "learning rate, EMA decay (in [0, 1]) and gradient clip must not be negative");
    return SADM_OK;
}

static sadm_status allocate(sadm_trainer *tr) {
    size_t P = sadm_dit_param_total(tr->model), B = (size_t)tr->cfg.batch_size;
    size_t per = (size_t)sadm_dataset_channels(tr->data) * sadm_dataset_image_size(tr->data) *
                 sadm_dataset_image_size(tr->data);
    /* EMA, two moments and the gradients beside the weights, and two batches in flight */
    char why[96];
    snprintf(why, sizeof why, "%zu parameters, batch %zu", P, B);
    double bytes = 4.0 * P * sizeof(float) + 2.0 * B * (2 * per + 4) * sizeof(float);
    sadm_status big = sadm_memory_check("training this DiT (optimiser state and batches)", (uint64_t)bytes, why);
    if (big) return big;
    sadm_backend *be = tr->be;
    tr->ema = be->alloc(be, SADM_DTYPE_F32, P);
    tr->m = be->alloc(be, SADM_DTYPE_F32, P);
    tr->v = be->alloc(be, SADM_DTYPE_F32, P);
    tr->dev_x0 = be->alloc(be, SADM_DTYPE_F32, 2 * B * per);
    tr->dev_noise = tr->dev_x0 ? tr->dev_x0 + B * per : NULL;
    tr->dev_loss = be->alloc(be, SADM_DTYPE_F32, 3 * B);
    tr->dev_t = be->alloc(be, SADM_DTYPE_I64, 2 * B);
    int ok = tr->ema && tr->m && tr->v && tr->dev_x0 && tr->dev_loss && tr->dev_t &&
             !be->zero(be, tr->m, P * sizeof(float)) && !be->zero(be, tr->v, P * sizeof(float));
    for (int i = 0; i < 2; i++) {
        batch_buf *b = &tr->buf[i];
        b->x0 = sadm_alloc(B * per * sizeof(float));
        b->noise = sadm_alloc(B * per * sizeof(float));
        b->u = malloc(B * sizeof(float));
        b->t = malloc(B * sizeof(int64_t)), b->y = malloc(B * sizeof(int64_t));
        b->step = -1;
        ok = ok && b->x0 && b->noise && b->u && b->t && b->y;
    }
    tr->loss = malloc(B * sizeof(float)), tr->mse = malloc(B * sizeof(float)), tr->vb = malloc(B * sizeof(float));
    tr->perm = malloc(sadm_dataset_size(tr->data) * sizeof(uint32_t));
    tr->perm_epoch = -1;
    tr->request = -1;
    if (!ok || !tr->ema || !tr->m || !tr->v || !tr->loss || !tr->mse || !tr->vb || !tr->perm || !sadm_dit_grad_data(tr->model))
        return sadm_error(SADM_ERR_NOMEM, "trainer: out of memory");
    return sadm_diffusion_create(tr->cfg.schedule, tr->cfg.diffusion_steps, &tr->diffusion);
}

sadm_status sadm_trainer_create(sadm_dit *model, const sadm_dataset *data, const sadm_train_config *cfg,
                                sadm_trainer **out) {
    SADM_REQUIRE_PTR(model);
    SADM_REQUIRE_PTR(data);
    SADM_REQUIRE_PTR(cfg);
    SADM_REQUIRE_PTR(out);
    *out = NULL;
    sadm_status st = check_fit(model, data, cfg);
    if (!st) st = sadm_dit_set_precision(model, cfg->precision);
    if (st) return st;
    sadm_trainer *tr = calloc(1, sizeof *tr);
    if (!tr) return sadm_error(SADM_ERR_NOMEM, "trainer: out of memory");
    tr->cfg = *cfg, tr->model = model, tr->data = data, tr->be = sadm_dit_backend(model);
    pthread_mutex_init(&tr->lock, NULL);
    pthread_cond_init(&tr->wake, NULL);
    pthread_cond_init(&tr->done, NULL);
    if ((st = allocate(tr))) {
        tr->model = NULL; /* the caller keeps it on failure */
        sadm_trainer_free(tr);
        return st;
    }
    if ((st = tr->be->copy(tr->be, tr->ema, sadm_dit_param_data(model), sadm_dit_param_total(model) * sizeof(float)))) {
        tr->model = NULL;
        sadm_trainer_free(tr);
        return st;
    }
    *out = tr;
    return SADM_OK;
}

long sadm_trainer_steps_done(const sadm_trainer *tr) { return tr ? tr->step : 0; }

static void wait_loader(sadm_trainer *tr);

sadm_status sadm_trainer_set_precision(sadm_trainer *tr, sadm_precision precision) {
    SADM_REQUIRE_PTR(tr);
    SADM_TRY(sadm_backend_check_precision(tr->be, precision));
    SADM_TRY(sadm_dit_set_precision(tr->model, precision));
    if (tr->enc) SADM_TRY(sadm_encoder_set_precision(tr->enc, precision));
    tr->cfg.precision = precision;
    return SADM_OK;
}

sadm_status sadm_trainer_set_seed(sadm_trainer *tr, uint64_t seed) {
    SADM_REQUIRE_PTR(tr);
    wait_loader(tr); /* a prefetched batch was drawn with the old seed */
    tr->buf[0].step = tr->buf[1].step = -1;
    tr->perm_epoch = -1;
    tr->cfg.seed = seed;
    return SADM_OK;
}
sadm_dit *sadm_trainer_model(sadm_trainer *tr) { return tr ? tr->model : NULL; }
const float *sadm_trainer_ema(const sadm_trainer *tr) { return tr ? tr->ema : NULL; }
const sadm_train_config *sadm_trainer_config(const sadm_trainer *tr) { return tr ? &tr->cfg : NULL; }

/* The data order of an epoch: Philox stream STREAM_SHUFFLE + epoch. */
static void shuffle(sadm_trainer *tr, long epoch) {
    sadm_permutation(tr->cfg.seed, STREAM_SHUFFLE + (uint64_t)epoch, sadm_dataset_size(tr->data), tr->perm);
    tr->perm_epoch = epoch;
}

/* The batch of step s: the epoch's order, incomplete last batches dropped. */
static sadm_status load_batch(sadm_trainer *tr, long s, batch_buf *b) {
    const int B = tr->cfg.batch_size;
    const sadm_dit_config *mc = sadm_dit_get_config(tr->model);
    size_t per_epoch = sadm_dataset_size(tr->data) / (size_t)B, per = (size_t)mc->in_channels * mc->input_size * mc->input_size;
    long epoch = (long)((size_t)s / per_epoch), j = (long)((size_t)s % per_epoch);
    if (epoch != tr->perm_epoch) shuffle(tr, epoch);
    uint64_t base = (uint64_t)s * (uint64_t)B;
    b->step = -1;
    sadm_rng_uniform(tr->cfg.seed, STREAM_FLIP, base, (size_t)B, b->u);
    for (int n = 0; n < B; n++) {
        sadm_status st = sadm_dataset_get(tr->data, tr->perm[(size_t)j * B + n], tr->cfg.flip && b->u[n] < 0.5f,
                                          b->x0 + n * per, &b->y[n]);
        if (st) return st;
    }
    /* class dropout: the null class, as LabelEmbedder.token_drop */
    if (mc->class_dropout_prob > 0) {
        sadm_rng_uniform(tr->cfg.seed, STREAM_DROP, base, (size_t)B, b->u);
        for (int n = 0; n < B; n++)
            if (b->u[n] < mc->class_dropout_prob) b->y[n] = mc->num_classes;
    }
    sadm_rng_uniform(tr->cfg.seed, STREAM_T, base, (size_t)B, b->u);
    int T = tr->cfg.diffusion_steps;
    for (int n = 0; n < B; n++) {
        int64_t t = (int64_t)(b->u[n] * (float)T);
        b->t[n] = t < T ? t : T - 1;
    }
    sadm_status st = sadm_rng_normal(tr->cfg.seed, STREAM_NOISE, base * per, (size_t)B * per, b->noise);
    if (!st) b->step = s;
    return st;
}

/* ------------------------------------------------------------------ loader thread */
static void *loader_main(void *arg) {
    sadm_trainer *tr = arg;
    pthread_mutex_lock(&tr->lock);
    for (;;) {
        while (!tr->quit && tr->request < 0) pthread_cond_wait(&tr->wake, &tr->lock);
        if (tr->quit) break;
        long s = tr->request;
        batch_buf *b = &tr->buf[1 - tr->cur];
        pthread_mutex_unlock(&tr->lock);
        load_batch(tr, s, b); /* on failure b->step stays -1 and the step retries itself */
        pthread_mutex_lock(&tr->lock);
        tr->request = -1;
        tr->busy = 0;
        pthread_cond_broadcast(&tr->done);
    }
    pthread_mutex_unlock(&tr->lock);
    return NULL;
}

/* Waits until the loader is idle. Afterwards the main thread may touch both buffers. */
static void wait_loader(sadm_trainer *tr) {
    if (!tr->thread_started) return;
    pthread_mutex_lock(&tr->lock);
    while (tr->busy) pthread_cond_wait(&tr->done, &tr->lock);
    pthread_mutex_unlock(&tr->lock);
}

/* Asks the loader for step s in the spare buffer; without a thread, nothing happens and
 * the step loads its batch itself. */
static void request_load(sadm_trainer *tr, long s) {
    if (!tr->thread_started) {
        if (pthread_create(&tr->thread, NULL, loader_main, tr) != 0) return;
        tr->thread_started = 1;
    }
    pthread_mutex_lock(&tr->lock);
    tr->request = s;
    tr->busy = 1;
    pthread_cond_signal(&tr->wake);
    pthread_mutex_unlock(&tr->lock);
}

/* Makes buf[cur] hold step s: the prefetched buffer when it does, else loads it now. */
static sadm_status batch_for(sadm_trainer *tr, long s) {
    wait_loader(tr);
    batch_buf *spare = &tr->buf[1 - tr->cur];
    if (spare->step == s) {
        tr->cur = 1 - tr->cur;
        return SADM_OK;
    }
    if (tr->buf[tr->cur].step == s) return SADM_OK;
    /* not prefetched, or the prefetch failed: load here, which reports any error */
    return load_batch(tr, s, &tr->buf[tr->cur]);
}

sadm_status sadm_trainer_next_batch(sadm_trainer *tr, const float **x0, const int64_t **t, const int64_t **y,
                                    const float **noise) {
    SADM_REQUIRE_PTR(tr);
    sadm_status st = batch_for(tr, tr->step);
    if (st) return st;
    batch_buf *b = &tr->buf[tr->cur];
    if (x0) *x0 = b->x0;
    if (t) *t = b->t;
    if (y) *y = b->y;
    if (noise) *noise = b->noise;
    return SADM_OK;
}

/* d_steps Adam steps of the encoder on -L_struct with x̂0 detached. */
static sadm_status encoder_steps(sadm_trainer *tr, const float *x0, sadm_struct_stats *ds, double *dnorm) {
    sadm_encoder *e = tr->enc;
    const sadm_sadm_config *c = &tr->scfg;
    size_t P = sadm_encoder_param_total(e);
    sadm_adamw_config oc = {c->disc_lr, c->disc_beta1, c->disc_beta2, c->disc_eps, 0.0f};
    for (int k = 0; k < c->d_steps; k++) {
        sadm_status st = sadm_encoder_zero_grad(e);
        if (!st) st = sobj_encoder(&tr->obj, e, c, x0, -1.0f, 1, ds);
        if (!st) st = tr->be->ops->clip_grad_norm(P, sadm_encoder_grad_data(e), 0.0f, dnorm);
        if (st == SADM_ERR_NUMERIC || (!st && !isfinite(*dnorm)))
            return sadm_error(SADM_ERR_NUMERIC,
                              "step %ld: the structure encoder's loss or gradient is not finite (L_struct %g, gradient "
                              "norm %g); stopped before its update %d of %d",
                              tr->step + 1, ds->loss, *dnorm, k + 1, c->d_steps);
        if (st) return st;
        float *w = sadm_encoder_param_data(e), *g = sadm_encoder_grad_data(e);
        for (size_t i = 0; i < sadm_encoder_num_params(e); i++) {
            const sadm_param *p = sadm_encoder_param(e, i);
            if (!p->trainable) continue;
            if ((st = tr->be->ops->adamw_step(p->numel, w + p->offset, g + p->offset, tr->em + p->offset,
                                              tr->ev + p->offset, &oc, tr->disc_step + 1)))
                return st;
        }
        tr->disc_step++;
    }
    return SADM_OK;
}

/* A collapsed encoder (real_cos above restart_cos for disc_restart steps in a row) has no
 * gradient and never recovers: it is replaced by a fresh one from the next seed of the
 * run, with fresh Adam moments, so that the structure term works again. */
static sadm_status restart_collapsed_encoder(sadm_trainer *tr, sadm_step_stats *s) {
    const sadm_sadm_config *c = &tr->scfg;
    tr->collapsed_for = s->real_cos > c->restart_cos ? tr->collapsed_for + 1 : 0;
    if (c->disc_restart > 0 && tr->collapsed_for >= c->disc_restart) {
        size_t P = sadm_encoder_param_total(tr->enc);
        sadm_backend *be = tr->be;
        SADM_TRY(sadm_encoder_reinitialise(tr->enc, sadm_encoder_run_seed(tr->cfg.seed, tr->disc_restarts + 1)));
        SADM_TRY(be->zero(be, tr->em, P * sizeof(float)));
        SADM_TRY(be->zero(be, tr->ev, P * sizeof(float)));
        tr->disc_restarts++, tr->disc_step = 0, tr->collapsed_for = 0;
        s->disc_restarted = 1;
    }
    s->disc_restarts = tr->disc_restarts;
    return SADM_OK;
}

/* The gradient of one step: plain DiT loss, or SADM's minimax phases. */
static sadm_status step_gradients(sadm_trainer *tr, batch_buf *b, sadm_step_stats *out) {
    const int B = tr->cfg.batch_size;
    sadm_status st = sadm_dit_zero_grad(tr->model);
    if (st) return st;
    float *loss = tr->dev_loss, *mse = loss + B, *vb = mse + B;
    /* the batch in: the loader's buffers themselves on a backend with host memory */
    sadm_backend *be = tr->be;
    const float *x0 = b->x0, *noise = b->noise;
    const int64_t *t = b->t, *y = b->y;
    if (!be->host_memory) {
        size_t xbytes = (size_t)B * sadm_dataset_channels(tr->data) * sadm_dataset_image_size(tr->data) *
                        sadm_dataset_image_size(tr->data) * sizeof(float);
        SADM_TRY(be->upload(be, tr->dev_x0, b->x0, xbytes));
        SADM_TRY(be->upload(be, tr->dev_noise, b->noise, xbytes));
        SADM_TRY(be->upload(be, tr->dev_t, b->t, (size_t)B * sizeof(int64_t)));
        SADM_TRY(be->upload(be, tr->dev_t + B, b->y, (size_t)B * sizeof(int64_t)));
        x0 = tr->dev_x0, noise = tr->dev_noise, t = tr->dev_t, y = tr->dev_t + B;
    }
    if (!tr->enc) return dit_loss_dev(tr->model, tr->diffusion, B, x0, t, y, noise, loss, mse, vb);
    /* SADM; in the encoder warm-up the denoiser's step is a plain one */
    sadm_sadm_config c = tr->scfg;
    if (tr->step - tr->sadm_start < c.disc_warmup) c.lambda = 0, c.grad_ratio = 0;
    int struct_term = c.lambda > 0 || c.grad_ratio > 0;
    sadm_struct_stats ds = {0}, gs = {0};
    double dnorm = 0;
    st = sobj_denoise(&tr->obj, tr->model, tr->enc, tr->diffusion, &c, B, x0, t, y, noise, loss, mse, vb);
    if (!st) st = encoder_steps(tr, x0, &ds, &dnorm);
    if (!st && c.d_steps == 0 && !struct_term) st = sobj_encoder(&tr->obj, tr->enc, &c, x0, 0, 0, &ds);
    if (st) return st;
    st = sobj_denoiser_backward(&tr->obj, tr->model, tr->enc, tr->diffusion, &c, x0, t, &gs);
    if (st == SADM_ERR_NUMERIC) {
        char why[256];
        snprintf(why, sizeof why, "%s", sadm_last_error());
        return sadm_error(st, "step %ld: %s; the denoiser's weights are left as after step %ld", tr->step + 1, why, tr->step);
    }
    if (st) return st;
    if (!struct_term) gs = ds, gs.lambda_eff = 0, gs.grad_share = 0;
    out->l_struct = gs.loss, out->real_cos = gs.real_cos, out->fake_cos = gs.fake_cos, out->disc_grad_norm = dnorm;
    out->lambda_eff = gs.lambda_eff, out->grad_share = gs.grad_share;
    return SADM_OK;
}

sadm_status sadm_trainer_step(sadm_trainer *tr, sadm_step_stats *stats) {
    SADM_REQUIRE_PTR(tr);
    const int B = tr->cfg.batch_size;
    sadm_status st = batch_for(tr, tr->step);
    if (st) return st;
    batch_buf *b = &tr->buf[tr->cur];
    request_load(tr, tr->step + 1); /* the next batch loads while this step computes */
    sadm_step_stats sst = {0};
    if ((st = step_gradients(tr, b, &sst))) return st;
    /* the per-sample losses out */
    sadm_backend *be = tr->be;
    SADM_TRY(be->download(be, tr->loss, tr->dev_loss, (size_t)B * sizeof(float)));
    SADM_TRY(be->download(be, tr->mse, tr->dev_loss + B, (size_t)B * sizeof(float)));
    SADM_TRY(be->download(be, tr->vb, tr->dev_loss + 2 * B, (size_t)B * sizeof(float)));
    double loss = 0, mse = 0, vb = 0;
    for (int n = 0; n < B; n++) loss += tr->loss[n], mse += tr->mse[n], vb += tr->vb[n];
    loss /= B, mse /= B, vb /= B;
    size_t P = sadm_dit_param_total(tr->model);
    float *g = sadm_dit_grad_data(tr->model), *w = sadm_dit_param_data(tr->model);
    double norm;
    if ((st = be->ops->clip_grad_norm(P, g, tr->cfg.grad_clip, &norm))) return st;
    if (!isfinite(loss) || !isfinite(norm))
        return sadm_error(SADM_ERR_NUMERIC, "step %ld: the loss is %g and the gradient norm %g; weights left as after step %ld",
                          tr->step + 1, loss, norm, tr->step);
    sadm_adamw_config oc = {tr->cfg.lr, tr->cfg.beta1, tr->cfg.beta2, tr->cfg.eps, tr->cfg.weight_decay};
    for (size_t i = 0; i < sadm_dit_num_params(tr->model); i++) {
        const sadm_param *p = sadm_dit_param(tr->model, i);
        if (!p->trainable) continue;
        st = be->ops->adamw_step(p->numel, w + p->offset, g + p->offset, tr->m + p->offset, tr->v + p->offset, &oc,
                                 tr->step + 1);
        if (st) return st;
    }
    if ((st = be->ops->ema_update(P, tr->ema, w, sadm_ema_decay_at(&tr->cfg, tr->step)))) return st;
    tr->step++;
    if (tr->enc && (st = restart_collapsed_encoder(tr, &sst))) return st;
    if (stats) {
        *stats = sst;
        stats->step = tr->step;
        stats->loss = loss, stats->mse = mse, stats->vb = vb, stats->grad_norm = norm;
    }
    return SADM_OK;
}


/* ------------------------------------------------------------------ SADM */
sadm_status sadm_trainer_enable_sadm(sadm_trainer *tr, sadm_encoder *e, const sadm_sadm_config *cfg) {
    SADM_REQUIRE_PTR(tr);
    SADM_REQUIRE_PTR(e);
    SADM_REQUIRE_PTR(cfg);
    SADM_REQUIRE(!tr->enc, "sadm_trainer_enable_sadm: this trainer already trains with SADM");
    sadm_status st = sadm_sadm_config_check_steps(cfg, tr->cfg.diffusion_steps);
    if (st) return st;
    const sadm_dit_config *mc = sadm_dit_get_config(tr->model);
    const sadm_encoder_config *ec = sadm_encoder_get_config(e);
    SADM_REQUIRE(ec->input_size == mc->input_size && ec->in_channels == mc->in_channels,
                 "SADM: the structure encoder takes %d×%d×%d inputs but the denoiser makes %d×%d×%d samples",
                 ec->in_channels, ec->input_size, ec->input_size, mc->in_channels, mc->input_size, mc->input_size);
    SADM_REQUIRE(tr->cfg.batch_size >= 2,
                 "SADM: a batch of %d sample has no pairs to give a structure (use --batch-size 2 or more)",
                 tr->cfg.batch_size);
    /* the encoder joins the denoiser's backend and precision */
    if ((st = sadm_encoder_to_backend(e, tr->be)) || (st = sadm_encoder_set_precision(e, tr->cfg.precision))) return st;
    size_t P = sadm_encoder_param_total(e);
    sadm_backend *be = tr->be;
    tr->em = be->alloc(be, SADM_DTYPE_F32, P);
    tr->ev = be->alloc(be, SADM_DTYPE_F32, P);
    if (!tr->em || !tr->ev || be->zero(be, tr->em, P * sizeof(float)) || be->zero(be, tr->ev, P * sizeof(float)) ||
        !sadm_encoder_grad_data(e)) {
        be->free(be, tr->em), be->free(be, tr->ev);
        tr->em = tr->ev = NULL;
        return sadm_error(SADM_ERR_NOMEM, "SADM: out of memory for the encoder's optimiser");
    }
    tr->enc = e, tr->scfg = *cfg, tr->disc_step = 0, tr->sadm_start = tr->step;
    tr->collapsed_for = 0, tr->disc_restarts = 0;
    return SADM_OK;
}

sadm_encoder *sadm_trainer_encoder(sadm_trainer *tr) { return tr ? tr->enc : NULL; }

/* ------------------------------------------------------------------ backends */
/* One block of the training state to move between backends. */
typedef struct state_block {
    void **p;
    sadm_dtype dtype;
    size_t count;
    void *fresh;
} state_block;

/* All blocks are copied first and swapped only when every copy and the model's move
 * succeeded, so a failure leaves the trainer whole on its old backend. */
sadm_status sadm_trainer_to_backend(sadm_trainer *tr, sadm_backend *be) {
    SADM_REQUIRE_PTR(tr);
    SADM_REQUIRE_PTR(be);
    if (be == tr->be) return SADM_OK;
    SADM_TRY(sadm_backend_check_precision(be, tr->cfg.precision));
    wait_loader(tr);
    size_t P = sadm_dit_param_total(tr->model), B = (size_t)tr->cfg.batch_size;
    size_t per = (size_t)sadm_dataset_channels(tr->data) * sadm_dataset_image_size(tr->data) *
                 sadm_dataset_image_size(tr->data);
    sadm_backend *from = tr->be;
    state_block blocks[] = {{(void **)&tr->ema, SADM_DTYPE_F32, P, NULL},
                            {(void **)&tr->m, SADM_DTYPE_F32, P, NULL},
                            {(void **)&tr->v, SADM_DTYPE_F32, P, NULL},
                            {(void **)&tr->dev_x0, SADM_DTYPE_F32, 2 * B * per, NULL},
                            {(void **)&tr->dev_loss, SADM_DTYPE_F32, 3 * B, NULL},
                            {(void **)&tr->dev_t, SADM_DTYPE_I64, 2 * B, NULL},
                            {(void **)&tr->em, SADM_DTYPE_F32, tr->enc ? sadm_encoder_param_total(tr->enc) : 0, NULL},
                            {(void **)&tr->ev, SADM_DTYPE_F32, tr->enc ? sadm_encoder_param_total(tr->enc) : 0, NULL}};
    const size_t nb = sizeof blocks / sizeof blocks[0] - (tr->enc ? 0 : 2);
    sadm_status st = SADM_OK;
    for (size_t i = 0; i < nb && !st; i++)
        st = sadm_backend_clone(from, be, *blocks[i].p, blocks[i].dtype, blocks[i].count, &blocks[i].fresh);
    if (!st && tr->enc) st = sadm_encoder_to_backend(tr->enc, be);
    if (!st && (st = sadm_dit_to_backend(tr->model, be)) && tr->enc) sadm_encoder_to_backend(tr->enc, from);
    if (st) {
        for (size_t i = 0; i < nb; i++)
            if (blocks[i].fresh) be->free(be, blocks[i].fresh);
        return st;
    }
    sobj_free(&tr->obj); /* its buffers come back on the new backend at the next step */
    for (size_t i = 0; i < nb; i++) {
        from->free(from, *blocks[i].p);
        *blocks[i].p = blocks[i].fresh;
    }
    tr->dev_noise = tr->dev_x0 + B * per;
    tr->be = be;
    return sadm_dit_grad_data(tr->model) ? SADM_OK : sadm_error(SADM_ERR_NOMEM, "trainer: out of memory for the gradients");
}
const sadm_sadm_config *sadm_trainer_sadm_config(const sadm_trainer *tr) { return tr && tr->enc ? &tr->scfg : NULL; }

/* ------------------------------------------------------------------ checkpoints */

/* Weights, EMA and moments readable by the host: the backend's own memory when that is
 * host memory, else one downloaded copy (*copy, to be freed). */
typedef struct host_state {
    const float *data, *ema, *m, *v;
    float *copy;
} host_state;

static sadm_status host_view(const sadm_trainer *tr, host_state *h) {
    sadm_backend *be = tr->be;
    size_t P = sadm_dit_param_total(tr->model), bytes = P * sizeof(float);
    *h = (host_state){sadm_dit_param_data(tr->model), tr->ema, tr->m, tr->v, NULL};
    if (be->host_memory) return SADM_OK;
    if (!(h->copy = sadm_alloc(4 * bytes))) return sadm_error(SADM_ERR_NOMEM, "trainer: out of memory for a host copy");
    const float *src[4] = {h->data, h->ema, h->m, h->v};
    for (int i = 0; i < 4; i++) SADM_TRY(be->download(be, h->copy + i * P, src[i], bytes));
    h->data = h->copy, h->ema = h->copy + P, h->m = h->copy + 2 * P, h->v = h->copy + 3 * P;
    return SADM_OK;
}

sadm_status sadm_trainer_save(const sadm_trainer *tr, const char *path) {
    SADM_REQUIRE_PTR(tr);
    SADM_REQUIRE_PTR(path);
    host_state h;
    float *enc_copies[3] = {NULL, NULL, NULL};
    sadm_status hst = host_view(tr, &h);
    if (hst) {
        sadm_free(h.copy);
        return hst;
    }
    sadm_st_writer *w = sadm_st_writer_new();
    if (!w) {
        sadm_free(h.copy);
        return sadm_error(SADM_ERR_NOMEM, "%s: out of memory", path);
    }
    size_t np = sadm_dit_num_params(tr->model);
    char (*names)[160] = calloc(3 * np, sizeof *names);
    sadm_status st = names ? sadm_dit_write_metadata(sadm_dit_get_config(tr->model), w)
                           : sadm_error(SADM_ERR_NOMEM, "%s: out of memory", path);
    char v[64];
    const sadm_train_config *c = &tr->cfg;
#define META(key, fmt, val)                                                                        \
    if (!st) {                                                                                     \
        snprintf(v, sizeof v, fmt, val);                                                           \
        st = sadm_st_writer_metadata(w, key, v);                                                   \
    }
    META("train.step", "%ld", tr->step);
    META("train.seed", "%llu", (unsigned long long)c->seed);
    META("train.batch_size", "%d", c->batch_size);
    META("train.lr", "%.9g", c->lr);
    META("train.beta1", "%.9g", c->beta1);
    META("train.beta2", "%.9g", c->beta2);
    META("train.eps", "%.9g", c->eps);
    META("train.weight_decay", "%.9g", c->weight_decay);
    META("train.ema_decay", "%.9g", c->ema_decay);
    META("train.ema_warmup", "%d", c->ema_warmup);
    META("train.grad_clip", "%.9g", c->grad_clip);
    META("train.flip", "%d", c->flip);
    META("train.diffusion_steps", "%d", c->diffusion_steps);
    META("train.schedule", "%s", c->schedule);
    META("train.precision", "%s", sadm_precision_name(c->precision));
    if (tr->enc) {
        const sadm_sadm_config *sc = &tr->scfg;
        META("sadm.lambda", "%.9g", sc->lambda);
        META("sadm.distance", "%s", sadm_struct_distance_name(sc->distance));
        char wbuf[32];
        META("sadm.weighting", "%s", sadm_sadm_weighting_string(sc, wbuf, sizeof wbuf));
        META("sadm.grad_ratio", "%.9g", sc->grad_ratio);
        META("sadm.disc_warmup", "%d", sc->disc_warmup);
        META("sadm.tau", "%.9g", sc->tau);
        META("sadm.d_steps", "%d", sc->d_steps);
        META("sadm.disc_lr", "%.9g", sc->disc_lr);
        META("sadm.disc_beta1", "%.9g", sc->disc_beta1);
        META("sadm.disc_beta2", "%.9g", sc->disc_beta2);
        META("sadm.disc_eps", "%.9g", sc->disc_eps);
        META("sadm.disc_step", "%ld", tr->disc_step);
        META("sadm.start_step", "%ld", tr->sadm_start);
        META("sadm.disc_restart", "%d", sc->disc_restart);
        META("sadm.restart_cos", "%.9g", sc->restart_cos);
        META("sadm.collapsed_for", "%ld", tr->collapsed_for);
        META("sadm.disc_restarts", "%ld", tr->disc_restarts);
        size_t EP = sadm_encoder_param_total(tr->enc);
        float *c1 = NULL, *c2 = NULL, *c3 = NULL;
        const float *ed = st ? NULL : sadm_backend_host_view(tr->be, sadm_encoder_param_data(tr->enc), EP, &c1);
        const float *em = ed ? sadm_backend_host_view(tr->be, tr->em, EP, &c2) : NULL;
        const float *ev = em ? sadm_backend_host_view(tr->be, tr->ev, EP, &c3) : NULL;
        if (!st && !ev) st = SADM_ERR_NOMEM;
        if (!st) st = sadm_encoder_write_metadata(sadm_encoder_get_config(tr->enc), "disc.", w);
        if (!st) st = sadm_encoder_write_tensors(tr->enc, ed, "disc.", 0, w);
        if (!st) st = sadm_encoder_write_tensors(tr->enc, em, "disc.opt.m.", 1, w);
        if (!st) st = sadm_encoder_write_tensors(tr->enc, ev, "disc.opt.v.", 1, w);
        /* the writer keeps pointers until it saves: the copies live until then */
        enc_copies[0] = c1, enc_copies[1] = c2, enc_copies[2] = c3;
    }
#undef META
    for (size_t i = 0; i < np && !st; i++) {
        const sadm_param *p = sadm_dit_param(tr->model, i);
        st = sadm_st_writer_add(w, p->name, SADM_DTYPE_F32, p->ndim, p->shape, h.data + p->offset);
        snprintf(names[3 * i], 160, "ema.%s", p->name);
        if (!st) st = sadm_st_writer_add(w, names[3 * i], SADM_DTYPE_F32, p->ndim, p->shape, h.ema + p->offset);
        if (!p->trainable) continue;
        snprintf(names[3 * i + 1], 160, "opt.m.%s", p->name);
        snprintf(names[3 * i + 2], 160, "opt.v.%s", p->name);
        if (!st) st = sadm_st_writer_add(w, names[3 * i + 1], SADM_DTYPE_F32, p->ndim, p->shape, h.m + p->offset);
        if (!st) st = sadm_st_writer_add(w, names[3 * i + 2], SADM_DTYPE_F32, p->ndim, p->shape, h.v + p->offset);
    }
    if (!st) st = sadm_st_writer_save(w, path);
    sadm_st_writer_free(w);
    free(names);
    sadm_free(h.copy);
    for (int i = 0; i < 3; i++) sadm_free(enc_copies[i]);
    return st;
}

/* A checkpoint's setting: strict syntax and its range (see sadm_meta_number), with a
 * message that says the file is no training checkpoint when the key is missing. */
static sadm_status setting(const sadm_st_file *f, const char *path, const char *key, int integer, double lo, double hi,
                           double *out) {
    if (!sadm_st_metadata(f, key))
        return sadm_error(SADM_ERR_FORMAT, "%s: not a training checkpoint: __metadata__ has no '%s'", path, key);
    return sadm_meta_number(f, path, key, integer, lo, hi, out);
}
#define STEP_MAX 4.0e18 /* steps are longs; far beyond any run */

/* The seed is a full 64-bit decimal, which a double would round. */
static sadm_status seed_setting(const sadm_st_file *f, const char *path, uint64_t *seed) {
    if (!sadm_st_metadata(f, "train.seed"))
        return sadm_error(SADM_ERR_FORMAT, "%s: not a training checkpoint: __metadata__ has no 'train.seed'", path);
    return sadm_meta_u64(f, path, "train.seed", seed);
}

/* The encoder, its Adam moments and the SADM settings of a checkpoint. */
static sadm_status load_sadm_state(sadm_trainer *tr, const sadm_st_file *f, const char *path) {
    sadm_sadm_config c;
    sadm_sadm_config_default(&c);
    const char *dist = sadm_st_metadata(f, "sadm.distance"), *wt = sadm_st_metadata(f, "sadm.weighting");
    double lambda, tau, d_steps, lr, b1, b2, eps, dstep, ratio = 0, warmup = 0, start = 0;
    double restart = 0, rcos = c.restart_cos, collapsed = 0, restarts = 0;
    sadm_status st;
    /* absent in checkpoints older than these options: off */
    if ((sadm_st_metadata(f, "sadm.grad_ratio") && (st = setting(f, path, "sadm.grad_ratio", 0, 0, 1e30, &ratio))) ||
        (sadm_st_metadata(f, "sadm.disc_warmup") && (st = setting(f, path, "sadm.disc_warmup", 1, 0, STEP_MAX, &warmup))) ||
        (sadm_st_metadata(f, "sadm.start_step") && (st = setting(f, path, "sadm.start_step", 1, 0, STEP_MAX, &start))) ||
        (sadm_st_metadata(f, "sadm.disc_restart") &&
         (st = setting(f, path, "sadm.disc_restart", 1, 0, INT_MAX, &restart))) ||
        (sadm_st_metadata(f, "sadm.restart_cos") && (st = setting(f, path, "sadm.restart_cos", 0, -1, 1, &rcos))) ||
        (sadm_st_metadata(f, "sadm.collapsed_for") &&
         (st = setting(f, path, "sadm.collapsed_for", 1, 0, STEP_MAX, &collapsed))) ||
        (sadm_st_metadata(f, "sadm.disc_restarts") &&
         (st = setting(f, path, "sadm.disc_restarts", 1, 0, STEP_MAX, &restarts))))
        return st;
    if ((st = setting(f, path, "sadm.lambda", 0, 0, 1e30, &lambda)) || (st = setting(f, path, "sadm.tau", 0, 1e-30, 1e30, &tau)) ||
        (st = setting(f, path, "sadm.d_steps", 1, 0, 1000000, &d_steps)) ||
        (st = setting(f, path, "sadm.disc_lr", 0, 0, 1e30, &lr)) || (st = setting(f, path, "sadm.disc_beta1", 0, 0, 1, &b1)) ||
        (st = setting(f, path, "sadm.disc_beta2", 0, 0, 1, &b2)) || (st = setting(f, path, "sadm.disc_eps", 0, 0, 1e30, &eps)) ||
        (st = setting(f, path, "sadm.disc_step", 1, 0, STEP_MAX, &dstep)))
        return st;
    if (!dist || sadm_struct_distance_parse(dist, &c.distance) || !wt ||
        sadm_struct_weighting_parse(wt, &c.weighting, &c.t_max))
        return sadm_error(SADM_ERR_FORMAT, "%s: __metadata__ 'sadm.distance' / 'sadm.weighting' missing or unknown", path);
    c.grad_ratio = (float)ratio, c.disc_warmup = warmup > INT_MAX ? INT_MAX : (int)warmup;
    c.disc_restart = (int)restart, c.restart_cos = (float)rcos;
    c.lambda = (float)lambda, c.tau = (float)tau, c.d_steps = (int)d_steps, c.disc_lr = (float)lr;
    c.disc_beta1 = (float)b1, c.disc_beta2 = (float)b2, c.disc_eps = (float)eps;
    sadm_encoder *e;
    if ((st = sadm_encoder_load_open_file(f, path, "disc.", &e))) return st;
    if ((st = sadm_trainer_enable_sadm(tr, e, &c))) {
        sadm_encoder_free(e);
        return st;
    }
    tr->disc_step = (long)dstep, tr->sadm_start = (long)start;
    tr->collapsed_for = (long)collapsed, tr->disc_restarts = (long)restarts;
    /* the trainer is on the CPU backend while it loads */
    if ((st = sadm_encoder_read_tensors(e, f, "disc.opt.m.", 1, tr->em))) return st;
    return sadm_encoder_read_tensors(e, f, "disc.opt.v.", 1, tr->ev);
}

sadm_status sadm_trainer_load(const char *path, const sadm_dataset *data, sadm_trainer **out) {
    SADM_REQUIRE_PTR(path);
    SADM_REQUIRE_PTR(data);
    SADM_REQUIRE_PTR(out);
    *out = NULL;
    sadm_st_file *f;
    sadm_status st = sadm_st_open(path, &f);
    if (st) return st;
    sadm_train_config c;
    sadm_train_config_default(&c);
    double step = 0, bs = 0, flip = 0, ds = 0, lr, b1, b2, eps, wd, ema, clip;
    if ((st = setting(f, path, "train.step", 1, 0, STEP_MAX, &step)) ||
        (st = seed_setting(f, path, &c.seed)) ||
        (st = setting(f, path, "train.batch_size", 1, 1, 1 << 24, &bs)) || (st = setting(f, path, "train.lr", 0, 0, 1e30, &lr)) ||
        (st = setting(f, path, "train.beta1", 0, 0, 1, &b1)) || (st = setting(f, path, "train.beta2", 0, 0, 1, &b2)) ||
        (st = setting(f, path, "train.eps", 0, 0, 1e30, &eps)) || (st = setting(f, path, "train.weight_decay", 0, 0, 1e30, &wd)) ||
        (st = setting(f, path, "train.ema_decay", 0, 0, 1, &ema)) || (st = setting(f, path, "train.grad_clip", 0, 0, 1e30, &clip)) ||
        (st = setting(f, path, "train.flip", 1, 0, 1, &flip)) ||
        (st = setting(f, path, "train.diffusion_steps", 1, 1, 1000000, &ds))) {
        sadm_st_close(f);
        return st;
    }
    double warm = 0; /* absent before the EMA warm-up existed: off */
    if (sadm_st_metadata(f, "train.ema_warmup") && (st = setting(f, path, "train.ema_warmup", 1, 0, 1, &warm))) {
        sadm_st_close(f);
        return st;
    }
    c.ema_warmup = warm != 0;
    const char *sched = sadm_st_metadata(f, "train.schedule");
    if (sched && strcmp(sched, "linear") && strcmp(sched, "cosine")) {
        st = sadm_error(SADM_ERR_FORMAT, "%s: __metadata__ 'train.schedule' is '%.40s', expected linear or cosine", path, sched);
        sadm_st_close(f);
        return st;
    }
    c.batch_size = (int)bs, c.lr = (float)lr, c.beta1 = (float)b1, c.beta2 = (float)b2, c.eps = (float)eps;
    c.weight_decay = (float)wd, c.ema_decay = (float)ema, c.grad_clip = (float)clip, c.flip = flip != 0;
    c.diffusion_steps = (int)ds;
    snprintf(c.schedule, sizeof c.schedule, "%s", sched ? sched : "linear");
    const char *prec = sadm_st_metadata(f, "train.precision"); /* absent before precision modes: fp32 */
    if (prec && sadm_precision_parse(prec, &c.precision)) {
        st = sadm_error(SADM_ERR_FORMAT, "%s: __metadata__ 'train.precision' is '%.40s', expected fp32 or bf16", path, prec);
        sadm_st_close(f);
        return st;
    }
    sadm_dit *m = NULL;
    st = dit_load_open_file(f, path, NULL, dit_checkpoint_prefixes, &m);
    sadm_trainer *tr = NULL;
    if (!st) st = sadm_trainer_create(m, data, &c, &tr);
    if (st) sadm_dit_free(m);
    for (size_t i = 0; !st && i < sadm_dit_num_params(m); i++) {
        const sadm_param *p = sadm_dit_param(m, i);
        char key[160];
        snprintf(key, sizeof key, "ema.%s", p->name);
        st = sadm_st_read_f32(f, key, p->ndim, p->shape, tr->ema + p->offset);
        if (st || !p->trainable) continue;
        snprintf(key, sizeof key, "opt.m.%s", p->name);
        st = sadm_st_read_f32(f, key, p->ndim, p->shape, tr->m + p->offset);
        snprintf(key, sizeof key, "opt.v.%s", p->name);
        if (!st) st = sadm_st_read_f32(f, key, p->ndim, p->shape, tr->v + p->offset);
    }
    if (!st && sadm_st_metadata(f, "sadm.lambda")) st = load_sadm_state(tr, f, path);
    sadm_st_close(f);
    if (st) {
        sadm_trainer_free(tr);
        return st;
    }
    tr->step = (long)step;
    *out = tr;
    return SADM_OK;
}

sadm_status sadm_trainer_save_ema_model(const sadm_trainer *tr, const char *path) {
    SADM_REQUIRE_PTR(tr);
    sadm_dit *m = tr->model;
    sadm_backend *be = tr->be;
    size_t bytes = sadm_dit_param_total(m) * sizeof(float);
    float *keep = be->alloc(be, SADM_DTYPE_F32, sadm_dit_param_total(m));
    if (!keep) return sadm_error(SADM_ERR_NOMEM, "%s: out of memory", path);
    float *w = sadm_dit_param_data(m);
    sadm_status st = be->copy(be, keep, w, bytes);
    if (!st) st = be->copy(be, w, tr->ema, bytes);
    if (!st) st = sadm_dit_save(m, path);
    sadm_status back = be->copy(be, w, keep, bytes);
    be->free(be, keep);
    return st ? st : back;
}
