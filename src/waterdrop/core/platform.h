/*
 * The core's platform layer: a mutex, a condition variable whose timed wait runs on a
 * monotonic clock, the thread id and the clock. Nothing else in the core calls pthread or
 * reads a clock; a port adds its branch here (core/platform.pxi declares these names).
 *
 *   wd_mutex_t, wd_mutex_init / destroy / lock / unlock
 *   wd_cond_t, wd_cond_init / destroy / broadcast
 *   wd_cond_wait_until(cond, mutex, deadline_ns): wait until signalled or the monotonic
 *       clock reaches deadline_ns (spurious wake-ups allowed: callers re-check their state)
 *   wd_now_ns(): the monotonic clock, in nanoseconds
 *   wd_thread_id(): the calling thread's id, the number threading.get_ident() returns
 *
 * Included after Python.h (by the generated C of _core.pyx).
 */
#ifndef WATERDROP_CORE_PLATFORM_H
#define WATERDROP_CORE_PLATFORM_H

#include <stdint.h>

#if defined(_WIN32)

#error "waterdrop: core/platform.h has no Windows branch yet (SRWLOCK, CONDITION_VARIABLE)"

#elif defined(__APPLE__)

#error "waterdrop: core/platform.h has no macOS branch yet (no pthread_condattr_setclock)"

#else /* POSIX with pthread_condattr_setclock (Linux, the BSDs) */

#include <pthread.h>
#include <time.h>

typedef pthread_mutex_t wd_mutex_t;
typedef pthread_cond_t wd_cond_t;

static inline int wd_mutex_init(wd_mutex_t *m) { return pthread_mutex_init(m, NULL); }
static inline int wd_mutex_destroy(wd_mutex_t *m) { return pthread_mutex_destroy(m); }
static inline int wd_mutex_lock(wd_mutex_t *m) { return pthread_mutex_lock(m); }
static inline int wd_mutex_unlock(wd_mutex_t *m) { return pthread_mutex_unlock(m); }

static inline int wd_cond_init(wd_cond_t *c) {
    pthread_condattr_t attr;
    int err;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);   /* deadlines ignore clock changes */
    err = pthread_cond_init(c, &attr);
    pthread_condattr_destroy(&attr);
    return err;
}
static inline int wd_cond_destroy(wd_cond_t *c) { return pthread_cond_destroy(c); }
static inline int wd_cond_broadcast(wd_cond_t *c) { return pthread_cond_broadcast(c); }

static inline int wd_cond_wait_until(wd_cond_t *c, wd_mutex_t *m, int64_t deadline_ns) {
    struct timespec ts;
    ts.tv_sec = (time_t)(deadline_ns / 1000000000);
    ts.tv_nsec = (long)(deadline_ns % 1000000000);
    return pthread_cond_timedwait(c, m, &ts);
}

static inline int64_t wd_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

#endif

/* Python's own thread id: on every platform the value threading.get_ident() returns, which
   the Python layer stores (a transaction's owner) and the core compares against. */
static inline unsigned long wd_thread_id(void) { return PyThread_get_thread_ident(); }

#endif /* WATERDROP_CORE_PLATFORM_H */
