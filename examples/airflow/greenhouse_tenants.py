"""Several Greenhouse accounts (tenants), each into its own destination prefix, every hour.

The tenants are listed in ``tenants.json`` beside this file (or the file named by the
``GREENHOUSE_TENANTS_FILE`` environment variable of the DAG processor)::

    [{"id": "acme", "connection_id": "greenhouse_acme", "destination": "s3://lake/greenhouse/acme"}]

Each entry becomes one mapped instance of a single ``sync`` task (dynamic task mapping:
``BashOperator.partial(...).expand(env=...)``), so adding a tenant is a line in the file, not a
change to the DAG. Every tenant has its own connection (login = client id, password = client
secret, optional extras ``api_url``/``token_url``) and its own destination prefix, and with it its
own bookmarks and run lease: tenants never share state, and one tenant's failure does not stop
the others. ``MAX_PARALLEL`` tenants run at once; each run keeps to its own account's rate
limit, so the bound is about the worker's CPU and memory, not Greenhouse.

Exit codes 3 (partial) and 6 (lease held by a run still going) mark that tenant's instance
*skipped*; other non-zero codes fail it. Logs are JSON lines in each instance's task log.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pendulum
from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk import DAG

TENANTS_FILE = Path(
    os.environ.get("GREENHOUSE_TENANTS_FILE") or Path(__file__).with_name("tenants.json")
)
MAX_PARALLEL = 4


def load_tenants(path: Path) -> list[dict[str, str]]:
    """Reads and checks the tenants file: a typo fails the DAG import, visibly, in the UI."""
    tenants = json.loads(path.read_text())
    seen: set[str] = set()
    for t in tenants:
        missing = {"id", "connection_id", "destination"} - t.keys()
        if missing:
            raise ValueError(f"{path}: tenant {t} lacks {sorted(missing)}")
        for key in ("id", "destination"):
            if (key, t[key]) in seen:
                raise ValueError(f"{path}: two tenants share the {key} {t[key]!r}")
            seen.add((key, t[key]))
    return tenants


def tenant_env(tenant: dict[str, str]) -> dict[str, str]:
    """The environment of one tenant's run: templates, rendered when the instance runs, so the
    secrets are read from the connection then and never stored in the DAG or on a command line."""
    c = f"conn.get({tenant['connection_id']!r})"
    return {
        "TENANT_ID": tenant["id"],
        "GREENHOUSE_CLIENT_ID": f"{{{{ {c}.login }}}}",
        "GREENHOUSE_CLIENT_SECRET": f"{{{{ {c}.password }}}}",
        # Empty (no such extra) means the default Harvest endpoint.
        "GREENHOUSE_API_URL": f"{{{{ {c}.extra_dejson.get('api_url', '') }}}}",
        "GREENHOUSE_TOKEN_URL": f"{{{{ {c}.extra_dejson.get('token_url', '') }}}}",
        "GREENHOUSE_DESTINATION": tenant["destination"],
    }


with DAG(
    dag_id="greenhouse_tenants",
    schedule="@hourly",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["greenhouse"],
):
    BashOperator.partial(
        task_id="sync",
        bash_command="greenhouse-extract sync --log-format json",
        # Keep PATH and the worker's cloud credentials (AWS_*, GOOGLE_*, AZURE_*).
        append_env=True,
        skip_on_exit_code=[3, 6],
        max_active_tis_per_dag=MAX_PARALLEL,
        # Each instance is named by its tenant in the UI instead of by its index.
        map_index_template="{{ task.env['TENANT_ID'] }}",
    ).expand(env=[tenant_env(t) for t in load_tenants(TENANTS_FILE)])
