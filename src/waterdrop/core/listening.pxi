# Who listens: the seam between a Monitor and the core. A Monitor counts its listener changes
# in a ListenerChanges (one C field); the core asks ``monitor.listening(event)`` and keeps the
# answers until that count moves, so that a message nobody listens to for costs a compare, not
# a lookup. A monitor without a ListenerChanges (a user's own object) is asked every time.

@cython.final
cdef class ListenerChanges:
    """A Monitor's count of listener changes (every subscribe, unsubscribe and clear).

    Whoever caches ``monitor.listening(event)`` answers asks again once ``count`` moved.
    """

    cdef readonly unsigned long long count

    def bump(self):
        """Count one change (after the listener table has changed)."""
        self.count += 1


@cython.final
cdef class _Listening:
    """``monitor.listening(event)`` for a fixed tuple of events, bit i for ``events[i]``, kept
    while the monitor is the same object and its ListenerChanges count has not moved."""

    cdef tuple events
    cdef object monitor              # the monitor the answers are for
    cdef ListenerChanges changes     # its change count (None: it has none, ask every time)
    cdef unsigned long long seen     # the count when the answers were taken
    cdef int answers

    def __cinit__(self, tuple events):
        self.events = events


cdef inline int _listening(_Listening cache, object monitor) except -1:
    """The answers (bits) for ``monitor``: a few loads while nothing changed."""
    if (monitor is cache.monitor and cache.changes is not None
            and cache.changes.count == cache.seen):
        return cache.answers
    return _listening_ask(cache, monitor)


cdef int _listening_ask(_Listening cache, object monitor) except -1:
    cdef int answers = 0
    cdef int i
    cdef unsigned long long seen = 0
    cdef ListenerChanges changes = None
    found = getattr(monitor, "listener_changes", None)
    if type(found) is ListenerChanges:
        changes = <ListenerChanges>found
        seen = changes.count             # before asking: a change meanwhile asks again
    for i in range(len(cache.events)):
        if monitor.listening(cache.events[i]):
            answers |= 1 << i
    # all at once (no Python code runs in between): another thread may read the cache as
    # soon as Python code runs
    cache.answers = answers
    cache.seen = seen
    cache.changes = changes
    cache.monitor = monitor
    return answers
