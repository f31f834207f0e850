// trainer.h: one training run: model, data, trainer arena, optimiser, batches.
// The caller (cli/cmd_train.c, tests) drives it: step, evaluate, save, resume.
#ifndef RWKV_TRAINER_H
#define RWKV_TRAINER_H

#include "adamw.h"
#include "data.h"
#include "train.h"

typedef struct {
    int B, T;               // batch rows and context length
    int64_t steps;          // total updates of the run
    unsigned long seed;     // init and batch sampling
    rwkv_adamw_opts opt;    // opt.total_steps is set to steps
    int eval_batches;       // validation batches per evaluation; 0 = every window
} rwkv_trainer_opts;

typedef struct {
    rwkv_trainer_opts o;
    rwkv_model *m;          // not owned
    const rwkv_data *d;     // not owned
    rwkv_train *t;
    rwkv_adamw *opt;        // opt->step = updates done
    rwkv_batch batch, val;  // training and validation batches (B, T)
    rwkv_real *grad;        // (table.total) gradients of the last step
    double last_gnorm, last_lr;
} rwkv_trainer;

// Checks the hyperparameters against the model and the data (clear errors).
rwkv_status rwkv_trainer_alloc(rwkv_trainer **out, rwkv_model *m, const rwkv_data *d,
                               const rwkv_trainer_opts *o);
void rwkv_trainer_free(rwkv_trainer *tr);
// One update. A non-finite loss or gradient returns RWKV_ERR_NUMERIC with the step number
// in the message and leaves the model and optimiser untouched.
rwkv_status rwkv_trainer_step(rwkv_trainer *tr, double *loss);
// Mean loss over the validation windows (eval_batches batches at most); NAN when the data
// has no held-out part.
rwkv_status rwkv_trainer_eval(rwkv_trainer *tr, double *val_loss);

#endif
