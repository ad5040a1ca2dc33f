"""docs/policy.md, generated from the policy model itself so the reference cannot drift from it.

`python -m core.policy_doc > docs/policy.md`; tests/test_policy_doc.py fails when they differ.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import to_jsonable_python

from core.policy import Policy

HEADER = """# Policy reference

The policy file (`MESHBOT_POLICY_FILE`, YAML; in a cluster the `meshbot-policy` ConfigMap of
`deploy/base/configmap.yaml`, which shows every key) says who may do what and within which caps.
Generated from `core/policy.py` by `python -m core.policy_doc`: do not edit by hand.
"""


def _default(info: FieldInfo) -> str:
    if info.is_required():
        return "required"
    value = info.get_default(call_default_factory=True)
    if isinstance(value, BaseModel):
        return "see below"
    return f"`{json.dumps(to_jsonable_python(value))}`"


def _type(annotation: Any) -> str:
    return (
        str(annotation)
        .replace("typing.", "")
        .replace("core.policy.", "")
        .replace("<class '", "")
        .replace("'>", "")
    )


def _table(model: type[BaseModel]) -> list[str]:
    rows = ["| key | type | default | meaning |", "| --- | --- | --- | --- |"]
    for name, info in model.model_fields.items():
        meaning = (info.description or "").replace("\n", " ")
        kind = _type(info.annotation).replace("|", "\\|")
        rows.append(f"| `{name}` | `{kind}` | {_default(info)} | {meaning} |")
    return rows


def _models(model: type[BaseModel], seen: list[type[BaseModel]]) -> list[type[BaseModel]]:
    if model in seen:
        return seen
    seen.append(model)
    for info in model.model_fields.values():
        for arg in _classes(info.annotation):
            _models(arg, seen)
    return seen


def _classes(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [c for arg in getattr(annotation, "__args__", ()) for c in _classes(arg)]


def render() -> str:
    lines = [HEADER]
    for model in _models(Policy, []):
        title = "Top level" if model is Policy else f"`{model.__name__}`"
        lines += [f"## {title}", ""]
        doc = (model.__doc__ or "").strip()
        if doc and model is not Policy:
            lines += [" ".join(doc.split()), ""]
        lines += [*_table(model), ""]
    return "\n".join(lines).rstrip() + "\n"


if __name__ == "__main__":
    sys.stdout.write(render())
