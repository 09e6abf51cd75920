// Small platform helpers that Swift's Glibc module does not expose.
#include "TidepoolKernels.h"
#if defined(__GLIBC__)
#include <malloc.h>
#endif
#if defined(__linux__)
#include <errno.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

void tp_release_free_heap(void) {
#if defined(__GLIBC__)
    malloc_trim(0);
#endif
}

int tp_lower_thread_priority(int nice_increment) {
#if defined(__linux__)
    // On Linux a thread id names one thread to setpriority: only the calling thread changes.
    pid_t tid = (pid_t)syscall(SYS_gettid);
    errno = 0;
    int current = getpriority(PRIO_PROCESS, (id_t)tid);
    if (current == -1 && errno != 0) return -1;
    return setpriority(PRIO_PROCESS, (id_t)tid, current + nice_increment);
#else
    (void)nice_increment;
    return 0;
#endif
}

int tp_thread_nice(void) {
#if defined(__linux__)
    return getpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid));
#else
    return 0;
#endif
}
