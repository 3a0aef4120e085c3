/* A small "--name value" option parser shared by the commands, with generated --help. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "sadm.h"

static void print_help(const char *usage, const char *about, const cli_opt *o, size_t n) {
    printf("usage: %s\n\n%s\n\noptions:\n", usage, about);
    for (size_t i = 0; i < n; i++) {
        char left[64];
        snprintf(left, sizeof left, "--%s%s", o[i].name, o[i].is_flag ? "" : " V");
        printf("  %-22s %s", left, o[i].help);
        if (o[i].value && !o[i].is_flag) printf(" (default: %s)", o[i].value);
        printf("\n");
    }
    printf("  %-22s %s\n", "--help", "show this help");
}

int cli_parse(int argc, char **argv, cli_opt *o, size_t n, const char *usage, const char *about) {
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            print_help(usage, about, o, n);
            return 1;
        }
        size_t k = 0;
        for (; k < n; k++)
            if (a[0] == '-' && a[1] == '-' && !strcmp(a + 2, o[k].name)) break;
        if (k == n) {
            fprintf(stderr, "%s: unknown option '%s' (see --help)\n", argv[0], a);
            return 2;
        }
        if (o[k].is_flag) {
            o[k].value = "1";
        } else {
            if (i + 1 >= argc) {
                fprintf(stderr, "%s: option --%s needs a value\n", argv[0], o[k].name);
                return 2;
            }
            o[k].value = argv[++i];
        }
    }
    return 0;
}

const char *cli_get(const cli_opt *o, size_t n, const char *name) {
    for (size_t k = 0; k < n; k++)
        if (!strcmp(o[k].name, name)) return o[k].value;
    return NULL;
}

int cli_int(const cli_opt *o, size_t n, const char *name, long lo, long hi, long *out) {
    const char *v = cli_get(o, n, name);
    if (!v) return 0;
    char *end;
    long x = strtol(v, &end, 10);
    if (!*v || *end || x < lo || x > hi) {
        fprintf(stderr, "option --%s: '%s' is not an integer in [%ld, %ld]\n", name, v, lo, hi);
        return -1;
    }
    *out = x;
    return 1;
}

static sadm_backend *selected;

sadm_backend *cli_backend(void) { return selected ? selected : sadm_backend_cpu(); }

int cli_runtime(const cli_opt *o, size_t n) {
    long th = 0;
    if (cli_int(o, n, "threads", 1, 4096, &th) < 0) return 2;
    /* a build without OpenMP runs on one thread: say so, and go on */
    if (th && sadm_set_num_threads((int)th)) fprintf(stderr, "sadm: warning: %s\n", sadm_last_error());
    const char *note = "";
    if (sadm_backend_select(cli_get(o, n, "device"), &selected, &note)) {
        fprintf(stderr, "sadm: %s\n", sadm_last_error());
        return 2;
    }
    if (*note) fprintf(stderr, "sadm: %s\n", note);
    return 0;
}

int cli_precision(const cli_opt *o, size_t n, sadm_precision *out, int *given) {
    const char *v = cli_get(o, n, "precision");
    *given = v != NULL;
    if (!v) return 0;
    const char *why = "";
    if (sadm_precision_choose(v, cli_backend(), out, &why)) {
        fprintf(stderr, "option --precision: %s\n", sadm_last_error());
        return 2;
    }
    if (*why) fprintf(stderr, "sadm: %s\n", why);
    return 1;
}

int cli_model_precision(const cli_opt *o, size_t n, const char *cmd, sadm_dit *m) {
    sadm_precision p = SADM_PRECISION_FP32;
    int given = 0, rc = cli_precision(o, n, &p, &given);
    if (rc == 2) return 2;
    if (given && sadm_dit_set_precision(m, p)) return cli_fail(cmd);
    return 0;
}

int cli_require_cpu(const char *cmd, const char *what) {
    if (cli_backend() == sadm_backend_cpu()) return 0;
    fprintf(stderr, "sadm %s: %s runs on the cpu backend only so far, not on %s (use --device cpu)\n", cmd, what,
            sadm_backend_name(cli_backend()));
    return 1;
}

int cli_double(const cli_opt *o, size_t n, const char *name, double lo, double hi, double *out) {
    const char *v = cli_get(o, n, name);
    if (!v) return 0;
    char *end;
    double x = strtod(v, &end);
    if (!*v || *end || !(x >= lo && x <= hi)) {
        fprintf(stderr, "option --%s: '%s' is not a number in [%g, %g]\n", name, v, lo, hi);
        return -1;
    }
    *out = x;
    return 1;
}

int cli_positionals(int argc, char **argv, const cli_opt *o, size_t n, const char **pos, int max, int *npos) {
    int out = 1;
    *npos = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-o")) a = argv[i] = "--out"; /* the short form of --out */
        if (a[0] == '-' && a[1] == '-') {
            argv[out++] = argv[i];
            size_t k = 0;
            for (; k < n; k++)
                if (!strcmp(a + 2, o[k].name)) break;
            if (k < n && !o[k].is_flag && i + 1 < argc) argv[out++] = argv[++i];
            continue;
        }
        if (*npos == max) {
            fprintf(stderr, "%s: unexpected argument '%s' (see --help)\n", argv[0], a);
            return -1;
        }
        pos[(*npos)++] = a;
    }
    return out;
}
