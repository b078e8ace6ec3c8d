"""ProducerBase, the core's dispatch: the hooks it calls, which the Python subclass defines,
and its signatures. The per-message methods are plain method descriptors (compiled with
binding=False, which the interpreter calls directly); their signatures must still reach users:
``inspect.signature`` for ``wait``, the docstring's first line (what ``help()`` shows) for the
produce methods, whose sentinel defaults cannot be a text signature."""

from __future__ import annotations

import inspect
import pydoc

import pytest

from waterdrop import Producer
from waterdrop._core import DeliveryHandle, ProducerBase

FIELDS = ("topic", "payload", "key", "partition", "partition_key", "timestamp", "headers",
          "label")


def test_wait_has_a_signature():
    params = inspect.signature(DeliveryHandle.wait).parameters
    assert list(params) == ["self", "max_wait_timeout", "raise_response_error"]
    assert params["max_wait_timeout"].default is None
    assert params["raise_response_error"].default is True


@pytest.mark.parametrize("name", ["produce_async", "produce_sync"])
def test_produce_methods_show_their_signature_in_help(name):
    method = getattr(Producer, name)
    first = method.__doc__.splitlines()[0]
    assert first.startswith(f"{name}(self, message=None, /, *, ")
    for field in FIELDS:
        assert f"{field}=" in first
    assert first.rstrip().endswith("**rest)")
    assert first in pydoc.render_doc(method)


# --- the hooks ProducerBase calls and the subclass defines ---------------------------------------

HOOKS = {
    "_connect": (),
    "_dispatch_retrying": ({"topic": "t"}, None, RuntimeError("x"), "message.produce_async"),
    "_produce_error": ({"topic": "t"}, RuntimeError("x"), "message.produce_async"),
    "_produce_async_slow": ({"topic": "t"},),
    "_produce_sync_slow": ({"topic": "t"},),
    "_produce_async_in_transaction": ({"topic": "t"},),
}


class _Bare(ProducerBase):
    """A subclass that defines none of the hooks."""


@pytest.mark.parametrize("name", sorted(HOOKS))
def test_every_hook_is_declared_by_the_base_and_raises_until_defined(name):
    hook = getattr(ProducerBase, name)
    assert hook.__doc__ and hook.__doc__.strip()
    assert name in ProducerBase.__doc__
    with pytest.raises(NotImplementedError):
        getattr(_Bare(), name)(*HOOKS[name])


def test_the_id_hook_is_an_attribute_of_the_base():
    bare = _Bare()
    assert bare.id is None
    bare.id = "p-1"
    assert bare.id == "p-1"
    assert "``id``" in ProducerBase.__doc__


def test_the_python_producer_defines_every_hook():
    for name in HOOKS:
        assert getattr(Producer, name) is not getattr(ProducerBase, name), name


def test_the_base_reaches_the_slow_path_hook_for_a_mapping_that_is_not_a_dict():
    from types import MappingProxyType

    with pytest.raises(NotImplementedError):
        _Bare().produce_async(MappingProxyType({"topic": "t", "payload": b"x"}))
