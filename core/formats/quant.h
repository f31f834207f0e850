// quant.h: ggml's block formats, as rwkv.cpp files store quantized matrices (file version
// 101, ggml since 2023-05). A row of K weights is K/32 blocks; each block has an fp16 scale d
// and its quants q; weight j of a block is
//   Q4_0: (q_j - 8) d        (4-bit q: low nibbles of qs[0..15] are j = 0..15, high nibbles 16..31)
//   Q4_1: q_j d + m          (fp16 min m after d)
//   Q5_0: (q_j - 16) d       (5-bit q: the fifth bit of weight j is bit j of the 32-bit qh)
//   Q5_1: q_j d + m
//   Q8_0: q_j d              (int8 q)
// Layouts (bytes): Q4_0 d qs[16]; Q4_1 d m qs[16]; Q5_0 d qh[4] qs[16]; Q5_1 d m qh[4] qs[16];
// Q8_0 d qs[32].
// rwkvscope's own I8 (`--weights int8`): qs[32] (int8) then d as float32, w = q_j d. Against
// Q8_0 it spends 2 bytes more per block on a scale the kernels load without a conversion
// (measured here: the fp16 scale conversion halved the speed of the int8 kernel).
#ifndef RWKV_QUANT_H
#define RWKV_QUANT_H

#include "tensors.h"

// out (n) = the n weights at src (n a multiple of RWKV_DT_QK).
void rwkv_quant_dequant(rwkv_real *out, const void *src, rwkv_dtype dt, size_t n);
// One block (RWKV_DT_QK weights) of src into out, as float.
void rwkv_quant_block(float *out, const unsigned char *block, rwkv_dtype dt);
// Index of the first block whose scales are not finite, or -1 (the quants are integers).
int64_t rwkv_quant_first_nonfinite(const void *src, rwkv_dtype dt, size_t n);
// I8 of n values (n a multiple of RWKV_DT_QK): per block d = max|x| / 127, q = round(x / d).
void rwkv_quant_int8(void *dst, const rwkv_real *src, size_t n);

#endif
