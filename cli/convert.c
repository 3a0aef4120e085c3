/* sadm convert: a DiT model file or training checkpoint to a model file, optionally with
 * half-size storage (F16 or BF16) for shipping or sharing. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "sadm.h"

int sadm_cmd_convert(int argc, char **argv) {
    cli_opt o[] = {
        {"dtype", "storage of the weights: F32, F16 or BF16 (rounded to nearest even; loading converts back)", "F32", 0},
        {"raw-weights", "with a training checkpoint: its raw weights instead of the EMA", NULL, 1},
    };
    const char *pos[2];
    int npos;
    if ((argc = cli_positionals(argc, argv, o, NOPT(o), pos, 2, &npos)) < 0) return 2;
    int rc = cli_parse(argc, argv, o, NOPT(o), "sadm convert IN.safetensors OUT.safetensors [--dtype F16]",
                       "Writes the DiT of a model file or a training checkpoint (its EMA weights unless\n"
                       "--raw-weights) as a model file with DiT's state-dict names and the model's settings in\n"
                       "its metadata.");
    if (rc) return rc == 1 ? 0 : rc;
    if (npos != 2) {
        fprintf(stderr, "sadm convert: needs IN and OUT (see --help)\n");
        return 2;
    }
    const char *dt = cli_get(o, NOPT(o), "dtype");
    sadm_dtype dtype;
    if (!strcmp(dt, "F32") || !strcmp(dt, "f32") || !strcmp(dt, "fp32")) dtype = SADM_DTYPE_F32;
    else if (!strcmp(dt, "F16") || !strcmp(dt, "f16") || !strcmp(dt, "fp16")) dtype = SADM_DTYPE_F16;
    else if (!strcmp(dt, "BF16") || !strcmp(dt, "bf16")) dtype = SADM_DTYPE_BF16;
    else {
        fprintf(stderr, "sadm convert: --dtype %s: expected F32, F16 or BF16\n", dt);
        return 2;
    }
    sadm_dit *m;
    if (sadm_dit_load_any(pos[0], cli_get(o, NOPT(o), "raw-weights") == NULL, &m)) return cli_fail("convert");
    if (sadm_dit_save_as(m, pos[1], dtype)) rc = cli_fail("convert");
    else fprintf(stderr, "sadm convert: wrote %s (%s)\n", pos[1], sadm_dtype_name(dtype));
    sadm_dit_free(m);
    return rc;
}
