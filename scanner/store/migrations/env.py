"""Alembic's environment for the store: always run programmatically (scanner/store/engine.py passes the open
connection in ``config.attributes``), never from an alembic.ini."""

from __future__ import annotations

from alembic import context

connection = context.config.attributes["connection"]
context.configure(connection=connection, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
