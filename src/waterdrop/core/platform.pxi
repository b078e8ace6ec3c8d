# The platform layer (core/platform.h): mutex, condition variable with a monotonic deadline,
# clock, thread id; locks and atomics for shared state without the GIL. The only place the
# core gets these from.

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
    void wd_yield_cpu()
    unsigned long wd_thread_id()
    # shared state without the GIL: PyMutex and atomics on a free-threaded build, plain C
    # (no cost) on a GIL build, whose GIL orders these accesses already
    ctypedef struct wd_lock_t:
        pass
    void wd_lock(wd_lock_t *m)
    void wd_unlock(wd_lock_t *m)
    int wd_load_int(int *p)
    void wd_store_int(int *p, int v)
    bint wd_cas_int(int *p, int expected, int desired)
    Py_ssize_t wd_add_ssize(Py_ssize_t *p, Py_ssize_t delta)
    Py_ssize_t wd_load_ssize(Py_ssize_t *p)
    uint64_t wd_load_u64(uint64_t *p)
    void wd_add_u64(uint64_t *p, uint64_t delta)
    unsigned long wd_load_ulong(unsigned long *p)
    void wd_store_ulong(unsigned long *p, unsigned long v)
    ctypedef struct wd_cs_t:
        pass
    void wd_cs_begin(wd_cs_t *cs, PyObject *o)
    void wd_cs_end(wd_cs_t *cs)
    void wd_share_ref(PyObject *o)
    void wd_immortalize(PyObject *o)
    const bint WD_FREE_THREADED
