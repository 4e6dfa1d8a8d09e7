"""What every stage module shares: the spec base class and JSON artifacts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from ...core.atomic import atomic_write_text


def write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False, default=str))


class Spec(BaseModel):
    model_config = ConfigDict(extra="forbid")
