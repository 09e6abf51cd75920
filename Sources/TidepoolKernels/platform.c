// Small platform helpers that Swift's Glibc module does not expose.
#include "TidepoolKernels.h"
#if defined(__GLIBC__)
#include <malloc.h>
#endif
#if defined(__linux__)
#include <errno.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/uio.h>
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

#if defined(__linux__)
#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_process_madvise
#define SYS_process_madvise 440
#endif

// This process's pidfd for process_madvise, with the pid it was opened for (a fork child opens
// its own: advice through the parent's pidfd would land in the parent). -1: not opened yet;
// -2: the kernel lacks process_madvise or refuses MADV_WILLNEED through it.
static _Atomic long long tp_self_pidfd = -1;

static int tp_pidfd_for_self(void) {
    long long packed = atomic_load_explicit(&tp_self_pidfd, memory_order_acquire);
    pid_t pid = getpid();
    if (packed == -2) return -1;
    if (packed >= 0 && (pid_t)(packed >> 32) == pid) return (int)(packed & 0xffffffff);
    int fd = (int)syscall(SYS_pidfd_open, pid, 0);
    if (fd < 0) {
        atomic_store_explicit(&tp_self_pidfd, -2, memory_order_release);
        return -1;
    }
    long long want = ((long long)pid << 32) | (long long)fd;
    if (!atomic_compare_exchange_strong(&tp_self_pidfd, &packed, want)) {
        close(fd);  // another thread opened one first
        return tp_pidfd_for_self();
    }
    return fd;
}
#endif

int tp_advise_willneed(const void *const *starts, const size_t *lengths, size_t n) {
#if defined(__linux__)
    int calls = 0;
    int fd = n > 1 ? tp_pidfd_for_self() : -1;
    size_t i = 0;
    if (fd >= 0) {
        struct iovec iov[64];
        while (i < n) {
            size_t m = 0;
            for (; m < 64 && i + m < n; m++) {
                iov[m].iov_base = (void *)starts[i + m];
                iov[m].iov_len = lengths[i + m];
            }
            calls++;
            if (syscall(SYS_process_madvise, fd, iov, m, MADV_WILLNEED, 0) < 0 && (errno == EINVAL || errno == ENOSYS || errno == EPERM)) {
                atomic_store_explicit(&tp_self_pidfd, -2, memory_order_release);  // advise one range at a time from here on
                break;
            }
            i += m;
        }
    }
    for (; i < n; i++) {
        calls++;
        (void)madvise((void *)starts[i], lengths[i], MADV_WILLNEED);
    }
    return calls;
#else
    (void)starts; (void)lengths;
    return (int)(n * 0);
#endif
}
