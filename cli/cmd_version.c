// cmd_version.c: rwkvscope version: the version, precision and BLAS core.
#include "cli.h"
#include "core/compute/blas.h"
#include "core/compute/matvec.h"

const char cmd_version_summary[] = "print the version, precision and BLAS kernels in use";

int cmd_version(int argc, char **argv) {
    if (cli_wants_help(argc, argv)) {
        printf("usage: rwkvscope version\n\n%s.\n", cmd_version_summary);
        return CLI_OK;
    }
    printf("rwkvscope %s\nprecision: %d-bit\nopenblas core: %s (%s)\nbf16 matvec: %s\n",
           RWKVSCOPE_VERSION, RWKV_REAL_BITS, rwkv_blas_corename(), rwkv_blas_core_note(),
           rwkv_matvec_bf16_path());
    return CLI_OK;
}
