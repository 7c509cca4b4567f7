"""Persistent state: SQLAlchemy models, Alembic migrations, sessions."""
