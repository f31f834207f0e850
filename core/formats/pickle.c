// pickle.c: a bounded pickle VM for torch.save state dicts.
// Only the opcodes and globals torch.save emits for a dict of tensors are run; any other
// opcode or global is an error naming it. Every object lives in one list freed at the end,
// so BINGET sharing and even cycles cannot leak or double-free, and nothing recurses.
#include "pickle.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#define PK_MAX_STACK (1 << 20) // far above what a state dict needs (SETITEMS batches 1000)
#define PK_MAX_MEMO (1 << 22)
#define PK_MAX_MARKS 1024
#define PK_MAX_STR (1 << 20)   // longer strings are not state-dict keys
#define PK_MAX_GLOBAL 256      // module or attribute name in GLOBAL
#define PK_MAX_PROTO 5

typedef enum { PK_NONE, PK_BOOL, PK_INT, PK_STR, PK_TUPLE, PK_LIST, PK_DICT, PK_GLOBAL,
               PK_STORAGE, PK_TENSOR } pk_kind;

static const char *const KIND_NAMES[] = {"None", "bool", "int", "str", "tuple", "list", "dict",
                                         "global", "storage", "tensor"};

typedef enum { G_REBUILD_V2, G_FLOAT_STORAGE, G_HALF_STORAGE, G_BF16_STORAGE, G_ORDERED_DICT } pk_global;

typedef struct {
    const char *module, *name;
    pk_global id;
} global_spec;

static const global_spec GLOBALS[] = {
    {"torch._utils", "_rebuild_tensor_v2", G_REBUILD_V2},
    {"torch", "FloatStorage", G_FLOAT_STORAGE},
    {"torch", "HalfStorage", G_HALF_STORAGE},
    {"torch", "BFloat16Storage", G_BF16_STORAGE},
    {"collections", "OrderedDict", G_ORDERED_DICT},
};

typedef struct pk_obj pk_obj;
struct pk_obj {
    pk_kind kind;
    int64_t i;              // BOOL, INT value; GLOBAL id
    char *s;                // STR, NUL-terminated
    pk_obj **items;         // TUPLE/LIST: (n) items; DICT: (2n) key, value, key, value...
    int n, cap;
    rwkv_pickle_tensor *t;  // STORAGE: dtype, storage key, numel; TENSOR: everything
};

typedef struct {
    const unsigned char *buf;
    size_t n, pos, op_pos;  // op_pos: where the current opcode starts (for messages)
    size_t frame_end;       // end of the current protocol-4 FRAME (0: none)
    int op;                 // the current opcode (-1 before it is read)
    const char *where;
    pk_obj **stack;
    int sp, stack_cap;
    int marks[PK_MAX_MARKS]; // stack heights at each MARK
    int n_marks;
    pk_obj **memo;
    int n_memo, memo_cap;
    pk_obj **objs;          // every object, freed by vm_free
    size_t n_objs, objs_cap;
} pk_vm;

static rwkv_status fail(pk_vm *vm, rwkv_status code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static rwkv_status fail(pk_vm *vm, rwkv_status code, const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (vm->op < 0) return rwkv_error_set(code, "%s: pickle byte %zu: %s", vm->where, vm->op_pos, msg);
    return rwkv_error_set(code, "%s: pickle byte %zu (opcode 0x%02x): %s", vm->where, vm->op_pos,
                          vm->op, msg);
}

static rwkv_status nomem(pk_vm *vm) { return fail(vm, RWKV_ERR_NOMEM, "out of memory"); }

// Grows *arr (elements of size sz) to hold at least need elements.
static int grow(void **arr, int *cap, int need, size_t sz) {
    if (need <= *cap) return 1;
    int c = *cap ? *cap : 16;
    while (c < need) c *= 2;
    void *p = realloc(*arr, (size_t)c * sz);
    if (!p) return 0;
    *arr = p;
    *cap = c;
    return 1;
}

static pk_obj *new_obj(pk_vm *vm, pk_kind kind) {
    if (vm->n_objs == vm->objs_cap) {
        size_t c = vm->objs_cap ? 2 * vm->objs_cap : 256;
        pk_obj **p = realloc(vm->objs, c * sizeof *p);
        if (!p) return NULL;
        vm->objs = p;
        vm->objs_cap = c;
    }
    pk_obj *o = calloc(1, sizeof *o);
    if (!o) return NULL;
    o->kind = kind;
    vm->objs[vm->n_objs++] = o;
    return o;
}

static void vm_free(pk_vm *vm) {
    for (size_t i = 0; i < vm->n_objs; i++) {
        free(vm->objs[i]->s);
        free(vm->objs[i]->items);
        free(vm->objs[i]->t);
        free(vm->objs[i]);
    }
    free(vm->objs);
    free(vm->stack);
    free(vm->memo);
}

// ---- reading the byte stream (every read is bounds-checked) ----

static rwkv_status need(pk_vm *vm, size_t k) {
    if (k > vm->n - vm->pos)
        return fail(vm, RWKV_ERR_FORMAT, "truncated: needs %zu more bytes, %zu left", k, vm->n - vm->pos);
    if (vm->pos < vm->frame_end && k > vm->frame_end - vm->pos) // Python refuses this too
        return fail(vm, RWKV_ERR_FORMAT, "an opcode runs across the end of its FRAME");
    return RWKV_OK;
}

static uint64_t le_uint(const unsigned char *b, int k) {
    uint64_t v = 0;
    for (int i = k - 1; i >= 0; i--) v = v << 8 | b[i];
    return v;
}

static rwkv_status read_uint(pk_vm *vm, int k, uint64_t *v) {
    rwkv_status st = need(vm, (size_t)k);
    if (st) return st;
    *v = le_uint(vm->buf + vm->pos, k);
    vm->pos += (size_t)k;
    return RWKV_OK;
}

// ---- the stack ----

static rwkv_status push(pk_vm *vm, pk_obj *o) {
    if (!o) return nomem(vm);
    if (vm->sp >= PK_MAX_STACK) return fail(vm, RWKV_ERR_FORMAT, "stack deeper than %d", PK_MAX_STACK);
    if (!grow((void **)&vm->stack, &vm->stack_cap, vm->sp + 1, sizeof *vm->stack)) return nomem(vm);
    vm->stack[vm->sp++] = o;
    return RWKV_OK;
}

// The lowest stack slot the current opcode may pop (the top MARK fences it).
static int fence(const pk_vm *vm) { return vm->n_marks ? vm->marks[vm->n_marks - 1] : 0; }

static rwkv_status pop(pk_vm *vm, pk_obj **o) {
    if (vm->sp <= fence(vm)) return fail(vm, RWKV_ERR_FORMAT, "stack underflow");
    *o = vm->stack[--vm->sp];
    return RWKV_OK;
}

static rwkv_status pop_kind(pk_vm *vm, pk_kind kind, pk_obj **o, const char *what) {
    rwkv_status st = pop(vm, o);
    if (st) return st;
    if ((*o)->kind != kind)
        return fail(vm, RWKV_ERR_FORMAT, "%s is a %s, expected a %s", what, KIND_NAMES[(*o)->kind],
                    KIND_NAMES[kind]);
    return RWKV_OK;
}

static rwkv_status top(pk_vm *vm, pk_obj **o) {
    if (vm->sp <= fence(vm)) return fail(vm, RWKV_ERR_FORMAT, "stack underflow");
    *o = vm->stack[vm->sp - 1];
    return RWKV_OK;
}

// Pops the top MARK; *from is the first stack slot above it.
static rwkv_status pop_mark(pk_vm *vm, int *from) {
    if (!vm->n_marks) return fail(vm, RWKV_ERR_FORMAT, "no MARK on the stack");
    *from = vm->marks[--vm->n_marks];
    return RWKV_OK;
}

// ---- objects ----

static rwkv_status append_item(pk_vm *vm, pk_obj *seq, pk_obj *item) {
    if (!grow((void **)&seq->items, &seq->cap, seq->n + 1, sizeof *seq->items)) return nomem(vm);
    seq->items[seq->n++] = item;
    return RWKV_OK;
}

// dict[key] = value; a repeated string key replaces the old value, as in Python.
static rwkv_status dict_set(pk_vm *vm, pk_obj *d, pk_obj *key, pk_obj *value) {
    if (d->kind != PK_DICT)
        return fail(vm, RWKV_ERR_FORMAT, "SETITEM on a %s, not a dict", KIND_NAMES[d->kind]);
    if (key->kind == PK_STR)
        for (int i = 0; i < d->n; i++)
            if (d->items[2 * i]->kind == PK_STR && strcmp(d->items[2 * i]->s, key->s) == 0) {
                d->items[2 * i + 1] = value;
                return RWKV_OK;
            }
    if (!grow((void **)&d->items, &d->cap, 2 * d->n + 2, sizeof *d->items)) return nomem(vm);
    d->items[2 * d->n] = key;
    d->items[2 * d->n + 1] = value;
    d->n++;
    return RWKV_OK;
}

// A tuple of the stack slots from..sp-1 (which are popped).
static rwkv_status make_tuple(pk_vm *vm, int from) {
    pk_obj *t = new_obj(vm, PK_TUPLE);
    if (!t) return nomem(vm);
    for (int i = from; i < vm->sp; i++)
        if (append_item(vm, t, vm->stack[i])) return RWKV_ERR_NOMEM;
    vm->sp = from;
    return push(vm, t);
}

// BINUNICODE strings are UTF-8 (Python refuses to unpickle anything else).
static int valid_utf8(const unsigned char *b, size_t len) {
    utf8proc_int32_t cp;
    for (size_t i = 0; i < len;) {
        utf8proc_ssize_t k = utf8proc_iterate(b + i, (utf8proc_ssize_t)(len - i), &cp);
        if (k <= 0) return 0;
        i += (size_t)k;
    }
    return 1;
}

static rwkv_status push_str(pk_vm *vm, size_t len) {
    rwkv_status st = need(vm, len);
    if (st) return st;
    if (len > PK_MAX_STR) return fail(vm, RWKV_ERR_FORMAT, "string of %zu bytes is too long", len);
    const unsigned char *b = vm->buf + vm->pos;
    if (memchr(b, 0, len)) return fail(vm, RWKV_ERR_FORMAT, "string contains a NUL byte");
    if (!valid_utf8(b, len)) return fail(vm, RWKV_ERR_FORMAT, "string is not valid UTF-8");
    pk_obj *o = new_obj(vm, PK_STR);
    if (!o || !(o->s = malloc(len + 1))) return nomem(vm);
    memcpy(o->s, b, len);
    o->s[len] = '\0';
    o->n = (int)len;
    vm->pos += len;
    return push(vm, o);
}

static rwkv_status push_int(pk_vm *vm, pk_kind kind, int64_t v) {
    pk_obj *o = new_obj(vm, kind);
    if (!o) return nomem(vm);
    o->i = v;
    return push(vm, o);
}

static rwkv_status push_global(pk_vm *vm, const char *module, const char *name) {
    for (size_t i = 0; i < sizeof GLOBALS / sizeof GLOBALS[0]; i++)
        if (!strcmp(GLOBALS[i].module, module) && !strcmp(GLOBALS[i].name, name))
            return push_int(vm, PK_GLOBAL, GLOBALS[i].id);
    return fail(vm, RWKV_ERR_UNSUPPORTED,
                "global %s.%s is not supported (only a dict of float32/float16/bfloat16 tensors is)",
                module, name);
}

// GLOBAL: "module\nname\n".
static rwkv_status op_global(pk_vm *vm) {
    char part[2][PK_MAX_GLOBAL];
    for (int k = 0; k < 2; k++) {
        size_t left = vm->n - vm->pos, max = left < PK_MAX_GLOBAL ? left : PK_MAX_GLOBAL;
        const unsigned char *nl = memchr(vm->buf + vm->pos, '\n', max);
        if (!nl) return fail(vm, RWKV_ERR_FORMAT, "GLOBAL name not terminated within %d bytes", PK_MAX_GLOBAL);
        size_t len = (size_t)(nl - (vm->buf + vm->pos));
        memcpy(part[k], vm->buf + vm->pos, len);
        part[k][len] = '\0';
        if (strlen(part[k]) != len) return fail(vm, RWKV_ERR_FORMAT, "GLOBAL name contains a NUL byte");
        vm->pos += len + 1;
    }
    return push_global(vm, part[0], part[1]);
}

static rwkv_status op_stack_global(pk_vm *vm) {
    pk_obj *name = NULL, *module = NULL;
    rwkv_status st;
    if ((st = pop_kind(vm, PK_STR, &name, "STACK_GLOBAL name"))) return st;
    if ((st = pop_kind(vm, PK_STR, &module, "STACK_GLOBAL module"))) return st;
    return push_global(vm, module->s, name->s);
}

static rwkv_status memo_put(pk_vm *vm, uint64_t idx) {
    // Python's pickler numbers memo entries in order; anything else is corruption.
    if (idx != (uint64_t)vm->n_memo)
        return fail(vm, RWKV_ERR_FORMAT, "memo index %llu out of order (expected %d)",
                    (unsigned long long)idx, vm->n_memo);
    if (vm->n_memo >= PK_MAX_MEMO) return fail(vm, RWKV_ERR_FORMAT, "more than %d memo entries", PK_MAX_MEMO);
    pk_obj *o = NULL;
    rwkv_status st = top(vm, &o);
    if (st) return st;
    if (!grow((void **)&vm->memo, &vm->memo_cap, vm->n_memo + 1, sizeof *vm->memo)) return nomem(vm);
    vm->memo[vm->n_memo++] = o;
    return RWKV_OK;
}

static rwkv_status memo_get(pk_vm *vm, uint64_t idx) {
    if (idx >= (uint64_t)vm->n_memo)
        return fail(vm, RWKV_ERR_FORMAT, "memo index %llu not defined", (unsigned long long)idx);
    return push(vm, vm->memo[idx]);
}

// ---- torch objects ----

static int valid_location(const char *s) {
    if (!strcmp(s, "cpu") || !strcmp(s, "mps") || !strcmp(s, "cuda")) return 1;
    if (strncmp(s, "cuda:", 5) || !s[5]) return 0;
    for (const char *p = s + 5; *p; p++)
        if (*p < '0' || *p > '9') return 0;
    return 1;
}

static int valid_key(const char *s) {
    size_t n = strlen(s);
    if (n == 0 || n >= RWKV_PICKLE_KEY_MAX) return 0;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'z') ||
              (s[i] >= 'A' && s[i] <= 'Z') || s[i] == '_'))
            return 0;
    return 1;
}

// BINPERSID: ('storage', StorageClass, key, location, numel) -> a storage reference.
static rwkv_status op_persid(pk_vm *vm) {
    pk_obj *pid = NULL;
    rwkv_status st = pop_kind(vm, PK_TUPLE, &pid, "persistent id");
    if (st) return st;
    pk_obj **a = pid->items;
    if (pid->n != 5 || a[0]->kind != PK_STR || strcmp(a[0]->s, "storage") || a[1]->kind != PK_GLOBAL ||
        a[2]->kind != PK_STR || a[3]->kind != PK_STR || a[4]->kind != PK_INT)
        return fail(vm, RWKV_ERR_FORMAT, "persistent id is not ('storage', type, key, location, numel)");
    rwkv_dtype dt;
    switch ((pk_global)a[1]->i) {
    case G_FLOAT_STORAGE: dt = RWKV_DT_F32; break;
    case G_HALF_STORAGE: dt = RWKV_DT_F16; break;
    case G_BF16_STORAGE: dt = RWKV_DT_BF16; break;
    default: return fail(vm, RWKV_ERR_FORMAT, "persistent id names a non-storage global");
    }
    if (!valid_key(a[2]->s)) return fail(vm, RWKV_ERR_FORMAT, "bad storage key '%.40s'", a[2]->s);
    if (!valid_location(a[3]->s))
        return fail(vm, RWKV_ERR_FORMAT, "storage %s: unknown location '%.40s'", a[2]->s, a[3]->s);
    if (a[4]->i < 0) return fail(vm, RWKV_ERR_FORMAT, "storage %s: negative size", a[2]->s);
    pk_obj *o = new_obj(vm, PK_STORAGE);
    if (!o || !(o->t = calloc(1, sizeof *o->t))) return nomem(vm);
    o->t->dtype = dt;
    strcpy(o->t->storage, a[2]->s);
    o->t->storage_numel = a[4]->i;
    return push(vm, o);
}

// Copies a tuple of ints (a shape or strides) into dst; returns its length or -1.
static int int_tuple(const pk_obj *t, int64_t *dst) {
    if (t->kind != PK_TUPLE || t->n > RWKV_TENSOR_MAX_DIMS) return -1;
    for (int i = 0; i < t->n; i++) {
        if (t->items[i]->kind != PK_INT || t->items[i]->i < 0) return -1;
        dst[i] = t->items[i]->i;
    }
    return t->n;
}

// _rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks[, metadata]).
static rwkv_status rebuild_tensor(pk_vm *vm, const pk_obj *args) {
    pk_obj **a = args->items;
    if (args->n != 6 && args->n != 7)
        return fail(vm, RWKV_ERR_FORMAT, "_rebuild_tensor_v2 takes 6 or 7 arguments, got %d", args->n);
    if (a[0]->kind != PK_STORAGE || a[1]->kind != PK_INT || a[1]->i < 0 || a[4]->kind != PK_BOOL ||
        a[5]->kind != PK_DICT || (args->n == 7 && a[6]->kind != PK_NONE && a[6]->kind != PK_DICT))
        return fail(vm, RWKV_ERR_FORMAT, "_rebuild_tensor_v2 arguments have the wrong types");
    pk_obj *o = new_obj(vm, PK_TENSOR);
    if (!o || !(o->t = calloc(1, sizeof *o->t))) return nomem(vm);
    *o->t = *a[0]->t;
    o->t->offset = a[1]->i;
    int nd = int_tuple(a[2], o->t->shape), ns = int_tuple(a[3], o->t->stride);
    if (nd < 0 || ns != nd)
        return fail(vm, RWKV_ERR_FORMAT, "tensor size/stride are not matching tuples of at most %d "
                    "non-negative ints", RWKV_TENSOR_MAX_DIMS);
    o->t->ndim = nd;
    return push(vm, o);
}

static rwkv_status op_reduce(pk_vm *vm) {
    pk_obj *args = NULL, *fn = NULL;
    rwkv_status st;
    if ((st = pop_kind(vm, PK_TUPLE, &args, "REDUCE arguments"))) return st;
    if ((st = pop_kind(vm, PK_GLOBAL, &fn, "REDUCE callable"))) return st;
    if (fn->i == G_REBUILD_V2) return rebuild_tensor(vm, args);
    if (fn->i == G_ORDERED_DICT) {
        if (args->n) return fail(vm, RWKV_ERR_FORMAT, "OrderedDict called with %d arguments", args->n);
        return push(vm, new_obj(vm, PK_DICT));
    }
    return fail(vm, RWKV_ERR_FORMAT, "REDUCE on a storage class");
}

// BUILD sets an object's state; torch.save only emits it for OrderedDict._metadata.
static rwkv_status op_build(pk_vm *vm) {
    pk_obj *state = NULL, *obj = NULL;
    rwkv_status st;
    if ((st = pop(vm, &state)) || (st = top(vm, &obj))) return st;
    if (obj->kind != PK_DICT) return fail(vm, RWKV_ERR_FORMAT, "BUILD on a %s", KIND_NAMES[obj->kind]);
    return RWKV_OK;
}

static rwkv_status op_setitems(pk_vm *vm) {
    int from = 0;
    rwkv_status st = pop_mark(vm, &from);
    if (st) return st;
    if ((vm->sp - from) % 2) return fail(vm, RWKV_ERR_FORMAT, "SETITEMS with an odd number of items");
    if (from <= fence(vm)) return fail(vm, RWKV_ERR_FORMAT, "SETITEMS without a dict");
    pk_obj *d = vm->stack[from - 1];
    for (int i = from; i < vm->sp && !st; i += 2) st = dict_set(vm, d, vm->stack[i], vm->stack[i + 1]);
    vm->sp = from;
    return st;
}

static rwkv_status op_appends(pk_vm *vm) {
    int from = 0;
    rwkv_status st = pop_mark(vm, &from);
    if (st) return st;
    if (from <= fence(vm) || vm->stack[from - 1]->kind != PK_LIST)
        return fail(vm, RWKV_ERR_FORMAT, "APPENDS without a list");
    pk_obj *l = vm->stack[from - 1];
    for (int i = from; i < vm->sp && !st; i++) st = append_item(vm, l, vm->stack[i]);
    vm->sp = from;
    return st;
}

// ---- the interpreter ----

// Runs one opcode. *done is set at STOP.
static rwkv_status step(pk_vm *vm, int *done) {
    uint64_t u;
    rwkv_status st;
    pk_obj *a = NULL, *b = NULL, *c = NULL;
    int from = 0;
    vm->op_pos = vm->pos;
    vm->op = -1;
    if (vm->pos >= vm->n) return fail(vm, RWKV_ERR_FORMAT, "the pickle ends without STOP (truncated)");
    if ((st = read_uint(vm, 1, &u))) return st;
    vm->op = (int)u;
    switch (vm->op) {
    case 0x80: // PROTO
        if ((st = read_uint(vm, 1, &u))) return st;
        if (u > PK_MAX_PROTO) return fail(vm, RWKV_ERR_UNSUPPORTED, "pickle protocol %llu", (unsigned long long)u);
        return RWKV_OK;
    case 0x95: // FRAME: the next u bytes hold whole opcodes
        if (vm->op_pos < vm->frame_end) return fail(vm, RWKV_ERR_FORMAT, "FRAME inside a FRAME");
        if ((st = read_uint(vm, 8, &u))) return st;
        if (u > vm->n - vm->pos) return fail(vm, RWKV_ERR_FORMAT, "FRAME of %llu bytes overruns the data", (unsigned long long)u);
        vm->frame_end = vm->pos + (size_t)u;
        return RWKV_OK;
    case '.': *done = 1; return RWKV_OK; // STOP
    case '(': // MARK
        if (vm->n_marks >= PK_MAX_MARKS) return fail(vm, RWKV_ERR_FORMAT, "MARKs nested deeper than %d", PK_MAX_MARKS);
        vm->marks[vm->n_marks++] = vm->sp;
        return RWKV_OK;
    case '}': return push(vm, new_obj(vm, PK_DICT));  // EMPTY_DICT
    case ']': return push(vm, new_obj(vm, PK_LIST));  // EMPTY_LIST
    case ')': return push(vm, new_obj(vm, PK_TUPLE)); // EMPTY_TUPLE
    case 'N': return push(vm, new_obj(vm, PK_NONE));  // NONE
    case 0x88: return push_int(vm, PK_BOOL, 1);       // NEWTRUE
    case 0x89: return push_int(vm, PK_BOOL, 0);       // NEWFALSE
    case 'X': // BINUNICODE
        if ((st = read_uint(vm, 4, &u))) return st;
        return push_str(vm, (size_t)u);
    case 0x8c: // SHORT_BINUNICODE
        if ((st = read_uint(vm, 1, &u))) return st;
        return push_str(vm, (size_t)u);
    case 'q': // BINPUT
        if ((st = read_uint(vm, 1, &u))) return st;
        return memo_put(vm, u);
    case 'r': // LONG_BINPUT
        if ((st = read_uint(vm, 4, &u))) return st;
        return memo_put(vm, u);
    case 0x94: return memo_put(vm, (uint64_t)vm->n_memo); // MEMOIZE
    case 'h': // BINGET
        if ((st = read_uint(vm, 1, &u))) return st;
        return memo_get(vm, u);
    case 'j': // LONG_BINGET
        if ((st = read_uint(vm, 4, &u))) return st;
        return memo_get(vm, u);
    case 'c': return op_global(vm);        // GLOBAL
    case 0x93: return op_stack_global(vm); // STACK_GLOBAL
    case 'J': // BININT: signed 32-bit
        if ((st = read_uint(vm, 4, &u))) return st;
        return push_int(vm, PK_INT, (int32_t)(uint32_t)u);
    case 'K': // BININT1
        if ((st = read_uint(vm, 1, &u))) return st;
        return push_int(vm, PK_INT, (int64_t)u);
    case 'M': // BININT2
        if ((st = read_uint(vm, 2, &u))) return st;
        return push_int(vm, PK_INT, (int64_t)u);
    case 0x8a: { // LONG1: n-byte little-endian two's complement
        if ((st = read_uint(vm, 1, &u))) return st;
        int k = (int)u;
        if (k > 8) return fail(vm, RWKV_ERR_UNSUPPORTED, "integer of %d bytes", k);
        if ((st = read_uint(vm, k, &u))) return st;
        if (k > 0 && k < 8 && (u >> (8 * k - 1)) & 1) u |= ~(uint64_t)0 << (8 * k); // sign-extend
        return push_int(vm, PK_INT, (int64_t)u);
    }
    case 't': // TUPLE
        if ((st = pop_mark(vm, &from))) return st;
        return make_tuple(vm, from);
    case 0x85: case 0x86: case 0x87: // TUPLE1..3
        from = vm->sp - (vm->op - 0x84);
        if (from < fence(vm)) return fail(vm, RWKV_ERR_FORMAT, "stack underflow");
        return make_tuple(vm, from);
    case 'Q': return op_persid(vm);   // BINPERSID
    case 'R': return op_reduce(vm);   // REDUCE
    case 'b': return op_build(vm);    // BUILD
    case 'u': return op_setitems(vm); // SETITEMS
    case 's': // SETITEM
        if ((st = pop(vm, &b)) || (st = pop(vm, &a)) || (st = top(vm, &c))) return st;
        return dict_set(vm, c, a, b);
    case 'e': return op_appends(vm); // APPENDS
    case 'a': // APPEND
        if ((st = pop(vm, &a)) || (st = top(vm, &c))) return st;
        if (c->kind != PK_LIST) return fail(vm, RWKV_ERR_FORMAT, "APPEND to a %s", KIND_NAMES[c->kind]);
        return append_item(vm, c, a);
    }
    return fail(vm, RWKV_ERR_UNSUPPORTED, "opcode 0x%02x ('%c') is not one torch.save emits for a "
                "state dict", vm->op, vm->op >= 32 && vm->op < 127 ? vm->op : '?');
}

// Turns the final dict into the output array.
static rwkv_status collect(pk_vm *vm, const pk_obj *d, rwkv_pickle_tensor **out, int *n_out) {
    if (d->kind != PK_DICT)
        return fail(vm, RWKV_ERR_FORMAT, "the pickle holds a %s, not a state dict", KIND_NAMES[d->kind]);
    rwkv_pickle_tensor *ts = calloc(d->n ? (size_t)d->n : 1, sizeof *ts);
    if (!ts) return nomem(vm);
    for (int i = 0; i < d->n; i++) {
        const pk_obj *k = d->items[2 * i], *v = d->items[2 * i + 1];
        rwkv_status st = RWKV_OK;
        if (k->kind != PK_STR) st = fail(vm, RWKV_ERR_FORMAT, "state-dict key %d is a %s, not a str", i, KIND_NAMES[k->kind]);
        else if ((size_t)k->n >= sizeof ts->name) st = fail(vm, RWKV_ERR_FORMAT, "state-dict key '%.60s...' is too long", k->s);
        else if (v->kind != PK_TENSOR) st = fail(vm, RWKV_ERR_UNSUPPORTED, "state-dict entry '%s' is a %s, not a tensor", k->s, KIND_NAMES[v->kind]);
        if (st) {
            free(ts);
            return st;
        }
        ts[i] = *v->t;
        strcpy(ts[i].name, k->s);
    }
    *out = ts;
    *n_out = d->n;
    return RWKV_OK;
}

rwkv_status rwkv_pickle_read_state_dict(const unsigned char *buf, size_t n, const char *where,
                                        rwkv_pickle_tensor **out, int *n_out) {
    *out = NULL;
    *n_out = 0;
    pk_vm vm = {.buf = buf, .n = n, .where = where};
    rwkv_status st = RWKV_OK;
    int done = 0;
    while (!done && !st) st = step(&vm, &done);
    if (!st && (vm.sp != 1 || vm.n_marks))
        st = fail(&vm, RWKV_ERR_FORMAT, "STOP with %d objects and %d marks on the stack, expected one dict",
                  vm.sp, vm.n_marks);
    if (!st && vm.pos != n) st = fail(&vm, RWKV_ERR_FORMAT, "%zu bytes after STOP", n - vm.pos);
    if (!st) st = collect(&vm, vm.stack[0], out, n_out);
    vm_free(&vm);
    return st;
}
