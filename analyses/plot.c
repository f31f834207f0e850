// plot.c: line plots, heatmaps and histograms through gnuplot.
// Each plot writes three files side by side: the image, its data (<stem>.csv, '#' header
// lines, comma-separated) and the gnuplot script (<stem>.gp) that drew it from that data.
// gnuplot runs on the script file with stderr captured to a temporary file, so a gnuplot
// error ends gnuplot (never a prompt) and comes back as the status message. The script names
// the image and data by their file names alone and runs in their directory, so the three
// files can be moved or copied together and redrawn there.
#include "plot.h"

#include "../core/base/file.h"

#include <errno.h>
#include <math.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define PLOT_DEFAULT_W 800
#define PLOT_DEFAULT_H 600
#define PLOT_MAX_PIXELS 20000  // per side; beyond this gnuplot runs out of memory
#define PLOT_MAX_TICS 16       // label every column/row up to this many
#define PLOT_SPARSE_TICS 10    // otherwise about this many labels
#define PLOT_ERR_MAX 600       // characters of gnuplot's stderr kept in the message
#define PLOT_PATH 4096
#define PLOT_OUTPUT_VAR "rwkvscope_output" // gnuplot variable naming the image file

typedef struct {
    char img[PLOT_PATH], data[PLOT_PATH], script[PLOT_PATH]; // absolute paths
    char dir[PLOT_PATH];                                      // their directory
    char term[96];
    rwkv_atomic_file out; // the file being written (every output goes through a temporary)
} plot_job;

static const char *base_name(const char *path) {
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

static const char *gnuplot_program(void) {
    const char *g = getenv("RWKVSCOPE_GNUPLOT");
    return (g && *g) ? g : "gnuplot";
}

int rwkv_plot_available(void) {
    const char *prog = gnuplot_program();
    if (strchr(prog, '/')) return access(prog, X_OK) == 0;
    const char *path = getenv("PATH");
    if (!path) return 0;
    char dir[PLOT_PATH];
    for (const char *p = path; *p;) {
        size_t n = strcspn(p, ":");
        snprintf(dir, sizeof dir, "%.*s/%s", (int)n, p, prog);
        if (n && access(dir, X_OK) == 0) return 1;
        p += n + (p[n] == ':');
    }
    return 0;
}

// Wraps s in single quotes for /bin/sh ('\'' for each quote inside).
static void shell_quote(char *buf, size_t n, const char *s) {
    size_t k = 0;
    if (k + 1 < n) buf[k++] = '\'';
    for (; *s && k + 5 < n; s++) {
        if (*s == '\'') { memcpy(buf + k, "'\\''", 4); k += 4; }
        else buf[k++] = *s;
    }
    if (k + 1 < n) buf[k++] = '\'';
    buf[k] = '\0';
}

// Writes s as a gnuplot single-quoted string ('' stands for one quote).
static void gp_string(FILE *f, const char *s) {
    fputc('\'', f);
    for (; s && *s; s++) {
        if (*s == '\'') fputc('\'', f);
        if (*s != '\n') fputc(*s, f);
    }
    fputc('\'', f);
}

// 1 when this gnuplot has the cairo PNG terminal (asked once).
static int have_pngcairo(void) {
    static int cached = -1;
    if (cached < 0) {
        char prog[PLOT_PATH], cmd[PLOT_PATH + 64];
        shell_quote(prog, sizeof prog, gnuplot_program());
        snprintf(cmd, sizeof cmd, "%s -e 'set terminal pngcairo' >/dev/null 2>&1", prog);
        int st = system(cmd);
        cached = (st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0);
    }
    return cached;
}

static const char *suffix_of(const char *path) {
    const char *slash = strrchr(path, '/'), *dot = strrchr(path, '.');
    return (dot && (!slash || dot > slash)) ? dot : NULL;
}

rwkv_status rwkv_plot_data_path(const char *out, char *buf, size_t n) {
    const char *dot = suffix_of(out);
    size_t stem = dot ? (size_t)(dot - out) : strlen(out);
    if (stem + 5 > n) return rwkv_error_set(RWKV_ERR_ARG, "%s: path too long", out);
    snprintf(buf, n, "%.*s.csv", (int)stem, out);
    return RWKV_OK;
}

// Absolute form of `path`, whose directory must exist (the file itself need not).
static rwkv_status absolute_path(const char *path, char *buf, size_t n) {
    if (path[0] == '/') {
        if (strlen(path) + 1 > n) return rwkv_error_set(RWKV_ERR_ARG, "%s: path too long", path);
        strcpy(buf, path);
        return RWKV_OK;
    }
    char cwd[PLOT_PATH];
    if (!getcwd(cwd, sizeof cwd)) return rwkv_error_set(RWKV_ERR_IO, "getcwd: %s", strerror(errno));
    if ((size_t)snprintf(buf, n, "%s/%s", cwd, path) >= n)
        return rwkv_error_set(RWKV_ERR_ARG, "%s: path too long", path);
    return RWKV_OK;
}

// Checks the request and fills the job's paths and terminal line.
static rwkv_status job_init(plot_job *j, const char *out, const rwkv_plot_opts *o) {
    const char *suf = out ? suffix_of(out) : NULL;
    int png = suf && !strcasecmp(suf, ".png"), svg = suf && !strcasecmp(suf, ".svg");
    if (!png && !svg)
        return rwkv_error_set(RWKV_ERR_ARG, "%s: plot output must end in .png or .svg",
                              out ? out : "(null)");
    int w = (o && o->width) ? o->width : PLOT_DEFAULT_W;
    int h = (o && o->height) ? o->height : PLOT_DEFAULT_H;
    if (w < 16 || h < 16 || w > PLOT_MAX_PIXELS || h > PLOT_MAX_PIXELS)
        return rwkv_error_set(RWKV_ERR_ARG, "%s: image size %dx%d outside [16, %d]", out, w, h,
                              PLOT_MAX_PIXELS);
    if (!rwkv_plot_available())
        return rwkv_error_set(RWKV_ERR_UNSUPPORTED,
                              "%s: gnuplot ('%s') not found on PATH; install gnuplot-nox "
                              "(or set RWKVSCOPE_GNUPLOT)", out, gnuplot_program());
    if (svg) snprintf(j->term, sizeof j->term, "svg size %d,%d noenhanced", w, h);
    else if (have_pngcairo())
        snprintf(j->term, sizeof j->term, "pngcairo size %d,%d noenhanced", w, h);
    else snprintf(j->term, sizeof j->term, "png size %d,%d noenhanced", w, h);
    char data[PLOT_PATH], script[PLOT_PATH];
    rwkv_status st = rwkv_plot_data_path(out, data, sizeof data);
    if (st) return st;
    snprintf(script, sizeof script, "%.*s.gp", (int)(strlen(data) - 4), data);
    if ((st = absolute_path(out, j->img, sizeof j->img)) ||
        (st = absolute_path(data, j->data, sizeof j->data)) ||
        (st = absolute_path(script, j->script, sizeof j->script)))
        return st;
    snprintf(j->dir, sizeof j->dir, "%.*s", (int)(base_name(j->img) - j->img), j->img);
    return RWKV_OK;
}

static rwkv_status open_w(plot_job *j, FILE **f, const char *path) {
    rwkv_status st = rwkv_file_atomic_open(&j->out, path, 1, 1);
    *f = j->out.f;
    return st;
}

static rwkv_status close_w(plot_job *j) { return rwkv_file_atomic_commit(&j->out); }

// Terminal, output, title, labels and scales shared by every plot.
static void gp_header(FILE *gp, const plot_job *j, const rwkv_plot_opts *o) {
    // rwkvscope runs the script with PLOT_OUTPUT_VAR set to a temporary name, renamed over
    // the image when gnuplot succeeds; run by hand in its directory, the script draws the
    // image itself.
    fprintf(gp, "# Redraw in this directory with: gnuplot %s\nset terminal %s\nif (!exists('%s')) %s = ",
            base_name(j->script), j->term, PLOT_OUTPUT_VAR, PLOT_OUTPUT_VAR);
    gp_string(gp, base_name(j->img));
    fprintf(gp, "\nset output %s\nset datafile separator ','\nset datafile missing 'NaN'\ndata = ", PLOT_OUTPUT_VAR);
    gp_string(gp, base_name(j->data));
    fputc('\n', gp);
    if (o && o->title) { fputs("set title ", gp); gp_string(gp, o->title); fputc('\n', gp); }
    if (o && o->xlabel) { fputs("set xlabel ", gp); gp_string(gp, o->xlabel); fputc('\n', gp); }
    if (o && o->ylabel) { fputs("set ylabel ", gp); gp_string(gp, o->ylabel); fputc('\n', gp); }
    if (o && o->logx) fputs("set logscale x\n", gp);
    if (o && o->logy) fputs("set logscale y\n", gp);
    fputs("set grid\n", gp);
}

static void read_text(const char *path, char *buf, size_t n) {
    buf[0] = '\0';
    FILE *f = fopen(path, "r");
    if (!f) return;
    size_t k = fread(buf, 1, n - 1, f);
    buf[k] = '\0';
    fclose(f);
    while (k && (buf[k - 1] == '\n' || buf[k - 1] == ' ')) buf[--k] = '\0';
}

// Runs gnuplot on the job's script, drawing into a temporary renamed over the image only
// when gnuplot succeeds (a failed plot keeps the old image); stderr goes to a temp file and
// into the error message.
static rwkv_status job_run(plot_job *j) {
    char errpath[] = "/tmp/rwkvscope-gnuplot-XXXXXX";
    int fd = mkstemp(errpath);
    if (fd < 0) return rwkv_error_set(RWKV_ERR_IO, "mkstemp: %s", strerror(errno));
    close(fd);
    rwkv_status st = rwkv_file_atomic_open(&j->out, j->img, 1, 0);
    if (st) {
        unlink(errpath);
        return st;
    }
    char prog[PLOT_PATH], script[PLOT_PATH], err[PLOT_PATH], dir[PLOT_PATH], set[PLOT_PATH + 64];
    char abs_prog[PLOT_PATH], cmd[6 * PLOT_PATH + 64];
    char *var = NULL; // PLOT_OUTPUT_VAR = 'temporary' (in the image's directory, so its base name)
    size_t var_len = 0;
    FILE *vf = open_memstream(&var, &var_len);
    if (vf) {
        fputs(PLOT_OUTPUT_VAR " = ", vf);
        gp_string(vf, base_name(j->out.tmp));
        fclose(vf);
    }
    const char *g = gnuplot_program(); // a relative path to it must survive the cd
    if (strchr(g, '/') && !absolute_path(g, abs_prog, sizeof abs_prog)) g = abs_prog;
    shell_quote(prog, sizeof prog, g);
    shell_quote(script, sizeof script, base_name(j->script));
    shell_quote(err, sizeof err, errpath);
    shell_quote(dir, sizeof dir, j->dir);
    shell_quote(set, sizeof set, var ? var : "");
    free(var);
    snprintf(cmd, sizeof cmd, "cd %s && %s -e %s %s </dev/null 2>%s", dir, prog, set, script, err);
    FILE *p = popen(cmd, "r");
    if (!p) {
        unlink(errpath);
        rwkv_file_atomic_abort(&j->out);
        return rwkv_error_set(RWKV_ERR_IO, "popen gnuplot: %s", strerror(errno));
    }
    char sink[256];
    while (fread(sink, 1, sizeof sink, p) > 0) {}
    int ps = pclose(p);
    char msg[PLOT_ERR_MAX + 1];
    read_text(errpath, msg, sizeof msg);
    unlink(errpath);
    struct stat sb;
    if (ps == -1 || !WIFEXITED(ps) || WEXITSTATUS(ps) != 0)
        st = rwkv_error_set(RWKV_ERR_IO, "%s: gnuplot failed (exit %d): %s", j->img,
                            (ps != -1 && WIFEXITED(ps)) ? WEXITSTATUS(ps) : -1, msg[0] ? msg : "no message");
    else if (stat(j->out.tmp, &sb) != 0 || sb.st_size == 0)
        st = rwkv_error_set(RWKV_ERR_IO, "%s: gnuplot wrote no image: %s", j->img, msg[0] ? msg : "no message");
    if (st) {
        rwkv_file_atomic_abort(&j->out);
        return st;
    }
    return rwkv_file_atomic_commit(&j->out);
}

// Copies a legend/header name with the CSV and newline characters replaced.
static void clean_name(char *buf, size_t n, const char *s, int i) {
    if (!s) { snprintf(buf, n, "series%d", i); return; }
    snprintf(buf, n, "%s", s);
    for (char *c = buf; *c; c++)
        if (*c == ',' || *c == '\n' || *c == '\r') *c = ' ';
}

// Lines, with error bars when lo and hi are given: the data has y (and lo, hi) per series.
static rwkv_status lines(const char *out, const rwkv_plot_opts *o, const double *x, const double *y,
                         const double *lo, const double *hi, int n, int n_series, const char *const *names) {
    plot_job j;
    rwkv_status st = job_init(&j, out, o);
    if (st) return st;
    if (n < 1 || n_series < 1) return rwkv_error_set(RWKV_ERR_ARG, "%s: no data to plot", out);
    FILE *f;
    char name[128];
    int bars = lo && hi, cols = bars ? 3 : 1;
    if ((st = open_w(&j, &f, j.data))) return st;
    fputs("# x", f);
    for (int s = 0; s < n_series; s++) {
        clean_name(name, sizeof name, names ? names[s] : NULL, s);
        fprintf(f, bars ? ",%s,%s lo,%s hi" : ",%s", name, name, name);
    }
    fputc('\n', f);
    for (int i = 0; i < n; i++) {
        fprintf(f, "%.17g", x[i]);
        for (int s = 0; s < n_series; s++) {
            size_t k = (size_t)s * n + i;
            fprintf(f, ",%.17g", y[k]);
            if (bars) fprintf(f, ",%.17g,%.17g", lo[k], hi[k]);
        }
        fputc('\n', f);
    }
    if ((st = close_w(&j)) || (st = open_w(&j, &f, j.script))) return st;
    gp_header(f, &j, o);
    fputs(n_series > 1 ? "set key outside right\n" : "set key top right\n", f);
    fputs("plot ", f);
    for (int s = 0; s < n_series; s++) {
        clean_name(name, sizeof name, names ? names[s] : NULL, s);
        int c = 2 + s * cols;
        if (bars) fprintf(f, "%sdata using 1:%d:%d:%d with yerrorlines lw 2 title ", s ? ", \\\n     " : "", c, c + 1, c + 2);
        else fprintf(f, "%sdata using 1:%d with %s lw 2 title ", s ? ", \\\n     " : "", c, n <= 40 ? "linespoints" : "lines");
        gp_string(f, names ? name : "");
    }
    fputc('\n', f);
    if ((st = close_w(&j))) return st;
    return job_run(&j);
}

rwkv_status rwkv_plot_lines(const char *out, const rwkv_plot_opts *o, const double *x,
                            const double *y, int n, int n_series, const char *const *names) {
    return lines(out, o, x, y, NULL, NULL, n, n_series, names);
}

rwkv_status rwkv_plot_lines_ci(const char *out, const rwkv_plot_opts *o, const double *x,
                               const double *y, const double *lo, const double *hi, int n,
                               int n_series, const char *const *names) {
    return lines(out, o, x, y, lo, hi, n, n_series, names);
}

// "set xtics (...)" with a label at every position, or at about PLOT_SPARSE_TICS of them.
static void gp_tics(FILE *f, const char *axis, const double *vals, int n) {
    if (!vals) return;
    int step = n <= PLOT_MAX_TICS ? 1 : (n + PLOT_SPARSE_TICS - 1) / PLOT_SPARSE_TICS;
    fprintf(f, "set %stics (", axis);
    for (int i = 0; i < n; i += step) fprintf(f, "%s\"%g\" %d", i ? ", " : "", vals[i], i);
    fputs(")\n", f);
}

static rwkv_status heatmap(const char *out, const rwkv_plot_opts *o, const double *z, int rows, int cols,
                           const double *xvals, const double *yvals, const char *const *ynames,
                           const char *zlabel) {
    plot_job j;
    rwkv_status st = job_init(&j, out, o);
    if (st) return st;
    if (rows < 1 || cols < 1) return rwkv_error_set(RWKV_ERR_ARG, "%s: empty heatmap", out);
    FILE *f;
    if ((st = open_w(&j, &f, j.data))) return st;
    // One line per cell: its column and row index, its x and y labels and its value;
    // a blank line after each row makes the grid gnuplot's image style expects.
    fprintf(f, "# col,row,x,y,%s\n", zlabel ? zlabel : "z");
    for (int r = 0; r < rows; r++) {
        for (int c = 0; c < cols; c++)
            fprintf(f, "%d,%d,%.17g,%.17g,%.17g\n", c, r, xvals ? xvals[c] : c,
                    yvals ? yvals[r] : r, z[(size_t)r * cols + c]);
        fputc('\n', f);
    }
    if ((st = close_w(&j)) || (st = open_w(&j, &f, j.script))) return st;
    gp_header(f, &j, o);
    if (o && o->zrange > 0) // diverging, centred on 0; values beyond the range saturate
        fprintf(f, "unset grid\nset palette defined (-1 '#2166ac', 0 'white', 1 '#b2182b')\n"
                   "set cbrange [%g:%g]\n", -o->zrange, o->zrange);
    else fputs("unset grid\nset palette rgbformulae 33,13,10\n", f);
    fprintf(f, "set xrange [-0.5:%g]\nset yrange [-0.5:%g]\n", cols - 0.5, rows - 0.5);
    gp_tics(f, "x", xvals, cols);
    if (ynames) { // named rows
        fputs("set ytics (", f);
        int step = rows <= PLOT_MAX_TICS ? 1 : (rows + PLOT_SPARSE_TICS - 1) / PLOT_SPARSE_TICS;
        for (int r = 0; r < rows; r += step) {
            fputs(r ? ", " : "", f);
            gp_string(f, ynames[r]);
            fprintf(f, " %d", r);
        }
        fputs(")\n", f);
    } else gp_tics(f, "y", yvals, rows);
    if (zlabel) { fputs("set cblabel ", f); gp_string(f, zlabel); fputc('\n', f); }
    fputs("plot data using 1:2:5 with image notitle\n", f);
    if ((st = close_w(&j))) return st;
    return job_run(&j);
}

rwkv_status rwkv_plot_heatmap(const char *out, const rwkv_plot_opts *o, const double *z, int rows,
                              int cols, const double *xvals, const double *yvals,
                              const char *zlabel) {
    return heatmap(out, o, z, rows, cols, xvals, yvals, NULL, zlabel);
}

rwkv_status rwkv_plot_heatmap_rows(const char *out, const rwkv_plot_opts *o, const double *z, int rows,
                                   int cols, const double *xvals, const char *const *row_names,
                                   const char *zlabel) {
    return heatmap(out, o, z, rows, cols, xvals, NULL, row_names, zlabel);
}

rwkv_status rwkv_plot_hist(const char *out, const rwkv_plot_opts *o, const double *values, int n,
                           int n_series, const char *const *names, int bins) {
    plot_job j;
    rwkv_status st = job_init(&j, out, o);
    if (st) return st;
    if (n < 1 || n_series < 1 || bins < 1)
        return rwkv_error_set(RWKV_ERR_ARG, "%s: histogram needs values and bins >= 1", out);
    double lo = INFINITY, hi = -INFINITY;
    for (size_t i = 0; i < (size_t)n * n_series; i++)
        if (isfinite(values[i])) { lo = fmin(lo, values[i]); hi = fmax(hi, values[i]); }
    if (!(lo <= hi)) return rwkv_error_set(RWKV_ERR_NUMERIC, "%s: no finite values", out);
    if (hi - lo < 1e-12 * fmax(1.0, fabs(lo))) { lo -= 0.5; hi += 0.5; } // one value: a unit bin
    FILE *f;
    char name[128];
    if ((st = open_w(&j, &f, j.data))) return st;
    fputs("# ", f);
    for (int s = 0; s < n_series; s++) {
        clean_name(name, sizeof name, names ? names[s] : NULL, s);
        fprintf(f, "%s%s", s ? "," : "", name);
    }
    fputc('\n', f);
    for (int i = 0; i < n; i++)
        for (int s = 0; s < n_series; s++)
            fprintf(f, "%.17g%c", values[(size_t)s * n + i], s + 1 < n_series ? ',' : '\n');
    if ((st = close_w(&j)) || (st = open_w(&j, &f, j.script))) return st;
    gp_header(f, &j, o);
    if (!(o && o->ylabel)) fputs("set ylabel 'count'\n", f);
    // bin(x): the centre of x's bin; the top edge belongs to the last bin.
    fprintf(f, "lo = %.17g\nbw = %.17g\nnb = %d\n", lo, (hi - lo) / bins, bins);
    fputs("bin(x) = lo + bw * ((floor((x - lo) / bw) >= nb ? nb - 1 : floor((x - lo) / bw)) + 0.5)\n"
          "set boxwidth bw\nset style fill transparent solid 0.45 noborder\nplot ", f);
    for (int s = 0; s < n_series; s++) {
        clean_name(name, sizeof name, names ? names[s] : NULL, s);
        fprintf(f, "%sdata using (bin(column(%d))):(1.0) smooth frequency with boxes title ",
                s ? ", \\\n     " : "", s + 1);
        gp_string(f, names ? name : "");
    }
    fputc('\n', f);
    if ((st = close_w(&j))) return st;
    return job_run(&j);
}

// The evaluated rows of a training log: x (n) the step, y (2, n) the mean training loss
// since the previous evaluation, then the held-out loss. *rows counts every data row.
static rwkv_status read_train_log(FILE *f, const char *path, double **x, double **y, int *n, size_t *rows) {
    size_t cap = 64, k = 0;
    double *xs = malloc(cap * sizeof *xs), *ys = malloc(2 * cap * sizeof *ys), sum = 0;
    long cnt = 0;
    char line[512];
    rwkv_status st = xs && ys ? RWKV_OK : rwkv_error_set(RWKV_ERR_NOMEM, "%s: out of memory", path);
    *rows = 0;
    while (!st && fgets(line, sizeof line, f)) {
        long long step;
        double loss, val;
        if (sscanf(line, "%lld,%lf,%lf", &step, &loss, &val) != 3) continue; // the header
        sum += loss, cnt++, ++*rows;
        if (!isfinite(val)) continue; // not an evaluation step
        if (k == cap) {
            cap *= 2;
            double *nx = realloc(xs, cap * sizeof *xs), *ny = realloc(ys, 2 * cap * sizeof *ys);
            if (nx) xs = nx;
            if (ny) ys = ny;
            if (!nx || !ny) { st = rwkv_error_set(RWKV_ERR_NOMEM, "%s: out of memory", path); break; }
        }
        xs[k] = (double)step, ys[2 * k] = sum / cnt, ys[2 * k + 1] = val; // interleaved, split below
        k++, sum = 0, cnt = 0;
    }
    double *split = st || !k ? NULL : malloc(2 * k * sizeof *split);
    if (!st && k && !split) st = rwkv_error_set(RWKV_ERR_NOMEM, "%s: out of memory", path);
    for (size_t i = 0; split && i < k; i++) split[i] = ys[2 * i], split[k + i] = ys[2 * i + 1];
    free(ys);
    if (st || !k) {
        free(xs);
        free(split);
        return st ? st : rwkv_error_set(RWKV_ERR_ARG, "%s has no evaluated steps to plot (%zu rows)", path, *rows);
    }
    *x = xs, *y = split, *n = (int)k;
    return RWKV_OK;
}

rwkv_status rwkv_plot_train_log(const char *log_path, const char *out) {
    FILE *f = fopen(log_path, "r");
    if (!f) return rwkv_error_set(RWKV_ERR_IO, "%s: cannot read the loss log: %s", log_path, strerror(errno));
    double *x = NULL, *y = NULL;
    int n = 0;
    size_t rows;
    rwkv_status st = read_train_log(f, log_path, &x, &y, &n, &rows);
    fclose(f);
    if (st) return st;
    const char *names[2] = {"train", "held-out"}; // train: mean over each interval
    rwkv_plot_opts o = {.title = "training loss", .xlabel = "step", .ylabel = "loss (nats/token)"};
    st = rwkv_plot_lines(out, &o, x, y, n, 2, names);
    free(x);
    free(y);
    return st;
}
