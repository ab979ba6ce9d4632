"""The JSON contract: every JSON document wslnet prints or serves is an object with
`"schema": 1`, described by a JSON Schema file in wslnet/schemas/. A change that breaks
a document's shape takes a new schema number."""

from __future__ import annotations

import json

SCHEMA = 1


def document(**fields: object) -> dict[str, object]:
    return {"schema": SCHEMA, **fields}


def dumps(doc: dict[str, object]) -> str:
    return json.dumps(doc, indent=2, default=str)
