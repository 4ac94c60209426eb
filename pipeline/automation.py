"""Jobs, schedules and automation conditions shared by the gate's assets and checks."""

from collections.abc import Sequence

from dagster import (
    AssetKey,
    AssetSelection,
    AutomationCondition,
    AutomationConditionSensorDefinition,
    DefaultScheduleStatus,
    DefaultSensorStatus,
    ScheduleDefinition,
    define_asset_job,
)

GATE_JOB = "tollgate_gate"

# A check runs again whenever its table lands a new sync (even when Fivetran synced on its own).
CHECK_CONDITION = AutomationCondition.eager()
# Looker is refreshed after what it reads updates and only once every blocking check upstream
# has passed on that latest data (a pass from an older sync does not count). The publish and
# refresh assets verify this again themselves.
REFRESH_CONDITION = (
    AutomationCondition.eager() & AutomationCondition.all_deps_blocking_checks_passed()
)


def publish_condition(parents: Sequence[AssetKey]) -> AutomationCondition:
    """A table is published once its own blocking checks passed on its latest sync; not waiting
    for those of the tables its foreign keys reference, as the publish itself verifies its keys
    against the versions of them Looker reads."""
    passed = AutomationCondition.all_deps_blocking_checks_passed()
    if parents:
        passed = passed.ignore(AssetSelection.assets(*parents))
    return AutomationCondition.eager() & passed


gate_job = define_asset_job(
    GATE_JOB,
    selection=AssetSelection.all(),
    description="Sync every connector, check every contract, refresh Looker where it passed.",
)

gate_schedule = ScheduleDefinition(
    name="tollgate_gate_hourly",
    job=gate_job,
    cron_schedule="0 * * * *",
    # Off until someone turns it on: each run triggers a Fivetran sync of every connector.
    default_status=DefaultScheduleStatus.STOPPED,
    description="Run the whole gate at the top of every hour (off by default; turn it on in the UI).",
)

automation_sensor = AutomationConditionSensorDefinition(
    "tollgate_automation",
    target=AssetSelection.all(),
    default_status=DefaultSensorStatus.RUNNING,
    description="Check tables Fivetran synced on its own, then refresh Looker where they passed.",
)
