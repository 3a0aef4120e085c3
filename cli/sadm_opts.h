/* The SADM options shared by `sadm train` and `sadm loss`. */
#ifndef SADM_CLI_SADM_OPTS_H
#define SADM_CLI_SADM_OPTS_H

#include "cli.h"
#include "sadm.h"

#define SADM_STRUCT_OPTS                                                                                        \
    {"lambda", "SADM: weight of the structural distance in the denoiser's loss", "0.001", 0},                  \
    {"distance", "SADM: structural distance, cosine-mse or softmax-kl", "cosine-mse", 0},                      \
    {"weighting", "SADM: per-sample weights: none, alpha (abar_t) or t<N (only samples with t < N, e.g. t<400)",  \
     "none", 0},                                                                                               \
    {"adaptive-lambda", "SADM: instead of --lambda, choose lambda per step so that the structure gradient at the " \
                        "denoiser's eps output is this fraction of the denoising gradient's norm there (VQGAN-style; " \
                        "capped at 1e4)", NULL, 0},                                                            \
    {"tau", "SADM: softmax-kl temperature", "0.1", 0}

/* Fills c (defaults first) from the options above and checks it for a T-step diffusion;
 * 2 on a bad value (message printed). */
int cli_sadm_config(const cli_opt *o, size_t n, const char *cmd, int T, sadm_sadm_config *c);

#endif
