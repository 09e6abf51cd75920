// Product quantization kernels: the list-order scan (sum of float table entries per code), the
// squared-L2 distance table of a query residual, and "fast scan" with 8-bit codes: codes stored in
// blocks of 64 rows, sub-space major (block[j·64 + r] is row r's code in sub-space j), and the
// query's float distance table quantized to bytes, so that one sub-space of 64 rows is a 256-entry
// byte lookup done by two AVX-512 VBMI permutes (vpermi2b: 128 entries each) and a blend on the
// code's top bit, summed in u16. The scalar reference computes the same integer sums, so every
// path ranks alike.
#include "TidepoolKernels.h"
#include "simd_common.h"
#include <math.h>
#include <string.h>

// PQ scan: out[i] = sum over sub-spaces j of table[j * 256 + codes[i * m + j]].
// Bound by loads: codes are read 8 bytes at a time (one load for eight sub-spaces) and two codes
// are scanned together so their table loads overlap. Each code's sum is formed in the same order
// (even sub-spaces in one accumulator, odd in the other) whichever path scans it, so a code scores
// the same wherever it sits in a list.
static inline uint64_t load_u64(const uint8_t *p) { uint64_t w; memcpy(&w, p, 8); return w; }

static inline float pq_scan_one(const uint8_t *c, size_t m, const float *table) {
    float a0 = 0, a1 = 0;
    size_t j = 0;
    const float *t = table;
    for (; j + 8 <= m; j += 8, t += 8 * 256) {
        uint64_t w = load_u64(c + j);
        a0 += t[0 * 256 + (w & 255)];         a1 += t[1 * 256 + ((w >> 8) & 255)];
        a0 += t[2 * 256 + ((w >> 16) & 255)]; a1 += t[3 * 256 + ((w >> 24) & 255)];
        a0 += t[4 * 256 + ((w >> 32) & 255)]; a1 += t[5 * 256 + ((w >> 40) & 255)];
        a0 += t[6 * 256 + ((w >> 48) & 255)]; a1 += t[7 * 256 + (w >> 56)];
    }
    for (; j < m; j++) { if ((j & 1) == 0) a0 += table[j * 256 + c[j]]; else a1 += table[j * 256 + c[j]]; }
    return a0 + a1;
}

static void pq_scan(const uint8_t *codes, size_t n, size_t m, const float *table, float *out) {
    size_t i = 0;
    for (; i + 2 <= n; i += 2) {
        const uint8_t *c = codes + i * m, *d = c + m;
        float a0 = 0, a1 = 0, b0 = 0, b1 = 0;
        size_t j = 0;
        const float *t = table;
        for (; j + 8 <= m; j += 8, t += 8 * 256) {
            uint64_t w = load_u64(c + j), v = load_u64(d + j);
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
    if (i < n) out[i] = pq_scan_one(codes + i * m, m, table);
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

static void pq_table_l2_scalar(const float *t, const float *booksT, const float *bnorm, size_t m, size_t ds, float *out) {
    PQ_TABLE_BODY
}
#ifdef TP_X86
AVX2 static void pq_table_l2_avx2(const float *t, const float *booksT, const float *bnorm, size_t m, size_t ds, float *out) {
    PQ_TABLE_BODY
}
#endif

// Quantizing a table: per sub-space minimum as the bias, one step for all sub-spaces (so the
// sums stay comparable). The driver is shared; each instruction set supplies a row's min/max and
// a row's conversion, written as the same IEEE operations (subtract, multiply, add 0.5 and
// truncate as separate steps, so nothing is fused), so every variant gives identical bytes.
#define PQ_QUANTIZE_DRIVER(ROW_MINMAX, ROW_QUANTIZE)                                              \
    float range = 0, bias = 0;                                                                    \
    for (size_t j = 0; j < m; j++) {                                                             \
        float lo, hi;                                                                            \
        ROW_MINMAX(table + j * 256, &lo, &hi);                                                   \
        mins[j] = lo;                                                                            \
        bias += lo;                                                                              \
        range = hi - lo > range ? hi - lo : range;                                               \
    }                                                                                            \
    float step = range > 0 && isfinite(range) ? range / 255.0f : 1.0f;                          \
    float inv = 1.0f / step;                                                                     \
    for (size_t j = 0; j < m; j++) ROW_QUANTIZE(table + j * 256, mins[j], inv, out + j * 256);   \
    *biasOut = bias;                                                                             \
    return step;

static inline void row_minmax_scalar(const float *t, float *lo, float *hi) {
    float l = t[0], h = t[0];
    for (size_t c = 1; c < 256; c++) { l = t[c] < l ? t[c] : l; h = t[c] > h ? t[c] : h; }
    *lo = l; *hi = h;
}
static inline void row_quantize_scalar(const float *t, float lo, float inv, uint8_t *o) {
    for (size_t c = 0; c < 256; c++) {
        float v = (t[c] - lo) * inv;
        float r = v + 0.5f;
        int q = (int)r;
        o[c] = (uint8_t)(q < 0 ? 0 : (q > 255 ? 255 : q));
    }
}
static float pq_quantize_scalar(const float *table, size_t m, float *mins, uint8_t *out, float *biasOut) {
    PQ_QUANTIZE_DRIVER(row_minmax_scalar, row_quantize_scalar)
}

#ifdef TP_X86
AVX512BW static inline void row_minmax_avx512(const float *t, float *lo, float *hi) {
    __m512 l = _mm512_loadu_ps(t), h = l;
    for (size_t c = 16; c < 256; c += 16) {
        __m512 v = _mm512_loadu_ps(t + c);
        l = _mm512_min_ps(l, v);
        h = _mm512_max_ps(h, v);
    }
    *lo = _mm512_reduce_min_ps(l);
    *hi = _mm512_reduce_max_ps(h);
}
AVX512BW static inline void row_quantize_avx512(const float *t, float lo, float inv, uint8_t *o) {
    __m512 vlo = _mm512_set1_ps(lo), vinv = _mm512_set1_ps(inv), half = _mm512_set1_ps(0.5f);
    __m512i zero = _mm512_setzero_si512(), top = _mm512_set1_epi32(255);
    for (size_t c = 0; c < 256; c += 16) {
        __m512 v = _mm512_mul_ps(_mm512_sub_ps(_mm512_loadu_ps(t + c), vlo), vinv);
        __m512i q = _mm512_min_epi32(_mm512_max_epi32(_mm512_cvttps_epi32(_mm512_add_ps(v, half)), zero), top);
        _mm_storeu_si128((__m128i *)(o + c), _mm512_cvtepi32_epi8(q));
    }
}
AVX512BW static float pq_quantize_avx512bw(const float *table, size_t m, float *mins, uint8_t *out, float *biasOut) {
    PQ_QUANTIZE_DRIVER(row_minmax_avx512, row_quantize_avx512)
}

AVX2 static inline void row_minmax_avx2(const float *t, float *lo, float *hi) {
    __m256 l = _mm256_loadu_ps(t), h = l;
    for (size_t c = 8; c < 256; c += 8) {
        __m256 v = _mm256_loadu_ps(t + c);
        l = _mm256_min_ps(l, v);
        h = _mm256_max_ps(h, v);
    }
    float ls[8], hs[8];
    _mm256_storeu_ps(ls, l);
    _mm256_storeu_ps(hs, h);
    float l8 = ls[0], h8 = hs[0];
    for (int i = 1; i < 8; i++) { l8 = ls[i] < l8 ? ls[i] : l8; h8 = hs[i] > h8 ? hs[i] : h8; }
    *lo = l8; *hi = h8;
}
AVX2 static inline void row_quantize_avx2(const float *t, float lo, float inv, uint8_t *o) {
    __m256 vlo = _mm256_set1_ps(lo), vinv = _mm256_set1_ps(inv), half = _mm256_set1_ps(0.5f);
    __m256i zero = _mm256_setzero_si256(), top = _mm256_set1_epi32(255);
    for (size_t c = 0; c < 256; c += 16) {
        __m256 v0 = _mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(t + c), vlo), vinv);
        __m256 v1 = _mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(t + c + 8), vlo), vinv);
        __m256i q0 = _mm256_min_epi32(_mm256_max_epi32(_mm256_cvttps_epi32(_mm256_add_ps(v0, half)), zero), top);
        __m256i q1 = _mm256_min_epi32(_mm256_max_epi32(_mm256_cvttps_epi32(_mm256_add_ps(v1, half)), zero), top);
        __m128i a = _mm_packs_epi32(_mm256_castsi256_si128(q0), _mm256_extracti128_si256(q0, 1));
        __m128i b = _mm_packs_epi32(_mm256_castsi256_si128(q1), _mm256_extracti128_si256(q1, 1));
        _mm_storeu_si128((__m128i *)(o + c), _mm_packus_epi16(a, b));
    }
}
AVX2 static float pq_quantize_avx2(const float *table, size_t m, float *mins, uint8_t *out, float *biasOut) {
    PQ_QUANTIZE_DRIVER(row_minmax_avx2, row_quantize_avx2)
}
#endif

static void pq_scan_blocked_scalar(const uint8_t *blocks, size_t nblocks, size_t m, const uint8_t *t8, uint16_t *out) {
    for (size_t b = 0; b < nblocks; b++) {
        const uint8_t *blk = blocks + b * m * 64;
        uint16_t *o = out + b * 64;
        for (size_t r = 0; r < 64; r++) o[r] = 0;
        for (size_t j = 0; j < m; j++) {
            const uint8_t *c = blk + j * 64, *t = t8 + j * 256;
            for (size_t r = 0; r < 64; r++) o[r] = (uint16_t)(o[r] + t[c[r]]);
        }
    }
}

#ifdef TP_X86
AVX512VBMI static void pq_scan_blocked_vbmi(const uint8_t *blocks, size_t nblocks, size_t m, const uint8_t *t8, uint16_t *out) {
    for (size_t b = 0; b < nblocks; b++) {
        const uint8_t *blk = blocks + b * m * 64;
        __m512i lo = _mm512_setzero_si512(), hi = _mm512_setzero_si512();
        for (size_t j = 0; j < m; j++) {
            __m512i c = _mm512_loadu_si512(blk + j * 64);
            const uint8_t *t = t8 + j * 256;
            __m512i a = _mm512_permutex2var_epi8(_mm512_loadu_si512(t), c, _mm512_loadu_si512(t + 64));
            __m512i h = _mm512_permutex2var_epi8(_mm512_loadu_si512(t + 128), c, _mm512_loadu_si512(t + 192));
            __m512i v = _mm512_mask_blend_epi8(_mm512_movepi8_mask(c), a, h);
            lo = _mm512_add_epi16(lo, _mm512_cvtepu8_epi16(_mm512_castsi512_si256(v)));
            hi = _mm512_add_epi16(hi, _mm512_cvtepu8_epi16(_mm512_extracti64x4_epi64(v, 1)));
        }
        _mm512_storeu_si512(out + b * 64, lo);
        _mm512_storeu_si512(out + b * 64 + 32, hi);
    }
}
#endif

// A variant per CPU level, each complete: the list-order scan is scalar everywhere (bound by
// loads), the table kernel is the AVX2 build of the scalar code on every x86 level.
static const tp_pq_table pq_scalar_table = {pq_scan, pq_table_l2_scalar, pq_quantize_scalar, pq_scan_blocked_scalar, "scalar"};
#ifdef TP_X86
static const tp_pq_table pq_avx2_table = {pq_scan, pq_table_l2_avx2, pq_quantize_avx2, pq_scan_blocked_scalar, "avx2-fma"};
static const tp_pq_table pq_avx512bw_table = {pq_scan, pq_table_l2_avx2, pq_quantize_avx512bw, pq_scan_blocked_scalar, "avx512bw"};
static const tp_pq_table pq_vbmi_table = {pq_scan, pq_table_l2_avx2, pq_quantize_avx512bw, pq_scan_blocked_vbmi, "avx512vbmi"};
#endif

static const tp_variant pq_variants[] = {
#ifdef TP_X86
    {&pq_vbmi_table, "avx512vbmi", tp_cpu_avx512vbmi},
    {&pq_avx512bw_table, "avx512bw", tp_cpu_avx512bw},
    {&pq_avx2_table, "avx2-fma", tp_cpu_avx2_fma},
#endif
    {&pq_scalar_table, "scalar", tp_cpu_any},
};
TP_DISPATCH(tp_pq_table, tp_pq, pq_variants)
