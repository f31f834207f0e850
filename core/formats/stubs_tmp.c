// TEMPORARY stubs until the readers land (formats helper replaces this file).
#include "formats.h"
rwkv_status rwkv_format_detect(const char *path, rwkv_format *out) { (void)path; *out = RWKV_FMT_UNKNOWN; return rwkv_error_set(RWKV_ERR_UNSUPPORTED, "not implemented"); }
const char *rwkv_format_name(rwkv_format f) { (void)f; return "?"; }
rwkv_status rwkv_pth_read(const char *path, rwkv_tensor_set *out) { (void)path; (void)out; return RWKV_ERR_UNSUPPORTED; }
rwkv_status rwkv_safetensors_read(const char *path, rwkv_tensor_set *out) { (void)path; (void)out; return RWKV_ERR_UNSUPPORTED; }
rwkv_status rwkv_rwkvcpp_read(const char *path, rwkv_tensor_set *out) { (void)path; (void)out; return RWKV_ERR_UNSUPPORTED; }
// TEMPORARY (train branch): until the formats work lands with the real writer.
rwkv_status rwkv_safetensors_write(const char *path, const rwkv_model *m, const char *const *meta_kv, int n_meta) { (void)m; (void)meta_kv; (void)n_meta; return rwkv_error_set(RWKV_ERR_UNSUPPORTED, "%s: safetensors writing is not in this build yet", path); }
