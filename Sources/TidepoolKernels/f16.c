// f16 storage kernels: a float query against IEEE binary16 vectors (2x smaller than f32),
// converted in registers with F16C / AVX-512 / NEON, or bit by bit in the scalar reference.
#include "TidepoolKernels.h"
#include "simd_common.h"
#include <string.h>

float tp_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1F, man = h & 0x3FF, bits;
    if (exp == 0) {
        if (man == 0) {
            bits = sign;
        } else {  // subnormal: normalize
            exp = 127 - 15 + 1;
            while ((man & 0x400) == 0) { man <<= 1; exp--; }
            man &= 0x3FF;
            bits = sign | (exp << 23) | (man << 13);
        }
    } else if (exp == 31) {
        bits = sign | 0x7F800000 | (man << 13);
    } else {
        bits = sign | ((exp + 127 - 15) << 23) | (man << 13);
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

uint16_t tp_f32_to_f16(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000, exp = (x >> 23) & 0xFF, man = x & 0x7FFFFF;
    if (exp == 0xFF) return (uint16_t)(sign | 0x7C00 | (man ? 0x200 : 0));  // inf / NaN
    int e = (int)exp - 127 + 15;
    if (e >= 31) return (uint16_t)(sign | 0x7C00);                          // overflow -> inf
    if (e <= 0) {                                                            // subnormal or zero
        if (e < -10) return (uint16_t)sign;
        man |= 0x800000;
        uint32_t shift = (uint32_t)(14 - e);
        uint32_t half = man >> shift, rem = man & ((1u << shift) - 1), mid = 1u << (shift - 1);
        if (rem > mid || (rem == mid && (half & 1))) half++;
        return (uint16_t)(sign | half);
    }
    uint32_t half = ((uint32_t)e << 10) | (man >> 13), rem = man & 0x1FFF;
    if (rem > 0x1000 || (rem == 0x1000 && (half & 1))) half++;              // round to nearest even
    return (uint16_t)(sign | half);                                          // a carry into exp is correct
}

void tp_f32_to_f16_array(const float *src, uint16_t *dst, size_t n) {
    for (size_t i = 0; i < n; i++) dst[i] = tp_f32_to_f16(src[i]);
}

static float f16_dot_scalar(const float *q, const uint16_t *h, size_t n) {
    float s = 0;
    for (size_t i = 0; i < n; i++) s += q[i] * tp_f16_to_f32(h[i]);
    return s;
}
static float f16_l2_scalar(const float *q, const uint16_t *h, size_t n) {
    float s = 0;
    for (size_t i = 0; i < n; i++) { float d = q[i] - tp_f16_to_f32(h[i]); s += d * d; }
    return s;
}
static const tp_f16_table f16_scalar_table = {f16_dot_scalar, f16_l2_scalar, "scalar"};

#ifdef TP_X86
AVX2F16 static float f16_dot_avx2(const float *q, const uint16_t *h, size_t n) {
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i), _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(h + i))), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i + 8), _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(h + i + 8))), s1);
    }
    for (; i + 8 <= n; i += 8) s0 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i), _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(h + i))), s0);
    float s = hsum256(_mm256_add_ps(s0, s1));
    for (; i < n; i++) s += q[i] * tp_f16_to_f32(h[i]);
    return s;
}
AVX2F16 static float f16_l2_avx2(const float *q, const uint16_t *h, size_t n) {
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256 d0 = _mm256_sub_ps(_mm256_loadu_ps(q + i), _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(h + i))));
        __m256 d1 = _mm256_sub_ps(_mm256_loadu_ps(q + i + 8), _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(h + i + 8))));
        s0 = _mm256_fmadd_ps(d0, d0, s0);
        s1 = _mm256_fmadd_ps(d1, d1, s1);
    }
    for (; i + 8 <= n; i += 8) {
        __m256 d = _mm256_sub_ps(_mm256_loadu_ps(q + i), _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(h + i))));
        s0 = _mm256_fmadd_ps(d, d, s0);
    }
    float s = hsum256(_mm256_add_ps(s0, s1));
    for (; i < n; i++) { float d = q[i] - tp_f16_to_f32(h[i]); s += d * d; }
    return s;
}
static const tp_f16_table f16_avx2_table = {f16_dot_avx2, f16_l2_avx2, "avx2-fma-f16c"};

AVX512 static float f16_dot_avx512(const float *q, const uint16_t *h, size_t n) {
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        s0 = _mm512_fmadd_ps(_mm512_loadu_ps(q + i), _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(h + i))), s0);
        s1 = _mm512_fmadd_ps(_mm512_loadu_ps(q + i + 16), _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(h + i + 16))), s1);
    }
    for (; i + 16 <= n; i += 16) s0 = _mm512_fmadd_ps(_mm512_loadu_ps(q + i), _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(h + i))), s0);
    float s = _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
    for (; i < n; i++) s += q[i] * tp_f16_to_f32(h[i]);
    return s;
}
AVX512 static float f16_l2_avx512(const float *q, const uint16_t *h, size_t n) {
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        __m512 d0 = _mm512_sub_ps(_mm512_loadu_ps(q + i), _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(h + i))));
        __m512 d1 = _mm512_sub_ps(_mm512_loadu_ps(q + i + 16), _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(h + i + 16))));
        s0 = _mm512_fmadd_ps(d0, d0, s0);
        s1 = _mm512_fmadd_ps(d1, d1, s1);
    }
    for (; i + 16 <= n; i += 16) {
        __m512 d = _mm512_sub_ps(_mm512_loadu_ps(q + i), _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(h + i))));
        s0 = _mm512_fmadd_ps(d, d, s0);
    }
    float s = _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
    for (; i < n; i++) { float d = q[i] - tp_f16_to_f32(h[i]); s += d * d; }
    return s;
}
static const tp_f16_table f16_avx512_table = {f16_dot_avx512, f16_l2_avx512, "avx512f"};
#endif

#ifdef TP_NEON
static float f16_dot_neon(const float *q, const uint16_t *h, size_t n) {
    float32x4_t s0 = vdupq_n_f32(0);
    size_t i = 0;
    for (; i + 4 <= n; i += 4) s0 = vfmaq_f32(s0, vld1q_f32(q + i), vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(h + i))));
    float s = vaddvq_f32(s0);
    for (; i < n; i++) s += q[i] * tp_f16_to_f32(h[i]);
    return s;
}
static float f16_l2_neon(const float *q, const uint16_t *h, size_t n) {
    float32x4_t s0 = vdupq_n_f32(0);
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        float32x4_t d = vsubq_f32(vld1q_f32(q + i), vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(h + i))));
        s0 = vfmaq_f32(s0, d, d);
    }
    float s = vaddvq_f32(s0);
    for (; i < n; i++) { float d = q[i] - tp_f16_to_f32(h[i]); s += d * d; }
    return s;
}
static const tp_f16_table f16_neon_table = {f16_dot_neon, f16_l2_neon, "neon"};
#endif

static const tp_variant f16_variants[] = {
#ifdef TP_X86
    {&f16_avx512_table, "avx512f", tp_cpu_avx512f},
    {&f16_avx2_table, "avx2-fma-f16c", tp_cpu_avx2_fma_f16c},
#endif
#ifdef TP_NEON
    {&f16_neon_table, "neon", tp_cpu_any},
#endif
    {&f16_scalar_table, "scalar", tp_cpu_any},
};
TP_DISPATCH(tp_f16_table, tp_f16, f16_variants)
