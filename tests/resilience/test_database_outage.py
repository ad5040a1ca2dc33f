"""The SQLite file goes away while a fault is active, then comes back: commands say so in one
line, the fault still leaves the cluster on time, and nothing in the store is lost."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime

from tests.lifecycle.conftest import NS, Env, wait_for
from tests.resilience.conftest import assert_chain_intact
from tests.resilience.figures import attempt


def test_the_database_goes_away_and_comes_back(env: Env) -> None:
    lifecycle = env.lifecycle()
    experiment_id = env.start_fault("web-svc", duration="3s")
    expires = env.experiment(experiment_id).expires_at
    assert expires is not None
    # The leader arms it at its next sync; a database gone before then leaves the fault to the
    # reaper's interval (docs/security.md says so).
    wait_for(lambda: env.armed(lifecycle, experiment_id), 2.0, "the expiry armed")
    rows_before = assert_chain_intact(env.store)
    away = env.db_path.with_suffix(".away")
    with attempt("outages"):
        env.store.engine.dispose()
        os.rename(env.db_path, away)
        # A directory where the file was: SQLite cannot open it, nor quietly create an empty one.
        env.db_path.mkdir()
        try:
            reply = env.run(f"fault list -n {NS}")
            assert not reply.ok
            assert len(reply.text.strip().splitlines()) == 1 and "Traceback" not in reply.text, reply.text
            # Read from the cluster alone: the store is what is gone.
            deadline = (expires - datetime.now(UTC)).total_seconds() + 3.0
            wait_for(lambda: not env.in_cluster(experiment_id), max(deadline, 0.1), "the fault gone")
        finally:
            env.db_path.rmdir()
            os.rename(away, env.db_path)
        env.wait_state(experiment_id, "ended", timeout=10.0)
        time.sleep(0.2)
        assert assert_chain_intact(env.store) > rows_before
        env.flush(lifecycle)
