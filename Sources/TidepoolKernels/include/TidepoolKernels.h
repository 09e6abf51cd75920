// TidepoolKernels: SIMD distance kernels and CRC32C with runtime CPU dispatch.
//
// Every kernel has a scalar reference (`*_scalar`) that the tests compare the
// SIMD variants against. `tp_kernels()` returns the table chosen for this CPU
// once; callers cache the function pointers so the hot path is one indirect call.
#ifndef TIDEPOOL_KERNELS_H
#define TIDEPOOL_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// One vector against one vector.
typedef float (*tp_pair_fn)(const float *a, const float *b, size_t n);
/// One query against `count` contiguous vectors of `dim` floats; writes `count` results.
typedef void (*tp_batch_fn)(const float *q, const float *base, size_t count, size_t dim, float *out);

typedef struct tp_kernel_table {
    tp_pair_fn dot;        // sum a[i]*b[i]
    tp_pair_fn l2sq;       // sum (a[i]-b[i])^2
    tp_batch_fn dot_batch;
    tp_batch_fn l2sq_batch;
    const char *name;      // "scalar", "avx2-fma", "avx512f", "neon"
} tp_kernel_table;

/// The best kernel table for the running CPU (chosen once, thread-safe).
const tp_kernel_table *tp_kernels(void);
/// The table for a named variant, or NULL when the CPU cannot run it. For tests and benchmarks.
const tp_kernel_table *tp_kernels_named(const char *name);

// Scalar references.
float tp_dot_scalar(const float *a, const float *b, size_t n);
float tp_l2sq_scalar(const float *a, const float *b, size_t n);

/// SQ8: a float query against 8-bit codes (the quantizer folds offsets and steps into `q`).
typedef float (*tp_sq8_dot_fn)(const float *q, const uint8_t *codes, size_t n);            // sum q[i]*c[i]
typedef float (*tp_sq8_l2_fn)(const float *q, const float *w, const uint8_t *codes, size_t n); // sum w[i]*(q[i]-c[i])^2
typedef struct tp_sq8_table {
    tp_sq8_dot_fn dot;
    tp_sq8_l2_fn l2;
    const char *name;
} tp_sq8_table;
/// The SQ8 kernels of the same variant `tp_kernels()` chose.
const tp_sq8_table *tp_sq8_kernels(void);
/// A named SQ8 variant, or NULL when the CPU cannot run it.
const tp_sq8_table *tp_sq8_kernels_named(const char *name);
float tp_sq8_dot_scalar(const float *q, const uint8_t *codes, size_t n);
float tp_sq8_l2_scalar(const float *q, const float *w, const uint8_t *codes, size_t n);

/// f16 storage: a float query against IEEE binary16 vectors.
typedef float (*tp_f16_fn)(const float *q, const uint16_t *h, size_t n);
typedef struct tp_f16_table {
    tp_f16_fn dot;   // sum q[i]*h[i]
    tp_f16_fn l2;    // sum (q[i]-h[i])^2
    const char *name;
} tp_f16_table;
const tp_f16_table *tp_f16_kernels(void);
const tp_f16_table *tp_f16_kernels_named(const char *name);
float tp_f16_dot_scalar(const float *q, const uint16_t *h, size_t n);
float tp_f16_l2_scalar(const float *q, const uint16_t *h, size_t n);
/// Conversions (round to nearest even), portable C.
float tp_f16_to_f32(uint16_t h);
uint16_t tp_f32_to_f16(float f);
void tp_f32_to_f16_array(const float *src, uint16_t *dst, size_t n);

/// k-means / IVF assignment: for each of `n` points (row-major, `dim` floats), the centroid
/// `j < k` with the smallest score `bias[j] + alpha * dot(x, c_j)`, written to `best` and
/// `score`. Centroids are packed by `tp_pack_panels` into `tp_panel_floats(k, dim)` floats;
/// `bias` holds at least k rounded up to 16 entries. L2: bias = |c|^2, alpha = -2
/// (score + |x|^2 is the squared distance). Inner product: bias = 0, alpha = -1.
typedef void (*tp_assign_fn)(const float *x, size_t n, size_t dim, const float *panels, const float *bias,
                             size_t k, float alpha, int32_t *best, float *score);
size_t tp_panel_floats(size_t k, size_t dim);
void tp_pack_panels(const float *c, size_t k, size_t dim, float *out);
tp_assign_fn tp_assign_kernel(void);
tp_assign_fn tp_assign_named(const char *name);
void tp_assign_scalar(const float *x, size_t n, size_t dim, const float *panels, const float *bias,
                      size_t k, float alpha, int32_t *best, float *score);

/// Product quantization: out[i] = sum over j < m of table[j * 256 + codes[i * m + j]].
void tp_pq_scan(const uint8_t *codes, size_t n, size_t m, const float *table, float *out);

/// PQ fast scan. The float table (m × 256) quantized to bytes: mins[j] = table row j's minimum,
/// out[j·256 + c] = round((table − mins[j]) / step), one step for all rows; returns the step and
/// writes Σ mins to *bias, so an estimate is bias + step · (sum of bytes). Same bytes on every path.
typedef float (*tp_pq_quantize_fn)(const float *table, size_t m, float *mins, uint8_t *out, float *bias);
tp_pq_quantize_fn tp_pq_quantize_kernel(void);
/// Variants: "scalar", "avx2", "avx512" (AVX-512BW); nil when the CPU lacks one.
tp_pq_quantize_fn tp_pq_quantize_named(const char *name);
float tp_pq_quantize_table_scalar(const float *table, size_t m, float *mins, uint8_t *out, float *bias);
/// Codes in blocks of 64 rows, sub-space major (block[j·64 + r]); out[b·64 + r] = sum over j < m
/// of t8[j·256 + code] (m ≤ 257, so the u16 sums cannot overflow). Variants: "scalar", "avx512vbmi".
typedef void (*tp_pq_scan_blocked_fn)(const uint8_t *blocks, size_t nblocks, size_t m, const uint8_t *t8, uint16_t *out);
tp_pq_scan_blocked_fn tp_pq_scan_blocked_kernel(void);
tp_pq_scan_blocked_fn tp_pq_scan_blocked_named(const char *name);
void tp_pq_scan_blocked_scalar(const uint8_t *blocks, size_t nblocks, size_t m, const uint8_t *t8, uint16_t *out);

/// RaBitQ: for each of `n` codes of `words` u64, sums[i] = sum over j < 4 of 2^j * popcount(code & planes[j])
/// (planes: 4 × words u64, the query's 4-bit values by bit), and pops[i] = popcount(code).
typedef void (*tp_rabitq_fn)(const uint64_t *codes, size_t n, size_t words, const uint64_t *planes,
                             uint32_t *sums, uint32_t *pops);
tp_rabitq_fn tp_rabitq_kernel(void);
void tp_rabitq_scan_scalar(const uint64_t *codes, size_t n, size_t words, const uint64_t *planes,
                           uint32_t *sums, uint32_t *pops);

/// RaBitQ: lower bounds on the engine distance of `n` codes from their popcount sums and
/// factors (4 floats per code: |o-c|, x.o', (o-c).c, bound spread); see RaBitQ.swift.
typedef void (*tp_rabitq_lower_fn)(const uint32_t *sums, const uint32_t *pops, const float *factors, size_t n,
                                   float delta, float lower, float qsum, float invRootD, float qnorm, float qdotc,
                                   int usesDot, float *out);
tp_rabitq_lower_fn tp_rabitq_lower_kernel(void);
void tp_rabitq_lower_scalar(const uint32_t *sums, const uint32_t *pops, const float *factors, size_t n, float delta,
                            float lower, float qsum, float invRootD, float qnorm, float qdotc, int usesDot, float *out);

/// PQ: the squared-L2 distance table of a query residual `t` (m·ds floats) against codebooks stored
/// transposed (`booksT[(j·ds + d)·256 + c]`) with their squared norms (`bnorm[j·256 + c]`).
typedef void (*tp_pq_table_fn)(const float *t, const float *booksT, const float *bnorm, size_t m, size_t ds, float *out);
tp_pq_table_fn tp_pq_table_l2_kernel(void);
void tp_pq_table_l2_scalar(const float *t, const float *booksT, const float *bnorm, size_t m, size_t ds, float *out);

/// CRC32C (Castagnoli), hardware-accelerated where available. Start with crc = 0.
uint32_t tp_crc32c(uint32_t crc, const void *data, size_t len);
/// Software CRC32C reference.
uint32_t tp_crc32c_scalar(uint32_t crc, const void *data, size_t len);

/// Returns freed heap pages to the OS (glibc `malloc_trim`); a no-op elsewhere.
void tp_release_free_heap(void);

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

#ifdef __cplusplus
}
#endif
#endif
