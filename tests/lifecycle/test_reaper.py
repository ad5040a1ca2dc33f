"""The dead man's switch: expired faults leave the cluster with the database gone, the service
crashed, or both — from the VirtualServices' annotations alone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot.cli import app
from bot.lifecycle import reap
from core.store import (
    AuditQuery,
    ExperimentKind,
    create_experiment,
    extend_experiment,
    plan_experiment,
    query_events,
)
from mesh.faults import abort_fault
from mesh.virtualservices import apply_fault, plan_fault

from .conftest import ALICE, NS, Env, wait_for


def _expired(env: Env, experiment_id: str) -> None:
    expires = env.experiment(experiment_id).expires_at
    assert expires is not None
    wait_for(lambda: datetime.now(UTC) >= expires, 3.0, f"{experiment_id} to expire")


def _lose_database(env: Env) -> None:
    """The database file is deleted under the running service (and its WAL with it)."""
    env.store.dispose()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{env.db_path}{suffix}").unlink(missing_ok=True)


def _reap_cli(
    env: Env, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, database_url: str
) -> tuple[int, str]:
    monkeypatch.setenv("KUBECONFIG", str(env.pg.kubeconfig(tmp_path / "kubeconfig")))
    monkeypatch.setenv("MESHBOT_DATABASE_URL", database_url)
    result = CliRunner().invoke(app, ["reap", "--grace", "0s"])
    return result.exit_code, result.output


def test_meshbot_reap_removes_expired_faults_without_a_database(
    env: Env, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    expired = env.start_fault("web-svc", "1s")
    running = env.start_fault("emoji-svc", "60s")
    _expired(env, expired)

    code, output = _reap_cli(env, tmp_path, monkeypatch, f"sqlite:///{tmp_path / 'gone.db'}")

    assert code == 0, output
    assert f"reaped {expired} in {NS}" in output
    assert "ran without the database" in output
    assert not env.in_cluster(expired)
    assert env.in_cluster(running), "only expired faults go"
    assert env.experiment(expired).state == "active", "no database: the record is left for the service"
    assert not Path(tmp_path / "gone.db").exists(), "reaping must not create an empty database"


def test_meshbot_reap_ends_the_experiment_when_the_database_is_there(
    env: Env, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    experiment_id = env.start_fault("web-svc", "1s")
    _expired(env, experiment_id)

    code, output = _reap_cli(env, tmp_path, monkeypatch, f"sqlite:///{env.db_path}")

    assert code == 0, output
    assert not env.in_cluster(experiment_id)
    ended = env.experiment(experiment_id)
    assert (ended.state, ended.end_reason, ended.ended_by_user) == ("ended", "expired", "meshbot:scheduler")
    with env.store.read() as session:
        (event,) = query_events(session=session, query=AuditQuery(verb="reap")).events
    assert (event.experiment_id, event.source, event.outcome) == (experiment_id, "scheduler", "ok")


def test_database_deleted_mid_experiment_the_fault_still_ends_on_time(env: Env) -> None:
    lifecycle = env.lifecycle()
    experiment_id = env.start_fault("web-svc", "2s")
    expires = env.experiment(experiment_id).expires_at
    assert expires is not None
    wait_for(lambda: env.armed(lifecycle, experiment_id), 2.0, "the expiry armed")

    _lose_database(env)

    wait_for(
        lambda: not env.in_cluster(experiment_id),
        (expires - datetime.now(UTC)).total_seconds() + 2.0,
        "the fault removed within 2 s of its expiry",
    )
    note = env.notifier.wait_for(lambda n: n.experiment_id == experiment_id and n.final)
    assert "the store is unavailable" in note.text


def test_service_restarted_without_its_database_the_reaper_removes_the_fault_on_time(env: Env) -> None:
    experiment_id = env.start_fault("web-svc", "2s")
    expires = env.experiment(experiment_id).expires_at
    assert expires is not None
    _lose_database(env)

    # A fresh leader that cannot read a single experiment: only the reaper knows of the fault.
    env.lifecycle(lifecycle_reaper_seconds=0.5, lifecycle_reaper_grace_seconds=0.5)

    wait_for(
        lambda: not env.in_cluster(experiment_id),
        (expires - datetime.now(UTC)).total_seconds() + 2.0,
        "the reaper to remove the fault within 2 s of its expiry",
    )


def test_reaper_marks_a_fault_applied_but_never_recorded_active_as_failed(env: Env) -> None:
    # A crash between applying the fault and recording it active: the store says pending.
    with env.store.write() as session:
        experiment = create_experiment(
            session=session,
            kind=ExperimentKind.ABORT,
            parameters={"percentage": 50.0},
            cluster="default",
            namespace=NS,
            service="web-svc",
            duration=timedelta(seconds=1),
            created_by=ALICE,
        )
        experiment_id = experiment.id
    plan = plan_fault(
        env.kube,
        namespace=NS,
        service="web-svc",
        spec=abort_fault(50, http_status=500),
        experiment_id=experiment_id,
        expires_at=datetime.now(UTC) - timedelta(seconds=1),
    )
    with env.store.write() as session:
        plan_experiment(session=session, experiment_id=experiment_id, changes=[])
    apply_fault(env.kube, plan)

    report = reap(env.kube, env.store, now=datetime.now(UTC))

    assert [r.experiment_id for r in report.reaped] == [experiment_id]
    assert not env.in_cluster(experiment_id)
    failed = env.experiment(experiment_id)
    assert failed.state == "failed"
    assert failed.detail and "never recorded as active" in failed.detail


def test_reaper_leaves_a_fault_the_store_says_was_extended(env: Env) -> None:
    # `fault extend` writes the store, then the annotation: the reaper may look in between.
    experiment_id = env.start_fault("web-svc", "1s")
    with env.store.write() as session:
        extend_experiment(session=session, experiment_id=experiment_id, by=timedelta(seconds=60))

    report = reap(env.kube, env.store, now=datetime.now(UTC) + timedelta(seconds=5))

    assert report.skipped == [experiment_id] and not report.reaped
    assert env.in_cluster(experiment_id)
    assert env.experiment(experiment_id).state == "active"


def _remove_by_hand(env: Env, experiment_id: str, *, keep_annotation: bool) -> None:
    """What `kubectl edit` does to meshbot's fault: its route goes, maybe its annotation too."""
    custom = env.kube.custom
    for vs in custom.list_namespaced_custom_object("networking.istio.io", "v1", NS, "virtualservices")[
        "items"
    ]:
        routes = vs["spec"].get("http", [])
        kept = [r for r in routes if r.get("name") != f"meshbot-{experiment_id}"]
        if kept == routes:
            continue
        vs["spec"]["http"] = kept
        if not keep_annotation:
            vs["metadata"].get("annotations", {}).pop("meshbot.dev/faults", None)
        custom.replace_namespaced_custom_object(
            "networking.istio.io", "v1", NS, "virtualservices", vs["metadata"]["name"], vs
        )


@pytest.mark.parametrize("keep_annotation", [False, True], ids=["all-gone", "annotation-left"])
def test_a_fault_removed_outside_meshbot_is_ended_as_gone(env: Env, keep_annotation: bool) -> None:
    experiment_id = env.start_fault("web-svc", "10m")
    _remove_by_hand(env, experiment_id, keep_annotation=keep_annotation)
    assert "gone from the cluster" in env.run("fault list").text

    report = reap(env.kube, env.store, now=datetime.now(UTC) + timedelta(seconds=30), cluster="default")

    assert report.gone == [experiment_id]
    ended = env.experiment(experiment_id)
    assert (ended.state, ended.end_reason) == ("ended", "gone from the cluster")
    with env.store.read() as session:
        (row,) = query_events(session=session, query=AuditQuery(verb="reconcile")).events
    assert row.experiment_id == experiment_id and "removed outside meshbot" in row.message
    assert not env.in_cluster(experiment_id), "a leftover annotation is cleaned too"
    assert env.run("fault list").text == "No active faults."


def test_a_fault_being_applied_right_now_is_not_taken_for_gone(env: Env) -> None:
    experiment_id = env.start_fault("web-svc", "10m")
    _remove_by_hand(env, experiment_id, keep_annotation=False)
    # Within the grace after its start, the pass leaves it: it may still be on its way in.
    report = reap(env.kube, env.store, now=datetime.now(UTC), grace=timedelta(minutes=1), cluster="default")
    assert report.gone == []
    assert env.experiment(experiment_id).state == "active"
