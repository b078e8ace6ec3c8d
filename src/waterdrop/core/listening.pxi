# Who listens: the seam between a Monitor and the core. A Monitor counts its listener changes
# in a ListenerChanges (one C field); the core asks ``monitor.listening(event)`` and keeps the
# answers until that count moves, so that a message nobody listens to for costs a compare, not
# a lookup. A monitor without a ListenerChanges (a user's own object) is asked every time.

@cython.final
cdef class ListenerChanges:
    """A Monitor's count of listener changes (every subscribe, unsubscribe and clear).

    Whoever caches ``monitor.listening(event)`` answers asks again once ``count`` moved.
    """

    cdef uint64_t _count

    @property
    def count(self):
        return wd_load_u64(&self._count)

    def bump(self):
        """Count one change (after the listener table has changed)."""
        wd_add_u64(&self._count, 1)


@cython.final
cdef class _Listening:
    """``monitor.listening(event)`` for a fixed tuple of events, bit i for ``events[i]``, kept
    while the monitor is the same object and its ListenerChanges count has not moved.

    Its fields are read and written together, under its critical section (another thread
    may be asking again meanwhile; nothing on a GIL build)."""

    cdef tuple events
    cdef object monitor              # the monitor the answers are for
    cdef ListenerChanges changes     # its change count (None: it has none, ask every time)
    cdef uint64_t seen               # the count when the answers were taken
    cdef int answers

    def __cinit__(self, tuple events):
        self.events = events


cdef inline int _listening(_Listening cache, object monitor) except -1:
    """The answers (bits) for ``monitor``: a few loads while nothing changed."""
    cdef int answers = -1
    cdef wd_cs_t cs
    wd_cs_begin(&cs, <PyObject *>cache)
    if (monitor is cache.monitor and cache.changes is not None
            and wd_load_u64(&cache.changes._count) == cache.seen):
        answers = cache.answers
    wd_cs_end(&cs)
    if answers >= 0:
        return answers
    return _listening_ask(cache, monitor)


cdef int _listening_ask(_Listening cache, object monitor) except -1:
    cdef int answers = 0
    cdef int i
    cdef unsigned long long seen = 0
    cdef ListenerChanges changes = None
    found = getattr(monitor, "listener_changes", None)
    if type(found) is ListenerChanges:
        changes = <ListenerChanges>found
        seen = wd_load_u64(&changes._count)   # before asking: a change meanwhile asks again
    for i in range(len(cache.events)):
        if monitor.listening(cache.events[i]):
            answers |= 1 << i
    # all at once: another thread may read the cache meanwhile
    with cython.critical_section(cache):
        old = (cache.changes, cache.monitor)
        cache.answers = answers
        cache.seen = seen
        cache.changes = changes
        cache.monitor = monitor
    return answers
