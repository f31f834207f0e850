// adamw.h: AdamW with a learning-rate schedule and global gradient-norm clipping.
// The moments m and v use the parameter block layout (one block each).
//   g <- g * min(1, clip / |g|)                         (|g| over every parameter)
//   m <- b1 m + (1-b1) g,  v <- b2 v + (1-b2) g^2
//   p <- p - lr (m / (1-b1^t) / (sqrt(v / (1-b2^t)) + eps) + wd p)   (wd on matrices only)
#ifndef RWKV_ADAMW_H
#define RWKV_ADAMW_H

#include "../model/weights.h"

typedef enum { RWKV_SCHED_COSINE, RWKV_SCHED_EXP, RWKV_SCHED_CONSTANT } rwkv_schedule;

typedef struct {
    double lr, min_lr;   // peak and final learning rate
    int64_t warmup;      // linear warm-up steps from 0 to lr
    int64_t total_steps; // decay from lr (after warm-up) to min_lr at total_steps
    rwkv_schedule schedule;
    double beta1, beta2, eps;
    double weight_decay; // decoupled, matrices only (is_matrix)
    double clip;         // max global gradient norm; <= 0 disables clipping
} rwkv_adamw_opts;

// lr 6e-4 -> 6e-5 cosine, 0 warm-up, betas (0.9, 0.99), eps 1e-8, wd 0, clip 1.
rwkv_adamw_opts rwkv_adamw_defaults(void);
rwkv_status rwkv_adamw_check(const rwkv_adamw_opts *o); // names the bad hyperparameter

typedef struct {
    rwkv_adamw_opts opts;
    const rwkv_param_table *table; // not owned
    rwkv_real *m, *v;  // (table->total) first and second moments
    int64_t step;      // updates done
    double *partial;   // (total / chunk + 1) partial sums of the gradient norm
} rwkv_adamw;

rwkv_status rwkv_adamw_alloc(rwkv_adamw **out, const rwkv_param_table *t, const rwkv_adamw_opts *o);
void rwkv_adamw_free(rwkv_adamw *a);
// The learning rate for update number step (0-based).
double rwkv_adamw_lr(const rwkv_adamw_opts *o, int64_t step);
// One update of params from grad (clipped in place). *gnorm gets the norm before clipping.
// A non-finite gradient returns RWKV_ERR_NUMERIC and leaves params and moments untouched.
rwkv_status rwkv_adamw_step(rwkv_adamw *a, rwkv_real *params, rwkv_real *grad, double *gnorm);

#endif
