// schedule.h: a training session: steps from where the trainer stands to `stop`, with a
// held-out evaluation and a checkpoint every eval_every steps and at the session's end,
// one loss-log row per step, and a progress callback after each step (callers decide what
// to print and how often).
#ifndef RWKV_TRAIN_SCHEDULE_H
#define RWKV_TRAIN_SCHEDULE_H

#include "trainer.h"

#include <stdio.h>

#define RWKV_TRAIN_DEFAULT_EVALS 10 // evaluations per run when eval_every is negative
#define RWKV_TRAIN_LOG_HEADER "step,loss,val_loss,lr,grad_norm,tokens_per_s,elapsed_s\n"

// What a session has done so far (also after a failure).
typedef struct {
    int64_t step, steps;      // updates done, and of the whole run
    int64_t start, stop;      // this session's first step and its end
    double loss;              // training loss of the last step
    double val;               // held-out loss at this step (NAN when not evaluated here)
    double last_val;          // the latest held-out loss (NAN before any, or without held-out data)
    int evaluated;            // an evaluation ran at this step
    int any_evaluated;        // some evaluation ran in this session
    double lr, grad_norm;     // of the last step
    double tokens_per_s;      // training throughput of this session
    double elapsed_s;         // wall time of this session
    int64_t saved;            // step of the last checkpoint written, -1 if none
    int failed_checkpoint;    // the session stopped because a checkpoint could not be written
} rwkv_train_progress;

typedef struct {
    int64_t stop;             // end the session after this step (0 or >= steps: the run's end)
    int64_t eval_every;       // evaluate and checkpoint every N steps; <0: steps / DEFAULT_EVALS
    const char *checkpoint;   // model path (the optimiser state goes beside it); NULL = none
    const char *tokenizer;    // recorded in the checkpoint ("bytes")
    FILE *log;                // NULL, or gets one RWKV_TRAIN_LOG_HEADER row per step
    void (*progress)(void *ctx, const rwkv_train_progress *p); // NULL = quiet
    void *progress_ctx;
} rwkv_train_session_opts;

// Runs the session; *out (may be NULL) holds the final progress, also when a step, an
// evaluation or a checkpoint fails (then out->saved names the last good checkpoint).
rwkv_status rwkv_train_session(rwkv_trainer *tr, const rwkv_train_session_opts *o, rwkv_train_progress *out);

#endif
