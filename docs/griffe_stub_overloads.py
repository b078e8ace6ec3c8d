"""A griffe extension for the API reference: overloaded methods of a stub (``_core.pyi``).

A stub has no implementation after its ``@overload`` signatures, and griffe attaches
overloads to an implementation only, so ``ProducerBase.produce_sync`` (and what the
``Producer`` page inherits from it) would vanish from the reference. Here the last overload
stands in for the implementation (it carries the docstring), the others listed above it.
"""

from __future__ import annotations

from typing import Any

import griffe


class StubOverloads(griffe.Extension):
    def on_class_members(self, *, node: Any, cls: griffe.Class, agent: Any, **kwargs: Any) -> None:
        for name, overloads in list(cls.overloads.items()):
            if not overloads or name in cls.members:
                continue
            function = overloads[-1]
            function.overloads = overloads[:-1]
            cls.set_member(name, function)
            del cls.overloads[name]
