/* Commands of the sadm program; each takes the arguments after its own name. */
#ifndef SADM_CLI_H
#define SADM_CLI_H

#include <stddef.h>

int sadm_cmd_bench_ops(int argc, char **argv);
int sadm_cmd_forward(int argc, char **argv);
int sadm_cmd_loss(int argc, char **argv);

/* Options: name (without --), help, default value (NULL: none), flag (takes no value). */
/* the number of options of a cli_opt array */
#define NOPT(o) (sizeof(o) / sizeof((o)[0]))

typedef struct cli_opt {
    const char *name, *help, *value;
    int is_flag;
} cli_opt;
/* 0: parsed; 1: --help was printed (exit 0); 2: bad arguments (message printed). */
int cli_parse(int argc, char **argv, cli_opt *o, size_t n, const char *usage, const char *about);
const char *cli_get(const cli_opt *o, size_t n, const char *name);
/* Takes up to `max` positional arguments out of argv (options and their values stay, in
 * order; "-o" becomes "--out") and returns the new argc, or -1 with a message when there
 * are too many. */
int cli_positionals(int argc, char **argv, const cli_opt *o, size_t n, const char **pos, int max, int *npos);
/* 0: option absent; 1: *out set; -1: bad value (message printed). */
int cli_int(const cli_opt *o, size_t n, const char *name, long lo, long hi, long *out);
int cli_double(const cli_opt *o, size_t n, const char *name, double lo, double hi, double *out);

int sadm_cmd_train(int argc, char **argv);
int sadm_cmd_bench_train(int argc, char **argv);
int sadm_cmd_sample(int argc, char **argv);
int sadm_cmd_convert(int argc, char **argv);
int sadm_cmd_vae(int argc, char **argv);
int sadm_cmd_encode(int argc, char **argv);
/* One latent sample of a DiT (z * scaling_factor, as DiT samples them; C x h x h) decoded
 * into the image x (3, h f, h f); z is scratch of C h h floats. Returns sadm_vae_decode's
 * status (0: SADM_OK). (cli/vae.c) */
typedef struct sadm_vae sadm_vae;
int cli_decode_latent(sadm_vae *v, int C, int h, const float *sample, float *z, float *x);
int sadm_cmd_bench_sample(int argc, char **argv);
int sadm_cmd_bench_sadm(int argc, char **argv);
int sadm_cmd_bench_fid(int argc, char **argv);
int sadm_cmd_bench_vae(int argc, char **argv);
int sadm_cmd_fid_features(int argc, char **argv);
int sadm_cmd_fid_stats(int argc, char **argv);
int sadm_cmd_fid_compare(int argc, char **argv);
int sadm_cmd_classifier(int argc, char **argv);

/* FD_fmnist helpers (cli/classifier.c): the classifier's weights (--classifier, else
 * $SADM_CLASSIFIER, else the installed or source-tree data/fmnist-classifier.safetensors),
 * loading them with a message that says where they come from, and the statistics of the
 * first `first` images of a split ("train" or "test") in its features (mu 128, sigma
 * 128x128; *count gets how many images that was). Nonzero on failure (printed). */
const char *cli_classifier_path(const char *given);
/* A shipped data file: `given`, else $env_name, else PKGDATADIR/file if it exists, else the
 * source tree's data/file (written into buf). */
const char *cli_data_path(const char *given, const char *env_name, const char *file, char *buf, size_t len);
#define CLI_BASE_MODEL_FILE "fmnist-dit.safetensors"
/* The random stream of x_T in `sadm sample` (also the end-of-run grid of `sadm train`). */
#define CLI_STREAM_XT 21
typedef struct sadm_classifier sadm_classifier;
int cli_classifier_load(const char *cmd, const char *given, sadm_classifier **out);
int cli_fmnist_split_stats(const char *cmd, sadm_classifier *c, const char *data_dir, const char *split, size_t first,
                           double *mu, double *sigma, size_t *count);
/* The classifier features (*count rows of 128, malloc'd into *features) of "fmnist-test",
 * "fmnist-train" or an image source (folder, .npz, samples), with progress. */
int cli_fmnist_side_features(const char *cmd, sadm_classifier *c, const char *spec, const char *data_dir, float **features,
                             size_t *count);

/* Runs bench/<script> <args> with the Python that has torch; reads "key1" and "key2" from
 * its JSON line. 0 on success. */
int bench_python(const char *script, const char *args, const char *key1, double *v1, const char *key2, double *v2);
/* The same with another interpreter (e.g. the diffusers venv); 1 when py is empty. */
int bench_python_with(const char *py, const char *script, const char *args, const char *key1, double *v1,
                      const char *key2, double *v2);
/* the "torch" version the last bench_python script reported ("?" before) */
const char *bench_python_torch_version(void);

/* Progress display: a bar on a terminal, a line every 30 s otherwise. */
typedef struct cli_progress_state {
    int started, tty;
    double start, last_print;
    long start_done;
} cli_progress_state;
void cli_progress(cli_progress_state *p, long done, long total, const char *status);
double cli_now(void);

/* Applies --threads (warning, not failing, where the build has no OpenMP) and --device
 * (else $SADM_DEVICE, else auto; a fallback of auto is one line on stderr); 2 on a bad
 * value (printed). */
int cli_runtime(const cli_opt *o, size_t n);
/* The backend --device chose (the CPU before cli_runtime ran). */
typedef struct sadm_backend sadm_backend;
sadm_backend *cli_backend(void);
/* --precision (fp32, bf16 or auto; auto's choice is one line on stderr) for the chosen
 * backend: 0 and *given = 0 when absent (*out untouched), 1 when given, 2 on a bad value
 * (printed). */
typedef enum sadm_precision sadm_precision;
int cli_precision(const cli_opt *o, size_t n, sadm_precision *out, int *given);
/* --precision applied to a model on the chosen backend: 0, or 2 on a bad value, or the
 * library's error printed under `cmd` and 1 */
typedef struct sadm_dit sadm_dit;
int cli_model_precision(const cli_opt *o, size_t n, const char *cmd, sadm_dit *m);
#define CLI_PRECISION_OPT                                                                                      \
    {"precision", "fp32 (the correctness mode), bf16 (products with bf16 inputs and fp32 sums: the speed mode) or auto (bf16 where the CPU multiplies bf16 natively)", NULL, 0}
/* 0 when the chosen backend is the CPU; else prints that `what` runs only there and returns 1. */
int cli_require_cpu(const char *cmd, const char *what);


/* Prints "sadm <cmd>: <message of the last library error>" and returns 1. */
int cli_fail(const char *cmd);

#endif
