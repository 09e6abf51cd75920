// Variant choice and CPU feature checks shared by every kernel family (see dispatch.h).
#include "TidepoolKernels.h"
#include "dispatch.h"
#include <string.h>

int tp_cpu_any(void) { return 1; }

#if defined(__x86_64__) || defined(__i386__)
// __builtin_cpu_supports needs a string literal, so each feature is spelled out.
int tp_cpu_sse42(void) { __builtin_cpu_init(); return __builtin_cpu_supports("sse4.2"); }
int tp_cpu_popcnt(void) { __builtin_cpu_init(); return __builtin_cpu_supports("popcnt"); }
int tp_cpu_avx2_fma(void) { __builtin_cpu_init(); return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"); }
int tp_cpu_avx2_fma_f16c(void) { __builtin_cpu_init(); return tp_cpu_avx2_fma() && __builtin_cpu_supports("f16c"); }
int tp_cpu_avx2_fma_popcnt(void) { __builtin_cpu_init(); return tp_cpu_avx2_fma() && __builtin_cpu_supports("popcnt"); }
int tp_cpu_avx512f(void) { __builtin_cpu_init(); return tp_cpu_avx2_fma() && __builtin_cpu_supports("avx512f"); }
int tp_cpu_avx512bw(void) { __builtin_cpu_init(); return tp_cpu_avx512f() && __builtin_cpu_supports("avx512bw"); }
int tp_cpu_avx512vbmi(void) { __builtin_cpu_init(); return tp_cpu_avx512bw() && __builtin_cpu_supports("avx512vbmi"); }
#endif

const void *tp_choose_variant(const tp_variant *variants, size_t count) {
    for (size_t i = 0; i < count; i++)
        if (variants[i].supported()) return variants[i].table;
    return variants[count - 1].table;   // the scalar reference, last in every list
}

const void *tp_find_variant(const tp_variant *variants, size_t count, const char *name) {
    for (size_t i = 0; i < count; i++)
        if (strcmp(variants[i].name, name) == 0) return variants[i].supported() ? variants[i].table : 0;
    return 0;
}

const char *const *tp_kernel_variant_names(size_t *count) {
    static const char *const names[] = {"avx512vbmi", "avx512bw", "avx512f", "avx2-fma-f16c", "avx2-fma-popcnt", "avx2-fma", "popcnt",
                                        "sse4.2", "neon", "scalar"};
    *count = sizeof(names) / sizeof(names[0]);
    return names;
}
