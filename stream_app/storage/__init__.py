"""ClickHouse storage: migrations runner, the flush sink and typed query helpers.

Modules:

- :mod:`~stream_app.storage.settings`: StorageSettings;
- :mod:`~stream_app.storage.client`: one client per process per DSN, error translation;
- :mod:`~stream_app.storage.migrate`: Migrator (its status table in
  :mod:`~stream_app.storage.migrate_status`, TTL alignment in
  :mod:`~stream_app.storage.migrate_ttls`);
- :mod:`~stream_app.storage.sink`: ClickHouseSink;
- :mod:`~stream_app.storage.queries`: StorageQueries;
- :mod:`~stream_app.storage.errors`: the error hierarchy;
- :mod:`~stream_app.storage.engines`: table engines, single server or replicated;
- :mod:`~stream_app.storage.tables`: table names, resolutions, retention rules.

The DDL itself is in :mod:`schemas.migrations`.
"""
