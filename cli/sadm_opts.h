/* The SADM options shared by `sadm train` and `sadm loss`. */
#ifndef SADM_CLI_SADM_OPTS_H
#define SADM_CLI_SADM_OPTS_H

#include "cli.h"
#include "sadm.h"

#define SADM_STRUCT_OPTS                                                                                        \
    {"lambda", "SADM: weight of the structural distance in the denoiser's loss", "0.001", 0},                  \
    {"distance", "SADM: structural distance, cosine-mse or softmax-kl", "cosine-mse", 0},                      \
    {"weighting", "SADM: per-sample weights, none or alpha (abar_t)", "none", 0},                              \
    {"tau", "SADM: softmax-kl temperature", "0.1", 0}

/* Fills c (defaults first) from the options above; 2 on a bad value (message printed). */
int cli_sadm_config(const cli_opt *o, size_t n, const char *cmd, sadm_sadm_config *c);

#endif
