// cmd_train.c: rwkvscope train: train an RWKV-4 or RWKV-7 model in parallel mode on a byte-level text
// file or a synthetic task (--task), with held-out evaluation, checkpoints and a loss log.
#include "cli.h"
#include "options.h"
#include "task_opts.h"

#include "core/train/checkpoint.h"
#include "core/train/init.h"
#include "core/train/schedule.h"
#include "core/train/trainer.h"
#include "datasets/dataset.h"
#include "analyses/plot.h"

#include <libgen.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const char cmd_train_summary[] = "train an RWKV-4 or RWKV-7 model in parallel mode (AdamW, checkpoints, loss log)";

#define DEFAULT_SEED 42
#define DEFAULT_EVAL_BATCHES 8
#define PROGRESS_EVERY_S 10.0 // a progress line at least this often, besides evaluations

static void usage(FILE *f) {
    fprintf(f, "usage: rwkvscope train --data FILE --layers L --embd C --ctx T --batch B --steps N\n"
           "                       [options] -o model.safetensors\n\n"
           "Trains a byte-level RWKV-4 (or, with --arch 7, RWKV-7) model (vocab 256) in parallel\n"
           "(GPT) mode on the bytes of\n"
           "FILE: the first 90%% is training data, the rest is held out. Windows of T tokens are\n"
           "drawn at offsets fixed by --seed and the step, so a run is reproducible and --resume\n"
           "continues it bit-identically. Writes the model (safetensors, official names) and\n"
           "its optimiser state (model.optim.h5) at every evaluation and at the end, and a\n"
           "loss log (step,loss,val_loss,lr,grad_norm,tokens_per_s,elapsed_s).\n\n"
           "model:\n"
           "  --layers L         blocks\n"
           "  --embd C           embedding width\n"
           "  --ffn F            channel-mix width (default: 4*C)\n"
           "  --arch A           4 (RWKV-4, default) or 7 (RWKV-7: official init, LoRA ranks\n"
           "                     max(32, round(k sqrt(C)/32) 32) capped at C)\n"
           "  --head-size N      RWKV-7 head size, dividing C (default: %d)\n"
           "data:\n"
           "  --data FILE        training text (bytes)\n"
           "  --val-frac X       held-out share (default: 0.1)\n"
           "  --task NAME        train on a synthetic task instead: passkey, mqar, copy, induction;\n"
           "                     the loss counts only the answer tokens (datasets/task.h)\n"
           "  --task-len N       tokens per task example (default: ctx/2, so each window holds one)\n"
           "  --examples N       task examples generated, seeded by --seed (default: 4M tokens' worth)\n"
           "  --text-weight W    with --task: also learn the other tokens (e.g. a --filler text)\n"
           "                     with loss weight W against 1 for answers (default: 0)\n"
           "optimisation:\n"
           "  --ctx T            tokens per window\n"
           "  --batch B          windows per step\n"
           "  --steps N          updates in total (with --resume: the new total)\n"
           "  --lr LR            peak learning rate (default: 6e-4)\n"
           "  --min-lr LR        final learning rate (default: lr/10)\n"
           "  --warmup N         linear warm-up steps (default: 0)\n"
           "  --schedule S       cosine | exp | constant decay after warm-up (default: cosine)\n"
           "  --wd X             AdamW weight decay, matrices only (default: 0)\n"
           "  --beta1 X --beta2 X --eps X   AdamW constants (default: 0.9, 0.99, 1e-8)\n"
           "  --clip X           max global gradient norm, 0 = off (default: 1.0)\n"
           "  --seed S           init and batch sampling seed (default: %d)\n"
           "evaluation and output:\n"
           "  --eval-every N     evaluate and checkpoint every N steps (default: steps/%d)\n"
           "  --eval-batches N   held-out batches per evaluation, 0 = all (default: %d)\n"
           "  -o, --output FILE  model output (required); the optimiser state goes beside it\n"
           "  --log FILE         loss log (default: loss.csv beside -o; - for stdout, the summary\n"
           "                     then goes to stderr); an existing log needs --force, except\n"
           "                     with --resume, which appends to it\n"
           "  --resume           continue the run saved at -o (hyperparameters from its state)\n"
           "  --stop-at S        end this session after step S (checkpointed); the schedule\n"
           "                     still runs to --steps, and --resume continues bit-identically\n"
           "  --force            overwrite an existing -o and loss log\n"
           "  --plot             draw the loss curve (loss-curve.png beside the log) with gnuplot\n"
           "  --threads N        threads for OpenMP and OpenBLAS (default: all cores)\n\n"
           CLI_TASK_HELP "\n"
           "A NaN or inf in the loss or the gradients stops the run with the step number; the\n"
           "last checkpoint written stays as it was.\n\n"
           "example:\n"
           "  rwkvscope train --data tests/fixtures/tinyshakespeare.txt --layers 4 --embd 128 \\\n"
           "      --ctx 128 --batch 8 --steps 800 --lr 4e-3 --min-lr 4e-4 --warmup 50 -o tiny.safetensors\n"
           "  (held-out loss about 1.5 nats/byte after 3 minutes on 2 cores)\n",
           RWKV_V7_HEAD_SIZE_DEFAULT, DEFAULT_SEED, RWKV_TRAIN_DEFAULT_EVALS, DEFAULT_EVAL_BATCHES);
}

typedef struct {
    const char *data, *out, *log, *task, *schedule;
    long layers, embd, ffn, ctx, batch, steps, warmup, eval_every, eval_batches, seed, threads, stop_at;
    long task_len, examples, arch, head_size;
    double text_weight; // loss weight of non-answer task tokens (0: answers only)
    rwkv_task task_cfg; // the task options (--key-len, --pairs, ...) for --task
    double lr, min_lr, wd, clip, beta1, beta2, eps, val_frac;
    int resume, force, plot, has_min_lr;
} train_args;

static int parse_schedule(const char *s, rwkv_schedule *out) {
    if (!strcmp(s, "cosine")) *out = RWKV_SCHED_COSINE;
    else if (!strcmp(s, "exp")) *out = RWKV_SCHED_EXP;
    else if (!strcmp(s, "constant")) *out = RWKV_SCHED_CONSTANT;
    else return 0;
    return 1;
}

static int parse(train_args *o, int argc, char **argv) {
    rwkv_adamw_opts d = rwkv_adamw_defaults();
    *o = (train_args){.lr = d.lr, .wd = d.weight_decay, .clip = d.clip, .beta1 = d.beta1, .beta2 = d.beta2,
                      .eps = d.eps, .val_frac = RWKV_DATA_VAL_FRAC, .seed = DEFAULT_SEED,
                      .eval_batches = DEFAULT_EVAL_BATCHES, .eval_every = -1, .schedule = "cosine",
                      .arch = 4, .head_size = RWKV_V7_HEAD_SIZE_DEFAULT};
    struct { const char *flag; long lo, hi; long *dst; } ints[] = {
        {"--layers", 1, 1024, &o->layers}, {"--embd", 1, 65536, &o->embd}, {"--ffn", 1, 1 << 20, &o->ffn},
        {"--ctx", 1, 1 << 20, &o->ctx}, {"--batch", 1, 1 << 16, &o->batch}, {"--steps", 1, 1L << 40, &o->steps},
        {"--warmup", 0, 1L << 40, &o->warmup}, {"--eval-every", 0, 1L << 40, &o->eval_every},
        {"--eval-batches", 0, 1 << 30, &o->eval_batches}, {"--seed", 0, 0x7fffffffL, &o->seed},
        {"--threads", 0, CLI_MAX_THREADS, &o->threads}, {"--stop-at", 1, 1L << 40, &o->stop_at},
        {"--task-len", 4, 1 << 20, &o->task_len}, {"--examples", 1, 1L << 30, &o->examples},
        {"--arch", 4, 7, &o->arch}, {"--head-size", 1, RWKV_V7_MAX_HEAD_SIZE, &o->head_size}};
    struct { const char *flag; double *dst; } reals[] = {
        {"--lr", &o->lr}, {"--min-lr", &o->min_lr}, {"--wd", &o->wd}, {"--clip", &o->clip},
        {"--beta1", &o->beta1}, {"--beta2", &o->beta2}, {"--eps", &o->eps}, {"--val-frac", &o->val_frac},
        {"--text-weight", &o->text_weight}};
    rwkv_task_defaults(&o->task_cfg, RWKV_TASK_PASSKEY);
    // The table: the numeric options above (ids O_INT + k, O_REAL + k), then the others.
    enum { O_RESUME = CLI_OPT_USER, O_PLOT, O_DATA, O_TASK, O_LOG, O_SCHEDULE, O_INT = CLI_OPT_USER + 100,
           O_REAL = CLI_OPT_USER + 200 };
    const int n_ints = (int)(sizeof ints / sizeof ints[0]), n_reals = (int)(sizeof reals / sizeof reals[0]);
    static const struct option named[] = {
        {"resume", no_argument, NULL, O_RESUME}, {"plot", no_argument, NULL, O_PLOT},
        {"data", required_argument, NULL, O_DATA}, {"task", required_argument, NULL, O_TASK},
        {"log", required_argument, NULL, O_LOG}, {"schedule", required_argument, NULL, O_SCHEDULE},
        CLI_OPTIONS_TASK, CLI_OPTIONS_OUTPUT, CLI_OPTIONS_END};
    struct option opts[sizeof named / sizeof named[0] + sizeof ints / sizeof ints[0] + sizeof reals / sizeof reals[0]];
    int k = 0;
    for (int j = 0; j < n_ints; j++) opts[k++] = (struct option){ints[j].flag + 2, required_argument, NULL, O_INT + j};
    for (int j = 0; j < n_reals; j++) opts[k++] = (struct option){reals[j].flag + 2, required_argument, NULL, O_REAL + j};
    memcpy(opts + k, named, sizeof named);
    cli_parser p = {.cmd = "train", .help = usage, .opts = opts, .task = &o->task_cfg, .out = &o->out,
                    .force = &o->force, .out_seekable = "a safetensors model with its optimiser state beside it"};
    const char *v;
    for (int c; (c = cli_opt_next(&p, argc, argv, &v)) != -1;) {
        if (c >= O_REAL) {
            if (!cli_parse_double("train", reals[c - O_REAL].flag, v, reals[c - O_REAL].dst)) return CLI_USAGE;
            if (reals[c - O_REAL].dst == &o->min_lr) o->has_min_lr = 1;
        } else if (c >= O_INT) {
            if (!cli_parse_int("train", ints[c - O_INT].flag, v, ints[c - O_INT].lo, ints[c - O_INT].hi,
                               ints[c - O_INT].dst)) return CLI_USAGE;
        } else if (c == O_RESUME) o->resume = 1;
        else if (c == O_PLOT) o->plot = 1;
        else if (c == O_DATA) o->data = cli_path_in(v);
        else if (c == O_TASK) o->task = v;
        else if (c == O_LOG) o->log = v;
        else if (c == O_SCHEDULE) o->schedule = v;
    }
    if (p.status) return p.status;
    if (!o->out) return cli_usage_error("train", "no output: give -o model.safetensors");
    if (o->plot && o->log && !strcmp(o->log, "-"))
        return cli_usage_error("train", "--plot reads the loss log back: give --log a file name, not -");
    if (!o->data && !o->task) return cli_usage_error("train", "no data: give --data FILE");
    if (o->text_weight < 0 || (o->text_weight > 0 && !o->task)) {
        return cli_usage_error("train", "--text-weight needs --task and a value >= 0");
    }
    if (o->arch != 4 && o->arch != 7) return cli_usage_error("train", "--arch expects 4 or 7, got %ld", o->arch);
    rwkv_schedule sched;
    if (!parse_schedule(o->schedule, &sched)) {
        return cli_usage_error("train", "--schedule expects cosine, exp or constant, got '%s'", o->schedule);
    }
    if (!o->resume) {
        const char *miss = !o->layers ? "--layers" : !o->embd ? "--embd" : !o->ctx ? "--ctx" : !o->batch ? "--batch" : !o->steps ? "--steps" : NULL;
        if (miss) return cli_usage_error("train", "%s is required", miss);
    }
    return CLI_OK;
}

// Everything a run holds; freed in one place.
typedef struct {
    rwkv_data *data;
    rwkv_model *m;
    rwkv_trainer *tr;
    FILE *log;
    FILE *report; // the summary lines: stdout, or stderr when the log goes to stdout
    char optim[1100], log_path[1100];
} run;

static void run_free(run *r) {
    if (r->log && r->log != stdout) fclose(r->log);
    rwkv_trainer_free(r->tr);
    rwkv_model_free(r->m);
    rwkv_data_free(r->data);
}

// A task's examples back to back, with the answer tokens as the loss mask.
static rwkv_status load_task(const train_args *a, rwkv_data **out) {
    rwkv_task t = a->task_cfg;
    rwkv_status st = rwkv_task_parse_kind(a->task, &t.kind);
    if (st) return st;
    t.len = a->task_len ? (int)a->task_len : (int)(a->ctx / 2);
    if (t.len < 4) return rwkv_error_set(RWKV_ERR_ARG, "--task %s: give --task-len (or --ctx)", a->task);
    return rwkv_task_training_data(out, &t, (unsigned long)a->seed, (int)a->examples, a->text_weight, a->val_frac);
}

static rwkv_status load_data(const train_args *a, rwkv_data **out) {
    if (a->task) return load_task(a, out);
    return rwkv_data_load_bytes(out, a->data, a->val_frac);
}

static int setup_new(const train_args *a, run *r) {
    rwkv_schedule sched = RWKV_SCHED_COSINE;
    parse_schedule(a->schedule, &sched); // checked by parse()
    if (!cli_check_output("train", a->out, a->force)) return CLI_USAGE;
    rwkv_config cfg = {.n_layer = (int)a->layers, .n_embd = (int)a->embd,
                       .n_ffn = a->ffn ? (int)a->ffn : (int)(4 * a->embd), .n_vocab = r->data->n_vocab};
    rwkv_trainer_opts o = {.B = (int)a->batch, .T = (int)a->ctx, .steps = a->steps, .seed = (unsigned long)a->seed,
                           .opt = rwkv_adamw_defaults(), .eval_batches = (int)a->eval_batches};
    o.opt.lr = a->lr, o.opt.min_lr = a->has_min_lr ? a->min_lr : a->lr / 10, o.opt.warmup = a->warmup;
    o.opt.schedule = sched, o.opt.weight_decay = a->wd, o.opt.clip = a->clip;
    o.opt.beta1 = a->beta1, o.opt.beta2 = a->beta2, o.opt.eps = a->eps, o.opt.total_steps = a->steps;
    if (a->arch == 7) cfg.version = RWKV_VERSION_7, cfg.head_size = (int)a->head_size;
    rwkv_status st = rwkv_init_new_model(&r->m, cfg, o.seed);
    if (!st) st = rwkv_trainer_alloc(&r->tr, r->m, r->data, &o);
    if (st) return cli_fail("train", st, "check --ctx against the data size, and --batch, --steps and --lr");
    return CLI_OK;
}

static int setup_resume(const train_args *a, run *r) {
    rwkv_config cfg;
    rwkv_trainer_opts o;
    int64_t step;
    rwkv_status st = rwkv_checkpoint_read_opts(r->optim, &cfg, &o, &step);
    if (st) return cli_fail("train", st, "--resume needs the optimiser state written beside -o by an earlier run");
    if (a->steps) o.steps = o.opt.total_steps = a->steps;
    // RWKV-7: the shape (head size, LoRA ranks) from the checkpoint's model file
    st = RWKV_IS_V7(cfg) ? rwkv_model_load(&r->m, a->out) : rwkv_model_alloc(&r->m, cfg);
    if (!st && !(st = rwkv_trainer_alloc(&r->tr, r->m, r->data, &o)))
        st = rwkv_checkpoint_resume(r->tr, r->optim);
    if (st) return cli_fail("train", st, NULL);
    fprintf(stderr, "resuming %s at step %lld of %lld\n", a->out, (long long)step, (long long)o.steps);
    return CLI_OK;
}

static void fmt_duration(char *buf, size_t n, double s) {
    if (!isfinite(s) || s < 0) s = 0;
    long t = (long)(s + 0.5);
    if (t >= 3600) snprintf(buf, n, "%ldh%02ldm", t / 3600, t / 60 % 60);
    else snprintf(buf, n, "%ldm%02lds", t / 60, t % 60);
}

// The loss curve beside the log: loss.csv -> loss-curve.png (its data loss-curve.csv and
// script loss-curve.gp beside it); a failed plot is a warning, the model is trained.
static void plot_loss(const char *log_path) {
    char png[1200];
    size_t stem = strlen(log_path);
    if (stem > 4 && !strcmp(log_path + stem - 4, ".csv")) stem -= 4;
    snprintf(png, sizeof png, "%.*s-curve.png", (int)stem, log_path);
    if (rwkv_plot_train_log(log_path, png)) fprintf(stderr, "rwkvscope train: --plot: %s\n", rwkv_error_message());
    else fprintf(stderr, "plotted %s\n", png);
}

// A progress line at every evaluation and at least every PROGRESS_EVERY_S seconds.
typedef struct {
    double last_print;
} progress_clock;

static void progress(void *ctx, const rwkv_train_progress *p) {
    progress_clock *c = ctx;
    if (!p->evaluated && p->elapsed_s - c->last_print < PROGRESS_EVERY_S) return;
    c->last_print = p->elapsed_s;
    char eta[32];
    fmt_duration(eta, sizeof eta, p->elapsed_s / (double)(p->step - p->start) * (double)(p->steps - p->step));
    char vbuf[48]; // no "val nan" before the first evaluation
    snprintf(vbuf, sizeof vbuf, "val -- (%s)", p->any_evaluated ? "no held-out data" : "not evaluated yet");
    if (!isnan(p->last_val)) snprintf(vbuf, sizeof vbuf, "val %.4f%s", p->last_val, p->evaluated ? "" : " (last)");
    fprintf(stderr, "step %lld/%lld | loss %.4f | %s | lr %.2e | %.0f tok/s | ETA %s\n", (long long)p->step,
            (long long)p->steps, p->loss, vbuf, p->lr, p->tokens_per_s, eta);
}

static int train_loop(const train_args *a, run *r) {
    progress_clock clock = {0};
    rwkv_train_session_opts so = {.stop = a->stop_at, .eval_every = a->eval_every, .checkpoint = a->out,
                                  .tokenizer = "bytes", .log = r->log, .progress = progress, .progress_ctx = &clock};
    rwkv_train_progress p;
    rwkv_status st = rwkv_train_session(r->tr, &so, &p);
    if (st) {
        cli_fail("train", st, p.failed_checkpoint ? "is the output directory writable?" : NULL);
        if (p.saved >= 0) fprintf(stderr, "the last good checkpoint is %s (step %lld)\n", a->out, (long long)p.saved);
        else fprintf(stderr, "no checkpoint was written by this run\n");
        return CLI_FAIL;
    }
    if (p.start >= p.stop) {
        fprintf(r->report, "%s is already at step %lld (--stop-at %lld)\n", a->out, (long long)p.start, (long long)p.stop);
        return CLI_OK;
    }
    char vbuf[48] = "val loss -- (no held-out data)";
    if (!isnan(p.val)) snprintf(vbuf, sizeof vbuf, "val loss %.4f nats/token", p.val);
    fprintf(r->report, "trained %s: step %lld, train loss %.4f, %s, %.0f tokens/s\n", a->out, (long long)p.stop, p.loss, vbuf,
           p.tokens_per_s);
    if (p.stop < p.steps)
        fprintf(r->report, "stopped at step %lld of %lld: continue with --resume\n", (long long)p.stop, (long long)p.steps);
    return CLI_OK;
}

int cmd_train(int argc, char **argv) {
    train_args a;
    int prc = parse(&a, argc, argv);
    if (prc) { rwkv_task_free(&a.task_cfg); return cli_opt_exit(prc); }
    cli_set_threads((int)a.threads);
    run r = {0};
    rwkv_checkpoint_optim_path(r.optim, sizeof r.optim, a.out);
    if (a.log) snprintf(r.log_path, sizeof r.log_path, "%s", a.log);
    else {
        char *dup = strdup(a.out);
        snprintf(r.log_path, sizeof r.log_path, "%s/loss.csv", dup ? dirname(dup) : ".");
        free(dup);
    }
    int log_stdout = !strcmp(r.log_path, "-");
    r.report = log_stdout ? stderr : stdout;
    // The one rule for existing outputs, before any work (a resumed run appends to its log).
    if (!a.resume && !a.force && !log_stdout && !cli_check_output("train", r.log_path, 0)) {
        rwkv_task_free(&a.task_cfg);
        return CLI_USAGE;
    }
    rwkv_status st = load_data(&a, &r.data);
    if (st) {
        rwkv_task_free(&a.task_cfg);
        return cli_fail("train", st, a.task ? "check --task-len (default ctx/2) against the task" : NULL);
    }
    int rc = a.resume ? setup_resume(&a, &r) : setup_new(&a, &r);
    if (rc == CLI_OK) {
        r.log = log_stdout ? stdout : fopen(r.log_path, a.resume ? "a" : "w");
        if (!r.log) {
            rwkv_error_set(RWKV_ERR_IO, "%s: cannot open the loss log for writing", r.log_path);
            rc = cli_fail("train", RWKV_ERR_IO, "use --log to put it elsewhere");
        }
    }
    if (rc == CLI_OK) {
        if (!a.resume) fputs(RWKV_TRAIN_LOG_HEADER, r.log);
        const rwkv_config *c = &r.m->cfg;
        char heads[64] = "";
        if (r.m->v7)
            snprintf(heads, sizeof heads, "RWKV-7, %d heads of %d, LoRA %d/%d/%d/%d, ", c->n_embd / c->head_size,
                     c->head_size, r.m->v7->d.d_w, r.m->v7->d.d_a, r.m->v7->d.d_v, r.m->v7->d.d_g);
        fprintf(stderr, "training %d x %d (%sffn %d, vocab %d, %zu parameters) on %s: %lld train / %lld held-out tokens\n",
                c->n_layer, c->n_embd, heads, c->n_ffn, c->n_vocab, rwkv_model_n_params(r.m), r.data->source,
                (long long)r.data->n_train, (long long)(r.data->n - r.data->n_train));
        rc = train_loop(&a, &r);
    }
    if (rc == CLI_OK && a.plot) plot_loss(r.log_path);
    run_free(&r);
    rwkv_task_free(&a.task_cfg);
    return rc;
}
