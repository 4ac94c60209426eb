"""Jobs, schedules and automation conditions shared by the gate's assets and checks."""

from dagster import (
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
# A table is published once its checks passed on the latest sync (the asset re-verifies).
PUBLISH_CONDITION = (
    AutomationCondition.eager() & AutomationCondition.all_deps_blocking_checks_passed()
)
# Looker refreshes after its tables update, and only once every blocking check upstream has
# passed on that latest data (a pass from an older sync does not count).
REFRESH_CONDITION = (
    AutomationCondition.eager() & AutomationCondition.all_deps_blocking_checks_passed()
)

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
