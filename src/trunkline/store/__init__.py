"""The database: tables, migrations, ids and the queries the resources need (SQLAlchemy Core only)."""
