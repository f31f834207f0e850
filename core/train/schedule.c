// schedule.c: the step / evaluate / checkpoint / log cadence of a training session.
#include "schedule.h"

#include "checkpoint.h"

#include <math.h>
#include <time.h>

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int64_t eval_interval(int64_t every, int64_t steps) {
    if (every >= 0) return every;
    return steps / RWKV_TRAIN_DEFAULT_EVALS > 0 ? steps / RWKV_TRAIN_DEFAULT_EVALS : 1;
}

// Evaluation and checkpoint at p->step when due (every N steps and at the session's end).
static rwkv_status evaluate(rwkv_trainer *tr, int64_t every, rwkv_train_progress *p) {
    p->val = NAN;
    p->evaluated = p->step == p->stop || (every > 0 && p->step % every == 0);
    if (!p->evaluated) return RWKV_OK;
    rwkv_status st = rwkv_trainer_eval(tr, &p->val);
    if (st) return st;
    p->last_val = p->val, p->any_evaluated = 1;
    return RWKV_OK;
}

static rwkv_status checkpoint(rwkv_trainer *tr, const rwkv_train_session_opts *o, rwkv_train_progress *p) {
    if (!p->evaluated) return RWKV_OK;
    if (o->log) fflush(o->log);
    if (!o->checkpoint) return RWKV_OK;
    rwkv_status st = rwkv_checkpoint_save(tr, o->checkpoint, o->tokenizer ? o->tokenizer : "bytes");
    p->failed_checkpoint = st != RWKV_OK;
    if (st) return rwkv_error_wrap(st, "checkpoint at step %lld: ", (long long)p->step);
    p->saved = p->step;
    return RWKV_OK;
}

rwkv_status rwkv_train_session(rwkv_trainer *tr, const rwkv_train_session_opts *o, rwkv_train_progress *out) {
    rwkv_train_progress p = {.steps = tr->o.steps, .start = tr->opt->step, .loss = NAN, .val = NAN, .last_val = NAN,
                             .saved = -1};
    p.stop = o->stop > 0 && o->stop < p.steps ? o->stop : p.steps;
    p.step = p.start;
    int64_t every = eval_interval(o->eval_every, p.steps);
    double tokens = (double)tr->o.B * tr->o.T, t_train = 0, t0 = now_s();
    rwkv_status st = RWKV_OK;
    while (!st && p.step < p.stop) {
        double ts = now_s();
        st = rwkv_trainer_step(tr, &p.loss);
        t_train += now_s() - ts;
        if (st) break;
        p.step++;
        if ((st = evaluate(tr, every, &p))) break;
        p.tokens_per_s = tokens * (double)(p.step - p.start) / t_train;
        p.elapsed_s = now_s() - t0;
        p.lr = tr->last_lr, p.grad_norm = tr->last_gnorm;
        if (o->log)
            fprintf(o->log, "%lld,%.6f,%.6f,%.6g,%.6g,%.0f,%.2f\n", (long long)p.step, p.loss, p.val, p.lr,
                    p.grad_norm, p.tokens_per_s, p.elapsed_s);
        if ((st = checkpoint(tr, o, &p))) break;
        if (o->progress) o->progress(o->progress_ctx, &p);
    }
    if (out) *out = p;
    return st;
}
