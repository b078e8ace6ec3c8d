"""The per-message methods are plain method descriptors (compiled with binding=False, which the
interpreter calls directly); their signatures must still reach users: ``inspect.signature``
for ``wait``, the docstring's first line (what ``help()`` shows) for the produce methods, whose
sentinel defaults cannot be a text signature."""

from __future__ import annotations

import inspect
import pydoc

import pytest

from waterdrop import Producer
from waterdrop._core import DeliveryHandle

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
