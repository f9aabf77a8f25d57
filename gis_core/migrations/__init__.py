"""Alembic migrations of the urbangis schema (run with ``urbangis db upgrade``)."""
