# Delivery handles and reports: what a produce returns, how a thread or a loop waits for it
# (without the GIL), and the free list their memory comes from.

cdef enum:
    _PENDING = 0
    _DONE = 1


@cython.no_gc
cdef class DeliveryReport:
    """The broker's verdict on one message: where it landed, or the error.

    A resolved DeliveryHandle is its own report (no second object per message).
    """

    # 80 bytes per handle (a pymalloc size class), the fields packed for the million
    # messages in flight case: a pending handle's ``_offset`` holds its default wait (ms) and
    # its ``_error`` the payload object librdkafka points at (zero-copy), released when the
    # handle resolves.
    cdef readonly str topic_name
    cdef int32_t _partition
    cdef int _state               # _PENDING (handles only) or _DONE
    cdef int64_t _offset
    cdef readonly object label
    cdef object _error
    cdef int64_t _latency_us

    def __init__(self, topic_name, partition=-1, offset=-1001, label=None, error=None,
                 latency_ms=-1.0):
        self.topic_name = topic_name
        self.label = label
        _set_verdict(self, partition, offset, error,
                     <int64_t>(latency_ms * 1000) if latency_ms >= 0 else -1)

    @property
    def topic(self):
        """Alias of ``topic_name``."""
        return self.topic_name

    # A pending handle's fields are written by the thread that resolves it (verdict first,
    # then the state): every getter reads the state first and a field only once resolved
    # (DeliveryHandle.__repr__ too; this one runs for a resolved handle only).
    @property
    def partition(self):
        return self._partition if wd_load_int(&self._state) != _PENDING else -1

    @property
    def offset(self):
        return self._offset if wd_load_int(&self._state) != _PENDING else -1001

    @property
    def error(self):
        """None, or the KafkaError the message failed with."""
        # a pending handle's _error is its pinned payload, replaced when it resolves: read
        # only once the state says resolved (the verdict is written before the state)
        return self._error if wd_load_int(&self._state) != _PENDING else None

    @property
    def latency_ms(self):
        """librdkafka's produce-to-acknowledgement time, -1.0 when unknown."""
        if wd_load_int(&self._state) == _PENDING or self._latency_us < 0:
            return -1.0
        return self._latency_us / 1000.0

    def __repr__(self):
        if wd_load_int(&self._state) != _PENDING and self._error is not None:
            return (f"<DeliveryReport topic={self.topic_name!r} partition={self._partition} "
                    f"error={self._error.code!r} label={self.label!r}>")
        return (f"<DeliveryReport topic={self.topic_name!r} partition={self._partition} "
                f"offset={self._offset} label={self.label!r}>")


cdef class Client


cdef class _Waiter:
    """A mutex and condition variable that waiting threads block on without the GIL.

    ``client`` is set for a librdkafka client's handles: a waiting thread may then serve the
    client's queue itself (one thread hop less than waiting for the poller).
    """
    cdef wd_mutex_t mutex
    cdef wd_cond_t cond
    cdef Client client

    def __cinit__(self):
        wd_mutex_init(&self.mutex)
        wd_cond_init(&self.cond)

    def __dealloc__(self):
        wd_cond_destroy(&self.cond)
        wd_mutex_destroy(&self.mutex)

    cdef inline void wake_all(self) noexcept nogil:
        wd_mutex_lock(&self.mutex)
        wd_cond_broadcast(&self.cond)
        wd_mutex_unlock(&self.mutex)


cdef _Waiter _RESOLVED_WAITER = _Waiter()
cdef object _await_handle = None   # waterdrop._aio.await_handle, imported on first await


@cython.final
@cython.no_gc
cdef class DeliveryHandle(DeliveryReport):
    """A message on its way to Kafka. ``wait()`` returns its DeliveryReport.

    Once resolved the handle is its own report: ``handle.wait() is handle``.
    """

    cdef _Waiter _waiter
    # What runs once resolved: None, an event loop's waker (gets the handle with its delivery
    # batch: waterdrop._aio), or a list [waker or None, callback, ...] (asyncio, policy).
    cdef object _extra

    def __init__(self):
        raise TypeError("DeliveryHandle objects are created by the producer")

    @property
    def pending(self):
        """True until the broker acknowledged the message or it failed."""
        return wd_load_int(&self._state) == _PENDING

    def _resolve(self, int partition=-1, long long offset=-1001, error=None):
        """Resolve from Python (test clients); librdkafka resolves through the poller.

        A handle resolves once: a second resolution (another thread's, say) does nothing."""
        if _resolve_handle(self, partition, offset, error, -1) < 0:
            return
        self._waiter.wake_all()
        waker = _handle_run_callbacks(self)
        if waker is not None:
            try:
                waker.push_many([self])
            except BaseException:
                PyErr_WriteUnraisable(waker)

    def add_done_callback(self, callback):
        """Call ``callback(handle)`` once the handle is resolved (now, if it already is).

        Runs on the delivery poller thread; keep it short.
        """
        # under the handle's lock, against its resolution (_resolve_handle): the callback is
        # either in place before the resolver looks, or the handle is resolved and it runs here
        cdef bint added = False
        with cython.critical_section(self):
            if self._state == _PENDING:
                added = True
                extra = self._extra
                if extra is None:
                    self._extra = [None, callback]
                elif type(extra) is list:
                    (<list>extra).append(callback)
                else:
                    self._extra = [extra, callback]
        if not added:
            callback(self)

    def _set_waker(self, waker):
        """For waterdrop._aio: hand this handle to ``waker.push_many(handles)`` together with
        the other handles of its delivery batch, once per batch. False when the handle is
        already resolved or another waker is set (then use add_done_callback)."""
        with cython.critical_section(self):      # against the resolution, as add_done_callback
            if self._state != _PENDING:
                return False
            extra = self._extra
            if extra is None:
                self._extra = waker
                return True
            if type(extra) is list:
                if (<list>extra)[0] is None:
                    (<list>extra)[0] = waker
                    return True
                return (<list>extra)[0] is waker
            return extra is waker

    def report(self):
        """The report of a resolved handle (the handle itself), or None while pending."""
        if wd_load_int(&self._state) == _PENDING:
            return None
        return self

    # binding(False): a plain method descriptor, which CPython's specialising interpreter calls
    # directly; a Cython function object goes through the generic vectorcall path (about 50
    # instructions more per call, and this is called once per message)
    @cython.binding(False)
    def wait(self, max_wait_timeout=None, bint raise_response_error=True):
        """Block (without the GIL) until delivered or failed; return the DeliveryReport.

        ``max_wait_timeout`` in ms (default: the producer's); WaitTimeoutError while pending.
        A delivery error is raised unless ``raise_response_error`` is False, in which case it
        is in ``report.error``.
        """
        cdef long long timeout_ms
        cdef wd_cs_t cs
        if wd_load_int(&self._state) == _PENDING:
            if max_wait_timeout is None:
                # a pending handle's default wait, which its resolution overwrites (with the
                # offset): read together with the state
                wd_cs_begin(&cs, <PyObject *>self)
                timeout_ms = self._offset if self._state == _PENDING else 0
                wd_cs_end(&cs)
            else:
                # beyond ~292 years the deadline in ns would overflow: wait "forever" instead
                timeout_ms = <long long>min(max_wait_timeout, 9_000_000_000_000)
            if not _handle_block(self, timeout_ms, False):
                raise _errors.WaitTimeoutError(timeout_ms)
        if raise_response_error and self._error is not None:
            raise self._error
        return self

    def __await__(self):
        global _await_handle
        if _await_handle is None:
            from waterdrop._aio import await_handle as _await_handle
        return _await_handle(self).__await__()

    def __repr__(self):
        if wd_load_int(&self._state) == _PENDING:
            return f"<DeliveryHandle topic={self.topic_name!r} pending label={self.label!r}>"
        return "<DeliveryHandle " + DeliveryReport.__repr__(self)[16:]


cdef DeliveryHandle _handle_wait_sync(DeliveryHandle self, long long timeout_ms):
    """produce_sync's ``wait(timeout_ms)``, for the message the caller has just produced: the
    same answer and errors, with a brief spin before blocking (_serve_until)."""
    if wd_load_int(&self._state) == _PENDING:
        timeout_ms = min(timeout_ms, 9_000_000_000_000)
        if not _handle_block(self, timeout_ms, True):
            raise _errors.WaitTimeoutError(timeout_ms)
    if self._error is not None:
        raise self._error
    return self


cdef object _handle_run_callbacks(DeliveryHandle self):
    """Run (and drop) the callbacks of a resolved handle; return its waker, if any. Called by
    the thread that resolved it, the only one that touches ``_extra`` once it is resolved."""
    extra = self._extra
    if extra is None:
        return None
    self._extra = None
    if type(extra) is not list:
        return extra
    callbacks = <list>extra
    for i in range(1, len(callbacks)):
        callback = callbacks[i]
        try:
            callback(self)
        except BaseException:
            PyErr_WriteUnraisable(callback)
    return callbacks[0]


cdef bint _handle_block(DeliveryHandle self, long long timeout_ms, bint spin) except -1:
    """Wait until resolved; False on timeout. Checks for signals every 100 ms. ``spin``: see
    _serve_until (produce_sync's wait)."""
    cdef int64_t deadline = wd_now_ns() + min(timeout_ms, 9_000_000_000_000) * 1_000_000
    cdef Client client = self._waiter.client
    if client is not None:
        if _claim_queue(client):
            return _serve_until(client, self, deadline, spin)
        if wd_load_int(&client._lazy):
            _wake_poller(client)
    return _handle_wait_condvar(self, deadline)


cdef bint _handle_wait_condvar(DeliveryHandle self, int64_t deadline) except -1:
    """Wait on the client's condition variable until resolved (or ``deadline``, ns)."""
    cdef int64_t slice_end, now
    cdef _Waiter waiter = self._waiter
    while wd_load_int(&self._state) == _PENDING:
        now = wd_now_ns()
        if now >= deadline:
            return False
        slice_end = min(deadline, now + 100_000_000)
        with nogil:
            wd_mutex_lock(&waiter.mutex)
            # the resolver sets the state, then takes this mutex to broadcast: no lost wake-up
            if wd_load_int(&self._state) == _PENDING:
                wd_cond_wait_until(&waiter.cond, &waiter.mutex, slice_end)
            wd_mutex_unlock(&waiter.mutex)
        PyErr_CheckSignals()
    return True


# The handles' memory: a free list of their blocks. One handle per message comes and goes, in
# thousands per produce_many call; reusing the blocks skips pymalloc's allocate and free for
# each (Cython's @freelist does not apply to a subclass). tp_alloc and tp_free of a type that
# allows no subclass: the GIL orders them on a GIL build; without it (free-threaded build) a
# PyMutex does, as producers allocate while the poller and waiters free; at most 16,384 blocks
# (1.3 MB) are kept.
cdef extern from *:
    """
    #ifndef WD_HANDLE_FREELIST
    #ifdef Py_GIL_DISABLED
    /* 0 on a free-threaded build: CPython's allocator (mimalloc) has a heap per thread, so a
       fresh block costs no lock, where this list would take its PyMutex twice per handle */
    #define WD_HANDLE_FREELIST 0
    #else
    #define WD_HANDLE_FREELIST 16384      /* 0 in sanitizer builds: every handle is fresh */
    #endif
    #endif
    static void *wd_handle_blocks[WD_HANDLE_FREELIST + 1];
    static Py_ssize_t wd_handle_nblocks = 0;
    static PyTypeObject *wd_handle_type = NULL;
    static wd_lock_t wd_handle_lock;      /* the two above, without the GIL */

    static PyObject *wd_handle_alloc(PyTypeObject *t, Py_ssize_t nitems) {
        PyObject *o = NULL;
        if (t == wd_handle_type) {
            wd_lock(&wd_handle_lock);
            if (wd_handle_nblocks > 0)
                o = (PyObject *)wd_handle_blocks[--wd_handle_nblocks];
            wd_unlock(&wd_handle_lock);
        }
        if (o != NULL) {
            memset(o, 0, (size_t)t->tp_basicsize);
            return PyObject_Init(o, t);
        }
        return PyType_GenericAlloc(t, nitems);
    }

    static void wd_handle_free(void *o) {
        wd_lock(&wd_handle_lock);
        if (wd_handle_nblocks < WD_HANDLE_FREELIST) {
            wd_handle_blocks[wd_handle_nblocks++] = o;
            o = NULL;
        }
        wd_unlock(&wd_handle_lock);
        if (o != NULL)
            PyObject_Free(o);
    }

    static void wd_handle_freelist_install(PyObject *type) {
        PyTypeObject *t = (PyTypeObject *)type;
        if (WD_HANDLE_FREELIST == 0)
            return;                       /* no list: the type's own tp_alloc and tp_free */
        wd_handle_type = t;
        t->tp_alloc = wd_handle_alloc;
        t->tp_free = wd_handle_free;
    }

    static Py_ssize_t wd_handle_freelist_size(void) {
        Py_ssize_t n;
        wd_lock(&wd_handle_lock);
        n = wd_handle_nblocks;
        wd_unlock(&wd_handle_lock);
        return n;
    }
    """
    void wd_handle_freelist_install(PyObject *t)
    Py_ssize_t wd_handle_freelist_size()
    Py_ssize_t WD_HANDLE_FREELIST

wd_handle_freelist_install(<PyObject *>DeliveryHandle)


def _handle_freelist_size():
    """(blocks kept for reuse by new handles, the most it keeps): for the tests."""
    return wd_handle_freelist_size(), WD_HANDLE_FREELIST


# A pending handle built directly: its block from the type's tp_alloc (the free list above on
# a GIL build), every field written once. DeliveryHandle.__new__ went through Cython's tp_new
# chain (DeliveryReport's, then DeliveryHandle's), stored None in the five object fields, and
# _new_handle then replaced three of them: about 40 instructions per message more. The macro
# names Cython's struct for the class (module waterdrop._core): a rename is a compile error
# here, not a silent change; it expands inside _new_handle, after Cython declared the struct.
# What it writes is what tp_new + the stores wrote (tests/unit/core/test_handles.py compares
# the two). No __init__ runs, as before (DeliveryHandle's refuses Python-level creation).
cdef extern from *:
    """
    static PyObject *wd_handle_alloc_of(PyObject *type) {
        PyTypeObject *t = (PyTypeObject *)type;
        return t->tp_alloc(t, 0);         /* zeroed, one reference, not GC-tracked (no_gc) */
    }
    #define WD_HANDLE_FILL(o_, topic_, label_, wait_ms_, waiter_) do { \
        struct __pyx_obj_9waterdrop_5_core_DeliveryHandle *h_ = \
            (struct __pyx_obj_9waterdrop_5_core_DeliveryHandle *)(o_); \
        Py_INCREF(topic_); h_->__pyx_base.topic_name = (topic_); \
        Py_INCREF(label_); h_->__pyx_base.label = (label_); \
        Py_INCREF(Py_None); h_->__pyx_base._error = Py_None; \
        h_->__pyx_base._partition = -1; \
        h_->__pyx_base._state = 0;        /* _PENDING */ \
        h_->__pyx_base._offset = (wait_ms_); \
        h_->__pyx_base._latency_us = -1; \
        Py_INCREF(waiter_); \
        h_->_waiter = (struct __pyx_obj_9waterdrop_5_core__Waiter *)(waiter_); \
        Py_INCREF(Py_None); h_->_extra = Py_None; \
    } while (0)
    """
    object wd_handle_alloc_of(PyObject *type)
    void WD_HANDLE_FILL(PyObject *o, PyObject *topic, PyObject *label, long long wait_ms,
                        PyObject *waiter) noexcept nogil


cdef inline DeliveryHandle _new_handle(str topic, object label, long long max_wait_ms,
                                       _Waiter waiter):
    # (nothing runs between the allocation and the fill: the NULL fields are never seen)
    h = wd_handle_alloc_of(<PyObject *>DeliveryHandle)
    WD_HANDLE_FILL(<PyObject *>h, <PyObject *>topic, <PyObject *>label, max_wait_ms,
                   <PyObject *>waiter)
    return <DeliveryHandle>h


cdef inline void _set_verdict(DeliveryReport h, int32_t partition, int64_t offset, object error,
                              int64_t latency_us) noexcept:
    """Set the verdict of a report nobody else sees yet (a new one)."""
    h._partition = partition
    h._offset = offset
    h._latency_us = latency_us
    h._state = _DONE
    h._error = error


cdef inline int _resolve_handle(DeliveryHandle h, int32_t partition, int64_t offset,
                                object error, int64_t latency_us) noexcept:
    """Resolve a pending handle, exactly once whoever else tries: -1 when it was resolved
    already (nothing changed), else 1 when it has callbacks or a waker (``_extra``: the
    resolver runs them, see _handle_run_callbacks), 0 when not. Releases the payload the
    handle pins (``_error``).

    Under the handle's lock (a critical section; nothing on a GIL build), against
    add_done_callback and _set_waker; the verdict is written before the state, which waiting
    threads read without the lock."""
    cdef int has_extra = -1
    cdef object pinned = None
    with cython.critical_section(h):
        if h._state == _PENDING:
            h._partition = partition
            h._offset = offset
            h._latency_us = latency_us
            pinned = h._error
            h._error = error
            wd_store_int(&h._state, _DONE)
            has_extra = h._extra is not None
    return has_extra           # ``pinned`` released here, outside the lock


def resolved_handle(str topic, int partition=-1, long long offset=-1001, label=None,
                    error=None, long long max_wait_ms=DEFAULT_MAX_WAIT_TIMEOUT):
    """A handle already resolved: for clients that do not talk to Kafka (Dummy, Buffered)."""
    cdef DeliveryHandle h = _new_handle(topic, label, max_wait_ms, _RESOLVED_WAITER)
    _set_verdict(h, partition, offset, error, 0)
    return h


def pending_handle(str topic, label=None, long long max_wait_ms=DEFAULT_MAX_WAIT_TIMEOUT):
    """A handle resolved later with ``handle._resolve(...)``."""
    return _new_handle(topic, label, max_wait_ms, _Waiter())
