// checkpoint.c: safetensors model + HDF5 optimiser state (see checkpoint.h).
#include "checkpoint.h"

#include "../formats/formats.h"
#include "../inspect/h5util.h"

#include <errno.h>
#include <hdf5.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define OPTIM_READ_BUDGET_S 2.0 // seconds for the trial read, plus the file's read time

#if RWKV_REAL_BITS == 64
#define H5_REAL H5T_NATIVE_DOUBLE
#else
#define H5_REAL H5T_NATIVE_FLOAT
#endif

static const char *const SCHED_NAMES[] = {"cosine", "exp", "constant"};

void rwkv_checkpoint_optim_path(char *buf, size_t n, const char *model_path) {
    const char *ext = ".safetensors";
    size_t len = strlen(model_path), el = strlen(ext);
    if (len > el && !strcmp(model_path + len - el, ext))
        snprintf(buf, n, "%.*s.optim.h5", (int)(len - el), model_path);
    else
        snprintf(buf, n, "%s.optim.h5", model_path);
}

// The training configuration as a JSON object (also stored in the model metadata).
static json_t *opts_json(const rwkv_trainer_opts *o, const char *data_source) {
    const rwkv_adamw_opts *a = &o->opt;
    return json_pack("{s:i,s:i,s:I,s:I,s:f,s:f,s:I,s:s,s:f,s:f,s:f,s:f,s:f,s:i,s:s}", "batch", o->B,
                     "ctx", o->T, "steps", (json_int_t)o->steps, "seed", (json_int_t)o->seed, "lr", a->lr,
                     "min_lr", a->min_lr, "warmup", (json_int_t)a->warmup, "schedule",
                     SCHED_NAMES[a->schedule], "beta1", a->beta1, "beta2", a->beta2, "eps", a->eps,
                     "weight_decay", a->weight_decay, "clip", a->clip, "eval_batches", o->eval_batches,
                     "data", data_source ? data_source : "");
}

rwkv_status rwkv_checkpoint_save_model(const rwkv_model *m, const char *path, const char *tokenizer,
                                       int64_t step, const rwkv_trainer_opts *o, const char *data_source) {
    char cfg[256], stepbuf[32];
    snprintf(cfg, sizeof cfg, "{\"n_layer\":%d,\"n_embd\":%d,\"n_ffn\":%d,\"n_vocab\":%d}", m->cfg.n_layer,
             m->cfg.n_embd, m->cfg.n_ffn, m->cfg.n_vocab);
    snprintf(stepbuf, sizeof stepbuf, "%lld", (long long)step);
    char *train = NULL;
    if (o) {
        json_t *j = opts_json(o, data_source);
        train = j ? json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
        json_decref(j);
        if (!train) return rwkv_error_set(RWKV_ERR_NOMEM, "%s: cannot build the training metadata", path);
    }
    const char *meta[] = {"format", "pt", "creator", "rwkvscope " RWKVSCOPE_VERSION, "config", cfg,
                          "step", stepbuf, "tokenizer", tokenizer ? tokenizer : "bytes",
                          "train_config", train ? train : "{}"};
    rwkv_status st = rwkv_safetensors_write(path, m, meta, (int)(sizeof meta / sizeof meta[0] / 2));
    free(train);
    return st;
}

rwkv_status rwkv_checkpoint_save(const rwkv_trainer *tr, const char *model_path, const char *tokenizer) {
    rwkv_status st = rwkv_checkpoint_save_model(tr->m, model_path, tokenizer, tr->opt->step, &tr->o,
                                                tr->d ? tr->d->source : NULL);
    if (st) return st;
    char optim[1100];
    rwkv_checkpoint_optim_path(optim, sizeof optim, model_path);
    return rwkv_checkpoint_save_optim(tr, optim);
}

// ---------------------------------------------------------------- HDF5 optimiser file

static int attr_write(hid_t f, const char *name, hid_t type, const void *v) {
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(f, name, type, sp, H5P_DEFAULT, H5P_DEFAULT);
    int ok = a >= 0 && H5Awrite(a, type, v) >= 0;
    if (a >= 0) H5Aclose(a);
    H5Sclose(sp);
    return ok;
}

static int attr_write_str(hid_t f, const char *name, const char *s) {
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, strlen(s) + 1);
    int ok = attr_write(f, name, t, s);
    H5Tclose(t);
    return ok;
}

static int dset_write(hid_t f, const char *name, const rwkv_real *x, size_t n) {
    hsize_t dims[1] = {n};
    hid_t sp = H5Screate_simple(1, dims, NULL);
    hid_t d = H5Dcreate2(f, name, H5_REAL, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    int ok = d >= 0 && H5Dwrite(d, H5_REAL, H5S_ALL, H5S_ALL, H5P_DEFAULT, x) >= 0;
    if (d >= 0) H5Dclose(d);
    H5Sclose(sp);
    return ok;
}

static int write_optim(hid_t f, const rwkv_trainer *tr) {
    const rwkv_trainer_opts *o = &tr->o;
    const rwkv_config *c = &tr->m->cfg;
    int version = RWKV_OPTIM_VERSION, bits = RWKV_REAL_BITS, sched = o->opt.schedule;
    long long step = tr->opt->step, steps = o->steps, warmup = o->opt.warmup;
    unsigned long long seed = o->seed;
    json_t *j = opts_json(o, tr->d ? tr->d->source : NULL);
    char *js = j ? json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    json_decref(j);
    int ok = js && attr_write_str(f, "format", RWKV_OPTIM_FORMAT) && attr_write(f, "version", H5T_NATIVE_INT, &version) &&
             attr_write(f, "precision_bits", H5T_NATIVE_INT, &bits) &&
             attr_write(f, "n_layer", H5T_NATIVE_INT, &c->n_layer) && attr_write(f, "n_embd", H5T_NATIVE_INT, &c->n_embd) &&
             attr_write(f, "n_ffn", H5T_NATIVE_INT, &c->n_ffn) && attr_write(f, "n_vocab", H5T_NATIVE_INT, &c->n_vocab) &&
             attr_write(f, "step", H5T_NATIVE_LLONG, &step) && attr_write(f, "steps", H5T_NATIVE_LLONG, &steps) &&
             attr_write(f, "seed", H5T_NATIVE_ULLONG, &seed) && attr_write(f, "batch", H5T_NATIVE_INT, &o->B) &&
             attr_write(f, "ctx", H5T_NATIVE_INT, &o->T) && attr_write(f, "eval_batches", H5T_NATIVE_INT, &o->eval_batches) &&
             attr_write(f, "lr", H5T_NATIVE_DOUBLE, &o->opt.lr) && attr_write(f, "min_lr", H5T_NATIVE_DOUBLE, &o->opt.min_lr) &&
             attr_write(f, "warmup", H5T_NATIVE_LLONG, &warmup) && attr_write(f, "schedule", H5T_NATIVE_INT, &sched) &&
             attr_write(f, "beta1", H5T_NATIVE_DOUBLE, &o->opt.beta1) && attr_write(f, "beta2", H5T_NATIVE_DOUBLE, &o->opt.beta2) &&
             attr_write(f, "eps", H5T_NATIVE_DOUBLE, &o->opt.eps) &&
             attr_write(f, "weight_decay", H5T_NATIVE_DOUBLE, &o->opt.weight_decay) &&
             attr_write(f, "clip", H5T_NATIVE_DOUBLE, &o->opt.clip) && attr_write_str(f, "train_config", js) &&
             dset_write(f, "params", tr->m->block, tr->m->table.total) &&
             dset_write(f, "m", tr->opt->m, tr->m->table.total) && dset_write(f, "v", tr->opt->v, tr->m->table.total);
    free(js);
    return ok;
}

rwkv_status rwkv_checkpoint_save_optim(const rwkv_trainer *tr, const char *path) {
    hid_t f;
    rwkv_atomic_file out;
    rwkv_status st = rwkv_h5_create_atomic(&f, &out, path, 1);
    if (st) return st;
    if (!write_optim(f, tr)) st = rwkv_h5_fail(path, "writing the optimiser state");
    return rwkv_h5_commit(f, &out, st);
}

static int attr_read(hid_t f, const char *name, hid_t type, void *v) {
    if (H5Aexists(f, name) <= 0) return 0;
    hid_t a = H5Aopen(f, name, H5P_DEFAULT);
    int ok = a >= 0 && rwkv_h5_numeric(a) && H5Aread(a, type, v) >= 0;
    if (a >= 0) H5Aclose(a);
    return ok;
}

static rwkv_status open_optim(const char *path, hid_t *out) {
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    FILE *probe = fopen(path, "rb");
    if (!probe) return rwkv_error_set(RWKV_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    fclose(probe);
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) return rwkv_error_set(RWKV_ERR_FORMAT, "%s: not an HDF5 file (expected an rwkvscope optimiser state)", path);
    char fmt[32] = {0};
    hid_t a = H5Aexists(f, "format") > 0 ? H5Aopen(f, "format", H5P_DEFAULT) : -1;
    if (a >= 0) {
        hid_t t = H5Tcopy(H5T_C_S1);
        H5Tset_size(t, sizeof fmt);
        H5Aread(a, t, fmt);
        H5Tclose(t);
        H5Aclose(a);
    }
    int version = 0;
    if (strcmp(fmt, RWKV_OPTIM_FORMAT) || !attr_read(f, "version", H5T_NATIVE_INT, &version)) {
        H5Fclose(f);
        return rwkv_error_set(RWKV_ERR_FORMAT, "%s: not an rwkvscope optimiser state (attribute format)", path);
    }
    if (version != RWKV_OPTIM_VERSION) {
        H5Fclose(f);
        return rwkv_error_set(RWKV_ERR_UNSUPPORTED, "%s: optimiser state version %d, this build reads %d", path,
                              version, RWKV_OPTIM_VERSION);
    }
    *out = f;
    return RWKV_OK;
}

typedef struct {
    const char *path;
    rwkv_config *cfg;
    rwkv_trainer_opts *o;
    int64_t *step;
    rwkv_trainer *tr; // resume: the trainer to fill
} optim_read;

static rwkv_status read_opts(void *ctx) {
    const optim_read *r = ctx;
    const char *path = r->path;
    rwkv_config *cfg = r->cfg;
    rwkv_trainer_opts *o = r->o;
    int64_t *step = r->step;
    hid_t f;
    rwkv_status st = open_optim(path, &f);
    if (st) return st;
    long long s = 0, steps = 0, warmup = 0;
    unsigned long long seed = 0;
    int sched = 0;
    memset(o, 0, sizeof *o);
    int ok = attr_read(f, "n_layer", H5T_NATIVE_INT, &cfg->n_layer) && attr_read(f, "n_embd", H5T_NATIVE_INT, &cfg->n_embd) &&
             attr_read(f, "n_ffn", H5T_NATIVE_INT, &cfg->n_ffn) && attr_read(f, "n_vocab", H5T_NATIVE_INT, &cfg->n_vocab) &&
             attr_read(f, "step", H5T_NATIVE_LLONG, &s) && attr_read(f, "steps", H5T_NATIVE_LLONG, &steps) &&
             attr_read(f, "seed", H5T_NATIVE_ULLONG, &seed) && attr_read(f, "batch", H5T_NATIVE_INT, &o->B) &&
             attr_read(f, "ctx", H5T_NATIVE_INT, &o->T) && attr_read(f, "eval_batches", H5T_NATIVE_INT, &o->eval_batches) &&
             attr_read(f, "lr", H5T_NATIVE_DOUBLE, &o->opt.lr) && attr_read(f, "min_lr", H5T_NATIVE_DOUBLE, &o->opt.min_lr) &&
             attr_read(f, "warmup", H5T_NATIVE_LLONG, &warmup) && attr_read(f, "schedule", H5T_NATIVE_INT, &sched) &&
             attr_read(f, "beta1", H5T_NATIVE_DOUBLE, &o->opt.beta1) && attr_read(f, "beta2", H5T_NATIVE_DOUBLE, &o->opt.beta2) &&
             attr_read(f, "eps", H5T_NATIVE_DOUBLE, &o->opt.eps) &&
             attr_read(f, "weight_decay", H5T_NATIVE_DOUBLE, &o->opt.weight_decay) &&
             attr_read(f, "clip", H5T_NATIVE_DOUBLE, &o->opt.clip);
    H5Fclose(f);
    if (!ok) return rwkv_error_set(RWKV_ERR_FORMAT, "%s: an attribute of the optimiser state is missing or unreadable", path);
    if (sched < 0 || sched > RWKV_SCHED_CONSTANT || s < 0)
        return rwkv_error_set(RWKV_ERR_FORMAT, "%s: corrupt optimiser state (schedule %d, step %lld)", path, sched, s);
    o->steps = steps, o->seed = (unsigned long)seed, o->opt.warmup = warmup, o->opt.schedule = (rwkv_schedule)sched;
    o->opt.total_steps = steps;
    *step = s;
    if ((st = rwkv_weights_check_config(*cfg))) return rwkv_error_wrap(st, "%s: ", path);
    return RWKV_OK;
}

rwkv_status rwkv_checkpoint_read_opts(const char *path, rwkv_config *cfg, rwkv_trainer_opts *o, int64_t *step) {
    optim_read r = {path, cfg, o, step, NULL};
    return rwkv_h5_guarded(path, "optimiser state", rwkv_h5_budget(path, OPTIM_READ_BUDGET_S), read_opts, &r);
}

static int dset_read(hid_t f, const char *name, rwkv_real *x, size_t n) {
    if (H5Lexists(f, name, H5P_DEFAULT) <= 0) return 0;
    hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
    if (d < 0) return 0;
    hid_t sp = H5Dget_space(d);
    int ok = H5Sget_simple_extent_npoints(sp) == (hssize_t)n && rwkv_h5_numeric(d) &&
             H5Dread(d, H5_REAL, H5S_ALL, H5S_ALL, H5P_DEFAULT, x) >= 0;
    H5Sclose(sp);
    H5Dclose(d);
    return ok;
}

// Parameters and AdamW moments into the trainer.
static rwkv_status read_moments(void *ctx) {
    const optim_read *r = ctx;
    rwkv_trainer *tr = r->tr;
    hid_t f;
    rwkv_status st = open_optim(r->path, &f);
    if (st) return st;
    size_t n = tr->m->table.total;
    int ok = dset_read(f, "params", tr->m->block, n) && dset_read(f, "m", tr->opt->m, n) && dset_read(f, "v", tr->opt->v, n);
    H5Fclose(f);
    if (!ok) return rwkv_error_set(RWKV_ERR_FORMAT, "%s: dataset params, m or v is missing or has the wrong size", r->path);
    return RWKV_OK;
}

rwkv_status rwkv_checkpoint_resume(rwkv_trainer *tr, const char *path) {
    rwkv_config cfg;
    rwkv_trainer_opts o;
    int64_t step;
    rwkv_status st = rwkv_checkpoint_read_opts(path, &cfg, &o, &step);
    if (st) return st;
    const rwkv_config *mc = &tr->m->cfg;
    if (cfg.n_layer != mc->n_layer || cfg.n_embd != mc->n_embd || cfg.n_ffn != mc->n_ffn || cfg.n_vocab != mc->n_vocab)
        return rwkv_error_set(RWKV_ERR_SHAPE, "%s: the state is for L=%d C=%d F=%d V=%d, the model is L=%d C=%d F=%d V=%d",
                              path, cfg.n_layer, cfg.n_embd, cfg.n_ffn, cfg.n_vocab, mc->n_layer, mc->n_embd,
                              mc->n_ffn, mc->n_vocab);
    if (step >= tr->o.steps)
        return rwkv_error_set(RWKV_ERR_ARG, "%s: the run is already at step %lld of %lld; ask for more --steps",
                              path, (long long)step, (long long)tr->o.steps);
    optim_read r = {path, NULL, NULL, NULL, tr};
    if ((st = rwkv_h5_guarded(path, "optimiser state", rwkv_h5_budget(path, OPTIM_READ_BUDGET_S), read_moments, &r)))
        return st;
    tr->opt->step = step;
    rwkv_model_refresh(tr->m);
    return RWKV_OK;
}
