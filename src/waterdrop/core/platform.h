/*
 * The core's platform layer: a mutex, a condition variable whose timed wait runs on a
 * monotonic clock, the thread id and the clock. Nothing else in the core calls pthread or
 * reads a clock; a port adds its branch here (core/platform.pxi declares these names).
 *
 *   wd_mutex_t, wd_mutex_init / destroy / lock / unlock
 *   wd_cond_t, wd_cond_init / destroy / broadcast
 *   wd_cond_wait_until(cond, mutex, deadline_ns): wait until signalled or the monotonic
 *       clock reaches deadline_ns (spurious wake-ups allowed: callers re-check their state);
 *       0 when woken, non-zero on a timeout
 *   wd_now_ns(): the monotonic clock, in nanoseconds
 *   wd_yield_cpu(): let another runnable thread have this CPU (a waiter's bounded spin)
 *   wd_thread_id(): the calling thread's id, the number threading.get_ident() returns
 *       (CPython's PyThread_get_thread_ident: pthread_self, or GetCurrentThreadId on Windows)
 *   wd_lock_t, wd_load_int, wd_cas_int, wd_add_ssize, ...: shared state without the GIL
 *       (below: PyMutex and atomics on a free-threaded build, plain C on a GIL build)
 *
 * Branches: Windows (SRWLOCK, CONDITION_VARIABLE, QueryPerformanceCounter, SwitchToThread),
 * macOS (pthreads, pthread_cond_timedwait_relative_np, clock_gettime, sched_yield), other POSIX
 * (pthreads with a CLOCK_MONOTONIC condition variable, sched_yield). ci/cross compiles the
 * first two here; docs/distribution.md says what has run where.
 *
 * Included after Python.h (by the generated C of _core.pyx).
 */
#ifndef WATERDROP_CORE_PLATFORM_H
#define WATERDROP_CORE_PLATFORM_H

#include <stdint.h>

#if defined(_WIN32)   /* Windows (MSVC, or MinGW-w64 headers in a cross-compile) */

/* Slim <windows.h>: winsock2.h, which rdkafka.h includes, must not meet winsock.h. */
#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#include <windows.h>

/* A slim reader/writer lock taken exclusively, and a condition variable bound to it: both
   need no destruction, cannot fail to initialise, and are usable from their zeroed state. */
typedef SRWLOCK wd_mutex_t;
typedef CONDITION_VARIABLE wd_cond_t;

static inline int wd_mutex_init(wd_mutex_t *m) { InitializeSRWLock(m); return 0; }
static inline int wd_mutex_destroy(wd_mutex_t *m) { (void)m; return 0; }
static inline int wd_mutex_lock(wd_mutex_t *m) { AcquireSRWLockExclusive(m); return 0; }
static inline int wd_mutex_unlock(wd_mutex_t *m) { ReleaseSRWLockExclusive(m); return 0; }

static inline int wd_cond_init(wd_cond_t *c) { InitializeConditionVariable(c); return 0; }
static inline int wd_cond_destroy(wd_cond_t *c) { (void)c; return 0; }
static inline int wd_cond_broadcast(wd_cond_t *c) { WakeAllConditionVariable(c); return 0; }

/* QueryPerformanceCounter: monotonic, unaffected by changes to the wall clock. Its frequency
   is fixed at boot; splitting the count into seconds and a remainder keeps the product with
   10^9 inside 64 bits whatever the frequency. */
static inline int64_t wd_now_ns(void) {
    LARGE_INTEGER count, freq;
    QueryPerformanceCounter(&count);
    QueryPerformanceFrequency(&freq);
    return (int64_t)(count.QuadPart / freq.QuadPart) * 1000000000
           + (int64_t)(count.QuadPart % freq.QuadPart) * 1000000000 / freq.QuadPart;
}

/* SleepConditionVariableSRW takes a relative timeout in milliseconds: the remaining time,
   rounded up so that a wait never ends before the deadline (callers re-check the clock). */
static inline int wd_cond_wait_until(wd_cond_t *c, wd_mutex_t *m, int64_t deadline_ns) {
    int64_t left = deadline_ns - wd_now_ns();
    DWORD ms;
    if (left <= 0) return 1;                          /* timed out */
    left = (left + 999999) / 1000000;
    ms = left >= (int64_t)INFINITE ? INFINITE - 1 : (DWORD)left;
    return SleepConditionVariableSRW(c, m, ms, 0) ? 0 : 1;
}

/* SwitchToThread: another thread ready on this processor runs first (sched_yield's match). */
static inline void wd_yield_cpu(void) { (void)SwitchToThread(); }

#elif defined(__APPLE__)   /* macOS: pthreads without pthread_condattr_setclock */

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <time.h>

typedef pthread_mutex_t wd_mutex_t;
typedef pthread_cond_t wd_cond_t;

static inline int wd_mutex_init(wd_mutex_t *m) { return pthread_mutex_init(m, NULL); }
static inline int wd_mutex_destroy(wd_mutex_t *m) { return pthread_mutex_destroy(m); }
static inline int wd_mutex_lock(wd_mutex_t *m) { return pthread_mutex_lock(m); }
static inline int wd_mutex_unlock(wd_mutex_t *m) { return pthread_mutex_unlock(m); }

static inline int wd_cond_init(wd_cond_t *c) { return pthread_cond_init(c, NULL); }
static inline int wd_cond_destroy(wd_cond_t *c) { return pthread_cond_destroy(c); }
static inline int wd_cond_broadcast(wd_cond_t *c) { return pthread_cond_broadcast(c); }

/* CLOCK_MONOTONIC (macOS 10.12+; wheels target 11.0). */
static inline int64_t wd_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* A condition variable's absolute deadline is on the wall clock here; the relative wait
   (an interval measured from now) is immune to changes of it, as the monotonic deadline
   of the POSIX branch is. */
static inline int wd_cond_wait_until(wd_cond_t *c, wd_mutex_t *m, int64_t deadline_ns) {
    struct timespec rel;
    int64_t left = deadline_ns - wd_now_ns();
    if (left <= 0) return ETIMEDOUT;
    rel.tv_sec = (time_t)(left / 1000000000);
    rel.tv_nsec = (long)(left % 1000000000);
    return pthread_cond_timedwait_relative_np(c, m, &rel);
}

static inline void wd_yield_cpu(void) { (void)sched_yield(); }

#else /* POSIX with pthread_condattr_setclock (Linux, the BSDs) */

#include <pthread.h>
#include <sched.h>
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

static inline void wd_yield_cpu(void) { (void)sched_yield(); }

#endif

/*
 * Shared state without the GIL (docs/free-threading.md). On a free-threaded build
 * (Py_GIL_DISABLED, CPython 3.13t+) these are CPython's atomics and PyMutex; on a GIL build
 * the GIL already orders every access they guard, and they compile to plain loads, stores
 * and nothing (the hot path pays nothing for them there).
 *
 *   wd_lock_t, wd_lock / wd_unlock: a one-byte lock for a few instructions of C state
 *       (PyMutex; never held across Python code or a blocking call)
 *   wd_load_int / wd_store_int: a flag or state shared between threads
 *   wd_cas_int(p, expected, desired): 1 if *p was expected and is now desired
 *   wd_add_ssize(p, delta): add to a counter, return the new value
 *   wd_load_ssize, wd_load_u64 / wd_add_u64, wd_load_ulong / wd_store_ulong: the same for
 *       counters and thread ids
 * Every atomic is sequentially consistent: a "set my flag, then read yours" hand-off (a
 * producer and close(), a waiter and the poller) cannot miss on both sides.
 *   wd_cs_t, wd_cs_begin(cs, obj) / wd_cs_end(cs): a critical section on obj around a few
 *       field loads and stores that cannot fail (a hot path's; elsewhere the core uses
 *       Cython's ``with cython.critical_section(obj)``, which handles exceptions)
 *   wd_share_ref(o): turn one of the calling thread's references to o into a shared one,
 *       for a reference another thread drops (librdkafka's reference to a handle, a pinned
 *       payload: dropped by the poller). Biased reference counting otherwise queues the
 *       object for its owner thread to merge when a non-owner drops more references than
 *       it took, once per object, where a shared reference is one atomic add each way.
 *   wd_immortalize(o): make o immortal (its reference count never changes again): for a
 *       module-lifetime sentinel that every thread passes around (produce_async's defaults)
 *   WD_FREE_THREADED: 1 on a free-threaded build
 */
#ifdef Py_GIL_DISABLED

#define WD_FREE_THREADED 1
typedef PyMutex wd_lock_t;
static inline void wd_lock(wd_lock_t *m) { PyMutex_Lock(m); }
static inline void wd_unlock(wd_lock_t *m) { PyMutex_Unlock(m); }
static inline int wd_load_int(int *p) { return _Py_atomic_load_int(p); }
static inline void wd_store_int(int *p, int v) { _Py_atomic_store_int(p, v); }
static inline int wd_cas_int(int *p, int expected, int desired) {
    return _Py_atomic_compare_exchange_int(p, &expected, desired);
}
static inline Py_ssize_t wd_add_ssize(Py_ssize_t *p, Py_ssize_t delta) {
    return _Py_atomic_add_ssize(p, delta) + delta;
}
static inline Py_ssize_t wd_load_ssize(Py_ssize_t *p) { return _Py_atomic_load_ssize(p); }
static inline uint64_t wd_load_u64(uint64_t *p) { return _Py_atomic_load_uint64(p); }
static inline void wd_add_u64(uint64_t *p, uint64_t delta) { _Py_atomic_add_uint64(p, delta); }
/* a critical section on an object (the per-object lock of a free-threaded build) around
   a few loads and stores that cannot raise: a hot path's read of fields that go together */
typedef PyCriticalSection wd_cs_t;
#define wd_cs_begin(cs, o) PyCriticalSection_Begin((cs), (o))
#define wd_cs_end(cs) PyCriticalSection_End(cs)
static inline unsigned long wd_load_ulong(unsigned long *p) { return _Py_atomic_load_ulong(p); }
static inline void wd_store_ulong(unsigned long *p, unsigned long v) {
    _Py_atomic_store_ulong(p, v);
}
/* Both read CPython's free-threaded object header (Include/object.h, 3.13 and 3.14): the
   thread-local count ob_ref_local (UINT32_MAX: immortal) and the shared ob_ref_shared. */
static inline void wd_share_ref(PyObject *o) {
    uint32_t local = _Py_atomic_load_uint32_relaxed(&o->ob_ref_local);
    if (local == _Py_IMMORTAL_REFCNT_LOCAL || !_Py_IsOwnedByCurrentThread(o))
        return;                      /* immortal, or the reference is a shared one already */
    /* the caller holds this reference and another: local stays above zero */
    _Py_atomic_add_ssize(&o->ob_ref_shared, (Py_ssize_t)1 << _Py_REF_SHARED_SHIFT);
    _Py_atomic_store_uint32_relaxed(&o->ob_ref_local, local - 1);
}
static inline void wd_immortalize(PyObject *o) {
    _Py_atomic_store_uint32_relaxed(&o->ob_ref_local, _Py_IMMORTAL_REFCNT_LOCAL);
    _Py_atomic_store_ssize_relaxed(&o->ob_ref_shared, 0);
}

#else

#define WD_FREE_THREADED 0
typedef struct { char unused; } wd_lock_t;
#define wd_lock(m) ((void)(m))
#define wd_unlock(m) ((void)(m))
#define wd_load_int(p) (*(p))
#define wd_store_int(p, v) ((void)(*(p) = (v)))
static inline int wd_cas_int(int *p, int expected, int desired) {
    if (*p != expected) return 0;
    *p = desired;
    return 1;
}
#define wd_add_ssize(p, delta) (*(p) += (delta))
#define wd_load_ssize(p) (*(p))
#define wd_load_u64(p) (*(p))
#define wd_add_u64(p, delta) ((void)(*(p) += (delta)))
typedef struct { char unused; } wd_cs_t;
#define wd_cs_begin(cs, o) ((void)(cs))
#define wd_cs_end(cs) ((void)(cs))
#define wd_load_ulong(p) (*(p))
#define wd_store_ulong(p, v) ((void)(*(p) = (v)))
#define wd_share_ref(o) ((void)(o))
#define wd_immortalize(o) ((void)(o))

#endif

/* Python's own thread id: on every platform the value threading.get_ident() returns, which
   the Python layer stores (a transaction's owner) and the core compares against. */
static inline unsigned long wd_thread_id(void) { return PyThread_get_thread_ident(); }

#endif /* WATERDROP_CORE_PLATFORM_H */
