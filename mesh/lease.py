"""One leader among the replicas: leader election on a Kubernetes Lease (coordination.k8s.io/v1).

Every replica serves Slack; only the holder of the Lease runs the scheduler, so an expiry fires
once and a schedule runs once. The protocol is client-go's:

- Acquire: create the Lease, or — when its holder let it lapse (no renewal within
  ``leaseDurationSeconds``) or released it (empty ``holderIdentity``) — replace it with ourselves as
  holder, ``leaseTransitions`` + 1. Every write carries the ``resourceVersion`` read, so of two
  replicas racing for a lapsed lease the API server lets one win; the other gets 409 and follows.
- Renew: the leader replaces ``renewTime`` every ``renew_interval``. If it cannot renew for
  ``renew_deadline`` (< lease duration) it steps down *before* anyone else may take over, so two
  leaders never overlap — as long as the clocks agree to within duration − deadline.
- Release: on a clean stop the leader empties ``holderIdentity``, so a successor need not wait.

A lapse is judged two ways: by the local monotonic clock — the record has not changed for a lease
duration since we first saw it (immune to clock skew, client-go's rule) — and by ``renewTime``
against our wall clock, so a replica that has just started takes over a lease whose holder died
long ago at once instead of watching it for a whole duration first.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError as Urllib3Error

from core.clock import utcnow
from mesh.errors import NotFound, calling
from mesh.kube import Kube

log = logging.getLogger(__name__)


def micro_time(moment: datetime) -> str:
    """A MicroTime as the API server wants it: RFC 3339 with exactly six fraction digits.

    The official client would send ``isoformat()``, which drops the fraction when it is zero.
    """
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class LeaseRecord:
    """The Lease as read: who holds it, since when, and its version for the next write."""

    holder: str | None
    duration_seconds: int
    acquire_time: datetime | None
    renew_time: datetime | None
    transitions: int
    resource_version: str

    @classmethod
    def from_lease(cls, lease: Any) -> LeaseRecord:
        spec = lease.spec
        return cls(
            holder=spec.holder_identity or None,
            duration_seconds=int(spec.lease_duration_seconds or 0),
            acquire_time=spec.acquire_time,
            renew_time=spec.renew_time,
            transitions=int(spec.lease_transitions or 0),
            resource_version=str(lease.metadata.resource_version),
        )


class LeaseElector:
    """Runs the election in a thread; calls ``on_started`` when this replica becomes leader and
    ``on_stopped`` when it stops being one (lost the lease, could not renew, or stopped).

    Both callbacks run on the election thread and must return quickly: a slow callback delays the
    next renewal. ``previous`` (the record we took over from) tells the new leader when the old
    one last renewed, i.e. was last known to be alive.
    """

    def __init__(
        self,
        kube: Kube,
        *,
        namespace: str,
        name: str,
        identity: str,
        lease_duration: float = 15.0,
        renew_deadline: float = 10.0,
        retry_period: float = 2.0,
        on_started: Callable[[LeaseRecord | None], None] = lambda _previous: None,
        on_stopped: Callable[[], None] = lambda: None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        if not 0 < retry_period < renew_deadline < lease_duration:
            raise ValueError("leader election needs 0 < retry period < renew deadline < lease duration")
        self.kube = kube
        self.namespace = namespace
        self.name = name
        self.identity = identity
        self.lease_duration = lease_duration
        self.renew_deadline = renew_deadline
        self.retry_period = retry_period
        self._on_started = on_started
        self._on_stopped = on_stopped
        self._clock = clock
        self._leader = False
        # Why the last round could not take or renew the Lease; None after a round that could.
        self.last_error: str | None = None
        self._last_renew = 0.0  # monotonic time of our last successful renewal
        self._observed: tuple[str | None, datetime | None, str] | None = None
        self._observed_at = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def is_leader(self) -> bool:
        return self._leader

    # ------------------------------------------------------------------ running

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("the elector is already running")
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=f"lease-{self.identity}", daemon=True)
        self._thread.start()

    def stop(self, *, release: bool = True) -> None:
        """Stop electing; a leader steps down and (with ``release``) hands the lease back at once."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.lease_duration)
            self._thread = None
        if self._leader:
            self._step_down()
            if release:
                self.release()

    def abandon(self) -> None:
        """Stop the renewal thread and nothing else, as if the process had died: the lease stays
        held until it lapses. For tests and failover drills."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.lease_duration)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.is_set():
            self.tick()
            self._stop.wait(self.retry_period)

    def tick(self) -> None:
        """One round: try to acquire or renew, and act on the result."""
        try:
            acquired, previous = self.try_acquire_or_renew()
        except ApiException as exc:
            self.last_error = f"cannot take lease {self.namespace}/{self.name}: {_describe(exc)}"
            if exc.status in (401, 403, 404):
                # Not a passing failure: until it is fixed no replica runs expiries (the reaper
                # CronJob still does).
                log.error(
                    "cannot take lease %s/%s: %s. Check that namespace %s exists (MESHBOT_LEASE_NAMESPACE) "
                    "and that meshbot's ServiceAccount may get, create and update leases there",
                    self.namespace,
                    self.name,
                    _describe(exc),
                    self.namespace,
                )
            else:
                log.warning("lease %s/%s: %s", self.namespace, self.name, _describe(exc))
            acquired, previous = False, None
        except (Urllib3Error, OSError) as exc:
            self.last_error = f"cannot take lease {self.namespace}/{self.name}: {_describe(exc)}"
            log.warning("lease %s/%s: %s", self.namespace, self.name, _describe(exc))
            acquired, previous = False, None
        else:
            self.last_error = None
        if self._leader:
            if acquired:
                return
            holder = self._observed[0] if self._observed else None
            if holder not in (None, self.identity):
                # Someone else holds it: we must have missed renewals (a long pause). Stop now.
                log.warning("lease %s/%s is held by %s: stepping down", self.namespace, self.name, holder)
                self._step_down()
            elif time.monotonic() - self._last_renew > self.renew_deadline:
                log.warning(
                    "lease %s/%s not renewed within %.1fs: stepping down",
                    self.namespace,
                    self.name,
                    self.renew_deadline,
                )
                self._step_down()
            return
        if acquired:
            self._leader = True
            log.info("%s is now the leader (lease %s/%s)", self.identity, self.namespace, self.name)
            try:
                self._on_started(previous)
            except Exception:
                log.exception("starting as leader failed")

    def _step_down(self) -> None:
        self._leader = False
        try:
            self._on_stopped()
        except Exception:
            log.exception("stepping down as leader failed")

    # ------------------------------------------------------------------ the protocol

    def try_acquire_or_renew(self) -> tuple[bool, LeaseRecord | None]:
        """True when we hold the lease after this call; with the record we took it over from."""
        coordination = self.kube.coordination
        now = self._clock()
        try:
            lease = coordination.read_namespaced_lease(
                self.name, self.namespace, _request_timeout=self._timeout
            )
        except ApiException as exc:
            if exc.status != 404:
                raise
            return self._create(now), None
        record = LeaseRecord.from_lease(lease)
        self._observe(record)
        if record.holder is not None and record.holder != self.identity and not self._lapsed(record, now):
            return False, None
        taking_over = record.holder != self.identity
        spec = {
            "holderIdentity": self.identity,
            "leaseDurationSeconds": self._duration_seconds,
            "acquireTime": micro_time(
                now if taking_over or record.acquire_time is None else record.acquire_time
            ),
            "renewTime": micro_time(now),
            # Any change of holder counts, a released lease taken up again included (as client-go).
            "leaseTransitions": record.transitions + (1 if taking_over else 0),
        }
        body = self._body(spec, resource_version=record.resource_version)
        try:
            coordination.replace_namespaced_lease(
                self.name, self.namespace, body, _request_timeout=self._timeout
            )
        except ApiException as exc:
            if exc.status == 409:
                return False, None  # someone else wrote it since we read it: they won
            raise
        self._last_renew = time.monotonic()
        return True, (record if taking_over else None)

    def release(self) -> None:
        """Hand the lease back: empty holder, renewTime now, so a successor need not wait."""
        try:
            lease = self.kube.coordination.read_namespaced_lease(
                self.name, self.namespace, _request_timeout=self._timeout
            )
            record = LeaseRecord.from_lease(lease)
            if record.holder != self.identity:
                return
            spec = {
                "holderIdentity": None,
                "leaseDurationSeconds": self._duration_seconds,
                "acquireTime": micro_time(record.acquire_time) if record.acquire_time else None,
                "renewTime": micro_time(self._clock()),
                "leaseTransitions": record.transitions,
            }
            self.kube.coordination.replace_namespaced_lease(
                self.name,
                self.namespace,
                self._body(spec, resource_version=record.resource_version),
                _request_timeout=self._timeout,
            )
            log.info("%s released lease %s/%s", self.identity, self.namespace, self.name)
        except (ApiException, Urllib3Error, OSError) as exc:
            # It lapses by itself within a lease duration.
            log.warning("could not release lease %s/%s: %s", self.namespace, self.name, _describe(exc))

    def _create(self, now: datetime) -> bool:
        spec = {
            "holderIdentity": self.identity,
            "leaseDurationSeconds": self._duration_seconds,
            "acquireTime": micro_time(now),
            "renewTime": micro_time(now),
            "leaseTransitions": 0,
        }
        try:
            self.kube.coordination.create_namespaced_lease(
                self.namespace, self._body(spec), _request_timeout=self._timeout
            )
        except ApiException as exc:
            if exc.status == 409:
                return False  # created by another replica in between
            raise
        self._last_renew = time.monotonic()
        return True

    def _observe(self, record: LeaseRecord) -> None:
        key = (record.holder, record.renew_time, record.resource_version)
        if key != self._observed:
            self._observed = key
            self._observed_at = time.monotonic()

    def _lapsed(self, record: LeaseRecord, now: datetime) -> bool:
        duration = record.duration_seconds or self._duration_seconds
        if time.monotonic() - self._observed_at > duration:
            return True
        return record.renew_time is not None and now - record.renew_time > timedelta(seconds=duration)

    def _body(self, spec: dict[str, Any], *, resource_version: str | None = None) -> Any:
        # A plain dict, not a V1Lease: the client would send its datetimes in a form the API server
        # may refuse for MicroTime (see micro_time). The client accepts either.
        metadata: dict[str, Any] = {"name": self.name, "namespace": self.namespace}
        if resource_version is not None:
            metadata["resourceVersion"] = resource_version
        return {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": metadata,
            "spec": {k: v for k, v in spec.items() if v is not None},
        }

    @property
    def _duration_seconds(self) -> int:
        # The API field is whole seconds; round up so we never promise less than we renew for.
        return max(1, int(-(-self.lease_duration // 1)))

    @property
    def _timeout(self) -> float:
        # A hung API server must not hold a renewal past the deadline.
        return max(0.5, min(self.kube.timeout, self.renew_deadline / 2))


def _describe(exc: BaseException) -> str:
    if isinstance(exc, ApiException):
        return f"{exc.status} {exc.reason}"
    return f"the API server is unreachable ({exc.__class__.__name__})"


@dataclass(frozen=True)
class Leadership:
    """Whether some replica leads the lifecycle (ends faults on time), as far as can be told."""

    fresh: bool
    holder: str | None = None
    renewed: datetime | None = None
    # Why nobody can be said to lead: no Lease, a lapsed one, the API refusing to show it.
    problem: str | None = None


def read_leadership(kube: Kube, *, namespace: str, name: str, now: datetime) -> Leadership:
    """The Lease's holder and whether it renewed within its duration. MeshError when the API
    server cannot be asked: that is the cluster failing, not an answer about leadership."""
    where = f"Lease {namespace}/{name}"
    try:
        with calling(f"reading {where}"):
            lease = kube.coordination.read_namespaced_lease(name, namespace, _request_timeout=kube.timeout)
    except NotFound:
        return Leadership(False, problem=f"{where} does not exist (no lifecycle has ever led here)")
    record = LeaseRecord.from_lease(lease)
    if not record.holder:
        return Leadership(False, renewed=record.renew_time, problem=f"{where} is released: nobody leads")
    renewed = record.renew_time
    duration = timedelta(seconds=record.duration_seconds or 15)
    if renewed is None or now - renewed > duration:
        ago = f"{int((now - renewed).total_seconds())}s ago" if renewed else "never"
        return Leadership(
            False,
            holder=record.holder,
            renewed=renewed,
            problem=f"{where} lapsed: {record.holder} last renewed it {ago}",
        )
    return Leadership(True, holder=record.holder, renewed=renewed)
