// TidepoolKernels: SIMD kernels with runtime CPU dispatch, in C because per-function CPU targets
// (`__attribute__((target))`) cannot be expressed in Swift, and no global compiler flag may be set
// (the package must stay usable as a dependency).
//
// One dispatch style for every family of kernels: a table of function pointers per variant.
// `tp_FAMILY_kernels()` returns the best variant this CPU can run (chosen once, thread-safe);
// `tp_FAMILY_kernels_named(name)` returns a named variant, or NULL when the CPU cannot run it or
// the family has no such variant (for tests and benchmarks, which compare every variant against
// the scalar one). One naming scheme for variants: the instruction-set extensions a variant is
// compiled for beyond the base architecture, as the compiler's target attribute spells them,
// joined by '-' ("avx2-fma", "avx2-fma-f16c", "avx2-fma-popcnt", "avx512f", "avx512bw", "avx512vbmi", "popcnt",
// "sse4.2", "neon"), and "scalar" for the portable reference every family has.
#ifndef TIDEPOOL_KERNELS_H
#define TIDEPOOL_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#pragma clang assume_nonnull begin

/// Every variant name any family may have, best first within an architecture; `*count` is set.
const char *_Nonnull const *_Nonnull tp_kernel_variant_names(size_t *count);

// ---------------------------------------------------------------- f32 distances

/// One vector against one vector.
typedef float (*tp_pair_fn)(const float *a, const float *b, size_t n);
/// One query against `count` contiguous vectors of `dim` floats; writes `count` results.
typedef void (*tp_batch_fn)(const float *q, const float *base, size_t count, size_t dim, float *out);

typedef struct tp_f32_table {
    tp_pair_fn dot;          // sum a[i]*b[i]
    tp_pair_fn l2sq;         // sum (a[i]-b[i])^2
    tp_batch_fn dot_batch;
    tp_batch_fn l2sq_batch;
    const char *name;        // "scalar", "avx2-fma", "avx512f", "neon"
} tp_f32_table;
const tp_f32_table *tp_f32_kernels(void);
const tp_f32_table *_Nullable tp_f32_kernels_named(const char *name);

// ---------------------------------------------------------------- SQ8 codes

/// A float query against 8-bit codes (the quantizer folds offsets and steps into `q`).
typedef float (*tp_sq8_dot_fn)(const float *q, const uint8_t *codes, size_t n);             // sum q[i]*c[i]
typedef float (*tp_sq8_l2_fn)(const float *q, const float *w, const uint8_t *codes, size_t n); // sum w[i]*(q[i]-c[i])^2
typedef struct tp_sq8_table {
    tp_sq8_dot_fn dot;
    tp_sq8_l2_fn l2;
    const char *name;        // "scalar", "avx2-fma", "avx512f", "neon"
} tp_sq8_table;
const tp_sq8_table *tp_sq8_kernels(void);
const tp_sq8_table *_Nullable tp_sq8_kernels_named(const char *name);

// ---------------------------------------------------------------- f16 vectors

/// A float query against IEEE binary16 vectors.
typedef float (*tp_f16_fn)(const float *q, const uint16_t *h, size_t n);
typedef struct tp_f16_table {
    tp_f16_fn dot;           // sum q[i]*h[i]
    tp_f16_fn l2;            // sum (q[i]-h[i])^2
    const char *name;        // "scalar", "avx2-fma-f16c", "avx512f", "neon"
} tp_f16_table;
const tp_f16_table *tp_f16_kernels(void);
const tp_f16_table *_Nullable tp_f16_kernels_named(const char *name);
/// Conversions (round to nearest even), portable C; not dispatched.
float tp_f16_to_f32(uint16_t h);
uint16_t tp_f32_to_f16(float f);
void tp_f32_to_f16_array(const float *src, uint16_t *dst, size_t n);

// ---------------------------------------------------------------- k-means assignment

/// For each of `n` points (row-major, `dim` floats), the centroid `j < k` with the smallest score
/// `bias[j] + alpha * dot(x, c_j)`, written to `best` and `score`. Centroids are packed by
/// `tp_pack_panels` into `tp_panel_floats(k, dim)` floats; `bias` holds at least k rounded up to
/// 16 entries. L2: bias = |c|^2, alpha = -2 (score + |x|^2 is the squared distance). Inner
/// product: bias = 0, alpha = -1.
typedef void (*tp_assign_fn)(const float *x, size_t n, size_t dim, const float *panels, const float *bias,
                             size_t k, float alpha, int32_t *best, float *score);
typedef struct tp_kmeans_table {
    tp_assign_fn assign;
    const char *name;        // "scalar", "avx2-fma" (AVX-512 machines run it too: the product is bound by loads and FMAs)
} tp_kmeans_table;
const tp_kmeans_table *tp_kmeans_kernels(void);
const tp_kmeans_table *_Nullable tp_kmeans_kernels_named(const char *name);
size_t tp_panel_floats(size_t k, size_t dim);
void tp_pack_panels(const float *c, size_t k, size_t dim, float *out);

// ---------------------------------------------------------------- batched exact search

/// The k best (smallest) scores per query, each a max-heap (worst first) in `dist`/`keys` at
/// `j * k`, `count[j]` filled; `threshold[j]` is +inf until query j holds k, then its worst score
/// (what a newcomer must not exceed; ties rank by key, smaller first). `threshold` holds
/// `tp_panel_floats(nq, 1)` entries: those past `nq` must be -inf (padding lanes never enter).
typedef struct tp_topk_heaps {
    float *dist;
    uint64_t *keys;
    uint32_t *count;
    float *threshold;
    size_t k;
} tp_topk_heaps;
/// Offers one score to query j's heap (non-finite scores never enter).
void tp_topk_push(tp_topk_heaps *h, size_t j, float s, uint64_t key);

/// For rows i < n of `x` (row-major, `dim` floats) and the `nq` queries packed by `tp_pack_panels`,
/// offers the score rowBias[i] + alpha · x_i·q_j, with key keyBase + i, to query j's heap. A row
/// whose bias is +inf (dead, filtered out) never enters. L2: rowBias = |x|², alpha = −2 (add |q|²
/// for the distance); inner products: rowBias = 0 (or 1 for cosine), alpha = −1.
typedef void (*tp_exact_scan_fn)(const float *x, size_t n, size_t dim, const float *rowBias, const float *panels,
                                 size_t nq, float alpha, uint64_t keyBase, tp_topk_heaps *heaps);
typedef struct tp_exact_table {
    tp_exact_scan_fn scan;
    const char *name;        // "scalar", "avx2-fma", "avx512f"
} tp_exact_table;
const tp_exact_table *tp_exact_kernels(void);
const tp_exact_table *_Nullable tp_exact_kernels_named(const char *name);

// ---------------------------------------------------------------- product quantization

/// List-order scan: out[i] = sum over j < m of table[j * 256 + codes[i * m + j]].
typedef void (*tp_pq_scan_fn)(const uint8_t *codes, size_t n, size_t m, const float *table, float *out);
/// The squared-L2 table of a query residual `t` (m·ds floats) against codebooks stored transposed
/// (`booksT[(j·ds + d)·256 + c]`) with their squared norms (`bnorm[j·256 + c]`).
typedef void (*tp_pq_table_fn)(const float *t, const float *booksT, const float *bnorm, size_t m, size_t ds, float *out);
/// Fast scan, step 1: the float table (m × 256) quantized to bytes: mins[j] = table row j's
/// minimum, out[j·256 + c] = round((table − mins[j]) / step), one step for all rows; returns the
/// step and writes Σ mins to *bias, so an estimate is bias + step · (sum of bytes). Every variant
/// gives the same bytes.
typedef float (*tp_pq_quantize_fn)(const float *table, size_t m, float *mins, uint8_t *out, float *bias);
/// Fast scan, step 2: codes in blocks of 64 rows, sub-space major (block[j·64 + r]);
/// out[b·64 + r] = sum over j < m of t8[j·256 + code] (m ≤ 257, so the u16 sums cannot overflow).
typedef void (*tp_pq_scan_blocked_fn)(const uint8_t *blocks, size_t nblocks, size_t m, const uint8_t *t8, uint16_t *out);
typedef struct tp_pq_table {
    tp_pq_scan_fn scan;
    tp_pq_table_fn table_l2;
    tp_pq_quantize_fn quantize;
    tp_pq_scan_blocked_fn scan_blocked;
    const char *name;        // "scalar", "avx2-fma", "avx512bw", "avx512vbmi"
} tp_pq_table;
const tp_pq_table *tp_pq_kernels(void);
const tp_pq_table *_Nullable tp_pq_kernels_named(const char *name);

// ---------------------------------------------------------------- RaBitQ

/// For each of `n` codes of `words` u64: sums[i] = sum over j < 4 of 2^j * popcount(code & planes[j])
/// (planes: 4 × words u64, the query's 4-bit values by bit), and pops[i] = popcount(code).
typedef void (*tp_rabitq_scan_fn)(const uint64_t *codes, size_t n, size_t words, const uint64_t *planes,
                                  uint32_t *sums, uint32_t *pops);
/// A query prepared against one list (see RaBitQ.swift): the step and minimum of its 4-bit
/// quantization, the sum of its unit residual's components, 1/√dimension, its residual's norm,
/// q·c (inner products only) and whether the metric ranks by inner product.
typedef struct tp_rabitq_query {
    float delta, lower, qsum, inv_root_d, qnorm, qdotc;
    int uses_dot;
} tp_rabitq_query;
/// Lower bounds on the engine distance of `n` codes from their popcount sums and factors
/// (4 floats per code: |o-c|, x.o', (o-c).c, bound spread).
typedef void (*tp_rabitq_lower_fn)(const uint32_t *sums, const uint32_t *pops, const float *factors, size_t n,
                                   const tp_rabitq_query *query, float *out);
typedef struct tp_rabitq_table {
    tp_rabitq_scan_fn scan;
    tp_rabitq_lower_fn lower_bounds;
    const char *name;        // "scalar", "popcnt", "avx2-fma-popcnt"
} tp_rabitq_table;
const tp_rabitq_table *tp_rabitq_kernels(void);
const tp_rabitq_table *_Nullable tp_rabitq_kernels_named(const char *name);

// ---------------------------------------------------------------- CRC32C

/// CRC32C (Castagnoli) of `len` bytes, continuing from `crc` (start with 0).
typedef uint32_t (*tp_crc32c_fn)(uint32_t crc, const void *_Nullable data, size_t len);
typedef struct tp_crc32c_table {
    tp_crc32c_fn crc32c;
    const char *name;        // "scalar", "sse4.2"
} tp_crc32c_table;
const tp_crc32c_table *tp_crc32c_kernels(void);
const tp_crc32c_table *_Nullable tp_crc32c_kernels_named(const char *name);

// ---------------------------------------------------------------- platform

/// Returns freed heap pages to the OS (glibc `malloc_trim`); a no-op elsewhere.
void tp_release_free_heap(void);

/// Raises the calling thread's nice value by `nice_increment` (Linux; elsewhere nothing), so
/// background builds yield the cores to request work. Returns 0, or -1 with errno set.
int tp_lower_thread_priority(int nice_increment);

/// The calling thread's nice value (Linux; 0 elsewhere).
int tp_thread_nice(void);

/// Asks the kernel to start reading the `n` ranges `starts[i] ..< starts[i] + lengths[i]` of
/// this process's file mappings (each start page-aligned) without waiting: `MADV_WILLNEED` for
/// all of them in one `process_madvise` call where the kernel has it (Linux 5.12+), one
/// `madvise` per range otherwise. Returns how many system calls it made.
int tp_advise_willneed(const void *_Nonnull const *_Nonnull starts, const size_t *_Nonnull lengths, size_t n);

static inline void tp_prefetch(const void *p) {
#if defined(__GNUC__) || defined(__clang__)
    __builtin_prefetch(p, 0, 3);
#endif
}

/// Prefetches every cache line of `bytes` bytes starting at `p`.
static inline void tp_prefetch_range(const void *p, size_t bytes) {
#if defined(__GNUC__) || defined(__clang__)
    const char *c = (const char *)p;
    for (size_t off = 0; off < bytes; off += 64) __builtin_prefetch(c + off, 0, 3);
#endif
}

#pragma clang assume_nonnull end

#ifdef __cplusplus
}
#endif
#endif
