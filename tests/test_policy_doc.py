"""docs/policy.md is what the policy model says: regenerate it when core/policy.py changes."""

from __future__ import annotations

from pathlib import Path

from core.policy_doc import render

ROOT = Path(__file__).resolve().parents[1]


def test_committed_policy_reference_matches_the_model() -> None:
    committed = (ROOT / "docs" / "policy.md").read_text()
    assert committed == render(), "run: python -m core.policy_doc > docs/policy.md"


def test_reference_names_every_key() -> None:
    from core.policy import Policy

    for key in Policy.model_fields:
        assert f"| `{key}` |" in render()
