// Shared by the kernel files (private to the target): architecture detection, the per-function
// target attributes and the AVX2 horizontal sum. CPU checks and variant choice are in dispatch.h.
#ifndef TIDEPOOL_SIMD_COMMON_H
#define TIDEPOOL_SIMD_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include "dispatch.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define TP_X86 1
#endif
#if defined(__aarch64__)
#include <arm_neon.h>
#define TP_NEON 1
#endif

#ifdef TP_X86
#define AVX2 __attribute__((target("avx2,fma")))
#define AVX2F16 __attribute__((target("avx2,fma,f16c")))
#define AVX512 __attribute__((target("avx512f")))
#define AVX512BW __attribute__((target("avx512f,avx512bw")))
#define AVX512VBMI __attribute__((target("avx512f,avx512bw,avx512vbmi")))
#define POPCNT __attribute__((target("popcnt")))
#define SSE42 __attribute__((target("sse4.2")))

AVX2 static inline float hsum256(__m256 v) {
    __m128 lo = _mm256_castps256_ps128(v), hi = _mm256_extractf128_ps(v, 1);
    lo = _mm_add_ps(lo, hi);
    __m128 sh = _mm_movehdup_ps(lo);
    lo = _mm_add_ps(lo, sh);
    sh = _mm_movehl_ps(sh, lo);
    return _mm_cvtss_f32(_mm_add_ss(lo, sh));
}
#endif

#endif
