"""One Greenhouse account into one destination, every hour.

Credentials come from the Airflow connection ``greenhouse`` (login = OAuth client id, password =
client secret; optional extras ``api_url`` and ``token_url`` for a non-default Harvest endpoint)
and reach the tool through the environment, never the command line. The destination URL is the
Airflow variable ``greenhouse_destination`` (for example ``s3://my-bucket/greenhouse``); the
bookmarks and the run lease live there too, so nothing else keeps state.

Exit codes 3 (partial: some streams skipped or failed, the others committed) and 6 (another run
still holds the destination's lease) mark the task *skipped* rather than failed: the next run
re-reads whatever did not commit. Any other non-zero code fails the task (see the README's
exit-code table). Logs are JSON lines on stderr, one ``event`` per line, in the task log.

Needs Airflow 3 with apache-airflow-providers-standard, and ``greenhouse-extract`` on the
worker's PATH.
"""

from __future__ import annotations

import pendulum
from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk import DAG

CONN = "greenhouse"

with DAG(
    dag_id="greenhouse_sync",
    schedule="@hourly",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    # A second run would only find the lease held (exit 6); do not even start it.
    max_active_runs=1,
    tags=["greenhouse"],
):
    BashOperator(
        task_id="sync",
        bash_command="greenhouse-extract sync --log-format json",
        env={
            "GREENHOUSE_CLIENT_ID": f"{{{{ conn.{CONN}.login }}}}",
            "GREENHOUSE_CLIENT_SECRET": f"{{{{ conn.{CONN}.password }}}}",
            # Empty (no such extra) means the default Harvest endpoint.
            "GREENHOUSE_API_URL": f"{{{{ conn.{CONN}.extra_dejson.get('api_url', '') }}}}",
            "GREENHOUSE_TOKEN_URL": f"{{{{ conn.{CONN}.extra_dejson.get('token_url', '') }}}}",
            "GREENHOUSE_DESTINATION": "{{ var.value.greenhouse_destination }}",
            # OpenLineage (`openlineage_url` in the config): with
            # apache-airflow-providers-openlineage installed, uncomment these two lines so the
            # run's events name this task as their parent run and the DAG run as the root.
            # "OPENLINEAGE_PARENT_ID": "{{ macros.OpenLineageProviderPlugin.lineage_parent_id(task_instance) }}",
            # "OPENLINEAGE_ROOT_PARENT_ID": "{{ macros.OpenLineageProviderPlugin.lineage_root_parent_id(task_instance) }}",
        },
        # Keep PATH and the worker's cloud credentials (AWS_*, GOOGLE_*, AZURE_*).
        append_env=True,
        skip_on_exit_code=[3, 6],
    )
