"""Alembic environment: runs against the engine Corral passes in ``config.attributes``."""

from alembic import context

from corral.store.models import Base

config = context.config
engine = config.attributes.get("engine")
if engine is None:  # e.g. `alembic revision --autogenerate` from a shell
    from corral.settings import Settings
    from corral.store.db import make_engine

    engine = make_engine(Settings.from_env().database_url)

with engine.connect() as connection:
    context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
