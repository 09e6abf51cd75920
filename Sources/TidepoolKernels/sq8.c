// SQ8 asymmetric distance kernels: a float query against 8-bit codes. The quantizer folds its
// per-dimension offset and step into the query (see ScalarQuantizer.swift), so the inner loops
// are a plain dot product and a weighted squared L2 over u8 -> f32 conversions.
#include "TidepoolKernels.h"
#include "simd_common.h"
#include <string.h>

static float sq8_dot_scalar(const float *q, const uint8_t *c, size_t n) {
    float s = 0;
    for (size_t i = 0; i < n; i++) s += q[i] * (float)c[i];
    return s;
}

static float sq8_l2_scalar(const float *q, const float *w, const uint8_t *c, size_t n) {
    float s = 0;
    for (size_t i = 0; i < n; i++) { float d = q[i] - (float)c[i]; s += w[i] * d * d; }
    return s;
}

static const tp_sq8_table sq8_scalar_table = {sq8_dot_scalar, sq8_l2_scalar, "scalar"};

#ifdef TP_X86

AVX2 static inline __m256 load8_u8(const uint8_t *c) {
    return _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)c)));
}
AVX2 static float sq8_dot_avx2(const float *q, const uint8_t *c, size_t n) {
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i), load8_u8(c + i), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i + 8), load8_u8(c + i + 8), s1);
    }
    for (; i + 8 <= n; i += 8) s0 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i), load8_u8(c + i), s0);
    float s = hsum256(_mm256_add_ps(s0, s1));
    for (; i < n; i++) s += q[i] * (float)c[i];
    return s;
}
AVX2 static float sq8_l2_avx2(const float *q, const float *w, const uint8_t *c, size_t n) {
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256 d0 = _mm256_sub_ps(_mm256_loadu_ps(q + i), load8_u8(c + i));
        __m256 d1 = _mm256_sub_ps(_mm256_loadu_ps(q + i + 8), load8_u8(c + i + 8));
        s0 = _mm256_fmadd_ps(_mm256_mul_ps(d0, d0), _mm256_loadu_ps(w + i), s0);
        s1 = _mm256_fmadd_ps(_mm256_mul_ps(d1, d1), _mm256_loadu_ps(w + i + 8), s1);
    }
    for (; i + 8 <= n; i += 8) {
        __m256 d = _mm256_sub_ps(_mm256_loadu_ps(q + i), load8_u8(c + i));
        s0 = _mm256_fmadd_ps(_mm256_mul_ps(d, d), _mm256_loadu_ps(w + i), s0);
    }
    float s = hsum256(_mm256_add_ps(s0, s1));
    for (; i < n; i++) { float d = q[i] - (float)c[i]; s += w[i] * d * d; }
    return s;
}
static const tp_sq8_table sq8_avx2_table = {sq8_dot_avx2, sq8_l2_avx2, "avx2-fma"};

AVX512 static inline __m512 load16_u8(const uint8_t *c) {
    return _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)c)));
}
AVX512 static inline __m512 load_tail_u8(const uint8_t *c, size_t k) {
    uint8_t tmp[16] = {0};
    memcpy(tmp, c, k);
    return load16_u8(tmp);
}
AVX512 static float sq8_dot_avx512(const float *q, const uint8_t *c, size_t n) {
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        s0 = _mm512_fmadd_ps(_mm512_loadu_ps(q + i), load16_u8(c + i), s0);
        s1 = _mm512_fmadd_ps(_mm512_loadu_ps(q + i + 16), load16_u8(c + i + 16), s1);
    }
    for (; i + 16 <= n; i += 16) s0 = _mm512_fmadd_ps(_mm512_loadu_ps(q + i), load16_u8(c + i), s0);
    if (i < n) {
        __mmask16 m = (__mmask16)((1u << (n - i)) - 1u);
        s1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, q + i), load_tail_u8(c + i, n - i), s1);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
}
AVX512 static float sq8_l2_avx512(const float *q, const float *w, const uint8_t *c, size_t n) {
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        __m512 d0 = _mm512_sub_ps(_mm512_loadu_ps(q + i), load16_u8(c + i));
        __m512 d1 = _mm512_sub_ps(_mm512_loadu_ps(q + i + 16), load16_u8(c + i + 16));
        s0 = _mm512_fmadd_ps(_mm512_mul_ps(d0, d0), _mm512_loadu_ps(w + i), s0);
        s1 = _mm512_fmadd_ps(_mm512_mul_ps(d1, d1), _mm512_loadu_ps(w + i + 16), s1);
    }
    for (; i + 16 <= n; i += 16) {
        __m512 d = _mm512_sub_ps(_mm512_loadu_ps(q + i), load16_u8(c + i));
        s0 = _mm512_fmadd_ps(_mm512_mul_ps(d, d), _mm512_loadu_ps(w + i), s0);
    }
    if (i < n) {
        __mmask16 m = (__mmask16)((1u << (n - i)) - 1u);
        __m512 d = _mm512_sub_ps(_mm512_maskz_loadu_ps(m, q + i), load_tail_u8(c + i, n - i));
        s1 = _mm512_fmadd_ps(_mm512_mul_ps(d, d), _mm512_maskz_loadu_ps(m, w + i), s1);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
}
static const tp_sq8_table sq8_avx512_table = {sq8_dot_avx512, sq8_l2_avx512, "avx512f"};
#endif

#ifdef TP_NEON
static float sq8_dot_neon(const float *q, const uint8_t *c, size_t n) {
    float32x4_t s0 = vdupq_n_f32(0), s1 = vdupq_n_f32(0);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint16x8_t u = vmovl_u8(vld1_u8(c + i));
        s0 = vfmaq_f32(s0, vld1q_f32(q + i), vcvtq_f32_u32(vmovl_u16(vget_low_u16(u))));
        s1 = vfmaq_f32(s1, vld1q_f32(q + i + 4), vcvtq_f32_u32(vmovl_u16(vget_high_u16(u))));
    }
    float s = vaddvq_f32(vaddq_f32(s0, s1));
    for (; i < n; i++) s += q[i] * (float)c[i];
    return s;
}
static float sq8_l2_neon(const float *q, const float *w, const uint8_t *c, size_t n) {
    float32x4_t s0 = vdupq_n_f32(0), s1 = vdupq_n_f32(0);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint16x8_t u = vmovl_u8(vld1_u8(c + i));
        float32x4_t d0 = vsubq_f32(vld1q_f32(q + i), vcvtq_f32_u32(vmovl_u16(vget_low_u16(u))));
        float32x4_t d1 = vsubq_f32(vld1q_f32(q + i + 4), vcvtq_f32_u32(vmovl_u16(vget_high_u16(u))));
        s0 = vfmaq_f32(s0, vmulq_f32(d0, d0), vld1q_f32(w + i));
        s1 = vfmaq_f32(s1, vmulq_f32(d1, d1), vld1q_f32(w + i + 4));
    }
    float s = vaddvq_f32(vaddq_f32(s0, s1));
    for (; i < n; i++) { float d = q[i] - (float)c[i]; s += w[i] * d * d; }
    return s;
}
static const tp_sq8_table sq8_neon_table = {sq8_dot_neon, sq8_l2_neon, "neon"};
#endif

static const tp_variant sq8_variants[] = {
#ifdef TP_X86
    {&sq8_avx512_table, "avx512f", tp_cpu_avx512f},
    {&sq8_avx2_table, "avx2-fma", tp_cpu_avx2_fma},
#endif
#ifdef TP_NEON
    {&sq8_neon_table, "neon", tp_cpu_any},
#endif
    {&sq8_scalar_table, "scalar", tp_cpu_any},
};
TP_DISPATCH(tp_sq8_table, tp_sq8, sq8_variants)
