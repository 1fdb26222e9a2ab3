"""load-test runs' repeatability is their 100% level's CV of repeats

Runs uploaded by load-test clients before 2026-11-24 carry the mean of every level's CV; the
admin app now takes the figure from the 100% level whatever the client sent, and this brings
stored runs into line. The old figure stays in each run's stored document.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-24 23:30:00
"""

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        "UPDATE loadtest_runs SET repeatability_cv_percent = ("
        " SELECT CASE WHEN level.accepted THEN level.cv_percent ELSE NULL END"
        " FROM loadtest_levels AS level"
        " WHERE level.run_id = loadtest_runs.id AND level.target_busy_percent = 100)"
    )


def downgrade() -> None:
    """Nothing to undo: the schema is unchanged, and the mean it replaced is in each document."""
