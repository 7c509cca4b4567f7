"""Encrypting secrets that a store written before ``corral.secretbox`` still holds in plaintext.

The encrypted column types read such legacy values as they are, so nothing breaks
without this; but "encrypted at rest" should hold for an upgraded store too, not only
for rows written since. The control plane runs ``seal_plaintext_secrets`` once when it
starts; it finds the rows by their raw column text, so on a sealed store it costs one scan
of these columns and no writes.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import String, cast, select
from sqlalchemy.orm.attributes import flag_modified

from corral.secretbox import PREFIX
from corral.store.db import Store
from corral.store.models import Cluster, Host, Step
from corral.store.monitoring import Webhook

log = logging.getLogger(__name__)

# (model, attribute, whether the column is JSON: an encrypted JSON value is a JSON string, '"enc:v1:...')
SECRET_COLUMNS: tuple[tuple[Any, str, bool], ...] = (
    (Cluster, "agent_token", False),
    (Cluster, "secrets", True),
    (Step, "secrets", True),
    (Host, "private_key", False),
    (Webhook, "url", False),
)


def seal_plaintext_secrets(store: Store) -> int:
    """Rewrite every secret column that still holds plaintext, encrypted; the number of
    values rewritten. Idempotent."""
    sealed = 0
    for model, attr, is_json in SECRET_COLUMNS:
        column = model.__table__.c[attr]
        raw = cast(column, String)  # the stored text, bypassing the column type's decryption
        pattern = ('"' if is_json else "") + PREFIX + "%"
        with store.session() as s:
            ids = s.scalars(select(model.__table__.c.id).where(column.is_not(None), raw.not_like(pattern))).all()
            for ident in ids:
                row = s.get(model, ident)
                if row is not None and getattr(row, attr) is not None:
                    flag_modified(row, attr)  # written back through the type: encrypted
                    sealed += 1
    if sealed:
        log.info("encrypted %d secret values stored in plaintext before this version", sealed)
    return sealed
