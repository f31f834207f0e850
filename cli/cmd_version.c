// cmd_version.c: rwkvscope version: the version, precision and BLAS core.
#include "cli.h"
#include "options.h"
#include "core/compute/blas.h"
#include "core/compute/matvec.h"

const char cmd_version_summary[] = "print the version, precision and BLAS kernels in use";

static void usage(FILE *f) { fprintf(f, "usage: rwkvscope version\n\n%s.\n", cmd_version_summary); }

int cmd_version(int argc, char **argv) {
    static const struct option OPTS[] = {CLI_OPTIONS_END};
    cli_parser p = {.cmd = "version", .help = usage, .opts = OPTS};
    const char *v;
    while (cli_opt_next(&p, argc, argv, &v) != -1) {}
    if (p.status) return cli_opt_exit(p.status);
    printf("rwkvscope %s\nprecision: %d-bit\nopenblas core: %s (%s)\nbf16 matvec: %s\n",
           RWKVSCOPE_VERSION, RWKV_REAL_BITS, rwkv_blas_corename(), rwkv_blas_core_note(),
           rwkv_matvec_bf16_path());
    return CLI_OK;
}
