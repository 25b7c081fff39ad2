"""Persistence: SQLAlchemy Core tables, repositories, and the Alembic migrations."""
