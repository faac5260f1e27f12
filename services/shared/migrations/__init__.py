"""The hub's schema migrations (alembic, raw SQL); run them with `sendhub db upgrade`."""
