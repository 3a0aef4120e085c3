/* Runs a PyTorch side of a benchmark (a script in bench/ printing one JSON line) and reads two
 * numbers from its output; other lines pass through to stderr. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "config.h"

static char torch_version[64] = "?";

const char *bench_python_torch_version(void) { return torch_version; }

int bench_python(const char *script, const char *args, const char *key1, double *v1, const char *key2, double *v2) {
    const char *py = getenv("SADM_PYTHON");
    return bench_python_with(py && *py ? py : SADM_PYTHON_TORCH, script, args, key1, v1, key2, v2);
}

int bench_python_with(const char *py, const char *script, const char *args, const char *key1, double *v1,
                      const char *key2, double *v2) {
    if (!py || !*py) return 1;
    char cmd[2048], line[1024], k1[64], k2[64];
    snprintf(cmd, sizeof cmd, "'%s' '%s/bench/%s' %s 2>&1", py, SADM_SRCDIR, script, args);
    snprintf(k1, sizeof k1, "\"%s\": ", key1);
    snprintf(k2, sizeof k2, "\"%s\": ", key2);
    FILE *p = popen(cmd, "r");
    if (!p) return 1;
    int ok = 0;
    while (fgets(line, sizeof line, p)) {
        char *a = strstr(line, k1), *b = strstr(line, k2), *v = strstr(line, "\"torch\": \"");
        if (v) sscanf(v + 10, "%63[^\"]", torch_version);
        if (a && b)
            ok = sscanf(a + strlen(k1), "%lf", v1) == 1 && sscanf(b + strlen(k2), "%lf", v2) == 1;
        else
            fputs(line, stderr);
    }
    return pclose(p) != 0 || !ok;
}
