"""The JSON Schema of the design format, for editors (yaml-language-server) and `fabplan schema`."""

from __future__ import annotations

import json
from typing import Any

from fabplan.design.models import Design

SCHEMA_FILE_NAME = "fabplan-design.schema.json"


def design_json_schema() -> dict[str, Any]:
    schema = Design.model_json_schema(mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "fabplan design (schema_version 1)"
    return schema


def design_json_schema_text() -> str:
    """Stable text (sorted keys) so the copy in designs/ can be compared byte for byte."""
    return json.dumps(design_json_schema(), indent=2, sort_keys=True) + "\n"
