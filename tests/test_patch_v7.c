// test_patch_v7.c: patching sweeps and steering on RWKV-7, RWKV-5.2 and RWKV-6 (the random
// fixtures rand7-a, 2 layers of 2 heads of 16, rand5-a and rand6-a, 2 layers of 4 heads). Properties of an RNN checked exactly:
// a run patched into itself is the run; the whole state of run A at position p patched into
// run B continues as A where the inputs after p agree; a head's patch in the sweep is the
// --intervene spec of that head read from a dump of A; prefix reuse gives the naive reruns'
// numbers. Bad tap and head names are clear errors.
#include "analyses/patching.h"
#include "analyses/steer.h"
#include "core/inspect/intervene.h"
#include "core/inspect/record.h"
#include "util.h"

#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define T_SEQ 14
static const char *const MODELS[3] = {"rand7-a.pth", "rand5-a.pth", "rand6-a.pth"};

static rwkv_model *load(const char *name) {
    rwkv_model *m;
    rwkv_status st = rwkv_model_load(&m, test_fixture(name));
    ck_assert_msg(st == RWKV_OK, "%s", rwkv_error_message());
    ck_assert(RWKV_HAS_HEADS(m->cfg) && m->cfg.n_layer == 2 && m->cfg.n_embd / m->cfg.head_size >= 2);
    return m;
}

// Tokens A, and B = A with other tokens at the positions of diff (NULL-free, -1 ends).
static void tokens(const rwkv_model *m, int *a, int *b, const int *diff) {
    int *t = test_random_tokens(T_SEQ, m->cfg.n_vocab, 5);
    memcpy(a, t, T_SEQ * sizeof *a);
    memcpy(b, t, T_SEQ * sizeof *b);
    for (int i = 0; diff[i] >= 0; i++) b[diff[i]] = (a[diff[i]] + 1 + i) % m->cfg.n_vocab;
    free(t);
}

// The state taps and the per-head units, plus a computed tap.
static rwkv_patch_opts opts(const rwkv_model *m, int seq, int naive, int64_t every) {
    rwkv_patch_opts o = {.seq = seq, .naive = naive, .checkpoint_every = every};
    rwkv_status st = rwkv_patch_select_taps(&o, m->cfg, "state_*,state_wkv:*,att_out");
    ck_assert_msg(st == RWKV_OK, "%s", rwkv_error_message());
    ck_assert_int_eq(rwkv_patch_metric_parse(&o.metric, "logit-diff:3,7", m->cfg.n_vocab), RWKV_OK);
    return o;
}

static rwkv_patch_result *sweep(const rwkv_model *m, const int *a, const int *b, const rwkv_patch_opts *o) {
    rwkv_patch_result *r;
    rwkv_status st = rwkv_patch_sweep(&r, m, a, b, T_SEQ, o);
    ck_assert_msg(st == RWKV_OK, "%s", rwkv_error_message());
    return r;
}

// Last-position logits of a plain run (V), and the metric of opts() on them.
static double plain_metric(const rwkv_model *m, const int *tok, int seq) {
    rwkv_state *s;
    rwkv_workspace *ws;
    rwkv_state_alloc(&s, m->cfg);
    rwkv_workspace_alloc(&ws, m->cfg, 64);
    rwkv_real *lg = calloc((size_t)m->cfg.n_vocab, sizeof *lg);
    ck_assert_int_eq((seq ? rwkv_forward_seq : rwkv_forward_par)(m, s, tok, T_SEQ, lg, RWKV_LOGITS_LAST, NULL, ws), RWKV_OK);
    double v = (double)lg[3] - (double)lg[7];
    free(lg);
    rwkv_workspace_free(ws);
    rwkv_state_free(s);
    return v;
}

static int heads(const rwkv_model *m) { return m->cfg.n_embd / m->cfg.head_size; }

// The units: state_att_xprev, state_ffn_xprev, state_wkv, state_wkv:0 .. state_wkv:H-1, att_out.
START_TEST(test_units) {
    rwkv_model *m = load(MODELS[_i]);
    const int H = heads(m);
    rwkv_patch_opts o = opts(m, 1, 0, 0);
    ck_assert_int_eq(o.n_taps, 4 + H);
    rwkv_patch_result r = {.n_taps = o.n_taps};
    memcpy(r.taps, o.taps, sizeof r.taps);
    memcpy(r.head, o.head, sizeof r.head);
    for (int k = 0; k < 4 + H; k++) {
        char name[64], want[64];
        if (k < 3) snprintf(want, sizeof want, "%s", (const char *[]){"state_att_xprev", "state_ffn_xprev", "state_wkv"}[k]);
        else if (k < 3 + H) snprintf(want, sizeof want, "state_wkv:%d", k - 3);
        else snprintf(want, sizeof want, "att_out");
        rwkv_patch_unit_name(&r, k, name, sizeof name);
        ck_assert_str_eq(name, want);
    }
    rwkv_model_free(m);
}
END_TEST

// A run patched into itself, every cell rerun from position 0 (--naive): every metric is the
// unpatched run's, bit for bit, in both modes; the plain run's metric too (sequential: the
// same token-by-token arithmetic).
START_TEST(test_self_patch_identity) {
    rwkv_model *m = load(MODELS[_i]);
    int a[T_SEQ], b[T_SEQ];
    tokens(m, a, b, (int[]){-1});
    for (int seq = 0; seq <= 1; seq++) {
        rwkv_patch_opts o = opts(m, seq, 1, 0);
        rwkv_patch_result *r = sweep(m, a, a, &o);
        ck_assert(r->m_clean == r->m_corrupt);
        ck_assert_int_eq(r->first_diff, T_SEQ);
        if (seq) ck_assert(r->m_corrupt == plain_metric(m, a, seq));
        else ck_assert(fabs(r->m_corrupt - plain_metric(m, a, seq)) <= 1e-5 * fmax(1, fabs(r->m_corrupt)));
        size_t cells = (size_t)o.n_taps * m->cfg.n_layer * T_SEQ;
        for (size_t c = 0; c < cells; c++)
            ck_assert_msg(r->metric[c] == r->m_corrupt, "mode %d cell %zu: %.17g vs %.17g", seq, c, r->metric[c],
                          r->m_corrupt);
        ck_assert_int_eq(r->tokens_rerun, (int64_t)cells * T_SEQ);
        rwkv_patch_result_free(r);
    }
    rwkv_model_free(m);
}
END_TEST

// Runs B through a list of specs bound to in-memory sources; logits (T, V).
static rwkv_real *run_list(const rwkv_model *m, const int *tok, rwkv_intervene_list *l, int seq) {
    rwkv_state *s;
    rwkv_workspace *ws;
    rwkv_state_alloc(&s, m->cfg);
    rwkv_workspace_alloc(&ws, m->cfg, 64);
    rwkv_real *lg = calloc((size_t)T_SEQ * m->cfg.n_vocab, sizeof *lg);
    rwkv_status st = rwkv_intervene_forward(m, s, tok, T_SEQ, 0, lg, RWKV_LOGITS_ALL, l, ws, seq);
    ck_assert_msg(st == RWKV_OK, "%s", rwkv_error_message());
    rwkv_workspace_free(ws);
    rwkv_state_free(s);
    return lg;
}

// A and B differ at positions 2 and 5 only. Patching A's whole state (every state tap of
// every layer) at p = 7 into B: from position 8 on, B's logits are A's exactly; up to 7 they
// are B's. Patching at p = 4 (before the last difference) is not enough.
START_TEST(test_full_state_patch) {
    rwkv_model *m = load(MODELS[_i]);
    const int L = m->cfg.n_layer, V = m->cfg.n_vocab;
    int a[T_SEQ], b[T_SEQ];
    tokens(m, a, b, (int[]){2, 5, -1});
    uint32_t mask[3] = {0};
    for (int l = 0; l < L; l++)
        for (int t = 0; t < RWKV_TAP_N_BLOCK; t++)
            if (rwkv_tap_is_state((rwkv_tap)t) && rwkv_tap_width((rwkv_tap)t, m->cfg)) mask[l] |= 1u << t;
    for (int seq = 0; seq <= 1; seq++) {
        rwkv_record *rec;
        ck_assert_int_eq(rwkv_record_alloc(&rec, m->cfg, T_SEQ, mask), RWKV_OK);
        rwkv_intervene_list *none;
        rwkv_intervene_list_alloc(&none, m->cfg);
        rwkv_intervene_list_chain(none, &rec->hook);
        rwkv_real *la = run_list(m, a, none, seq);
        rwkv_intervene_list_free(none);
        rwkv_real *lb = run_list(m, b, NULL, seq);
        for (int p = 4; p <= 7; p += 3) {
            rwkv_intervene_list *l;
            rwkv_intervene_list_alloc(&l, m->cfg);
            int n = 0;
            for (int layer = 0; layer < L; layer++)
                for (int t = 0; t < RWKV_TAP_N_BLOCK; t++) {
                    if (!(mask[layer] >> t & 1u)) continue;
                    char spec[96];
                    snprintf(spec, sizeof spec, "blocks.%d.%s@%d=patch:memory", layer, RWKV_TAP_NAMES[t], p);
                    rwkv_intervention iv;
                    ck_assert_int_eq(rwkv_intervene_parse(&iv, spec), RWKV_OK);
                    ck_assert_msg(!rwkv_intervene_bind_src(&iv, m->cfg, T_SEQ, rwkv_record_rows(rec, layer, (rwkv_tap)t)),
                                  "%s", rwkv_error_message());
                    ck_assert_int_eq(rwkv_intervene_list_add(l, &iv), RWKV_OK);
                    n++;
                }
            ck_assert_int_eq(n, 3 * L); // state_att_xprev, state_ffn_xprev, state_wkv
            rwkv_real *lp = run_list(m, b, l, seq);
            size_t head = (size_t)(p + 1) * V, all = (size_t)T_SEQ * V;
            ck_assert(!memcmp(lp, lb, head * sizeof *lp)); // up to p: B's run
            if (p == 7) ck_assert_msg(!memcmp(lp + head, la + head, (all - head) * sizeof *lp), "mode %d", seq);
            else ck_assert(memcmp(lp + head, la + head, (all - head) * sizeof *lp)); // position 5 still differs
            free(lp);
            rwkv_intervene_list_free(l);
        }
        ck_assert(memcmp(la + (size_t)8 * V, lb + (size_t)8 * V, (size_t)V * sizeof *la)); // the runs do differ
        free(la);
        free(lb);
        rwkv_record_free(rec);
    }
    rwkv_model_free(m);
}
END_TEST

// Prefix reuse (checkpoints every position, or every 4) gives the naive reruns' metrics:
// exactly in sequential mode, within float32 rounding in parallel mode (other GEMM shapes);
// cells before the first difference are the corrupt run; patching the whole matrix state of
// the last layer at the last position recovers the clean answer there only where nothing
// else differs (the token-shift states carry the last token too, so not fully).
START_TEST(test_reuse_equals_naive) {
    rwkv_model *m = load(MODELS[_i]);
    int a[T_SEQ], b[T_SEQ];
    tokens(m, a, b, (int[]){6, -1});
    for (int seq = 0; seq <= 1; seq++) {
        rwkv_patch_opts o = opts(m, seq, 0, 0), on = opts(m, seq, 1, 0), os = opts(m, seq, 0, 4);
        rwkv_patch_result *r = sweep(m, a, b, &o), *naive = sweep(m, a, b, &on), *strided = sweep(m, a, b, &os);
        ck_assert_int_eq(r->first_diff, 6);
        ck_assert_double_gt(fabs(r->m_clean - r->m_corrupt), 1e-4);
        size_t cells = (size_t)o.n_taps * m->cfg.n_layer * T_SEQ;
        for (size_t c = 0; c < cells; c++) {
            double tol = seq ? 0 : 1e-4 * fmax(1, fabs(naive->metric[c]));
            ck_assert_msg(fabs(r->metric[c] - naive->metric[c]) <= tol, "mode %d cell %zu: reuse %.9g naive %.9g", seq, c,
                          r->metric[c], naive->metric[c]);
            ck_assert_msg(fabs(strided->metric[c] - r->metric[c]) <= tol, "mode %d cell %zu: stride 4", seq, c);
            if ((int64_t)(c % T_SEQ) < 6) ck_assert(r->recovery[c] == 0);
        }
        ck_assert_int_lt(r->tokens_rerun, strided->tokens_rerun);
        ck_assert_int_lt(strided->tokens_rerun, naive->tokens_rerun);
        rwkv_patch_result_free(r);
        rwkv_patch_result_free(naive);
        rwkv_patch_result_free(strided);
    }
    rwkv_model_free(m);
}
END_TEST

// Unit k's metric at (layer, p) in the sweep equals the --intervene spec on B with A's rows
// read back from a dump written by `rwkvscope dump` (sequential: exactly).
static void check_against_spec(const rwkv_model *m, const rwkv_patch_result *r, int k, int layer, int p, const int *b,
                               const char *dump, int seq) {
    char spec[1200], head[16] = "";
    if (r->head[k]) snprintf(head, sizeof head, ":%d", r->head[k] - 1);
    snprintf(spec, sizeof spec, "blocks.%d.%s%s@%d=patch:%s", layer, RWKV_TAP_NAMES[r->taps[k]], head, p, dump);
    rwkv_intervene_list *l;
    const char *specs[1] = {spec};
    ck_assert_msg(!rwkv_intervene_list_from_specs(&l, m->cfg, T_SEQ, specs, 1), "%s", rwkv_error_message());
    rwkv_real *lg = run_list(m, b, l, seq);
    const rwkv_real *last = lg + (size_t)(T_SEQ - 1) * m->cfg.n_vocab;
    double want = (double)last[3] - (double)last[7], got = r->metric[rwkv_patch_cell(r, k, layer, p)];
    ck_assert_msg(fabs(got - want) <= (seq ? 0 : 1e-4 * fmax(1, fabs(want))), "%s (mode %d): sweep %.9g, spec %.9g", spec,
                  seq, got, want);
    free(lg);
    rwkv_intervene_list_free(l);
}

START_TEST(test_head_patch_equals_spec) {
    rwkv_model *m = load(MODELS[_i]);
    int a[T_SEQ], b[T_SEQ];
    tokens(m, a, b, (int[]){3, 9, -1});
    const int H = heads(m);
    char ids[256] = "", dump[1024], *out;
    for (int t = 0, k = 0; t < T_SEQ; t++) k += snprintf(ids + k, sizeof ids - k, "%s%d", t ? "," : "", a[t]);
    for (int seq = 0; seq <= 1; seq++) {
        snprintf(dump, sizeof dump, "%s/a_%d_%d.h5", test_tmpdir(), _i, seq); // A in the sweep's mode
        int rc = test_cli(&out, "dump %s --tokens %s --taps 'blocks.*.state_wkv,blocks.1.att_out' --mode %s -o %s --force",
                          test_fixture(MODELS[_i]), ids, seq ? "seq" : "par", dump);
        ck_assert_msg(rc == 0, "%s", out);
        free(out);
        rwkv_patch_opts o = opts(m, seq, 0, 0);
        rwkv_patch_result *r = sweep(m, a, b, &o);
        int differ = 0;
        for (int layer = 0; layer < 2; layer++)
            for (int p = 3; p < T_SEQ; p += 2)
                for (int k = 2; k <= 2 + H; k++) { // state_wkv, then each head
                    check_against_spec(m, r, k, layer, p, b, dump, seq);
                    differ += r->metric[rwkv_patch_cell(r, k, layer, p)] != r->m_corrupt;
                }
        check_against_spec(m, r, 3 + H, 1, 10, b, dump, seq); // att_out
        ck_assert_int_gt(differ, 0);
        // The heads' recoveries differ from each other and from the whole state's.
        size_t whole = rwkv_patch_cell(r, 2, 0, 9), h0 = rwkv_patch_cell(r, 3, 0, 9), h1 = rwkv_patch_cell(r, 4, 0, 9);
        ck_assert(r->metric[h0] != r->metric[h1] && r->metric[h0] != r->metric[whole]);
        rwkv_patch_result_free(r);
    }
    rwkv_model_free(m);
}
END_TEST

// Tap and head names: another version's tap, an unknown tap, a head out of range, a head
// list on a tap without heads; each message says what there is.
START_TEST(test_bad_taps) {
    rwkv_model *m = load(MODELS[0]), *m4 = NULL;
    ck_assert_int_eq(rwkv_model_load(&m4, test_fixture("rand-L2-C32-V50.pth")), RWKV_OK);
    static const struct {
        int v4;
        const char *taps, *msg;
    } bad[] = {
        {0, "state_wkv:2", "--taps: 'state_wkv:2': head 2 in '2': out of range, there are 2 heads"},
        {0, "state_wkv:0-5", "out of range, there are 2 heads"},
        {0, "att_gate", "--taps: 'att_gate' matches no block tap of this RWKV-7 model (att_gate is a tap of another "
                        "RWKV version; this model has: resid_in, att_in, att_r, att_k, att_v, att_wkv, att_out, ffn_in, "
                        "ffn_k, ffn_out, state_att_xprev, state_ffn_xprev, att_w, att_a, att_g, att_kk, v_first, state_wkv)"},
        {0, "state_num", "'state_num' matches no block tap of this RWKV-7 model (state_num is a tap of another"},
        {0, "nope", "--taps: 'nope' matches no block tap (this RWKV-7 model has: resid_in,"},
        {0, "att_out:1", "--taps: 'att_out:1': only state_wkv takes a head list (state_wkv:HEADS)"},
        {0, "state_wkv:x", "--taps: 'state_wkv:x': head 'x' in 'x'"},
        {1, "att_w", "'att_w' matches no block tap of this RWKV-4 model (att_w is a tap of another RWKV version"},
        {1, "state_wkv:0", "--taps: 'state_wkv:0': an RWKV-4 model has no state_wkv (its block taps: resid_in,"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        rwkv_patch_opts o = {0};
        ck_assert_int_eq(rwkv_patch_select_taps(&o, (bad[i].v4 ? m4 : m)->cfg, bad[i].taps), RWKV_ERR_ARG);
        ck_assert_msg(strstr(rwkv_error_message(), bad[i].msg), "%s: '%s'", bad[i].taps, rwkv_error_message());
    }
    // A sweep given a unit by hand that the model lacks.
    rwkv_patch_opts o = {.n_taps = 1, .taps = {RWKV_TAP_STATE_WKV}, .head = {3}};
    rwkv_patch_metric_parse(&o.metric, "logit:1", m->cfg.n_vocab);
    int a[T_SEQ] = {0}, b[T_SEQ] = {1};
    rwkv_patch_result *r = NULL;
    ck_assert_int_eq(rwkv_patch_sweep(&r, m, a, b, T_SEQ, &o), RWKV_ERR_ARG);
    ck_assert_str_eq(rwkv_error_message(), "patching: head 2 of state_wkv: only state_wkv has heads, 2 of them");
    o.taps[0] = RWKV_TAP_ATT_GATE, o.head[0] = 0;
    ck_assert_int_eq(rwkv_patch_sweep(&r, m, a, b, T_SEQ, &o), RWKV_ERR_ARG);
    ck_assert_str_eq(rwkv_error_message(), "patching: tap 3 is not a block tap of this RWKV-7 model");
    ck_assert_ptr_null(r);
    rwkv_model_free(m4);
    rwkv_model_free(m);
}
END_TEST

// `patch` on RWKV-7: whole-layer and per-head rows in the CSV (tap state_wkv:H), a heatmap
// per unit, and the errors of bad specs with exit status 1.
START_TEST(test_cli_patch_v7) {
    char *out, csv[1024];
    snprintf(csv, sizeof csv, "%s/v7patch.csv", test_tmpdir());
    const char *model = test_fixture(MODELS[0]);
    int rc = test_cli(&out, "patch %s --clean-tokens 1,2,3,4,5,6 --corrupt-tokens 1,2,9,4,5,6 --taps 'resid_in,state_wkv,"
                      "state_wkv:*' --metric logit-diff:3,7 --no-plot --force -o %s", model, csv);
    ck_assert_msg(rc == 0, "%s", out);
    free(out);
    char *text = test_read_text(csv);
    ck_assert_ptr_nonnull(text);
    ck_assert(!strncmp(text, "tap,layer,position,clean_token,corrupt_token,metric,recovery\n", 61));
    int rows = 0;
    for (char *p = text; (p = strchr(p, '\n')); p++) rows++;
    ck_assert_int_eq(rows, 1 + 4 * 2 * 6); // resid_in, state_wkv, two heads; 2 layers; 6 positions
    ck_assert_ptr_nonnull(strstr(text, "\nstate_wkv:1,1,5,6,6,"));
    ck_assert_ptr_nonnull(strstr(text, "\nresid_in,0,2,3,9,"));
    char *line = strstr(text, "\nresid_in,0,2,3,9,");
    ck_assert_ptr_nonnull(strstr(line, ",1\n")); // the differing embedding patched: recovery 1
    free(text);
    // With heatmaps: one per tap, and the heads in one, a row per (layer, head) labelled layer.head.
    rc = test_cli(&out, "patch %s --clean-tokens 1,2,3,4,5,6 --corrupt-tokens 1,2,9,4,5,6 --taps 'state_wkv,state_wkv:1,"
                  "state_wkv:0' --metric logit-diff:3,7 --force -o %s", model, csv);
    ck_assert_msg(rc == 0, "%s", out);
    ck_assert_ptr_nonnull(strstr(out, "v7patch_state_wkv.png"));
    ck_assert_ptr_nonnull(strstr(out, "v7patch_state_wkv_heads.png"));
    ck_assert_ptr_null(strstr(out, "v7patch_state_wkv_h0"));
    free(out);
    char data[1100];
    snprintf(data, sizeof data, "%s/v7patch_state_wkv_heads.csv", test_tmpdir());
    text = test_read_text(data);
    ck_assert_ptr_nonnull(text);
    int cells = 0;
    for (char *p = text; (p = strchr(p, '\n')); p++) cells += p[1] >= '0' && p[1] <= '9';
    ck_assert_int_eq(cells, 2 * 2 * 6); // (layer, head) rows x positions
    ck_assert_ptr_nonnull(strstr(text, "\n5,3,5,3,")); // the last row, the last position
    free(text);
    snprintf(data, sizeof data, "%s/v7patch_state_wkv_heads.gp", test_tmpdir());
    text = test_read_text(data);
    ck_assert_ptr_nonnull(text);
    ck_assert_ptr_nonnull(strstr(text, "set ytics ('0.0' 0, '0.1' 1, '1.0' 2, '1.1' 3)"));
    free(text);
    const char *bad[][2] = {
        {"state_wkv:7", "head 7 in '7': out of range, there are 2 heads"},
        {"att_gate", "'att_gate' matches no block tap of this RWKV-7 model"},
        {"state_den", "'state_den' matches no block tap of this RWKV-7 model"},
    };
    for (int i = 0; i < 3; i++) {
        rc = test_cli(&out, "patch %s --clean-tokens 1,2,3 --corrupt-tokens 1,2,4 --taps '%s' --metric logit:1 --no-plot",
                      model, bad[i][0]);
        ck_assert_int_eq(rc, 1);
        ck_assert_msg(strstr(out, bad[i][1]), "%s", out);
        free(out);
    }
}
END_TEST

// Steering on RWKV-7: the vector is mean(pos) - mean(neg) of the tap at the last position,
// at the residual stream and at the matrix state; multiplier 0 is the unsteered run bit for
// bit; an RWKV-4 tap is refused.
START_TEST(test_steer_v7) {
    rwkv_model *m = load(MODELS[_i]);
    const int V = m->cfg.n_vocab;
    int *p1 = test_random_tokens(T_SEQ, V, 1), *p2 = test_random_tokens(T_SEQ, V, 2), *n1 = test_random_tokens(T_SEQ - 4, V, 3);
    const int *pos[2] = {p1, p2}, *neg[1] = {n1};
    const int64_t pl[2] = {T_SEQ, T_SEQ}, nl[1] = {T_SEQ - 4};
    rwkv_tap taps[2] = {RWKV_TAP_RESID_IN, RWKV_TAP_STATE_WKV};
    uint32_t mask[3] = {0, 1u << RWKV_TAP_RESID_IN | 1u << RWKV_TAP_STATE_WKV, 0};
    for (int k = 0; k < 2; k++) {
        const int D = rwkv_tap_width(taps[k], m->cfg);
        rwkv_real *vec = calloc((size_t)D, sizeof *vec);
        ck_assert_int_eq(rwkv_steer_build(vec, m, 1, taps[k], 2, pos, pl, 1, neg, nl, 1), RWKV_OK);
        const rwkv_real *rows[3];
        rwkv_record *rec[3];
        const int *const seqs[3] = {p1, p2, n1};
        const int64_t lens[3] = {T_SEQ, T_SEQ, T_SEQ - 4};
        for (int i = 0; i < 3; i++) { // independent: the recorded rows of full runs
            rwkv_record_alloc(&rec[i], m->cfg, lens[i], mask);
            rwkv_intervene_list *l;
            rwkv_intervene_list_alloc(&l, m->cfg);
            rwkv_intervene_list_chain(l, &rec[i]->hook);
            rwkv_state *s;
            rwkv_workspace *ws;
            rwkv_state_alloc(&s, m->cfg);
            rwkv_workspace_alloc(&ws, m->cfg, 64);
            ck_assert_int_eq(rwkv_intervene_forward(m, s, seqs[i], lens[i], 0, NULL, RWKV_LOGITS_NONE, l, ws, 1), RWKV_OK);
            rows[i] = rwkv_record_rows(rec[i], 1, taps[k]) + (size_t)(lens[i] - 1) * D;
            rwkv_intervene_list_free(l);
            rwkv_state_free(s);
            rwkv_workspace_free(ws);
        }
        for (int c = 0; c < D; c++)
            ck_assert_double_eq_tol(vec[c], 0.5 * ((double)rows[0][c] + rows[1][c]) - rows[2][c], 1e-5 * fmax(1, fabs(rows[2][c])));
        for (int i = 0; i < 3; i++) rwkv_record_free(rec[i]);
        char path[1024];
        snprintf(path, sizeof path, "%s/steer7_%d_%d.h5", test_tmpdir(), _i, k);
        ck_assert_int_eq(rwkv_steer_write(path, vec, D, m->cfg, 1, taps[k], 2, 1), RWKV_OK);
        int layers[2] = {0, 1};
        double mults[2] = {0, 2}, base[2];
        rwkv_steer_point pts[4];
        rwkv_status st = rwkv_steer_sweep(pts, base, m, path, RWKV_TAP_NAMES[taps[k]], "*", layers, 2, mults, 2, p1,
                                          T_SEQ, 3, 7, k);
        ck_assert_msg(st == RWKV_OK, "%s", rwkv_error_message());
        for (int i = 0; i < 4; i++) {
            if (mults[i % 2] == 0) ck_assert(pts[i].p_a == base[0] && pts[i].p_b == base[1]);
            else ck_assert(pts[i].p_a != base[0]);
        }
        free(vec);
    }
    int layer;
    rwkv_tap tap;
    ck_assert_int_eq(rwkv_steer_parse_tap("blocks.1.state_wkv", m->cfg, &layer, &tap), RWKV_OK);
    ck_assert(layer == 1 && tap == RWKV_TAP_STATE_WKV);
    ck_assert_int_eq(rwkv_steer_parse_tap("blocks.1.state_num", m->cfg, &layer, &tap), RWKV_ERR_ARG);
    char msg[128];
    snprintf(msg, sizeof msg, "--tap 'blocks.1.state_num': an RWKV-%d model has no tap state_num", m->cfg.version);
    ck_assert_str_eq(rwkv_error_message(), msg);
    ck_assert_int_eq(rwkv_steer_build((rwkv_real[4]){0}, m, 0, RWKV_TAP_ATT_GATE, 2, pos, pl, 1, neg, nl, 0), RWKV_ERR_ARG);
    free(p1);
    free(p2);
    free(n1);
    rwkv_model_free(m);
}
END_TEST

int main(void) {
    Suite *s = suite_create("patch_v7");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, test_units, 0, 3);
    tcase_add_loop_test(tc, test_self_patch_identity, 0, 3);
    tcase_add_loop_test(tc, test_full_state_patch, 0, 3);
    tcase_add_loop_test(tc, test_reuse_equals_naive, 0, 3);
    tcase_add_loop_test(tc, test_head_patch_equals_spec, 0, 3);
    tcase_add_test(tc, test_bad_taps);
    tcase_add_test(tc, test_cli_patch_v7);
    tcase_add_loop_test(tc, test_steer_v7, 0, 3);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
