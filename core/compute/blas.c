// blas.c: CBLAS at rwkv_real precision, and the OpenBLAS core-type fix.
#include "blas.h"

#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define RWKV_SPINCOUNT "3000" // libgomp busy-wait iterations before a worker sleeps (docs/performance.md)
#define RWKV_BLAS_TIMEOUT "16" // OpenBLAS workers spin 2^16 cycles (~25 us), not 2^28, before sleeping
#define RWKV_COREFIX_ENV "RWKVSCOPE_OPENBLAS_DETECTED" // set on re-exec: the core OpenBLAS chose

#if RWKV_REAL_BITS == 64
#define GEMM cblas_dgemm
#define GEMV cblas_dgemv
#else
#define GEMM cblas_sgemm
#define GEMV cblas_sgemv
#endif

void rwkv_blas_gemm(int ta, int tb, int M, int N, int K, rwkv_real alpha, const rwkv_real *a,
                    int lda, const rwkv_real *b, int ldb, rwkv_real beta, rwkv_real *out, int ldo) {
    GEMM(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, M, N, K,
         alpha, a, lda, b, ldb, beta, out, ldo);
}

void rwkv_blas_matmul_nt(rwkv_real *out, const rwkv_real *a, const rwkv_real *b, int M, int N,
                         int K, int accumulate) {
    if (M == 1) {
        GEMV(CblasRowMajor, CblasNoTrans, N, K, 1, b, K, a, 1, accumulate ? 1 : 0, out, 1);
        return;
    }
    GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, M, N, K, 1, a, K, b, K, accumulate ? 1 : 0, out, N);
}

void rwkv_blas_matvec(rwkv_real *out, const rwkv_real *W, const rwkv_real *x, int N, int K) {
    GEMV(CblasRowMajor, CblasNoTrans, N, K, 1, W, K, x, 1, 0, out, 1);
}

char *openblas_get_corename(void);

// Cores that run the AVX2/AVX-512 kernels; anything else is the slow fallback.
static int core_is_fast(const char *core) {
    static const char *fast[] = {"SkylakeX", "Cooperlake", "SapphireRapids", "Haswell", "Zen", NULL};
    for (int i = 0; fast[i]; i++)
        if (!strcmp(core, fast[i])) return 1;
    return 0;
}

// The OpenBLAS core to force, or NULL when OpenBLAS's own choice is fine or the user chose.
static const char *wanted_core(void) {
    if (getenv("OPENBLAS_CORETYPE") || getenv(RWKV_COREFIX_ENV)) return NULL;
    const char *core = openblas_get_corename();
    if (!core || core_is_fast(core)) return NULL;
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq"))
        return "SkylakeX";
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return "Haswell";
    return NULL;
}

void rwkv_blas_ensure_coretype(int argc, char **argv) {
    (void)argc;
    const char *core = wanted_core();
    // libgomp's default spin (300k iterations) costs 8-10x on a busy 2-core machine, and no
    // spin at all (PASSIVE) costs ~15% per token on an idle one: a short spin serves both.
    int short_spin = !getenv("OMP_WAIT_POLICY") && !getenv("GOMP_SPINCOUNT");
    // OpenBLAS's pthread workers spin (sched_yield) ~0.1 s after each product; while the
    // engine's OpenMP threads run (kernels, dump compression) that spin takes a third of
    // the two cores. A short timeout costs the products nothing measurable.
    int short_blas_spin = !getenv("OPENBLAS_THREAD_TIMEOUT");
    if (!core && !short_spin && !short_blas_spin) return;
    if (core) {
        setenv(RWKV_COREFIX_ENV, openblas_get_corename(), 1);
        setenv("OPENBLAS_CORETYPE", core, 1);
    }
    if (short_spin) setenv("GOMP_SPINCOUNT", RWKV_SPINCOUNT, 1);
    if (short_blas_spin) setenv("OPENBLAS_THREAD_TIMEOUT", RWKV_BLAS_TIMEOUT, 1);
    execv("/proc/self/exe", argv);
    // exec failed: carry on as we are; rwkv_blas_core_note says so.
    if (core) {
        unsetenv("OPENBLAS_CORETYPE");
        unsetenv(RWKV_COREFIX_ENV);
    }
}

const char *rwkv_blas_corename(void) {
    const char *c = openblas_get_corename();
    return c ? c : "unknown";
}

const char *rwkv_blas_core_note(void) {
    static char note[160];
    const char *detected = getenv(RWKV_COREFIX_ENV);
    const char *user = getenv("OPENBLAS_CORETYPE");
    if (detected)
        snprintf(note, sizeof note, "auto-selected by rwkvscope (OpenBLAS detected %s)", detected);
    else if (user)
        snprintf(note, sizeof note, "set by OPENBLAS_CORETYPE=%s", user);
    else if (!core_is_fast(rwkv_blas_corename()))
        snprintf(note, sizeof note, "detected by OpenBLAS; SLOW generic kernels (set OPENBLAS_CORETYPE)");
    else
        snprintf(note, sizeof note, "detected by OpenBLAS");
    return note;
}
