/* Aligned allocation. Large blocks get transparent huge pages where the kernel runs THP
 * in madvise mode: activations and parameters are touched every step, and 4 KiB pages
 * cost measurable TLB misses on them. */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "internal.h"

#define SADM_ALIGN 64
#define HUGE_PAGE_THRESHOLD ((size_t)4 << 20)

static uint64_t allocations;

uint64_t sadm_allocation_count(void) { return __atomic_load_n(&allocations, __ATOMIC_RELAXED); }

void *sadm_alloc(size_t bytes) {
    __atomic_add_fetch(&allocations, 1, __ATOMIC_RELAXED);
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

uint64_t sadm_physical_memory(void) {
    long pages = sysconf(_SC_PHYS_PAGES), size = sysconf(_SC_PAGESIZE);
    return pages > 0 && size > 0 ? (uint64_t)pages * (uint64_t)size : UINT64_MAX;
}

sadm_status sadm_memory_check(const char *what, uint64_t bytes, const char *why) {
    uint64_t ram = sadm_physical_memory();
    if (bytes <= ram) return SADM_OK;
    return sadm_error(SADM_ERR_NOMEM, "%s needs %.3g GB, more than this machine's %.3g GB of memory%s%s", what,
                      (double)bytes / 1e9, (double)ram / 1e9, why && *why ? ": " : "", why ? why : "");
}
