import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from gateway.store.db import make_engine
from gateway.store.migrate import SchemaOutOfDate, check_schema, current_revision, head_revision, upgrade
from gateway.store.schema import metadata


def test_empty_database_is_out_of_date(db_url):
    engine = make_engine(db_url)
    with pytest.raises(SchemaOutOfDate, match="sendgw db upgrade"):
        check_schema(engine)
    assert upgrade(engine) == head_revision()
    check_schema(engine)
    assert upgrade(engine) == head_revision()  # idempotent
    engine.dispose()


def test_migrations_match_the_table_definitions(engine):
    """The Alembic migrations create exactly what gateway/store/schema.py declares."""
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == []


def test_current_revision_after_upgrade(engine):
    assert current_revision(engine) == head_revision()
