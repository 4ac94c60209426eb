"""Jobs and schedules: the whole gate, hourly."""

from dagster import AssetSelection, ScheduleDefinition, define_asset_job

GATE_JOB = "tollgate_gate"

gate_job = define_asset_job(
    GATE_JOB,
    selection=AssetSelection.all(),
    description="Sync every connector, check every contract, refresh Looker where it passed.",
)

gate_schedule = ScheduleDefinition(
    name="tollgate_gate_hourly",
    job=gate_job,
    cron_schedule="0 * * * *",
    description="Run the whole gate at the top of every hour.",
)
