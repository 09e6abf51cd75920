// Private to the kernels target: how every family picks its variant. A family lists its variants
// best first, each with the CPU check it needs, ending with the scalar one (always runnable);
// TP_DISPATCH defines the family's `tp_FAMILY_kernels()` (the first runnable variant, chosen
// once) and `tp_FAMILY_kernels_named()`.
#ifndef TIDEPOOL_DISPATCH_H
#define TIDEPOOL_DISPATCH_H

#include <stddef.h>

typedef int (*tp_cpu_check)(void);
typedef struct tp_variant {
    const void *table;
    const char *name;
    tp_cpu_check supported;
} tp_variant;

// CPU checks, each including what its variants also use (an AVX-512 check includes AVX2 + FMA).
int tp_cpu_any(void);
#if defined(__x86_64__) || defined(__i386__)
int tp_cpu_sse42(void);
int tp_cpu_popcnt(void);
int tp_cpu_avx2_fma(void);
int tp_cpu_avx2_fma_f16c(void);
int tp_cpu_avx2_fma_popcnt(void);
int tp_cpu_avx512f(void);
int tp_cpu_avx512bw(void);
int tp_cpu_avx512vbmi(void);
#endif

const void *tp_choose_variant(const tp_variant *variants, size_t count);
const void *tp_find_variant(const tp_variant *variants, size_t count, const char *name);

#define TP_DISPATCH(TABLE, FAMILY, VARIANTS)                                                       \
    const TABLE *FAMILY##_kernels(void) {                                                          \
        static const TABLE *chosen = 0;                                                            \
        const TABLE *t = __atomic_load_n(&chosen, __ATOMIC_ACQUIRE);                              \
        if (!t) {                                                                                  \
            t = (const TABLE *)tp_choose_variant(VARIANTS, sizeof(VARIANTS) / sizeof(VARIANTS[0])); \
            __atomic_store_n(&chosen, t, __ATOMIC_RELEASE);                                        \
        }                                                                                          \
        return t;                                                                                  \
    }                                                                                              \
    const TABLE *FAMILY##_kernels_named(const char *name) {                                        \
        return (const TABLE *)tp_find_variant(VARIANTS, sizeof(VARIANTS) / sizeof(VARIANTS[0]), name); \
    }

#endif
