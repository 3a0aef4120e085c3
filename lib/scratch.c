/* Per-thread scratch: the workspace operators need for one call (attention tiles,
 * layer-norm partials, im2col columns, GEMM panels, per-row losses). A stack of blocks
 * per thread: a call marks, takes, and releases back to its mark. The blocks stay, so
 * once a training loop has run one step every later step of the same shapes takes the
 * same sizes in the same order from memory that already exists: no allocation in the
 * loop (tests/test_backend.c counts them). Blocks come from sadm_alloc, so they are
 * counted with everything else the library allocates. */
#include <pthread.h>
#include <stdlib.h>

#include "internal.h"

typedef struct scratch_block {
    struct scratch_block *next;
    size_t cap, used;
    char *data;
} scratch_block;

typedef struct scratch_arena {
    scratch_block *first, *cur;
} scratch_arena;

static _Thread_local scratch_arena arena;
static pthread_key_t exit_key;
static pthread_once_t exit_once = PTHREAD_ONCE_INIT;

static void free_blocks(scratch_block *b) {
    while (b) {
        scratch_block *next = b->next;
        sadm_free(b->data);
        sadm_free(b);
        b = next;
    }
}

/* A worker thread that ends gives its blocks back (the key's value is only a flag). */
static void on_thread_exit(void *unused) {
    (void)unused;
    free_blocks(arena.first);
    arena.first = arena.cur = NULL;
}

static void make_key(void) { pthread_key_create(&exit_key, on_thread_exit); }

static scratch_block *new_block(size_t cap) {
    scratch_block *b = sadm_alloc(sizeof *b);
    if (!b) return NULL;
    if (!(b->data = sadm_alloc(cap))) {
        sadm_free(b);
        return NULL;
    }
    b->next = NULL, b->cap = cap, b->used = 0;
    return b;
}

sadm_scratch_mark sadm_scratch_mark_get(void) {
    sadm_scratch_mark m = {arena.cur, arena.cur ? arena.cur->used : 0};
    return m;
}

void sadm_scratch_release(sadm_scratch_mark m) {
    if (m.block) {
        arena.cur = m.block;
        arena.cur->used = m.used;
    } else if (arena.first) {
        arena.cur = arena.first;
        arena.cur->used = 0;
    }
}

void *sadm_scratch_take(size_t bytes) {
    size_t need = (bytes + 63) / 64 * 64;
    if (need < bytes) return NULL;
    if (!arena.first) {
        pthread_once(&exit_once, make_key);
        pthread_setspecific(exit_key, &arena);
        size_t cap = need > ((size_t)1 << 20) ? need : ((size_t)1 << 20);
        if (!(arena.first = new_block(cap))) return NULL;
        arena.cur = arena.first;
    }
    scratch_block *b = arena.cur;
    if (b->cap - b->used < need) {
        /* the blocks after the current one are free: use the next if it is big enough,
         * else put a bigger one in its place */
        scratch_block *next = b->next;
        if (!next || next->cap < need) {
            size_t cap = next && next->cap > b->cap ? next->cap : b->cap;
            cap = cap * 2 > need ? cap * 2 : need;
            scratch_block *fresh = new_block(cap);
            if (!fresh) return NULL;
            fresh->next = next ? next->next : NULL;
            if (next) next->next = NULL, free_blocks(next);
            b->next = fresh;
            next = fresh;
        }
        next->used = 0;
        arena.cur = b = next;
    }
    void *p = b->data + b->used;
    b->used += need;
    return p;
}

void sadm_scratch_free_thread(void) { on_thread_exit(NULL); }
