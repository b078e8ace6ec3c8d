"""Transactions: one Kafka transaction per ``with producer.transaction():`` block."""

from __future__ import annotations

from typing import Any

from waterdrop.errors import ProducerNotTransactionalError


def transaction(producer: Any) -> Any:
    if not producer.transactional:
        raise ProducerNotTransactionalError(f"{producer.id} is not transactional")
    raise NotImplementedError("transactions arrive with the transactions issue")
