# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""The binding: librdkafka client, per-message contract checks, produce, delivery handles.

Everything that touches a C pointer, runs without the GIL or runs once per message lives here;
policy (settings, lifecycle, instrumentation) lives in the Python layer above.

One module (one C file, so that inline functions inline and cdef classes call each other
directly), written in parts by concern: this file holds the imports and includes the parts of
core/, in the order they build on each other.
"""

from cpython.buffer cimport PyObject_GetBuffer, PyBuffer_Release, PyBUF_SIMPLE
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE
from cpython.dict cimport PyDict_GetItem, PyDict_GetItemWithError, PyDict_Size, PyDict_Next
from cpython.exc cimport PyErr_CheckSignals
from cpython.long cimport PyLong_AsLongLongAndOverflow
from cpython.object cimport PyObject
from cpython.ref cimport Py_INCREF, Py_DECREF, Py_XINCREF, Py_XDECREF, Py_REFCNT
from cpython.unicode cimport PyUnicode_AsUTF8AndSize
from libc.stdint cimport int32_t, int64_t, uint64_t, INT32_MAX
from libc.stdio cimport FILE, tmpfile, fclose, fread, rewind
from libc.stdlib cimport malloc, realloc, free, rand
from libc.string cimport memcpy, memset

cdef extern from "Python.h":
    Py_ssize_t PyDict_GET_SIZE(dict d) noexcept      # (a macro: no call, no type check)

cimport cython

from waterdrop._rdkafka cimport *

import contextvars as _contextvars
import datetime as _dt
import os as _os
import threading as _threading
import time as _time
import weakref as _weakref

from waterdrop import errors as _errors
from waterdrop.config import DEFAULT_MAX_PAYLOAD_SIZE, DEFAULT_MAX_WAIT_TIMEOUT
from waterdrop.contracts import wording as _wording
from waterdrop.instrumentation import events as _events
from waterdrop.instrumentation import payloads as _payloads

# C-API functions the cpython package does not declare
cdef extern from "Python.h":
    void PyErr_WriteUnraisable(object obj)
    int PyContextVar_Get(object var, PyObject *default_value, PyObject **value) except -1

include "core/platform.pxi"       # mutex, condition variable, clock, thread id
include "core/errors.pxi"         # librdkafka's version; its error codes as KafkaError
include "core/message.pxi"        # a message's fields, its contract, its C form
include "core/handles.pxi"        # DeliveryReport, DeliveryHandle, waiting for them
include "core/listening.pxi"      # who listens: a Monitor's change count, cached answers
include "core/client.pxi"         # Client: one librdkafka producer handle
include "core/poller.pxi"         # ... its delivery-report poller
include "core/produce.pxi"        # ... its produce paths
include "core/transactions.pxi"   # ... its transaction calls
include "core/mock_cluster.pxi"   # MockCluster
include "core/dispatch.pxi"       # ProducerBase: waterdrop.Producer's per-message dispatch
include "core/fork.pxi"           # forgetting native handles in a forked child
