"""A real `meshbot lifecycle` killed with SIGKILL while it commits 20 expiries due in the same
second: a second one takes the Lease over and each fault ends exactly once, the chain intact."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path

from core.store import AuditQuery, query_events
from tests.lifecycle.conftest import Env, wait_for
from tests.lifecycle.test_cli import MESHBOT, _holder
from tests.resilience.conftest import assert_chain_intact
from tests.resilience.figures import attempt

SERVICES = ("web-svc", "emoji-svc", "voting-svc")
ACTIVE = 20


def _ending_rows(env: Env) -> Counter[str]:
    with env.store.read() as session:
        rows = query_events(session=session, query=AuditQuery(limit=1000)).events
    return Counter(r.experiment_id for r in rows if r.verb in ("expire", "reap") and r.experiment_id)


def _lifecycle(env: Env, tmp_path: Path, identity: str) -> tuple[subprocess.Popen[str], Path]:
    variables = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    variables.update(
        KUBECONFIG=str(env.pg.kubeconfig(tmp_path / "kubeconfig")),
        MESHBOT_DATABASE_URL=f"sqlite:///{env.db_path}",
        MESHBOT_LEASE_NAMESPACE="default",
        MESHBOT_LIFECYCLE_IDENTITY=identity,
        MESHBOT_LIFECYCLE_SYNC_SECONDS="0.2",
        # A short lease, so the takeover after the kill costs seconds, not the production 15.
        MESHBOT_LEASE_DURATION_SECONDS="2",
        MESHBOT_LEASE_RENEW_DEADLINE_SECONDS="1.5",
        MESHBOT_LEASE_RETRY_SECONDS="0.2",
    )
    log = tmp_path / f"{identity}.log"
    # Its log goes to a file: a pipe nobody reads fills up and blocks the process.
    with log.open("w") as sink:
        process = subprocess.Popen(
            [MESHBOT, "lifecycle"], env=variables, stdout=sink, stderr=subprocess.STDOUT, text=True
        )
    return process, log


def test_sigkill_while_20_expiries_commit_and_the_next_leader_ends_each_once(
    env: Env, tmp_path: Path
) -> None:
    first, first_log = _lifecycle(env, tmp_path, "replica-a")
    second = None
    try:
        wait_for(lambda: _holder(env) == "replica-a", 10.0, "replica-a to take the lease")
        ids = [env.start_fault(SERVICES[n % len(SERVICES)], duration="4s") for n in range(ACTIVE)]
        expiries = {env.experiment(i).expires_at for i in ids}
        assert expiries and None not in expiries
        with attempt("crashes"):
            # The moment the first of the batch is reverted, the rest are mid-commit.
            wait_for(lambda: any(not env.in_cluster(i) for i in ids), 10.0, "the first expiry to land")
            first.send_signal(signal.SIGKILL)
            first.wait(timeout=10)
            killed = time.monotonic()
            second, second_log = _lifecycle(env, tmp_path, "replica-b")
            wait_for(lambda: _holder(env) == "replica-b", 10.0, "replica-b to take the lease over")
            for experiment_id in ids:
                wait_for(lambda i=experiment_id: not env.in_cluster(i), 10.0, f"{experiment_id} gone")
                env.wait_state(experiment_id, "ended", timeout=5.0)
            assert time.monotonic() - killed <= 15.0, "all gone within a few seconds after takeover"
        with attempt("crashes"):
            time.sleep(0.5)  # a second end of any of them would be recorded by now; none may
            ended = _ending_rows(env)
            twice = {i: ended[i] for i in ids if ended[i] != 1}
            assert not twice, (twice, first_log.read_text()[-2000:], second_log.read_text()[-2000:])
            assert_chain_intact(env.store)
    finally:
        for process in (first, second):
            if process is not None and process.poll() is None:
                process.send_signal(signal.SIGTERM)
                process.wait(timeout=20)


def test_both_replicas_sigkilled_in_turn_and_every_fault_still_ends_once(env: Env, tmp_path: Path) -> None:
    """Two replicas running; the leader is killed, the follower leads; a new replica joins and the
    new leader is killed in turn: faults started under each leader end once, on time."""
    a, a_log = _lifecycle(env, tmp_path, "replica-a")
    b, b_log = _lifecycle(env, tmp_path, "replica-b")
    c = None
    try:
        wait_for(lambda: _holder(env) in ("replica-a", "replica-b"), 10.0, "a leader elected")
        first_leader, follower = (a, b) if _holder(env) == "replica-a" else (b, a)
        follower_name = "replica-b" if follower is b else "replica-a"
        early = [env.start_fault(SERVICES[n % len(SERVICES)], duration="6s") for n in range(4)]
        with attempt("crashes"):
            first_leader.send_signal(signal.SIGKILL)
            first_leader.wait(timeout=10)
            wait_for(lambda: _holder(env) == follower_name, 10.0, "the follower to take over")
        c, c_log = _lifecycle(env, tmp_path, "replica-c")
        late = [env.start_fault(SERVICES[n % len(SERVICES)], duration="3s") for n in range(4)]
        with attempt("crashes"):
            follower.send_signal(signal.SIGKILL)
            follower.wait(timeout=10)
            wait_for(lambda: _holder(env) == "replica-c", 10.0, "the new replica to take over")
            for experiment_id in early + late:
                expires = env.experiment(experiment_id).expires_at
                assert expires is not None
                wait_for(lambda i=experiment_id: not env.in_cluster(i), 15.0, f"{experiment_id} gone")
                env.wait_state(experiment_id, "ended", timeout=5.0)
        with attempt("crashes"):
            time.sleep(0.5)
            ended = _ending_rows(env)
            twice = {i: ended[i] for i in early + late if ended[i] != 1}
            logs = [log.read_text()[-1500:] for log in (a_log, b_log, c_log)]
            assert not twice, (twice, logs)
            assert_chain_intact(env.store)
    finally:
        for process in (a, b, c):
            if process is not None and process.poll() is None:
                process.send_signal(signal.SIGTERM)
                process.wait(timeout=20)
