"""Validates OpenLineage run events read from stdin, one JSON object per line, with the official
Python client (openlineage-python): each event is rebuilt from the client's generated models
(`RunEvent`, `Run`, `Job`, `OutputDataset` and the facets we send), whose attrs validators check
the run id (a UUID), the event time (ISO 8601 with a time) and the event type; then serialised
back with the client's own `Serde` and compared with the input, so a key the models do not
declare, a missing one, or a `schemaURL` / `_schemaURL` that is not the spec version this client
generates (2-0-2 for the event, each facet's own version) fails. The wheel ships no JSON schema
file, hence the check on the models.

Exit status 0 when every line is valid; 1 with the offending line on stderr otherwise. Prints a
JSON list of the event types on stdout.
"""

import json
import sys

from openlineage.client.generated import base
from openlineage.client.generated.error_message_run import ErrorMessageRunFacet
from openlineage.client.generated.output_statistics_output_dataset import (
    OutputStatisticsOutputDatasetFacet,
)
from openlineage.client.generated import parent_run
from openlineage.client.serde import Serde


def only(d, allowed, where):
    extra = set(d) - set(allowed)
    if extra:
        raise ValueError(f"{where}: keys the model does not declare: {sorted(extra)}")


def parent(d):
    only(d, ["_producer", "_schemaURL", "run", "job", "root"], "parent facet")
    root = None
    if "root" in d:
        r = d["root"]
        root = parent_run.Root(
            run=parent_run.RootRun(runId=r["run"]["runId"]),
            job=parent_run.RootJob(namespace=r["job"]["namespace"], name=r["job"]["name"]),
        )
    return parent_run.ParentRunFacet(
        run=parent_run.Run(runId=d["run"]["runId"]),
        job=parent_run.Job(namespace=d["job"]["namespace"], name=d["job"]["name"]),
        root=root,
        producer=d["_producer"],
    )


def error_message(d):
    only(d, ["_producer", "_schemaURL", "message", "programmingLanguage", "stackTrace"], "errorMessage facet")
    return ErrorMessageRunFacet(
        message=d["message"],
        programmingLanguage=d["programmingLanguage"],
        stackTrace=d.get("stackTrace"),
        producer=d["_producer"],
    )


RUN_FACETS = {"parent": parent, "errorMessage": error_message}


def output_statistics(d):
    only(d, ["_producer", "_schemaURL", "rowCount", "size", "fileCount"], "outputStatistics facet")
    return OutputStatisticsOutputDatasetFacet(
        rowCount=d.get("rowCount"), size=d.get("size"), fileCount=d.get("fileCount"), producer=d["_producer"]
    )


OUTPUT_FACETS = {"outputStatistics": output_statistics}


def facets(d, known, where):
    unknown = set(d) - set(known)
    if unknown:
        raise ValueError(f"{where}: facets this check does not know: {sorted(unknown)}")
    return {k: known[k](v) for k, v in d.items()}


def output(d):
    only(d, ["namespace", "name", "facets", "outputFacets"], "output dataset")
    return base.OutputDataset(
        namespace=d["namespace"],
        name=d["name"],
        outputFacets=facets(d.get("outputFacets", {}), OUTPUT_FACETS, "outputFacets"),
    )


def event(d):
    only(d, ["eventType", "eventTime", "producer", "schemaURL", "run", "job", "inputs", "outputs"], "run event")
    only(d["run"], ["runId", "facets"], "run")
    only(d["job"], ["namespace", "name", "facets"], "job")
    if d.get("inputs"):
        raise ValueError("inputs: none expected")
    return base.RunEvent(
        eventType=base.EventType(d["eventType"]),
        eventTime=d["eventTime"],
        producer=d["producer"],
        run=base.Run(runId=d["run"]["runId"], facets=facets(d["run"].get("facets", {}), RUN_FACETS, "run facets")),
        job=base.Job(namespace=d["job"]["namespace"], name=d["job"]["name"]),
        inputs=[],
        outputs=[output(o) for o in d.get("outputs", [])],
    )


def normalised(d):
    """What Serde drops: empty facet maps and lists (the models default them to empty)."""
    if isinstance(d, dict):
        return {k: normalised(v) for k, v in d.items() if v not in ({}, [], None)}
    if isinstance(d, list):
        return [normalised(v) for v in d]
    return d


def main():
    kinds = []
    for n, line in enumerate(sys.stdin, 1):
        if not line.strip():
            continue
        try:
            d = json.loads(line)
            model = event(d)
            if d["schemaURL"] != base.RunEvent._get_schema():
                raise ValueError(f"schemaURL {d['schemaURL']} is not {base.RunEvent._get_schema()}")
            back = normalised(Serde.to_dict(model))
            if back != normalised(d):
                raise ValueError(f"differs from the model's serialisation:\n{json.dumps(back, sort_keys=True)}")
        except Exception as e:  # noqa: BLE001 - any failure is an invalid event
            print(f"line {n}: {type(e).__name__}: {e}\n{line}", file=sys.stderr)
            sys.exit(1)
        kinds.append(d["eventType"])
    print(json.dumps(kinds))


if __name__ == "__main__":
    main()
