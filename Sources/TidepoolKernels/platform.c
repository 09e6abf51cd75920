// Small platform helpers that Swift's Glibc module does not expose.
#include "TidepoolKernels.h"
#if defined(__GLIBC__)
#include <malloc.h>
#endif

void tp_release_free_heap(void) {
#if defined(__GLIBC__)
    malloc_trim(0);
#endif
}
