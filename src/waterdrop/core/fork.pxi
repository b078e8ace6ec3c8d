# fork(): librdkafka's threads do not exist in the child, so its handles must never be used or
# destroyed there. Every native object is forgotten in the child, never freed. Where there is no
# fork (Windows; os.register_at_fork is POSIX-only) there is no child to forget anything in:
# the pid never changes and nothing is registered.

#: The process clients belong to (a producer compares its client's pid with it).
cdef long _pid = _os.getpid()

_LIVE_NATIVE = _weakref.WeakSet()


def _abandon_after_fork():
    global _pid
    _pid = _os.getpid()
    for obj in list(_LIVE_NATIVE):
        obj.abandon()
    _LIVE_NATIVE.clear()


if hasattr(_os, "register_at_fork"):
    _os.register_at_fork(after_in_child=_abandon_after_fork)
