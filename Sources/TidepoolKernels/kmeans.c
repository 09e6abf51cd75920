// Nearest-centroid assignment for k-means and IVF, and the PQ table scan.
//
// Assignment is a small matrix product: for a block of points and a panel of 16 centroids,
// accumulate all the dot products in registers (6 points × 16 centroids = 12 AVX2
// accumulators), then turn them into scores `bias[j] + alpha·dot` and keep the smallest per
// point. Centroids are packed once per pass into panels ([dim][16] floats) so the inner loop
// reads them contiguously; for L2 the caller passes bias = |c|², alpha = −2, and for inner
// products bias = 0, alpha = −1.
#include "TidepoolKernels.h"
#include "simd_common.h"
#include <math.h>
#include <string.h>

size_t tp_panel_floats(size_t k, size_t dim) { return (k + 15) / 16 * 16 * dim; }

void tp_pack_panels(const float *c, size_t k, size_t dim, float *out) {
    size_t panels = (k + 15) / 16;
    for (size_t p = 0; p < panels; p++) {
        float *dst = out + p * 16 * dim;
        for (size_t d = 0; d < dim; d++) {
            for (size_t j = 0; j < 16; j++) {
                size_t col = p * 16 + j;
                dst[d * 16 + j] = col < k ? c[col * dim + d] : 0.0f;
            }
        }
    }
}

void tp_assign_scalar(const float *x, size_t n, size_t dim, const float *panels, const float *bias,
                      size_t k, float alpha, int32_t *best, float *score) {
    size_t panelCount = (k + 15) / 16;
    for (size_t i = 0; i < n; i++) {
        const float *xi = x + i * dim;
        float bs = INFINITY;
        int32_t bj = -1;
        for (size_t p = 0; p < panelCount; p++) {
            const float *pp = panels + p * 16 * dim;
            float acc[16] = {0};
            for (size_t d = 0; d < dim; d++)
                for (size_t j = 0; j < 16; j++) acc[j] += xi[d] * pp[d * 16 + j];
            for (size_t j = 0; j < 16 && p * 16 + j < k; j++) {
                float s = bias[p * 16 + j] + alpha * acc[j];
                if (s < bs || bj < 0) { bs = s; bj = (int32_t)(p * 16 + j); }
            }
        }
        best[i] = bj;
        score[i] = bs;
    }
}

#ifdef TP_X86
// Six points at a time; rows past `rows` repeat the last real one and are not written.
AVX2 static void assign_block_avx2(const float *const *xr, size_t rows, size_t dim, const float *panels,
                                   const float *bias, size_t k, float alpha, int32_t *best, float *score) {
    size_t panelCount = (k + 15) / 16;
    __m256 bestS[12];
    __m256i bestJ[12];
    for (int r = 0; r < 12; r++) { bestS[r] = _mm256_set1_ps(INFINITY); bestJ[r] = _mm256_set1_epi32(-1); }
    const __m256 va = _mm256_set1_ps(alpha);
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const float *x0 = xr[0], *x1 = xr[1], *x2 = xr[2], *x3 = xr[3], *x4 = xr[4], *x5 = xr[5];
    for (size_t p = 0; p < panelCount; p++) {
        const float *pp = panels + p * 16 * dim;
        __m256 a00 = _mm256_setzero_ps(), a01 = _mm256_setzero_ps(), a10 = _mm256_setzero_ps(), a11 = _mm256_setzero_ps();
        __m256 a20 = _mm256_setzero_ps(), a21 = _mm256_setzero_ps(), a30 = _mm256_setzero_ps(), a31 = _mm256_setzero_ps();
        __m256 a40 = _mm256_setzero_ps(), a41 = _mm256_setzero_ps(), a50 = _mm256_setzero_ps(), a51 = _mm256_setzero_ps();
        for (size_t d = 0; d < dim; d++) {
            __m256 c0 = _mm256_loadu_ps(pp + d * 16), c1 = _mm256_loadu_ps(pp + d * 16 + 8);
            __m256 b;
            b = _mm256_broadcast_ss(x0 + d); a00 = _mm256_fmadd_ps(b, c0, a00); a01 = _mm256_fmadd_ps(b, c1, a01);
            b = _mm256_broadcast_ss(x1 + d); a10 = _mm256_fmadd_ps(b, c0, a10); a11 = _mm256_fmadd_ps(b, c1, a11);
            b = _mm256_broadcast_ss(x2 + d); a20 = _mm256_fmadd_ps(b, c0, a20); a21 = _mm256_fmadd_ps(b, c1, a21);
            b = _mm256_broadcast_ss(x3 + d); a30 = _mm256_fmadd_ps(b, c0, a30); a31 = _mm256_fmadd_ps(b, c1, a31);
            b = _mm256_broadcast_ss(x4 + d); a40 = _mm256_fmadd_ps(b, c0, a40); a41 = _mm256_fmadd_ps(b, c1, a41);
            b = _mm256_broadcast_ss(x5 + d); a50 = _mm256_fmadd_ps(b, c0, a50); a51 = _mm256_fmadd_ps(b, c1, a51);
        }
        __m256 b0 = _mm256_loadu_ps(bias + p * 16), b1 = _mm256_loadu_ps(bias + p * 16 + 8);
        __m256i j0 = _mm256_add_epi32(lane, _mm256_set1_epi32((int)(p * 16)));
        __m256i j1 = _mm256_add_epi32(j0, _mm256_set1_epi32(8));
        __m256 acc[12] = {a00, a01, a10, a11, a20, a21, a30, a31, a40, a41, a50, a51};
        for (int r = 0; r < 12; r++) {
            __m256 s = _mm256_fmadd_ps(va, acc[r], (r & 1) ? b1 : b0);
            __m256 lt = _mm256_cmp_ps(s, bestS[r], _CMP_LT_OQ);
            bestS[r] = _mm256_blendv_ps(bestS[r], s, lt);
            bestJ[r] = _mm256_castps_si256(_mm256_blendv_ps(_mm256_castsi256_ps(bestJ[r]),
                                                            _mm256_castsi256_ps((r & 1) ? j1 : j0), lt));
        }
    }
    for (size_t r = 0; r < rows; r++) {
        float s[16];
        int32_t j[16];
        _mm256_storeu_ps(s, bestS[2 * r]); _mm256_storeu_ps(s + 8, bestS[2 * r + 1]);
        _mm256_storeu_si256((__m256i *)j, bestJ[2 * r]); _mm256_storeu_si256((__m256i *)(j + 8), bestJ[2 * r + 1]);
        float bs = INFINITY;
        int32_t bj = -1;
        // Ties go to the lowest centroid index, as in the scalar reference.
        for (int l = 0; l < 16; l++) {
            if (j[l] >= 0 && (s[l] < bs || (s[l] == bs && j[l] < bj) || bj < 0)) { bs = s[l]; bj = j[l]; }
        }
        best[r] = bj;
        score[r] = bs;
    }
}

AVX2 static void tp_assign_avx2(const float *x, size_t n, size_t dim, const float *panels, const float *bias,
                                size_t k, float alpha, int32_t *best, float *score) {
    for (size_t i = 0; i < n; i += 6) {
        size_t rows = n - i < 6 ? n - i : 6;
        const float *xr[6];
        for (size_t r = 0; r < 6; r++) xr[r] = x + (i + (r < rows ? r : rows - 1)) * dim;
        assign_block_avx2(xr, rows, dim, panels, bias, k, alpha, best + i, score + i);
    }
}
#endif

tp_assign_fn tp_assign_named(const char *name) {
    if (strcmp(name, "scalar") == 0) return tp_assign_scalar;
#ifdef TP_X86
    // AVX-512 machines run the AVX2 kernel: the product is bound by loads and FMAs either way.
    if (strcmp(name, "avx2-fma") == 0 || strcmp(name, "avx512f") == 0) return tp_cpu_has_avx2_fma() ? tp_assign_avx2 : 0;
#endif
    return 0;
}

tp_assign_fn tp_assign_kernel(void) {
    tp_assign_fn f = tp_assign_named(tp_kernels()->name);
    return f ? f : tp_assign_scalar;
}

// PQ scan: out[i] = sum over sub-spaces j of table[j * 256 + codes[i * m + j]].
// Bound by loads: codes are read 8 bytes at a time (one load for eight sub-spaces) and two codes
// are scanned together so their table loads overlap. Each code's sum is formed in the same order
// (even sub-spaces in one accumulator, odd in the other) whichever path scans it, so a code scores
// the same wherever it sits in a list.
static inline uint64_t tp_load_u64(const uint8_t *p) { uint64_t w; memcpy(&w, p, 8); return w; }

static inline float tp_pq_scan_one(const uint8_t *c, size_t m, const float *table) {
    float a0 = 0, a1 = 0;
    size_t j = 0;
    const float *t = table;
    for (; j + 8 <= m; j += 8, t += 8 * 256) {
        uint64_t w = tp_load_u64(c + j);
        a0 += t[0 * 256 + (w & 255)];         a1 += t[1 * 256 + ((w >> 8) & 255)];
        a0 += t[2 * 256 + ((w >> 16) & 255)]; a1 += t[3 * 256 + ((w >> 24) & 255)];
        a0 += t[4 * 256 + ((w >> 32) & 255)]; a1 += t[5 * 256 + ((w >> 40) & 255)];
        a0 += t[6 * 256 + ((w >> 48) & 255)]; a1 += t[7 * 256 + (w >> 56)];
    }
    for (; j < m; j++) { if ((j & 1) == 0) a0 += table[j * 256 + c[j]]; else a1 += table[j * 256 + c[j]]; }
    return a0 + a1;
}

void tp_pq_scan(const uint8_t *codes, size_t n, size_t m, const float *table, float *out) {
    size_t i = 0;
    for (; i + 2 <= n; i += 2) {
        const uint8_t *c = codes + i * m, *d = c + m;
        float a0 = 0, a1 = 0, b0 = 0, b1 = 0;
        size_t j = 0;
        const float *t = table;
        for (; j + 8 <= m; j += 8, t += 8 * 256) {
            uint64_t w = tp_load_u64(c + j), v = tp_load_u64(d + j);
            a0 += t[0 * 256 + (w & 255)];         b0 += t[0 * 256 + (v & 255)];
            a1 += t[1 * 256 + ((w >> 8) & 255)];  b1 += t[1 * 256 + ((v >> 8) & 255)];
            a0 += t[2 * 256 + ((w >> 16) & 255)]; b0 += t[2 * 256 + ((v >> 16) & 255)];
            a1 += t[3 * 256 + ((w >> 24) & 255)]; b1 += t[3 * 256 + ((v >> 24) & 255)];
            a0 += t[4 * 256 + ((w >> 32) & 255)]; b0 += t[4 * 256 + ((v >> 32) & 255)];
            a1 += t[5 * 256 + ((w >> 40) & 255)]; b1 += t[5 * 256 + ((v >> 40) & 255)];
            a0 += t[6 * 256 + ((w >> 48) & 255)]; b0 += t[6 * 256 + ((v >> 48) & 255)];
            a1 += t[7 * 256 + (w >> 56)];         b1 += t[7 * 256 + (v >> 56)];
        }
        for (; j < m; j++) {
            float x = table[j * 256 + c[j]], y = table[j * 256 + d[j]];
            if ((j & 1) == 0) { a0 += x; b0 += y; } else { a1 += x; b1 += y; }
        }
        out[i] = a0 + a1;
        out[i + 1] = b0 + b1;
    }
    if (i < n) out[i] = tp_pq_scan_one(codes + i * m, m, table);
}

// RaBitQ: per code, S = sum over the query's 4 bit planes of 2^j · popcount(code & plane_j),
// and popcount(code). Scalar reference, and a variant compiled for the POPCNT instruction.
void tp_rabitq_scan_scalar(const uint64_t *codes, size_t n, size_t words, const uint64_t *planes,
                           uint32_t *sums, uint32_t *pops) {
    for (size_t i = 0; i < n; i++) {
        const uint64_t *c = codes + i * words;
        uint32_t s = 0, p = 0;
        for (size_t w = 0; w < words; w++) {
            uint64_t x = c[w];
            p += (uint32_t)__builtin_popcountll(x);
            for (int j = 0; j < 4; j++) s += (uint32_t)__builtin_popcountll(x & planes[j * words + w]) << j;
        }
        sums[i] = s;
        pops[i] = p;
    }
}

#ifdef TP_X86
__attribute__((target("popcnt"))) static void tp_rabitq_scan_popcnt(const uint64_t *codes, size_t n, size_t words,
                                                                    const uint64_t *planes, uint32_t *sums, uint32_t *pops) {
    for (size_t i = 0; i < n; i++) {
        const uint64_t *c = codes + i * words;
        uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0, p = 0;
        for (size_t w = 0; w < words; w++) {
            uint64_t x = c[w];
            p += (uint64_t)__builtin_popcountll(x);
            s0 += (uint64_t)__builtin_popcountll(x & planes[w]);
            s1 += (uint64_t)__builtin_popcountll(x & planes[words + w]);
            s2 += (uint64_t)__builtin_popcountll(x & planes[2 * words + w]);
            s3 += (uint64_t)__builtin_popcountll(x & planes[3 * words + w]);
        }
        sums[i] = (uint32_t)(s0 + (s1 << 1) + (s2 << 2) + (s3 << 3));
        pops[i] = (uint32_t)p;
    }
}
static int tp_cpu_has_popcnt(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("popcnt");
}
#endif

tp_rabitq_fn tp_rabitq_kernel(void) {
#ifdef TP_X86
    if (tp_cpu_has_popcnt()) return tp_rabitq_scan_popcnt;
#endif
    return tp_rabitq_scan_scalar;
}

// RaBitQ lower bounds for n codes (see RaBitQ.swift for the algebra). Written for the loop
// vectorizer: the AVX2 build runs 8 rows per step.
#define RABITQ_LOWER_BODY                                                                           \
    for (size_t i = 0; i < n; i++) {                                                               \
        const float *f = factors + 4 * i;                                                          \
        float masked = delta * (float)sums[i] + lower * (float)pops[i];                            \
        float inv = 1.0f / f[1];                                                                   \
        float ip = (2.0f * masked - qsum) * invRootD * inv;                                        \
        float err = f[3] + (float)pops[i] * delta * invRootD * inv;                                \
        float scale = f[0] * qnorm;                                                                \
        float d = usesDot ? -(qdotc + f[2] + scale * ip) : f[0] * f[0] + qnorm * qnorm - 2.0f * scale * ip; \
        out[i] = d - (usesDot ? 1.0f : 2.0f) * scale * err;                                        \
    }

void tp_rabitq_lower_scalar(const uint32_t *sums, const uint32_t *pops, const float *factors, size_t n, float delta,
                            float lower, float qsum, float invRootD, float qnorm, float qdotc, int usesDot, float *out) {
    RABITQ_LOWER_BODY
}
#ifdef TP_X86
AVX2 static void tp_rabitq_lower_avx2(const uint32_t *sums, const uint32_t *pops, const float *factors, size_t n, float delta,
                                      float lower, float qsum, float invRootD, float qnorm, float qdotc, int usesDot, float *out) {
    RABITQ_LOWER_BODY
}
#endif
tp_rabitq_lower_fn tp_rabitq_lower_kernel(void) {
#ifdef TP_X86
    if (tp_cpu_has_avx2_fma()) return tp_rabitq_lower_avx2;
#endif
    return tp_rabitq_lower_scalar;
}

// PQ distance table for one query residual t against transposed codebooks (per sub-space j,
// per coordinate d, the 256 codewords' values contiguous): out[j·256 + c] = |t_j|² − 2·t_j·b_jc + |b_jc|².
#define PQ_TABLE_BODY                                                                             \
    for (size_t j = 0; j < m; j++) {                                                             \
        const float *tj = t + j * ds;                                                            \
        float tn = 0;                                                                            \
        for (size_t d = 0; d < ds; d++) tn += tj[d] * tj[d];                                     \
        float *o = out + j * 256;                                                                \
        const float *bn = bnorm + j * 256;                                                       \
        const float *col = booksT + j * ds * 256;                                                \
        if (ds == 4) {                                                                           \
            /* One pass, each output written once: the common case (dimension / 4 sub-spaces). */ \
            float w0 = -2.0f * tj[0], w1 = -2.0f * tj[1], w2 = -2.0f * tj[2], w3 = -2.0f * tj[3]; \
            for (size_t c = 0; c < 256; c++)                                                     \
                o[c] = tn + bn[c] + w0 * col[c] + w1 * col[256 + c] + w2 * col[512 + c] + w3 * col[768 + c]; \
        } else {                                                                                 \
            for (size_t c = 0; c < 256; c++) o[c] = tn + bn[c];                                  \
            for (size_t d = 0; d < ds; d++) {                                                    \
                float w = -2.0f * tj[d];                                                         \
                for (size_t c = 0; c < 256; c++) o[c] += w * col[d * 256 + c];                   \
            }                                                                                    \
        }                                                                                        \
    }

void tp_pq_table_l2_scalar(const float *t, const float *booksT, const float *bnorm, size_t m, size_t ds, float *out) {
    PQ_TABLE_BODY
}
#ifdef TP_X86
AVX2 static void tp_pq_table_l2_avx2(const float *t, const float *booksT, const float *bnorm, size_t m, size_t ds, float *out) {
    PQ_TABLE_BODY
}
#endif
tp_pq_table_fn tp_pq_table_l2_kernel(void) {
#ifdef TP_X86
    if (tp_cpu_has_avx2_fma()) return tp_pq_table_l2_avx2;
#endif
    return tp_pq_table_l2_scalar;
}
