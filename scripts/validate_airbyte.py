"""Validates Airbyte messages read from stdin, one JSON object per line, against the Airbyte
protocol models (airbyte-protocol-models, pydantic 1).

The models allow extra keys almost everywhere, so parsing alone would accept a misspelt field:
this script also refuses keys a model does not declare (except inside free-form objects such as
record data, JSON schemas and state blobs), and requires the payload named by `type`.
Exit status 0 when every line is valid; 1 with the offending line on stderr otherwise.
Prints a JSON summary (message counts by type) on stdout.
"""

import json
import sys
from collections import Counter

from airbyte_protocol.models import AirbyteMessage
from airbyte_protocol.models.airbyte_protocol import AirbyteStateBlob
from pydantic import BaseModel

PAYLOAD = {
    "RECORD": "record",
    "STATE": "state",
    "LOG": "log",
    "SPEC": "spec",
    "CONNECTION_STATUS": "connectionStatus",
    "CATALOG": "catalog",
    "TRACE": "trace",
}

# Models whose contents are free-form by design.
FREE_FORM = (AirbyteStateBlob,)


def strict(model, raw, path):
    """Raises ValueError for keys in `raw` that `model` does not declare, recursively."""
    if isinstance(model, FREE_FORM) or not isinstance(raw, dict):
        return
    fields = {f.alias: f for f in model.__fields__.values()}
    for key, value in raw.items():
        if key not in fields:
            raise ValueError(f"{path}: unknown key {key!r} for {type(model).__name__}")
        child = getattr(model, fields[key].name)
        if isinstance(child, BaseModel):
            strict(child, value, f"{path}.{key}")
        elif isinstance(child, list) and isinstance(value, list):
            for i, (c, v) in enumerate(zip(child, value)):
                if isinstance(c, BaseModel):
                    strict(c, v, f"{path}.{key}[{i}]")


def main():
    counts = Counter()
    for number, line in enumerate(sys.stdin, 1):
        line = line.rstrip("\n")
        try:
            raw = json.loads(line)
            message = AirbyteMessage.parse_obj(raw)
            kind = message.type.value
            payload = PAYLOAD.get(kind)
            if payload is None or raw.get(payload) is None:
                raise ValueError(f"type {kind} without its {payload!r} payload")
            strict(message, raw, "message")
            if kind == "TRACE":
                counts["TRACE." + message.trace.type.value] += 1
        except Exception as e:  # any failure names the line
            print(f"line {number} is not a valid Airbyte message: {e}\n{line}", file=sys.stderr)
            sys.exit(1)
        counts[kind] += 1
    print(json.dumps(dict(counts), sort_keys=True))


if __name__ == "__main__":
    main()
