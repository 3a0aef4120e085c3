/* bf16 matrix products with fp32 accumulation: C = alpha op(A) op(B) + beta C with op(A),
 * op(B) rounded to bf16 (simd/bf16.h has the exact definition). Both operands are rounded
 * and packed once per call, by all threads: op(B) into panels of SADM_BF16_NR columns,
 * op(A) into strips of SADM_BF16_MR rows. Then each work unit runs the kernel set's tile
 * over one strip and a chunk of panels that stays in L2 (packing a strip per unit instead
 * cost half the speed of the backward's products, whose K is the token count). Every
 * element of C is one tile call summing all of K in one fixed order, so results depend
 * neither on the thread count nor on where a row sits in the batch. */
#include <string.h>
#include <time.h>

#include "../simd/bf16.h"
#include "internal.h"

#define MR SADM_BF16_MR
#define NR SADM_BF16_NR
/* the panels one unit sweeps: about half of a 1 MiB L2 */
#define CHUNK_BYTES (512u * 1024u)

typedef struct {
    const sadm_kernels *k;
    int M, N, K;
    size_t kp, words;      /* pairs along K; 32-bit words per pair */
    size_t panel_words;    /* kp * words * NR */
    uint32_t *panels;      /* ceil(N / NR) panels */
    uint32_t *strips;      /* ceil(M / MR) strips of kp * words * MR words */
    struct operand *ops;   /* [0] op(B) into panels, [1] op(A) into strips */
} gemm_bf16;

/* One operand in packed form: R rows of op(X) (R x K) in blocks of `width` rows, each
 * block dst[kp][words][width] with rows past R zero. op(X) = X (R x K, ld apart) is
 * "row-major": each row is converted and its pairs spread over its block. op(X) = X^T
 * (X is K x R) is "k-major": rows 2p and 2p+1 of X hold pair p of every column. */
typedef struct operand {
    const float *X;
    int ld, rows, width, k_major;
    uint32_t *dst;
} operand;

/* row-major: block b, whole K */
static void pack_block(const gemm_bf16 *g, const operand *o, int b, uint32_t *conv) {
    size_t words = g->words, kw = g->kp * words;
    int r0 = b * o->width, n = o->rows - r0 < o->width ? o->rows - r0 : o->width;
    uint32_t *dst = o->dst + (size_t)b * kw * o->width;
    if (n < o->width) memset(dst, 0, kw * o->width * sizeof *dst);
    for (int r = 0; r < n; r++) {
        g->k->bf16_convert((size_t)g->K, o->X + (size_t)(r0 + r) * o->ld, g->kp, conv);
        for (size_t w = 0; w < kw; w++) dst[w * o->width + r] = conv[w];
    }
}

/* k-major: pairs p0..p1-1 of every block, reading each row pair of X once (block by block
 * instead, every block would stream all of X again: the backward's dW products read
 * their K = tokens x batch rows 20-30 times) */
#define PAIRS_PER_ITEM 16
static void pack_pairs(const gemm_bf16 *g, const operand *o, size_t p0, size_t p1) {
    size_t words = g->words, kw = g->kp * words, width = (size_t)o->width;
    int blocks = (o->rows + o->width - 1) / o->width;
    for (size_t p = p0; p < p1; p++) {
        const float *even = o->X + 2 * p * (size_t)o->ld;
        const float *odd = 2 * p + 1 < (size_t)g->K ? even + o->ld : NULL;
        for (int b = 0; b < blocks; b++) {
            int r0 = b * o->width, n = o->rows - r0 < o->width ? o->rows - r0 : o->width;
            uint32_t *dst = o->dst + (size_t)b * kw * width + p * words * width;
            g->k->bf16_pair_rows((size_t)n, even + r0, odd ? odd + r0 : NULL, width, dst);
            for (size_t w = 0; n < o->width && w < words; w++)
                memset(dst + w * width + n, 0, (width - (size_t)n) * sizeof *dst);
        }
    }
}

/* items of packing one operand: blocks, or ranges of PAIRS_PER_ITEM pairs */
static long pack_items(const gemm_bf16 *g, const operand *o) {
    return o->k_major ? (long)((g->kp + PAIRS_PER_ITEM - 1) / PAIRS_PER_ITEM) : (o->rows + o->width - 1) / o->width;
}

static void pack_item(const gemm_bf16 *g, const operand *o, long i, uint32_t *conv) {
    if (!o->k_major) {
        pack_block(g, o, (int)i, conv);
        return;
    }
    size_t p0 = (size_t)i * PAIRS_PER_ITEM, p1 = p0 + PAIRS_PER_ITEM < g->kp ? p0 + PAIRS_PER_ITEM : g->kp;
    pack_pairs(g, o, p0, p1);
}

static void run_unit(const gemm_bf16 *g, int strip, int q0, int q1, float alpha, float beta, float *C, int ldc) {
    int i0 = strip * MR, mr = g->M - i0 < MR ? g->M - i0 : MR;
    const uint32_t *apack = g->strips + (size_t)strip * g->kp * g->words * MR;
    for (int q = q0; q < q1; q++) {
        int j0 = q * NR, nr = g->N - j0 < NR ? g->N - j0 : NR;
        g->k->bf16_tile(g->kp, apack, g->panels + (size_t)q * g->panel_words, alpha, beta,
                        C + (size_t)i0 * ldc + j0, (size_t)ldc, mr, nr);
    }
}

/* item i of a phase: 0 and 1 pack op(B) and op(A) (pack_item), 2 runs unit i (strip
 * i % strips against the i / strips'th chunk of panels) */
static void run_item(const gemm_bf16 *g, int phase, long i, int strips, int chunk, float alpha, float beta, float *C,
                     int ldc, uint32_t *conv) {
    int panels = (g->N + NR - 1) / NR;
    if (phase < 2) pack_item(g, &g->ops[phase], i, conv);
    else {
        int c = (int)(i / strips), q1 = (c + 1) * chunk < panels ? (c + 1) * chunk : panels;
        run_unit(g, (int)(i % strips), c * chunk, q1, alpha, beta, C, ldc);
    }
}

sadm_status sadm_gemm_bf16(sadm_transpose ta, sadm_transpose tb, int M, int N, int K, float alpha, const float *A,
                           int lda, const float *B, int ldb, float beta, float *C, int ldc) {
    if (M <= 0 || N <= 0) return SADM_OK;
    if (K <= 0 || alpha == 0.0f) {
        for (int i = 0; i < M; i++)
            for (int j = 0; j < N; j++) C[(size_t)i * ldc + j] = beta == 0.0f ? 0.0f : beta * C[(size_t)i * ldc + j];
        return SADM_OK;
    }
    gemm_bf16 g = {sadm_kernels_active(), M, N, K, 0, 0, 0, NULL, NULL, NULL};
    g.kp = ((size_t)K + 1) / 2;
    g.words = (size_t)g.k->bf16_words;
    g.panel_words = g.kp * g.words * NR;
    int panels = (N + NR - 1) / NR, strips = (M + MR - 1) / MR;
    size_t chunk_panels = CHUNK_BYTES / (g.panel_words * sizeof(uint32_t));
    int chunk = chunk_panels < 1 ? 1 : chunk_panels > (size_t)panels ? panels : (int)chunk_panels;
    int chunks = (panels + chunk - 1) / chunk;
    chunk = (panels + chunks - 1) / chunks; /* equal chunks: the static schedule stays balanced */
    long units = (long)chunks * strips;

    sadm_scratch_mark mark = sadm_scratch_mark_get();
    g.panels = sadm_scratch_take((size_t)panels * g.panel_words * sizeof(uint32_t));
    g.strips = sadm_scratch_take((size_t)strips * g.kp * g.words * MR * sizeof(uint32_t));
    if (!g.panels || !g.strips) {
        sadm_scratch_release(mark);
        return sadm_error(SADM_ERR_NOMEM, "sadm_gemm_bf16: out of memory packing the %d x %d and %d x %d operands", M, K, K,
                           N);
    }
    /* three phases, each a list of independent items: pack op(B), pack op(A), run the units
     * (the barrier between phases: everything is packed before any tile reads it). op(B)'s
     * rows are the columns of C: B itself when tb is TRANS (the linear layers' weights),
     * k-major otherwise. */
    operand ops[2] = {{B, ldb, N, NR, tb != SADM_TRANS, g.panels}, {A, lda, M, MR, ta == SADM_TRANS, g.strips}};
    g.ops = ops;
    const long items[3] = {pack_items(&g, &ops[0]), pack_items(&g, &ops[1]), units};
    int failed = 0, nested = sadm_in_parallel();
    struct timespec t0, t1;
    if (!nested && sadm_gemm_profile_active()) clock_gettime(CLOCK_MONOTONIC, &t0);
    if (nested) {
        /* a tile product inside another operator's parallel loop (attention): this thread
         * alone, without opening a team of one and its barriers */
        sadm_scratch_mark mine = sadm_scratch_mark_get();
        uint32_t *conv = sadm_scratch_take(g.kp * g.words * sizeof(uint32_t));
        for (int phase = 0; conv && phase < 3; phase++)
            for (long i = 0; i < items[phase]; i++) run_item(&g, phase, i, strips, chunk, alpha, beta, C, ldc, conv);
        failed = conv == NULL;
        sadm_scratch_release(mine);
    } else {
#pragma omp parallel
        {
            sadm_scratch_mark mine = sadm_scratch_mark_get();
            uint32_t *conv = sadm_scratch_take(g.kp * g.words * sizeof(uint32_t)); /* one converted row */
            if (!conv) {
#pragma omp atomic write
                failed = 1;
            }
            for (int phase = 0; phase < 3; phase++) {
#pragma omp for schedule(static)
                for (long i = 0; i < items[phase]; i++)
                    if (conv) run_item(&g, phase, i, strips, chunk, alpha, beta, C, ldc, conv);
            }
            sadm_scratch_release(mine);
        }
    }
    if (!nested && sadm_gemm_profile_active()) {
        clock_gettime(CLOCK_MONOTONIC, &t1);
        sadm_gemm_profile_add((t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) * 1e-9, 2.0 * M * N * K);
    }
    sadm_scratch_release(mark);
    if (failed) return sadm_error(SADM_ERR_NOMEM, "sadm_gemm_bf16: out of memory for a thread's packing buffers");
    return SADM_OK;
}
