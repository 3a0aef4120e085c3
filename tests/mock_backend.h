/* A second backend for the tests: the CPU operator table behind an allocator whose memory
 * the host cannot touch. Every allocation is its own mmap'ed region, kept PROT_NONE
 * except inside a table call or a copy; each pointer argument of a table call must be
 * memory of this backend (or NULL). Model code that dereferences backend memory, or
 * passes host memory to an operator, crashes or fails on it, while results stay bitwise
 * those of the CPU backend (same kernels). */
#ifndef SADM_MOCK_BACKEND_H
#define SADM_MOCK_BACKEND_H

#include <stddef.h>

#include "../lib/sadm.h"

sadm_backend *mock_backend(void);
/* Whether the mock runs precision bf16 (default 1): 0 gives a backend without it, for the
 * errors of asking one for bf16. */
void mock_backend_allow_bf16(int allow);
/* Table calls and host <-> backend copies so far. */
size_t mock_backend_calls(void);
size_t mock_backend_copies(void);
/* The table's entries by name (NULL-terminated) and how often each was called. */
const char *const *mock_backend_op_names(void);
size_t mock_backend_op_calls(const char *name);
/* Live allocations (regions). */
size_t mock_backend_live(void);

#endif
