// PQ "fast scan" with 8-bit codes: codes stored in blocks of 64 rows, sub-space major
// (block[j·64 + r] is row r's code in sub-space j), and the query's float distance table
// quantized to bytes, so that one sub-space of 64 rows is a 256-entry byte lookup done by two
// AVX-512 VBMI permutes (vpermi2b: 128 entries each) and a blend on the code's top bit, summed
// in u16. The scalar reference computes the same integer sums, so every path ranks alike.
#include "TidepoolKernels.h"
#include "simd_common.h"
#include <math.h>
#include <string.h>

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
float tp_pq_quantize_table_scalar(const float *table, size_t m, float *mins, uint8_t *out, float *biasOut) {
    PQ_QUANTIZE_DRIVER(row_minmax_scalar, row_quantize_scalar)
}

#ifdef TP_X86
#define AVX512BW __attribute__((target("avx512f,avx512bw")))
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
AVX512BW static float tp_pq_quantize_table_avx512(const float *table, size_t m, float *mins, uint8_t *out, float *biasOut) {
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
AVX2 static float tp_pq_quantize_table_avx2(const float *table, size_t m, float *mins, uint8_t *out, float *biasOut) {
    PQ_QUANTIZE_DRIVER(row_minmax_avx2, row_quantize_avx2)
}
#endif

void tp_pq_scan_blocked_scalar(const uint8_t *blocks, size_t nblocks, size_t m, const uint8_t *t8, uint16_t *out) {
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
__attribute__((target("avx512f,avx512bw,avx512vbmi")))
static void tp_pq_scan_blocked_vbmi(const uint8_t *blocks, size_t nblocks, size_t m, const uint8_t *t8, uint16_t *out) {
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
static int tp_cpu_has_avx512bw(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw");
}
static int tp_cpu_has_vbmi(void) {
    __builtin_cpu_init();
    return tp_cpu_has_avx512bw() && __builtin_cpu_supports("avx512vbmi");
}
#endif

tp_pq_quantize_fn tp_pq_quantize_kernel(void) {
#ifdef TP_X86
    if (tp_cpu_has_avx512bw()) return tp_pq_quantize_table_avx512;
    if (tp_cpu_has_avx2_fma()) return tp_pq_quantize_table_avx2;
#endif
    return tp_pq_quantize_table_scalar;
}

tp_pq_scan_blocked_fn tp_pq_scan_blocked_kernel(void) {
#ifdef TP_X86
    if (tp_cpu_has_vbmi()) return tp_pq_scan_blocked_vbmi;
#endif
    return tp_pq_scan_blocked_scalar;
}

tp_pq_scan_blocked_fn tp_pq_scan_blocked_named(const char *name) {
    if (strcmp(name, "scalar") == 0) return tp_pq_scan_blocked_scalar;
#ifdef TP_X86
    if (strcmp(name, "avx512vbmi") == 0) return tp_cpu_has_vbmi() ? tp_pq_scan_blocked_vbmi : 0;
#endif
    return 0;
}

tp_pq_quantize_fn tp_pq_quantize_named(const char *name) {
    if (strcmp(name, "scalar") == 0) return tp_pq_quantize_table_scalar;
#ifdef TP_X86
    if (strcmp(name, "avx512") == 0) return tp_cpu_has_avx512bw() ? tp_pq_quantize_table_avx512 : 0;
    if (strcmp(name, "avx2") == 0) return tp_cpu_has_avx2_fma() ? tp_pq_quantize_table_avx2 : 0;
#endif
    return 0;
}
