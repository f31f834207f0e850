// trainer.c: the step and the evaluation of a run.
#include "trainer.h"

#include <math.h>
#include <stdlib.h>

rwkv_status rwkv_trainer_alloc(rwkv_trainer **out, rwkv_model *m, const rwkv_data *d,
                               const rwkv_trainer_opts *o) {
    *out = NULL;
    if (o->B < 1) return rwkv_error_set(RWKV_ERR_ARG, "batch must be >= 1, got %d", o->B);
    if (o->T < 1) return rwkv_error_set(RWKV_ERR_ARG, "ctx must be >= 1, got %d", o->T);
    if (o->steps < 1) return rwkv_error_set(RWKV_ERR_ARG, "steps must be >= 1, got %lld", (long long)o->steps);
    if (d->n_vocab > m->cfg.n_vocab)
        return rwkv_error_set(RWKV_ERR_ARG, "%s: the data uses a vocabulary of %d but the model has %d",
                              d->source, d->n_vocab, m->cfg.n_vocab);
    rwkv_status st = rwkv_data_check(d, o->T);
    if (st) return st;
    rwkv_trainer *tr = rwkv_calloc(1, sizeof *tr, "trainer");
    if (!tr) return RWKV_ERR_NOMEM;
    tr->o = *o;
    tr->o.opt.total_steps = o->steps;
    tr->m = m, tr->d = d;
    if ((st = rwkv_adamw_alloc(&tr->opt, &m->table, &tr->o.opt)) ||
        (st = rwkv_train_alloc(&tr->t, m->cfg, o->B, o->T)) ||
        (st = rwkv_batch_alloc(&tr->batch, o->B, o->T)) || (st = rwkv_batch_alloc(&tr->val, o->B, o->T))) {
        rwkv_trainer_free(tr);
        return st;
    }
    if (!(tr->grad = rwkv_calloc(m->table.total, sizeof(rwkv_real), "gradients"))) {
        rwkv_trainer_free(tr);
        return RWKV_ERR_NOMEM;
    }
    *out = tr;
    return RWKV_OK;
}

void rwkv_trainer_free(rwkv_trainer *tr) {
    if (!tr) return;
    rwkv_adamw_free(tr->opt);
    rwkv_train_free(tr->t);
    rwkv_batch_free(&tr->batch);
    rwkv_batch_free(&tr->val);
    free(tr->grad);
    free(tr);
}

rwkv_status rwkv_trainer_step(rwkv_trainer *tr, double *loss) {
    int64_t step = tr->opt->step;
    rwkv_data_train_batch(tr->d, &tr->batch, tr->o.seed, step);
    rwkv_status st = rwkv_train_forward(tr->t, tr->m, &tr->batch, loss);
    if (!st) st = rwkv_train_backward(tr->t, tr->m, &tr->batch, tr->grad);
    tr->last_lr = rwkv_adamw_lr(&tr->opt->opts, step);
    if (!st) st = rwkv_adamw_step(tr->opt, tr->m->block, tr->grad, &tr->last_gnorm);
    if (st == RWKV_ERR_NUMERIC) return rwkv_error_wrap(st, "step %lld: ", (long long)step + 1);
    if (st) return st;
    rwkv_model_refresh(tr->m); // the WKV reads e^{time_decay}
    return RWKV_OK;
}

rwkv_status rwkv_trainer_eval(rwkv_trainer *tr, double *val_loss) {
    int64_t nw = rwkv_data_val_windows(tr->d, tr->o.T);
    if (tr->d->n == tr->d->n_train) { // no held-out part (--val-frac 0): nothing to report
        *val_loss = NAN;
        return RWKV_OK;
    }
    if (nw < 1) {
        *val_loss = NAN;
        return rwkv_error_set(RWKV_ERR_ARG, "%s: no held-out windows to evaluate", tr->d->source);
    }
    int64_t nb = (nw + tr->o.B - 1) / tr->o.B;
    if (tr->o.eval_batches > 0 && nb > tr->o.eval_batches) nb = tr->o.eval_batches;
    double sum = 0, wsum = 0;
    for (int64_t i = 0; i < nb; i++) {
        rwkv_data_val_batch(tr->d, &tr->val, i * tr->o.B);
        double l;
        rwkv_status st = rwkv_train_forward(tr->t, tr->m, &tr->val, &l);
        if (st) return rwkv_error_wrap(st, "evaluating after step %lld: ", (long long)tr->opt->step);
        double w = 0;
        for (size_t j = 0; j < (size_t)tr->o.B * tr->o.T; j++) w += tr->val.mask[j];
        sum += l * w, wsum += w;
    }
    *val_loss = sum / wsum;
    return RWKV_OK;
}
