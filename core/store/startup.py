"""Opening the store for the service or a CLI command: reachable, and at the expected schema."""

from __future__ import annotations

from core.store.chain import AuditKey
from core.store.db import Store, database_url, redacted, sqlite_file
from core.store.errors import SchemaNotCurrent
from core.store.migrate import ensure_migrated


def open_store(url: str, *, auto_migrate: bool, audit_key: AuditKey | None = None) -> Store:
    """A ready Store, or StoreError with one line saying what to do (never a half-open store)."""
    parsed = database_url(url)
    path = sqlite_file(parsed)
    if path is not None and not path.exists() and not auto_migrate:
        # Connecting would create an empty file as a side effect of, say, an audit query.
        raise SchemaNotCurrent(
            f"no database at {redacted(parsed)}: the file does not exist; run `meshbot migrate` to create it"
        )
    store = Store.from_url(url, audit_key=audit_key)
    try:
        store.check_connection()
        ensure_migrated(store.engine, auto_migrate=auto_migrate)
    except BaseException:
        store.dispose()
        raise
    return store
