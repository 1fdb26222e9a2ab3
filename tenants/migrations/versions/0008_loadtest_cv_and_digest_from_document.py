"""load-test levels' CV from their repeats; runs' digests of their canonical document

The admin app now recomputes each level's CV from its repeats (an uploaded cv_percent was taken
as given, even one its repeats contradict) and recognises a re-upload by the digest of the
document's canonical form (the raw JSON's digest told 182 from 182.0). This brings stored runs
into line: levels' CVs and runs' repeatability from the stored repeats, digests from the stored
document. Two stored runs that are one result under the new digest both stay (nothing is
deleted): the first keeps the digest, the others their old one, which no new upload produces,
so an upload of that result again is refused naming the first.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-25 10:00:00
"""

import sqlalchemy as sa
from alembic import op

from tenants.loadtests.contract import FULL_LOAD, cv_of
from tenants.loadtests.runs import canonical_digest

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

runs = sa.table(
    "loadtest_runs",
    sa.column("id", sa.Integer),
    sa.column("tenant_id", sa.Integer),
    sa.column("document_sha256", sa.String),
    sa.column("document", sa.JSON),
    sa.column("repeatability_cv_percent", sa.Float),
)
levels = sa.table(
    "loadtest_levels",
    sa.column("id", sa.Integer),
    sa.column("run_id", sa.Integer),
    sa.column("target_busy_percent", sa.Integer),
    sa.column("repeats", sa.JSON),
    sa.column("cv_percent", sa.Float),
    sa.column("accepted", sa.Boolean),
)


def upgrade() -> None:
    connection = op.get_bind()
    _recompute_cvs(connection)
    _recompute_digests(connection)


def _recompute_cvs(connection: sa.Connection) -> None:
    query = sa.select(levels.c.id, levels.c.run_id, levels.c.target_busy_percent,
                      levels.c.repeats, levels.c.accepted)  # fmt: skip
    for level_id, run_id, target, repeats, accepted in connection.execute(query).all():
        cv = cv_of(repeats)
        connection.execute(levels.update().where(levels.c.id == level_id).values(cv_percent=cv))
        if target == FULL_LOAD:
            repeatability = cv if accepted else None
            connection.execute(runs.update().where(runs.c.id == run_id)
                               .values(repeatability_cv_percent=repeatability))  # fmt: skip


def _recompute_digests(connection: sa.Connection) -> None:
    taken: set[tuple[int, str]] = set()
    query = sa.select(runs.c.id, runs.c.tenant_id, runs.c.document).order_by(runs.c.id)
    for run_id, tenant_id, document in connection.execute(query).all():
        digest = canonical_digest(document)
        if (tenant_id, digest) in taken:
            continue
        taken.add((tenant_id, digest))
        connection.execute(runs.update().where(runs.c.id == run_id)
                           .values(document_sha256=digest))  # fmt: skip


def downgrade() -> None:
    """Nothing to undo: the schema is unchanged; the old figures follow from each stored document."""
