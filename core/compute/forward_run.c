// forward_run.c: a forward pass with its own workspace (see rwkv_forward_run).
#include "forward.h"

rwkv_status rwkv_forward_run(const rwkv_model *m, rwkv_state *state, const int *tokens, int64_t T, int seq,
                             rwkv_hook *hook) {
    int max_T = seq ? 1 : (int)(T < RWKV_FORWARD_RUN_CHUNK ? (T > 0 ? T : 1) : RWKV_FORWARD_RUN_CHUNK);
    rwkv_workspace *ws = NULL;
    rwkv_status st = rwkv_workspace_alloc(&ws, m->cfg, max_T);
    if (!st) st = (seq ? rwkv_forward_seq : rwkv_forward_par)(m, state, tokens, T, NULL, RWKV_LOGITS_NONE, hook, ws);
    rwkv_workspace_free(ws);
    return st;
}
