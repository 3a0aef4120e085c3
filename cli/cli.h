/* Commands of the sadm program; each takes the arguments after its own name. */
#ifndef SADM_CLI_H
#define SADM_CLI_H

int sadm_cmd_bench_ops(int argc, char **argv);

#endif
