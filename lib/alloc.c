/* Aligned allocation. Large blocks get transparent huge pages where the kernel runs THP
 * in madvise mode: activations and parameters are touched every step, and 4 KiB pages
 * cost measurable TLB misses on them. */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "internal.h"

#define SADM_ALIGN 64
#define HUGE_PAGE_THRESHOLD ((size_t)4 << 20)

void *sadm_alloc(size_t bytes) {
    if (bytes == 0) bytes = 1;
    size_t align = bytes >= HUGE_PAGE_THRESHOLD ? ((size_t)2 << 20) : SADM_ALIGN;
    size_t rounded = (bytes + align - 1) / align * align;
    void *p = NULL;
    if (posix_memalign(&p, align, rounded) != 0) return NULL;
#ifdef MADV_HUGEPAGE
    if (bytes >= HUGE_PAGE_THRESHOLD) madvise(p, rounded, MADV_HUGEPAGE);
#endif
    return p;
}

void *sadm_calloc(size_t count, size_t size) {
    if (size && count > SIZE_MAX / size) return NULL;
    void *p = sadm_alloc(count * size);
    if (p) memset(p, 0, count * size);
    return p;
}

void sadm_free(void *p) { free(p); }
