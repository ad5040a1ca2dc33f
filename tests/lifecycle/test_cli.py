"""`meshbot lifecycle` on its own: elects itself, reverts faults on time, hands the lease back on
SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from kubernetes.client.exceptions import ApiException

from .conftest import Env, wait_for

MESHBOT = str(Path(sys.executable).parent / "meshbot")


def _holder(env: Env) -> str | None:
    try:
        spec = env.kube.coordination.read_namespaced_lease("meshbot-lifecycle", "default").spec
    except ApiException:
        return None
    return spec.holder_identity if spec else None


def test_meshbot_lifecycle_reverts_on_time_and_releases_its_lease_on_sigterm(
    env: Env, tmp_path: Path
) -> None:
    variables = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    variables.update(
        KUBECONFIG=str(env.pg.kubeconfig(tmp_path / "kubeconfig")),
        MESHBOT_DATABASE_URL=f"sqlite:///{env.db_path}",
        MESHBOT_LEASE_NAMESPACE="default",
        MESHBOT_LIFECYCLE_IDENTITY="standalone",
        MESHBOT_LIFECYCLE_SYNC_SECONDS="0.2",
    )
    # Its log goes to a file: a pipe nobody reads until the end fills up and blocks the process.
    log = tmp_path / "lifecycle.log"
    with log.open("w") as sink:
        process = subprocess.Popen(
            [MESHBOT, "lifecycle"], env=variables, stdout=sink, stderr=subprocess.STDOUT, text=True
        )
        try:
            wait_for(lambda: _holder(env) == "standalone", 10.0, "the standalone lifecycle to take the lease")
            experiment_id = env.start_fault("web-svc", "1s")
            env.wait_gone(experiment_id, within=2.0)
            assert env.wait_state(experiment_id, "ended").end_reason == "expired"
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=20)
    output = log.read_text()
    assert process.returncode == 0, output
    assert "running as standalone" in output
    assert _holder(env) is None, "released on the way out, so another replica need not wait"
