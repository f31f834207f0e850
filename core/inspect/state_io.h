// state_io.h: the recurrent state saved to and loaded from HDF5 (docs/state-format.md).
//   RWKV-4: /state/{att_xprev,num,den,max,ffn_xprev}  float32 [L, C] (float64 in PRECISION=64)
//   RWKV-7: /state/{att_xprev,ffn_xprev} [L, C] and /state/wkv [L, H, N, N]
//   root attributes: schema "rwkvscope-state", schema_version, rwkv_version (4 or 7), n_layer,
//   n_embd, n_ffn, n_vocab, (RWKV-7) n_head, head_size, model_path, n_tokens (tokens
//   consumed to reach it), precision, rwkvscope_version, command_line, time_written.
//   Schema 1 (no rwkv_version) is an RWKV-4 state and still reads.
#ifndef RWKV_STATE_IO_H
#define RWKV_STATE_IO_H

#include "../model/model.h"
#include "../model/state.h"

#define RWKV_STATE_SCHEMA "rwkvscope-state"
#define RWKV_STATE_SCHEMA_VERSION 2 // 2: rwkv_version, RWKV-7 states

// Writes s (the state of model m after n_tokens tokens). Refuses an existing path unless force.
rwkv_status rwkv_state_save(const char *path, const rwkv_state *s, const rwkv_model *m, int64_t n_tokens,
                            const char *command_line, int force);
// Reads path into s, checking its shape attributes against m (RWKV_ERR_SHAPE naming both).
rwkv_status rwkv_state_load(rwkv_state *s, const char *path, const rwkv_model *m);

#endif
