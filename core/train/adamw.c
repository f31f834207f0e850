// adamw.c: AdamW, the schedule and clipping (equations in adamw.h).
#include "adamw.h"

#include <math.h>
#include <stdlib.h>

#define PI 3.14159265358979323846
#define ADAMW_CHUNK 65536     // elements per partial sum of the gradient norm
#define ADAMW_PAR_MIN (1 << 15) // tensors smaller than this update on one thread

rwkv_adamw_opts rwkv_adamw_defaults(void) {
    return (rwkv_adamw_opts){.lr = 6e-4, .min_lr = 6e-5, .warmup = 0, .total_steps = 1000,
                             .schedule = RWKV_SCHED_COSINE, .beta1 = 0.9, .beta2 = 0.99,
                             .eps = 1e-8, .weight_decay = 0, .clip = 1.0};
}

rwkv_status rwkv_adamw_check(const rwkv_adamw_opts *o) {
    if (!(o->lr > 0) || !isfinite(o->lr)) return rwkv_error_set(RWKV_ERR_ARG, "learning rate must be > 0, got %g", o->lr);
    if (!(o->min_lr >= 0) || o->min_lr > o->lr)
        return rwkv_error_set(RWKV_ERR_ARG, "min-lr must be in [0, lr=%g], got %g", o->lr, o->min_lr);
    if (o->schedule == RWKV_SCHED_EXP && !(o->min_lr > 0))
        return rwkv_error_set(RWKV_ERR_ARG, "exponential decay needs min-lr > 0");
    if (o->warmup < 0) return rwkv_error_set(RWKV_ERR_ARG, "warm-up steps must be >= 0, got %lld", (long long)o->warmup);
    if (o->total_steps < 1) return rwkv_error_set(RWKV_ERR_ARG, "steps must be >= 1, got %lld", (long long)o->total_steps);
    if (!(o->beta1 >= 0 && o->beta1 < 1) || !(o->beta2 >= 0 && o->beta2 < 1))
        return rwkv_error_set(RWKV_ERR_ARG, "betas must be in [0, 1), got %g, %g", o->beta1, o->beta2);
    if (!(o->eps > 0)) return rwkv_error_set(RWKV_ERR_ARG, "eps must be > 0, got %g", o->eps);
    if (!(o->weight_decay >= 0)) return rwkv_error_set(RWKV_ERR_ARG, "weight decay must be >= 0, got %g", o->weight_decay);
    if (isnan(o->clip)) return rwkv_error_set(RWKV_ERR_ARG, "clip must be a number");
    return RWKV_OK;
}

rwkv_status rwkv_adamw_alloc(rwkv_adamw **out, const rwkv_param_table *t, const rwkv_adamw_opts *o) {
    *out = NULL;
    rwkv_status st = rwkv_adamw_check(o);
    if (st) return st;
    rwkv_adamw *a = rwkv_calloc(1, sizeof *a, "optimiser");
    if (!a) return RWKV_ERR_NOMEM;
    a->opts = *o;
    a->table = t;
    a->m = rwkv_calloc(t->total, sizeof(rwkv_real), "optimiser first moments");
    a->v = rwkv_calloc(t->total, sizeof(rwkv_real), "optimiser second moments");
    a->partial = rwkv_calloc(t->total / ADAMW_CHUNK + 1, sizeof(double), "optimiser norm partials");
    if (!a->m || !a->v || !a->partial) {
        rwkv_adamw_free(a);
        return RWKV_ERR_NOMEM;
    }
    *out = a;
    return RWKV_OK;
}

void rwkv_adamw_free(rwkv_adamw *a) {
    if (!a) return;
    free(a->m);
    free(a->v);
    free(a->partial);
    free(a);
}

double rwkv_adamw_lr(const rwkv_adamw_opts *o, int64_t step) {
    if (step < o->warmup) return o->lr * (double)(step + 1) / (double)o->warmup; // linear warm-up
    if (o->schedule == RWKV_SCHED_CONSTANT) return o->lr;
    int64_t span = o->total_steps - o->warmup;
    double f = span > 1 ? (double)(step - o->warmup) / (double)(span - 1) : 1.0;
    if (f > 1) f = 1;
    if (o->schedule == RWKV_SCHED_EXP) return o->lr * pow(o->min_lr / o->lr, f); // lr (min/lr)^f
    return o->min_lr + 0.5 * (o->lr - o->min_lr) * (1 + cos(PI * f)); // cosine from lr to min_lr
}

// One tensor's update at the engine's precision (vectorised; restrict: no aliasing).
static void adamw_update(rwkv_real *restrict x, rwkv_real *restrict g, rwkv_real *restrict m,
                         rwkv_real *restrict v, size_t n, rwkv_real scale, rwkv_real lr, rwkv_real wd,
                         rwkv_real b1, rwkv_real b2, rwkv_real ibc1, rwkv_real ibc2, rwkv_real eps) {
#pragma omp parallel for simd schedule(static) if (n > ADAMW_PAR_MIN)
    for (size_t j = 0; j < n; j++) {
        rwkv_real gj = g[j] * scale; // clipped gradient
        g[j] = gj;
        m[j] = b1 * m[j] + (1 - b1) * gj;
        v[j] = b2 * v[j] + (1 - b2) * gj * gj;
        rwkv_real upd = (m[j] * ibc1) / (RWKV_SQRT(v[j] * ibc2) + eps);
        x[j] -= lr * (upd + wd * x[j]); // decoupled weight decay
    }
}

rwkv_status rwkv_adamw_step(rwkv_adamw *a, rwkv_real *params, rwkv_real *grad, double *gnorm) {
    size_t n = a->table->total;
    // Sum of squares in fixed chunks added in order: the same bits for any thread timing.
    size_t nchunk = (n + ADAMW_CHUNK - 1) / ADAMW_CHUNK;
#pragma omp parallel for schedule(static)
    for (size_t c = 0; c < nchunk; c++) {
        double s = 0;
        size_t end = (c + 1) * ADAMW_CHUNK < n ? (c + 1) * ADAMW_CHUNK : n;
#pragma omp simd reduction(+ : s)
        for (size_t i = c * ADAMW_CHUNK; i < end; i++) s += (double)grad[i] * grad[i];
        a->partial[c] = s;
    }
    double ss = 0;
    for (size_t c = 0; c < nchunk; c++) ss += a->partial[c];
    double norm = sqrt(ss);
    if (gnorm) *gnorm = norm;
    if (!isfinite(norm)) {
        for (int i = 0; i < a->table->n; i++) { // name the first offending tensor
            const rwkv_param *p = &a->table->params[i];
            for (size_t j = 0; j < p->numel; j++)
                if (!isfinite(grad[p->offset + j]))
                    return rwkv_error_set(RWKV_ERR_NUMERIC, "gradient of %s is not finite", p->name);
        }
        return rwkv_error_set(RWKV_ERR_NUMERIC, "gradient norm overflowed (%g)", norm);
    }
    const rwkv_adamw_opts *o = &a->opts;
    double scale = o->clip > 0 && norm > o->clip ? o->clip / norm : 1.0;
    double lr = rwkv_adamw_lr(o, a->step);
    a->step++;
    double bc1 = 1 - pow(o->beta1, (double)a->step), bc2 = 1 - pow(o->beta2, (double)a->step);
    for (int i = 0; i < a->table->n; i++) {
        const rwkv_param *p = &a->table->params[i];
        adamw_update(params + p->offset, grad + p->offset, a->m + p->offset, a->v + p->offset, p->numel,
                     (rwkv_real)scale, (rwkv_real)lr, (rwkv_real)(p->is_matrix ? o->weight_decay : 0),
                     (rwkv_real)o->beta1, (rwkv_real)o->beta2, (rwkv_real)(1 / bc1), (rwkv_real)(1 / bc2),
                     (rwkv_real)o->eps);
    }
    return RWKV_OK;
}
