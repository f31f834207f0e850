// cmd_train.c: rwkvscope train: train an RWKV-4 model in parallel mode on a byte-level text
// file or a synthetic task (--task), with held-out evaluation, checkpoints and a loss log.
#include "cli.h"
#include "task_opts.h"

#include "core/train/checkpoint.h"
#include "core/train/init.h"
#include "core/train/trainer.h"
#include "datasets/dataset.h"
#include "analyses/plot.h"

#include <libgen.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

const char cmd_train_summary[] = "train an RWKV-4 model in parallel mode (AdamW, checkpoints, loss log)";

#define DEFAULT_SEED 42
#define DEFAULT_EVAL_BATCHES 8
#define DEFAULT_EVALS 10 // evaluations per run when --eval-every is not given
#define TASK_STREAM_TOKENS (4L << 20) // default task stream (independent of --steps: --resume sees the same data)
#define PROGRESS_EVERY_S 10.0 // a progress line at least this often, besides evaluations

static void usage(void) {
    printf("usage: rwkvscope train --data FILE --layers L --embd C --ctx T --batch B --steps N\n"
           "                       [options] -o model.safetensors\n\n"
           "Trains a byte-level RWKV-4 model (vocab 256) in parallel (GPT) mode on the bytes of\n"
           "FILE: the first 90%% is training data, the rest is held out. Windows of T tokens are\n"
           "drawn at offsets fixed by --seed and the step, so a run is reproducible and --resume\n"
           "continues it bit-identically. Writes the model (safetensors, official names) and\n"
           "its optimiser state (model.optim.h5) at every evaluation and at the end, and a\n"
           "loss log (step,loss,val_loss,lr,grad_norm,tokens_per_s,elapsed_s).\n\n"
           "model:\n"
           "  --layers L         blocks\n"
           "  --embd C           embedding width\n"
           "  --ffn F            channel-mix width (default: 4*C)\n"
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
           "  -o FILE            model output (required); the optimiser state goes beside it\n"
           "  --log FILE         loss log (default: loss.csv beside -o)\n"
           "  --resume           continue the run saved at -o (hyperparameters from its state)\n"
           "  --stop-at S        end this session after step S (checkpointed); the schedule\n"
           "                     still runs to --steps, and --resume continues bit-identically\n"
           "  --force            overwrite an existing -o\n"
           "  --plot             draw the loss curve (loss-curve.png beside the log) with gnuplot\n"
           "  --threads N        threads for OpenMP and OpenBLAS (default: all cores)\n\n"
           CLI_TASK_HELP "\n"
           "A NaN or inf in the loss or the gradients stops the run with the step number; the\n"
           "last checkpoint written stays as it was.\n\n"
           "example:\n"
           "  rwkvscope train --data tests/fixtures/tinyshakespeare.txt --layers 4 --embd 128 \\\n"
           "      --ctx 128 --batch 8 --steps 800 --lr 4e-3 --min-lr 4e-4 --warmup 50 -o tiny.safetensors\n"
           "  (held-out loss about 1.5 nats/byte after 3 minutes on 2 cores)\n",
           DEFAULT_SEED, DEFAULT_EVALS, DEFAULT_EVAL_BATCHES);
}

typedef struct {
    const char *data, *out, *log, *task, *schedule;
    long layers, embd, ffn, ctx, batch, steps, warmup, eval_every, eval_batches, seed, threads, stop_at;
    long task_len, examples;
    double text_weight; // loss weight of non-answer task tokens (0: answers only)
    rwkv_task task_cfg; // the task options (--key-len, --pairs, ...) for --task
    double lr, min_lr, wd, clip, beta1, beta2, eps, val_frac;
    int resume, force, plot, has_min_lr;
} train_args;

static int parse_num(const char *a, const char *flag, char **argv, int *i, int argc, long lo, long hi, long *out) {
    if (strcmp(a, flag)) return 0;
    if (*i + 1 >= argc) return -1;
    return cli_parse_int("train", flag, argv[++*i], lo, hi, out) ? 1 : -2;
}

static int parse_real(const char *a, const char *flag, char **argv, int *i, int argc, double *out) {
    if (strcmp(a, flag)) return 0;
    if (*i + 1 >= argc) return -1;
    return cli_parse_double("train", flag, argv[++*i], out) ? 1 : -2;
}

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
                      .eval_batches = DEFAULT_EVAL_BATCHES, .eval_every = -1, .schedule = "cosine"};
    struct { const char *flag; long lo, hi; long *dst; } ints[] = {
        {"--layers", 1, 1024, &o->layers}, {"--embd", 1, 65536, &o->embd}, {"--ffn", 1, 1 << 20, &o->ffn},
        {"--ctx", 1, 1 << 20, &o->ctx}, {"--batch", 1, 1 << 16, &o->batch}, {"--steps", 1, 1L << 40, &o->steps},
        {"--warmup", 0, 1L << 40, &o->warmup}, {"--eval-every", 0, 1L << 40, &o->eval_every},
        {"--eval-batches", 0, 1 << 30, &o->eval_batches}, {"--seed", 0, 0x7fffffffL, &o->seed},
        {"--threads", 0, CLI_MAX_THREADS, &o->threads}, {"--stop-at", 1, 1L << 40, &o->stop_at},
        {"--task-len", 4, 1 << 20, &o->task_len}, {"--examples", 1, 1L << 30, &o->examples}};
    struct { const char *flag; double *dst; } reals[] = {
        {"--lr", &o->lr}, {"--min-lr", &o->min_lr}, {"--wd", &o->wd}, {"--clip", &o->clip},
        {"--beta1", &o->beta1}, {"--beta2", &o->beta2}, {"--eps", &o->eps}, {"--val-frac", &o->val_frac},
        {"--text-weight", &o->text_weight}};
    rwkv_task_defaults(&o->task_cfg, RWKV_TASK_PASSKEY);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
        int r = cli_task_option(&o->task_cfg, "train", argc, argv, &i);
        if (r < 0) return 0;
        if (r) continue;
        for (size_t k = 0; k < sizeof ints / sizeof ints[0] && !r; k++)
            r = parse_num(a, ints[k].flag, argv, &i, argc, ints[k].lo, ints[k].hi, ints[k].dst);
        for (size_t k = 0; k < sizeof reals / sizeof reals[0] && !r; k++) {
            r = parse_real(a, reals[k].flag, argv, &i, argc, reals[k].dst);
            if (r == 1 && reals[k].dst == &o->min_lr) o->has_min_lr = 1;
        }
        if (r == -2) return 0;
        if (r == -1) { cli_usage_error("train", "%s needs a value", a); return 0; }
        if (r) continue;
        if (!strcmp(a, "--resume")) o->resume = 1;
        else if (!strcmp(a, "--force")) o->force = 1;
        else if (!strcmp(a, "--plot")) o->plot = 1;
        else if (!strcmp(a, "--data") && val) o->data = argv[++i];
        else if (!strcmp(a, "--task") && val) o->task = argv[++i];
        else if (!strcmp(a, "--log") && val) o->log = argv[++i];
        else if (!strcmp(a, "--schedule") && val) o->schedule = argv[++i];
        else if (!strcmp(a, "-o") && val) o->out = argv[++i];
        else { cli_usage_error("train", "unknown option '%s' (or it needs a value)", a); return 0; }
    }
    if (!o->out) { cli_usage_error("train", "no output: give -o model.safetensors"); return 0; }
    if (!o->data && !o->task) { cli_usage_error("train", "no data: give --data FILE"); return 0; }
    if (o->text_weight < 0 || (o->text_weight > 0 && !o->task)) {
        cli_usage_error("train", "--text-weight needs --task and a value >= 0");
        return 0;
    }
    rwkv_schedule sched;
    if (!parse_schedule(o->schedule, &sched)) {
        cli_usage_error("train", "--schedule expects cosine, exp or constant, got '%s'", o->schedule);
        return 0;
    }
    if (!o->resume) {
        const char *miss = !o->layers ? "--layers" : !o->embd ? "--embd" : !o->ctx ? "--ctx" : !o->batch ? "--batch" : !o->steps ? "--steps" : NULL;
        if (miss) { cli_usage_error("train", "%s is required", miss); return 0; }
    }
    return 1;
}

// Everything a run holds; freed in one place.
typedef struct {
    rwkv_data *data;
    rwkv_model *m;
    rwkv_trainer *tr;
    FILE *log;
    char optim[1100], log_path[1100];
} run;

static void run_free(run *r) {
    if (r->log) fclose(r->log);
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
    long n_ex = a->examples ? a->examples : TASK_STREAM_TOKENS / t.len;
    int *tok = NULL;
    rwkv_real *mask = NULL;
    int64_t n = 0;
    char source[256];
    int k = snprintf(source, sizeof source, "task:%s (%ld examples of %d tokens", a->task, n_ex, t.len);
    if (t.filler) k += snprintf(source + k, sizeof source - (size_t)k, ", filler text of %zu bytes", t.filler_len);
    if (a->text_weight > 0) k += snprintf(source + k, sizeof source - (size_t)k, ", text weight %g", a->text_weight);
    snprintf(source + k, sizeof source - (size_t)k, ")");
    st = rwkv_task_stream(&t, (unsigned long)a->seed, (int)n_ex, &tok, &mask, &n);
    for (int64_t i = 0; !st && i < n; i++)
        if (mask[i] == 0) mask[i] = (rwkv_real)a->text_weight; // the haystack text, as a language model
    if (!st) st = rwkv_data_from_tokens(out, tok, mask, n, t.vocab, a->val_frac, source);
    free(tok);
    free(mask);
    return st;
}

static rwkv_status load_data(const train_args *a, rwkv_data **out) {
    if (a->task) return load_task(a, out);
    return rwkv_data_load_bytes(out, a->data, a->val_frac);
}

static int setup_new(const train_args *a, run *r) {
    rwkv_schedule sched = RWKV_SCHED_COSINE;
    parse_schedule(a->schedule, &sched); // checked by parse()
    if (!cli_check_output("train", a->out, a->force)) return CLI_FAIL;
    rwkv_config cfg = {(int)a->layers, (int)a->embd, a->ffn ? (int)a->ffn : (int)(4 * a->embd), r->data->n_vocab};
    rwkv_trainer_opts o = {.B = (int)a->batch, .T = (int)a->ctx, .steps = a->steps, .seed = (unsigned long)a->seed,
                           .opt = rwkv_adamw_defaults(), .eval_batches = (int)a->eval_batches};
    o.opt.lr = a->lr, o.opt.min_lr = a->has_min_lr ? a->min_lr : a->lr / 10, o.opt.warmup = a->warmup;
    o.opt.schedule = sched, o.opt.weight_decay = a->wd, o.opt.clip = a->clip;
    o.opt.beta1 = a->beta1, o.opt.beta2 = a->beta2, o.opt.eps = a->eps, o.opt.total_steps = a->steps;
    rwkv_status st = rwkv_model_alloc(&r->m, cfg);
    if (!st) st = rwkv_init_model(r->m, o.seed);
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
    if (!(st = rwkv_model_alloc(&r->m, cfg)) && !(st = rwkv_trainer_alloc(&r->tr, r->m, r->data, &o)))
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

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

// Reads the log back (a resumed run's log holds the whole run) and draws the mean training
// loss per evaluation interval and the held-out loss at each evaluation into loss-curve.png
// (the plot writes its data beside it as loss-curve.csv and its script as loss-curve.gp).
static void plot_loss(const char *log_path) {
    FILE *f = fopen(log_path, "r");
    if (!f) {
        fprintf(stderr, "rwkvscope train: --plot: cannot read %s\n", log_path);
        return;
    }
    size_t cap = 64, n = 0, nrows = 0;
    double *x = malloc(cap * sizeof *x), *y = malloc(2 * cap * sizeof *y), *tr = NULL;
    double sum = 0;
    long cnt = 0;
    char line[512];
    while (x && y && fgets(line, sizeof line, f)) {
        long long step;
        double loss, val;
        if (sscanf(line, "%lld,%lf,%lf", &step, &loss, &val) != 3) continue; // the header
        sum += loss, cnt++, nrows++;
        if (!isfinite(val)) continue;
        if (n == cap) {
            cap *= 2;
            double *nx = realloc(x, cap * sizeof *x), *ny = realloc(y, 2 * cap * sizeof *y);
            if (nx) x = nx;
            if (ny) y = ny;
            if (!nx || !ny) break;
        }
        x[n] = (double)step, y[2 * n] = sum / cnt, y[2 * n + 1] = val; // interleaved, split below
        n++, sum = 0, cnt = 0;
    }
    fclose(f);
    if (!x || !y || !n) {
        fprintf(stderr, "rwkvscope train: --plot: %s has no evaluated steps to plot (%zu rows)\n", log_path, nrows);
        free(x), free(y);
        return;
    }
    tr = malloc(2 * n * sizeof *tr);
    if (tr) {
        for (size_t i = 0; i < n; i++) tr[i] = y[2 * i], tr[n + i] = y[2 * i + 1];
        char png[1200];
        size_t stem = strlen(log_path); // loss.csv -> loss-curve.png (+ its data loss-curve.csv)
        if (stem > 4 && !strcmp(log_path + stem - 4, ".csv")) stem -= 4;
        snprintf(png, sizeof png, "%.*s-curve.png", (int)stem, log_path);
        const char *names[2] = {"train", "held-out"}; // train: mean over each interval
        rwkv_plot_opts o = {.title = "training loss", .xlabel = "step", .ylabel = "loss (nats/token)"};
        rwkv_status rc = rwkv_plot_lines(png, &o, x, tr, (int)n, 2, names);
        if (rc) fprintf(stderr, "rwkvscope train: --plot: %s\n", rwkv_error_message());
        else fprintf(stderr, "plotted %s\n", png);
    }
    free(x), free(y), free(tr);
}

static int train_loop(const train_args *a, run *r) {
    rwkv_trainer *tr = r->tr;
    int64_t steps = tr->o.steps, start = tr->opt->step;
    int64_t stop = a->stop_at > 0 && a->stop_at < steps ? a->stop_at : steps; // this session's end
    int64_t every = a->eval_every >= 0 ? a->eval_every : (steps / DEFAULT_EVALS > 0 ? steps / DEFAULT_EVALS : 1);
    double tokens = (double)tr->o.B * tr->o.T, t_train = 0, t0 = now_s(), loss = NAN, val = NAN;
    double last_print = t0, last_val = NAN;
    int evaluated = 0;
    int64_t saved = -1;
    for (int64_t s = start; s < stop; s++) {
        double ts = now_s();
        rwkv_status st = rwkv_trainer_step(tr, &loss);
        t_train += now_s() - ts;
        if (st) {
            cli_fail("train", st, NULL);
            if (saved >= 0) fprintf(stderr, "the last good checkpoint is %s (step %lld)\n", a->out, (long long)saved);
            else fprintf(stderr, "no checkpoint was written by this run\n");
            return CLI_FAIL;
        }
        int64_t done = s + 1;
        int last = done == stop, eval = last || (every > 0 && done % every == 0);
        val = NAN;
        if (eval && (st = rwkv_trainer_eval(tr, &val))) return cli_fail("train", st, NULL);
        if (eval) last_val = val, evaluated = 1;
        double tps = tokens * (double)(done - start) / t_train;
        fprintf(r->log, "%lld,%.6f,%.6f,%.6g,%.6g,%.0f,%.2f\n", (long long)done, loss, val, tr->last_lr,
                tr->last_gnorm, tps, now_s() - t0);
        if (eval) {
            fflush(r->log);
            if ((st = rwkv_checkpoint_save(tr, a->out, "bytes")))
                return cli_fail("train", st, "is the output directory writable?");
            saved = done;
        }
        if (!eval && now_s() - last_print < PROGRESS_EVERY_S) continue;
        last_print = now_s();
        char eta[32];
        fmt_duration(eta, sizeof eta, (now_s() - t0) / (double)(done - start) * (double)(steps - done));
        char vbuf[48]; // no "val nan" before the first evaluation
        snprintf(vbuf, sizeof vbuf, "val -- (%s)", evaluated ? "no held-out data" : "not evaluated yet");
        if (!isnan(last_val)) snprintf(vbuf, sizeof vbuf, "val %.4f%s", last_val, eval ? "" : " (last)");
        fprintf(stderr, "step %lld/%lld | loss %.4f | %s | lr %.2e | %.0f tok/s | ETA %s\n", (long long)done,
                (long long)steps, loss, vbuf, tr->last_lr, tps, eta);
    }
    if (start >= stop) {
        printf("%s is already at step %lld (--stop-at %lld)\n", a->out, (long long)start, (long long)stop);
        return CLI_OK;
    }
    char vbuf[48] = "val loss -- (no held-out data)";
    if (!isnan(val)) snprintf(vbuf, sizeof vbuf, "val loss %.4f nats/token", val);
    printf("trained %s: step %lld, train loss %.4f, %s, %.0f tokens/s\n", a->out, (long long)stop, loss, vbuf,
           tokens * (double)(stop - start) / t_train);
    if (stop < steps)
        printf("stopped at step %lld of %lld: continue with --resume\n", (long long)stop, (long long)steps);
    return CLI_OK;
}

int cmd_train(int argc, char **argv) {
    if (cli_wants_help(argc, argv)) { usage(); return CLI_OK; }
    train_args a;
    if (!parse(&a, argc, argv)) return CLI_USAGE;
    cli_set_threads((int)a.threads);
    run r = {0};
    rwkv_checkpoint_optim_path(r.optim, sizeof r.optim, a.out);
    if (a.log) snprintf(r.log_path, sizeof r.log_path, "%s", a.log);
    else {
        char *dup = strdup(a.out);
        snprintf(r.log_path, sizeof r.log_path, "%s/loss.csv", dup ? dirname(dup) : ".");
        free(dup);
    }
    rwkv_status st = load_data(&a, &r.data);
    if (st) {
        rwkv_task_free(&a.task_cfg);
        return cli_fail("train", st, a.task ? "check --task-len (default ctx/2) against the task" : NULL);
    }
    int rc = a.resume ? setup_resume(&a, &r) : setup_new(&a, &r);
    if (rc == CLI_OK) {
        r.log = fopen(r.log_path, a.resume ? "a" : "w");
        if (!r.log) {
            rwkv_error_set(RWKV_ERR_IO, "%s: cannot open the loss log for writing", r.log_path);
            rc = cli_fail("train", RWKV_ERR_IO, "use --log to put it elsewhere");
        }
    }
    if (rc == CLI_OK) {
        if (!a.resume) fprintf(r.log, "step,loss,val_loss,lr,grad_norm,tokens_per_s,elapsed_s\n");
        const rwkv_config *c = &r.m->cfg;
        fprintf(stderr, "training %d x %d (ffn %d, vocab %d, %zu parameters) on %s: %lld train / %lld held-out tokens\n",
                c->n_layer, c->n_embd, c->n_ffn, c->n_vocab, rwkv_model_n_params(r.m), r.data->source,
                (long long)r.data->n_train, (long long)(r.data->n - r.data->n_train));
        rc = train_loop(&a, &r);
    }
    if (rc == CLI_OK && a.plot) plot_loss(r.log_path);
    run_free(&r);
    rwkv_task_free(&a.task_cfg);
    return rc;
}
