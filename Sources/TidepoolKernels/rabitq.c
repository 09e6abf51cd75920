// RaBitQ kernels: popcount sums of sign-bit codes against a query's bit planes, and the lower
// bounds on distances computed from them (see RaBitQ.swift for the algebra).
#include "TidepoolKernels.h"
#include "simd_common.h"

// RaBitQ: per code, S = sum over the query's 4 bit planes of 2^j · popcount(code & plane_j),
// and popcount(code). Scalar reference, and a variant compiled for the POPCNT instruction.
static void rabitq_scan_scalar(const uint64_t *codes, size_t n, size_t words, const uint64_t *planes,
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
POPCNT static void rabitq_scan_popcnt(const uint64_t *codes, size_t n, size_t words,
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
#endif

// RaBitQ lower bounds for n codes (see RaBitQ.swift for the algebra). Written for the loop
// vectorizer: the AVX2 build runs 8 rows per step.
#define RABITQ_LOWER_BODY                                                                           \
    const float delta = q->delta, lower = q->lower, qsum = q->qsum, invRootD = q->inv_root_d;       \
    const float qnorm = q->qnorm, qdotc = q->qdotc;                                                \
    const int usesDot = q->uses_dot;                                                               \
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

static void rabitq_lower_scalar(const uint32_t *sums, const uint32_t *pops, const float *factors, size_t n,
                                const tp_rabitq_query *q, float *out) {
    RABITQ_LOWER_BODY
}
#ifdef TP_X86
AVX2 static void rabitq_lower_avx2(const uint32_t *sums, const uint32_t *pops, const float *factors, size_t n,
                                   const tp_rabitq_query *q, float *out) {
    RABITQ_LOWER_BODY
}
#endif

static const tp_rabitq_table rabitq_scalar_table = {rabitq_scan_scalar, rabitq_lower_scalar, "scalar"};
#ifdef TP_X86
static const tp_rabitq_table rabitq_popcnt_table = {rabitq_scan_popcnt, rabitq_lower_scalar, "popcnt"};
static const tp_rabitq_table rabitq_avx2_table = {rabitq_scan_popcnt, rabitq_lower_avx2, "avx2-fma-popcnt"};
#endif

static const tp_variant rabitq_variants[] = {
#ifdef TP_X86
    {&rabitq_avx2_table, "avx2-fma-popcnt", tp_cpu_avx2_fma_popcnt},
    {&rabitq_popcnt_table, "popcnt", tp_cpu_popcnt},
#endif
    {&rabitq_scalar_table, "scalar", tp_cpu_any},
};
TP_DISPATCH(tp_rabitq_table, tp_rabitq, rabitq_variants)
