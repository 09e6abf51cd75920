// Batched exact search: many queries against many rows, the k best rows kept per query.
//
// The work is a matrix product (rows × queries) followed by a selection, so it is blocked the way
// a GEMM is: queries are packed into panels of 16 ([dim][16] floats, `tp_pack_panels`) and a block
// of panels sized for the L2 cache is held there while rows stream past; a tile of rows × panels
// accumulates its dot products in registers (AVX-512: 8 rows × 48 queries = 24 accumulators, two
// FMA pipes kept busy by 11 loads per 24 FMAs), and its epilogue compares the 8 × 48 scores with
// each query's admission threshold in SIMD, so that only the rare score that beats a query's
// current k-th best leaves the registers. No score matrix is ever written.
#include "TidepoolKernels.h"
#include "simd_common.h"
#include <math.h>

// ---------------------------------------------------------------- the per-query top-k heaps

// `after(a, b)`: a ranks after b (worse distance, or an equal distance and a larger key): the
// order TopK.swift uses, so that ties resolve the same way.
static inline int after(float da, uint64_t ka, float db, uint64_t kb) { return da != db ? da > db : ka > kb; }

void tp_topk_push(tp_topk_heaps *h, size_t j, float s, uint64_t key) {
    if (!(s < INFINITY)) return;                       // dead or filtered rows (+inf) and NaN never enter
    size_t k = h->k;
    float *dist = h->dist + j * k;
    uint64_t *keys = h->keys + j * k;
    uint32_t n = h->count[j];
    if (n < k) {
        size_t i = n;
        while (i > 0) {
            size_t p = (i - 1) >> 1;
            if (!after(s, key, dist[p], keys[p])) break;
            dist[i] = dist[p]; keys[i] = keys[p];
            i = p;
        }
        dist[i] = s; keys[i] = key;
        h->count[j] = ++n;
        h->threshold[j] = n < k ? INFINITY : dist[0];
        return;
    }
    if (!after(dist[0], keys[0], s, key)) return;
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        float md = s; uint64_t mk = key;
        if (l < k && after(dist[l], keys[l], md, mk)) { m = l; md = dist[l]; mk = keys[l]; }
        if (r < k && after(dist[r], keys[r], md, mk)) { m = r; md = dist[r]; mk = keys[r]; }
        if (m == i) break;
        dist[i] = dist[m]; keys[i] = keys[m];
        i = m;
    }
    dist[i] = s; keys[i] = key;
    h->threshold[j] = dist[0];
}

// Panels held in L2 at once: about 512 KiB of packed queries, a multiple of 3 panels.
static size_t panels_per_block(size_t dim) {
    size_t b = (512u << 10) / (64 * (dim ? dim : 1));
    b = b / 3 * 3;
    return b < 3 ? 3 : b;
}

// ---------------------------------------------------------------- scalar reference

static void exact_scan_scalar(const float *x, size_t n, size_t dim, const float *rowBias, const float *panels,
                              size_t nq, float alpha, uint64_t keyBase, tp_topk_heaps *heaps) {
    size_t panelCount = (nq + 15) / 16;
    for (size_t i = 0; i < n; i++) {
        const float *xi = x + i * dim;
        if (!(rowBias[i] < INFINITY)) continue;
        for (size_t p = 0; p < panelCount; p++) {
            const float *pp = panels + p * 16 * dim;
            float acc[16] = {0};
            for (size_t d = 0; d < dim; d++)
                for (size_t l = 0; l < 16; l++) acc[l] += xi[d] * pp[d * 16 + l];
            for (size_t l = 0; l < 16 && p * 16 + l < nq; l++) {
                float s = rowBias[i] + alpha * acc[l];
                if (s <= heaps->threshold[p * 16 + l]) tp_topk_push(heaps, p * 16 + l, s, keyBase + i);
            }
        }
    }
}

#ifdef TP_X86
// ---------------------------------------------------------------- AVX2: 6 rows × 16 queries

AVX2 static void tile_avx2(const float *const *xr, size_t rows, size_t dim, const float *pp, size_t p,
                           const float *bias, float alpha, uint64_t key0, tp_topk_heaps *h) {
    __m256 acc[6][2];
#pragma clang loop unroll(full)
    for (int r = 0; r < 6; r++) { acc[r][0] = _mm256_setzero_ps(); acc[r][1] = _mm256_setzero_ps(); }
    for (size_t d = 0; d < dim; d++) {
        __m256 c0 = _mm256_loadu_ps(pp + d * 16), c1 = _mm256_loadu_ps(pp + d * 16 + 8);
#pragma clang loop unroll(full)
        for (int r = 0; r < 6; r++) {
            __m256 b = _mm256_broadcast_ss(xr[r] + d);
            acc[r][0] = _mm256_fmadd_ps(b, c0, acc[r][0]);
            acc[r][1] = _mm256_fmadd_ps(b, c1, acc[r][1]);
        }
    }
    const __m256 va = _mm256_set1_ps(alpha);
    for (size_t r = 0; r < rows; r++) {
        __m256 vb = _mm256_set1_ps(bias[r]);
        __m256 s0 = _mm256_fmadd_ps(va, acc[r][0], vb), s1 = _mm256_fmadd_ps(va, acc[r][1], vb);
        const float *t = h->threshold + p * 16;
        unsigned m = (unsigned)_mm256_movemask_ps(_mm256_cmp_ps(s0, _mm256_loadu_ps(t), _CMP_LE_OQ)) |
                     (unsigned)_mm256_movemask_ps(_mm256_cmp_ps(s1, _mm256_loadu_ps(t + 8), _CMP_LE_OQ)) << 8;
        if (!m) continue;
        float s[16];
        _mm256_storeu_ps(s, s0); _mm256_storeu_ps(s + 8, s1);
        while (m) {
            int l = __builtin_ctz(m);
            m &= m - 1;
            tp_topk_push(h, p * 16 + (size_t)l, s[l], key0 + r);
        }
    }
}

AVX2 static void exact_scan_avx2(const float *x, size_t n, size_t dim, const float *rowBias, const float *panels,
                                 size_t nq, float alpha, uint64_t keyBase, tp_topk_heaps *heaps) {
    size_t panelCount = (nq + 15) / 16, block = panels_per_block(dim);
    for (size_t pb = 0; pb < panelCount; pb += block) {
        size_t pe = pb + block < panelCount ? pb + block : panelCount;
        for (size_t i = 0; i < n; i += 6) {
            size_t rows = n - i < 6 ? n - i : 6;
            const float *xr[6];
            for (size_t r = 0; r < 6; r++) xr[r] = x + (i + (r < rows ? r : rows - 1)) * dim;
            for (size_t p = pb; p < pe; p++)
                tile_avx2(xr, rows, dim, panels + p * 16 * dim, p, rowBias + i, alpha, keyBase + i, heaps);
        }
    }
}

// ---------------------------------------------------------------- AVX-512: 8 rows × 48 queries

// `NP` panels (1 to 3) of 16 queries; the compiler specializes each call site's constant.
AVX512 static inline __attribute__((always_inline)) void tile_avx512(
    const float *const *xr, size_t rows, size_t dim, const float *pp, size_t p, const int NP,
    const float *bias, float alpha, uint64_t key0, tp_topk_heaps *h) {
    __m512 acc[8][3];
#pragma clang loop unroll(full)
    for (int r = 0; r < 8; r++)
#pragma clang loop unroll(full)
        for (int c = 0; c < 3; c++) acc[r][c] = _mm512_setzero_ps();
    const size_t stride = 16 * dim;
    for (size_t d = 0; d < dim; d++) {
        __m512 c[3];
#pragma clang loop unroll(full)
        for (int k = 0; k < 3; k++) c[k] = k < NP ? _mm512_loadu_ps(pp + k * stride + d * 16) : _mm512_setzero_ps();
#pragma clang loop unroll(full)
        for (int r = 0; r < 8; r++) {
            __m512 b = _mm512_set1_ps(xr[r][d]);
#pragma clang loop unroll(full)
            for (int k = 0; k < 3; k++)
                if (k < NP) acc[r][k] = _mm512_fmadd_ps(b, c[k], acc[r][k]);
        }
    }
    const __m512 va = _mm512_set1_ps(alpha);
    for (size_t r = 0; r < rows; r++) {
        __m512 vb = _mm512_set1_ps(bias[r]);
#pragma clang loop unroll(full)
        for (int k = 0; k < 3; k++) {
            if (k >= NP) break;
            __m512 s = _mm512_fmadd_ps(va, acc[r][k], vb);
            const float *t = h->threshold + (p + (size_t)k) * 16;
            __mmask16 m = _mm512_cmp_ps_mask(s, _mm512_loadu_ps(t), _CMP_LE_OQ);
            if (!m) continue;
            float sv[16];
            _mm512_storeu_ps(sv, s);
            unsigned mm = m;
            while (mm) {
                int l = __builtin_ctz(mm);
                mm &= mm - 1;
                tp_topk_push(h, (p + (size_t)k) * 16 + (size_t)l, sv[l], key0 + r);
            }
        }
    }
}

AVX512 static void exact_scan_avx512(const float *x, size_t n, size_t dim, const float *rowBias, const float *panels,
                                     size_t nq, float alpha, uint64_t keyBase, tp_topk_heaps *heaps) {
    size_t panelCount = (nq + 15) / 16, block = panels_per_block(dim);
    for (size_t pb = 0; pb < panelCount; pb += block) {
        size_t pe = pb + block < panelCount ? pb + block : panelCount;
        for (size_t i = 0; i < n; i += 8) {
            size_t rows = n - i < 8 ? n - i : 8;
            const float *xr[8];
            for (size_t r = 0; r < 8; r++) xr[r] = x + (i + (r < rows ? r : rows - 1)) * dim;
            size_t p = pb;
            for (; p + 3 <= pe; p += 3)
                tile_avx512(xr, rows, dim, panels + p * 16 * dim, p, 3, rowBias + i, alpha, keyBase + i, heaps);
            if (pe - p == 2)
                tile_avx512(xr, rows, dim, panels + p * 16 * dim, p, 2, rowBias + i, alpha, keyBase + i, heaps);
            else if (pe - p == 1)
                tile_avx512(xr, rows, dim, panels + p * 16 * dim, p, 1, rowBias + i, alpha, keyBase + i, heaps);
        }
    }
}
#endif

static const tp_exact_table exact_scalar_table = {exact_scan_scalar, "scalar"};
#ifdef TP_X86
static const tp_exact_table exact_avx2_table = {exact_scan_avx2, "avx2-fma"};
static const tp_exact_table exact_avx512_table = {exact_scan_avx512, "avx512f"};
#endif

static const tp_variant exact_variants[] = {
#ifdef TP_X86
    {&exact_avx512_table, "avx512f", tp_cpu_avx512f},
    {&exact_avx2_table, "avx2-fma", tp_cpu_avx2_fma},
#endif
    {&exact_scalar_table, "scalar", tp_cpu_any},
};
TP_DISPATCH(tp_exact_table, tp_exact, exact_variants)
