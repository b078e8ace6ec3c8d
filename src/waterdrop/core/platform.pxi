# The platform layer (core/platform.h): mutex, condition variable with a monotonic deadline,
# clock, thread id. The only place the core gets these from.

cdef extern from "core/platform.h" nogil:
    ctypedef struct wd_mutex_t:
        pass
    ctypedef struct wd_cond_t:
        pass
    int wd_mutex_init(wd_mutex_t *m)
    int wd_mutex_destroy(wd_mutex_t *m)
    int wd_mutex_lock(wd_mutex_t *m)
    int wd_mutex_unlock(wd_mutex_t *m)
    int wd_cond_init(wd_cond_t *c)
    int wd_cond_destroy(wd_cond_t *c)
    int wd_cond_broadcast(wd_cond_t *c)
    int wd_cond_wait_until(wd_cond_t *c, wd_mutex_t *m, int64_t deadline_ns)
    int64_t wd_now_ns()
    unsigned long wd_thread_id()
