#include <stdio.h>

#include "sadm_opts.h"

int cli_sadm_config(const cli_opt *o, size_t n, const char *cmd, int T, sadm_sadm_config *c) {
    sadm_sadm_config_default(c);
    double lambda = c->lambda, tau = c->tau, ratio = 0;
    if (cli_double(o, n, "lambda", 0, 1e6, &lambda) < 0 || cli_double(o, n, "tau", 1e-6, 1e6, &tau) < 0 ||
        cli_double(o, n, "adaptive-lambda", 1e-9, 1e6, &ratio) < 0)
        return 2;
    c->lambda = (float)lambda, c->tau = (float)tau, c->grad_ratio = (float)ratio;
    const char *dist = cli_get(o, n, "distance"), *wt = cli_get(o, n, "weighting");
    if ((dist && sadm_struct_distance_parse(dist, &c->distance)) ||
        (wt && sadm_struct_weighting_parse(wt, &c->weighting, &c->t_max)) || sadm_sadm_config_check_steps(c, T)) {
        fprintf(stderr, "sadm %s: %s\n", cmd, sadm_last_error());
        return 2;
    }
    return 0;
}
