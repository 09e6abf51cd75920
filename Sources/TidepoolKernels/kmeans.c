// Nearest-centroid assignment for k-means and IVF.
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

static void assign_scalar(const float *x, size_t n, size_t dim, const float *panels, const float *bias,
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
        best[i] = bj < 0 ? 0 : bj;   // every score NaN (non-finite input): any valid index, never -1
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
        best[r] = bj < 0 ? 0 : bj;   // every score NaN (non-finite input): any valid index, never -1
        score[r] = bs;
    }
}

AVX2 static void assign_avx2(const float *x, size_t n, size_t dim, const float *panels, const float *bias,
                                size_t k, float alpha, int32_t *best, float *score) {
    for (size_t i = 0; i < n; i += 6) {
        size_t rows = n - i < 6 ? n - i : 6;
        const float *xr[6];
        for (size_t r = 0; r < 6; r++) xr[r] = x + (i + (r < rows ? r : rows - 1)) * dim;
        assign_block_avx2(xr, rows, dim, panels, bias, k, alpha, best + i, score + i);
    }
}
#endif

static const tp_kmeans_table kmeans_scalar_table = {assign_scalar, "scalar"};
#ifdef TP_X86
static const tp_kmeans_table kmeans_avx2_table = {assign_avx2, "avx2-fma"};
#endif

static const tp_variant kmeans_variants[] = {
#ifdef TP_X86
    {&kmeans_avx2_table, "avx2-fma", tp_cpu_avx2_fma},
#endif
    {&kmeans_scalar_table, "scalar", tp_cpu_any},
};
TP_DISPATCH(tp_kmeans_table, tp_kmeans, kmeans_variants)
