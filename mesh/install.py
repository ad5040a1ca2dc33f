"""Installing Istio like `istioctl install --set profile=demo -y`, and reading what is installed.

Two installers behind one interface: istioctl as a local subprocess (when the bot's image carries
it), or the official `istio/istioctl` image run as a Kubernetes Job (when it does not). Which one
runs is a deployment setting; see `make_installer`.

The pipeline builds an installer for every command, so this module leaves the client's modules
(see mesh/kube.py for their cost) to the functions that talk to the cluster.
"""

from __future__ import annotations

import queue
import re
import secrets
import shlex
import shutil
import subprocess
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Literal

from mesh.errors import MeshError, NotFound, calling
from mesh.kube import Kube

if TYPE_CHECKING:
    from kubernetes.client import V1Deployment, V1Job, V1ObjectMeta, V1Pod, V1Service

PROFILES = ("demo", "default", "minimal", "ambient", "empty")
ISTIO_NAMESPACE = "istio-system"
ISTIO_VERSION = "1.24.2"
MANAGED_BY = "app.kubernetes.io/managed-by"
MESHBOT = "meshbot"
_DNS1123_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")

Action = Literal["install", "uninstall"]
ProgressCallback = Callable[[str], None]


class InstallOptionError(MeshError):
    """A profile or revision istioctl would not accept; nothing was run."""


class AlreadyInstalled(MeshError):
    """Istio's control plane is already there and the caller did not force a reinstall."""


class NotInstalled(NotFound):
    """There is no control plane to uninstall."""


class InstallerUnavailable(MeshError):
    """The configured istioctl binary cannot be started: a deployment problem, not the user's."""


class InstallStatus(StrEnum):
    PLANNED = "planned"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    TIMED_OUT = "timed out"


@dataclass(frozen=True)
class InstallResult:
    """What an install or uninstall did: the istioctl arguments, how they ran and what they printed."""

    action: Action
    args: tuple[str, ...]
    runner: str
    status: InstallStatus
    exit_code: int | None = None
    output: str = ""
    detail: str = ""

    @property
    def succeeded(self) -> bool:
        return self.status is InstallStatus.SUCCEEDED

    @property
    def command(self) -> str:
        return shlex.join(["istioctl", *self.args])


# ----------------------------------------------------------------- pure: validation and argv


def validate_profile(profile: str) -> str:
    if profile not in PROFILES:
        raise InstallOptionError(f"unknown Istio profile {profile!r}: choose one of {', '.join(PROFILES)}")
    return profile


def validate_revision(revision: str | None) -> str | None:
    if revision is None:
        return None
    if not _DNS1123_LABEL.fullmatch(revision):
        raise InstallOptionError(
            f"revision {revision!r} is not a valid name: use at most 63 lower-case letters, digits "
            "and '-', starting and ending with a letter or digit (e.g. 1-24-2 or canary)"
        )
    return revision


def install_args(profile: str, revision: str | None = None) -> tuple[str, ...]:
    """istioctl's arguments for an install; only validated values ever reach the argument list."""
    args = ("install", "--set", f"profile={validate_profile(profile)}", "-y")
    revision = validate_revision(revision)
    return (*args, "--set", f"revision={revision}") if revision else args


def uninstall_args(revision: str | None = None) -> tuple[str, ...]:
    revision = validate_revision(revision)
    if revision:
        return ("uninstall", "--revision", revision, "-y")
    return ("uninstall", "--purge", "-y")


def istiod_deployment_name(revision: str | None) -> str:
    return f"istiod-{revision}" if revision else "istiod"


def installer_job_manifest(
    name: str,
    namespace: str,
    image: str,
    service_account: str,
    args: tuple[str, ...],
    *,
    ttl_seconds: int = 3600,
    deadline_seconds: int = 900,
) -> dict[str, Any]:
    """A Job that runs istioctl once with `args` under the installer's ServiceAccount."""
    labels = {MANAGED_BY: MESHBOT, "app.kubernetes.io/component": "istio-installer"}
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "namespace": namespace, "labels": dict(labels)},
        "spec": {
            # A half-applied install must be looked at by a person, not retried blindly.
            "backoffLimit": 0,
            "ttlSecondsAfterFinished": ttl_seconds,
            "activeDeadlineSeconds": deadline_seconds,
            "template": {
                "metadata": {
                    "labels": dict(labels),
                    # A sidecar would keep running after istioctl exits and the Job never completes.
                    "annotations": {"sidecar.istio.io/inject": "false"},
                },
                "spec": {
                    "serviceAccountName": service_account,
                    "restartPolicy": "Never",
                    "containers": [{"name": "istioctl", "image": image, "args": list(args)}],
                },
            },
        },
    }


def image_version(image: str) -> str | None:
    """The tag of an image reference (`docker.io/istio/pilot:1.24.2` → `1.24.2`), None without one."""
    reference = image.split("@", 1)[0]
    last = reference.rsplit("/", 1)[-1]
    return last.rsplit(":", 1)[1] if ":" in last else None


def _failure_line(output: str) -> str:
    """The line of istioctl's output that says what went wrong: its `Error:` line, else the last."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    errors = [line for line in lines if line.lower().startswith("error")]
    return (errors or lines or [""])[-1]


# ----------------------------------------------------------------- I/O helpers


def _read_deployment(kube: Kube, namespace: str, name: str) -> V1Deployment | None:
    try:
        with calling(f"reading Deployment {namespace}/{name}"):
            deployment: V1Deployment = kube.apps.read_namespaced_deployment(
                name, namespace, _request_timeout=kube.timeout
            )
    except NotFound:
        return None
    return deployment


def _meta(obj: Any) -> V1ObjectMeta:
    """The metadata of a typed object; the generated models make every field optional."""
    from kubernetes.client import V1ObjectMeta

    meta = getattr(obj, "metadata", None)
    return meta if isinstance(meta, V1ObjectMeta) else V1ObjectMeta()


def _ignore_progress(line: str) -> None:
    pass


# ----------------------------------------------------------------- installers


class Installer(ABC):
    """Validates, refuses to install over an existing control plane, then runs istioctl somehow."""

    def __init__(self, kube: Kube) -> None:
        self.kube = kube

    def install(
        self,
        profile: str = "demo",
        revision: str | None = None,
        *,
        dry_run: bool = False,
        on_progress: ProgressCallback | None = None,
        force: bool = False,
    ) -> InstallResult:
        args = install_args(profile, revision)
        istiod = istiod_deployment_name(revision)
        if not force and _read_deployment(self.kube, ISTIO_NAMESPACE, istiod) is not None:
            raise AlreadyInstalled(
                f"Istio is already installed: Deployment {ISTIO_NAMESPACE}/{istiod} exists. "
                "Installing again changes the running control plane; force it if that is what you want."
            )
        if dry_run:
            return InstallResult("install", args, self.describe(args), InstallStatus.PLANNED)
        return self._run("install", args, on_progress or _ignore_progress)

    def uninstall(
        self,
        revision: str | None = None,
        *,
        dry_run: bool = False,
        on_progress: ProgressCallback | None = None,
    ) -> InstallResult:
        args = uninstall_args(revision)
        istiod = istiod_deployment_name(revision)
        if _read_deployment(self.kube, ISTIO_NAMESPACE, istiod) is None:
            raise NotInstalled(
                f"there is nothing to uninstall: Deployment {ISTIO_NAMESPACE}/{istiod} does not exist"
            )
        if dry_run:
            return InstallResult("uninstall", args, self.describe(args), InstallStatus.PLANNED)
        return self._run("uninstall", args, on_progress or _ignore_progress)

    @abstractmethod
    def describe(self, args: tuple[str, ...]) -> str:
        """What would run for `args`, in words a person can check before it does."""

    @abstractmethod
    def _run(self, action: Action, args: tuple[str, ...], on_progress: ProgressCallback) -> InstallResult:
        """Runs istioctl with already validated `args`."""


class IstioctlInstaller(Installer):
    """Runs the istioctl binary as a subprocess (never through a shell), streaming its output."""

    def __init__(
        self,
        kube: Kube,
        *,
        binary: str = "istioctl",
        timeout: float = 600.0,
        kubeconfig: str | None = None,
        context: str | None = None,
    ) -> None:
        super().__init__(kube)
        self.binary = binary
        self.timeout = timeout
        self.kubeconfig = kubeconfig
        self.context = context

    def argv(self, args: tuple[str, ...]) -> list[str]:
        argv = [self.binary, *args]
        if self.kubeconfig:
            argv += ["--kubeconfig", self.kubeconfig]
        if self.context:
            argv += ["--context", self.context]
        return argv

    def describe(self, args: tuple[str, ...]) -> str:
        return f"would run: {shlex.join(self.argv(args))}"

    def _run(self, action: Action, args: tuple[str, ...], on_progress: ProgressCallback) -> InstallResult:
        executable = shutil.which(self.binary)
        if executable is None:
            raise InstallerUnavailable(f"cannot run istioctl: {self.binary!r} is not an executable on PATH")
        argv = [executable, *self.argv(args)[1:]]
        try:
            process = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                encoding="utf-8",
                errors="replace",
                bufsize=1,
            )
        except OSError as exc:
            raise InstallerUnavailable(f"cannot run istioctl ({self.binary!r}): {exc.strerror}") from None
        lines, timed_out = self._collect(process, on_progress)
        output = "".join(f"{line}\n" for line in lines)
        code = process.returncode
        runner = f"istioctl subprocess ({self.binary})"
        if timed_out:
            detail = f"istioctl {action} did not finish within {self.timeout:g}s and was stopped"
            return InstallResult(action, args, runner, InstallStatus.TIMED_OUT, code, output, detail)
        if code != 0:
            detail = f"istioctl {action} exited with code {code}: {_failure_line(output)}"
            return InstallResult(action, args, runner, InstallStatus.FAILED, code, output, detail)
        return InstallResult(action, args, runner, InstallStatus.SUCCEEDED, code, output)

    def _collect(
        self, process: subprocess.Popen[str], on_progress: ProgressCallback
    ) -> tuple[list[str], bool]:
        """Reads output lines until istioctl exits or the timeout passes; returns (lines, timed out).

        A reader thread feeds a queue so the timeout holds even while istioctl prints nothing, and
        so `on_progress` runs on the caller's thread."""
        assert process.stdout is not None
        stdout = process.stdout
        pending: queue.Queue[str | None] = queue.Queue()

        def read() -> None:
            for line in stdout:
                pending.put(line.rstrip("\r\n"))
            pending.put(None)

        reader = threading.Thread(target=read, name="istioctl-output", daemon=True)
        reader.start()
        deadline = time.monotonic() + self.timeout
        lines: list[str] = []
        timed_out = False
        try:
            while True:
                try:
                    line = pending.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    timed_out = True
                    break
                if line is None:
                    break
                lines.append(line)
                on_progress(line)
            if not timed_out:
                # istioctl may close its output a moment before it exits.
                process.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            timed_out = True
        finally:
            if process.poll() is None:
                process.kill()
            process.wait()
            reader.join(timeout=1.0)
        return lines, timed_out


def default_job_name(action: Action) -> str:
    return f"istio-{action}-{secrets.token_hex(3)}"


def ensure_installer_account(kube: Kube, *, namespace: str, service_account: str) -> None:
    """The namespace and ServiceAccount the Job installer runs as, created when missing — what
    deploy/components/installer applies on a real cluster, for the demo's playground cluster.
    (Binding it to cluster-admin is the playground's business: it does not enforce RBAC.)"""
    from kubernetes.client import V1Namespace, V1ObjectMeta, V1ServiceAccount
    from kubernetes.client.exceptions import ApiException

    with calling(f"creating namespace {namespace}"):
        try:
            kube.core.create_namespace(
                V1Namespace(metadata=V1ObjectMeta(name=namespace)), _request_timeout=kube.timeout
            )
        except ApiException as exc:
            if exc.status != 409:  # already there
                raise
    with calling(f"creating ServiceAccount {namespace}/{service_account}"):
        try:
            kube.core.create_namespaced_service_account(
                namespace,
                V1ServiceAccount(metadata=V1ObjectMeta(name=service_account)),
                _request_timeout=kube.timeout,
            )
        except ApiException as exc:
            if exc.status != 409:
                raise


class JobInstaller(Installer):
    """Runs istioctl from the official image as a Job in the bot's namespace and reports its log."""

    def __init__(
        self,
        kube: Kube,
        *,
        namespace: str = "meshbot",
        image: str = f"docker.io/istio/istioctl:{ISTIO_VERSION}",
        service_account: str = "meshbot-installer",
        timeout: float = 900.0,
        ttl_seconds: int = 3600,
        poll_interval: float = 2.0,
        job_name: Callable[[Action], str] = default_job_name,
    ) -> None:
        super().__init__(kube)
        self.namespace = namespace
        self.image = image
        self.service_account = service_account
        self.timeout = timeout
        self.ttl_seconds = ttl_seconds
        self.poll_interval = poll_interval
        self.job_name = job_name

    def describe(self, args: tuple[str, ...]) -> str:
        return (
            f"would create a Job in namespace {self.namespace} running {self.image} "
            f"{shlex.join(args)} as ServiceAccount {self.service_account}"
        )

    def _run(self, action: Action, args: tuple[str, ...], on_progress: ProgressCallback) -> InstallResult:
        from kubernetes.client import V1Job

        kube = self.kube
        name = self.job_name(action)
        where = f"{self.namespace}/{name}"
        manifest = installer_job_manifest(
            name,
            self.namespace,
            self.image,
            self.service_account,
            args,
            ttl_seconds=self.ttl_seconds,
            deadline_seconds=max(1, int(self.timeout)),
        )
        job = V1Job.from_dict(manifest)
        assert job is not None
        try:
            with calling(f"creating Job {where}"):
                created = kube.batch.create_namespaced_job(self.namespace, job, _request_timeout=kube.timeout)
        except NotFound as exc:
            # The installer's namespace is opt-in (deploy/components/installer): say how to get it.
            raise NotFound(
                f"{exc}. The Job installer runs in namespace {self.namespace} as ServiceAccount "
                f"{self.service_account}: apply deploy/components/installer, or set "
                "MESHBOT_INSTALLER=istioctl with istioctl on PATH"
            ) from None
        on_progress(f"Job {where} started ({self.image})")
        runner = f"Job {where} ({self.image})"
        finished = created if _job_finished(created) else None
        if finished is None:
            finished = wait_for_job(
                kube,
                self.namespace,
                name,
                since=_meta(created).resource_version,
                timeout=self.timeout,
                poll_interval=self.poll_interval,
            )
        pod = self._latest_pod(name)
        log = self._log(pod) if pod is not None else ""
        for line in log.splitlines():
            on_progress(line)
        code = _exit_code(pod)
        if finished is None:
            self._delete(name)
            detail = f"Job {where} did not finish within {self.timeout:g}s and was deleted"
            return InstallResult(action, args, runner, InstallStatus.TIMED_OUT, code, log, detail)
        failed = _condition(finished, "Failed")
        if failed is not None:
            why = ": ".join(part for part in (failed.reason, failed.message) if part)
            line = _failure_line(log)
            detail = f"Job {where} failed ({why})" + (f": {line}" if line else "")
            return InstallResult(action, args, runner, InstallStatus.FAILED, code, log, detail)
        return InstallResult(action, args, runner, InstallStatus.SUCCEEDED, code, log)

    def _latest_pod(self, name: str) -> V1Pod | None:
        kube = self.kube
        with calling(f"listing the pods of Job {self.namespace}/{name}"):
            pods = kube.core.list_namespaced_pod(
                self.namespace, label_selector=f"job-name={name}", _request_timeout=kube.timeout
            ).items
        return max(pods, key=lambda p: str(_meta(p).creation_timestamp), default=None)

    def _log(self, pod: V1Pod) -> str:
        kube = self.kube
        pod_name = _meta(pod).name or ""
        with calling(f"reading the log of pod {self.namespace}/{pod_name}"):
            log: str = kube.core.read_namespaced_pod_log(
                pod_name, self.namespace, container="istioctl", _request_timeout=kube.timeout
            )
        return log

    def _delete(self, name: str) -> None:
        kube = self.kube
        try:
            with calling(f"deleting Job {self.namespace}/{name}"):
                kube.batch.delete_namespaced_job(
                    name, self.namespace, propagation_policy="Background", _request_timeout=kube.timeout
                )
        except NotFound:
            pass


def wait_for_job(
    kube: Kube,
    namespace: str,
    name: str,
    *,
    since: str | None = None,
    timeout: float,
    poll_interval: float = 2.0,
) -> V1Job | None:
    """The Job once it has completed or failed, None when `timeout` passes first.

    Watches from resourceVersion `since` (or from the current state); falls back to polling
    when the watch cannot be used."""
    from kubernetes.client.exceptions import ApiException
    from urllib3.exceptions import HTTPError as Urllib3Error

    deadline = time.monotonic() + timeout
    try:
        return _watch_job(kube, namespace, name, since, deadline)
    except (ApiException, Urllib3Error, OSError, ValueError):
        # Watches can be refused (RBAC without `watch`, 410 Gone) or cut by proxies; the Job
        # is still running, so keep waiting the slow way.
        return _poll_job(kube, namespace, name, deadline, poll_interval)


def _watch_job(kube: Kube, namespace: str, name: str, since: str | None, deadline: float) -> V1Job | None:
    import kubernetes.watch
    from kubernetes.client import V1Job

    watch = kubernetes.watch.Watch()
    resource_version = since
    while (remaining := deadline - time.monotonic()) > 0:
        options: dict[str, Any] = {"resource_version": resource_version} if resource_version else {}
        for event in watch.stream(
            kube.batch.list_namespaced_job,
            namespace,
            field_selector=f"metadata.name={name}",
            timeout_seconds=max(1, int(remaining)),
            _request_timeout=remaining + kube.timeout,
            **options,
        ):
            job = event["object"]
            if event["type"] == "DELETED":
                raise MeshError(f"Job {namespace}/{name} was deleted before it finished")
            if isinstance(job, V1Job) and _job_finished(job):
                watch.stop()
                return job
        resource_version = watch.resource_version or resource_version
    return None


def _poll_job(kube: Kube, namespace: str, name: str, deadline: float, poll_interval: float) -> V1Job | None:
    while True:
        with calling(f"reading Job {namespace}/{name}"):
            job: V1Job = kube.batch.read_namespaced_job(name, namespace, _request_timeout=kube.timeout)
        if _job_finished(job):
            return job
        if time.monotonic() + poll_interval > deadline:
            return None
        time.sleep(poll_interval)


def _condition(job: V1Job, kind: str) -> Any:
    for condition in (job.status.conditions if job.status else None) or []:
        if condition.type == kind and condition.status == "True":
            return condition
    return None


def _job_finished(job: V1Job) -> bool:
    return _condition(job, "Complete") is not None or _condition(job, "Failed") is not None


def _exit_code(pod: V1Pod | None) -> int | None:
    statuses = (pod.status.container_statuses if pod is not None and pod.status else None) or []
    for status in statuses:
        if status.state and status.state.terminated:
            return int(status.state.terminated.exit_code)
    return None


InstallerKind = Literal["istioctl", "job"]


def make_installer(kind: InstallerKind, kube: Kube, **options: Any) -> Installer:
    """The installer a deployment's setting names: `istioctl` (local binary) or `job`."""
    if kind == "istioctl":
        return IstioctlInstaller(kube, **options)
    if kind == "job":
        return JobInstaller(kube, **options)
    raise InstallOptionError(f"unknown installer {kind!r}: choose istioctl or job")


# ----------------------------------------------------------------- control plane status


@dataclass(frozen=True)
class Component:
    """One Deployment of istio-system (istiod, a gateway or an add-on)."""

    name: str
    ready: int
    desired: int
    version: str | None

    @property
    def healthy(self) -> bool:
        return self.ready >= self.desired

    @property
    def ready_text(self) -> str:
        return f"{self.ready}/{self.desired}"


@dataclass(frozen=True)
class GatewayPort:
    name: str
    port: int
    node_port: int | None
    protocol: str


@dataclass(frozen=True)
class IngressGateway:
    """The ingress gateway's Service: where traffic from outside the cluster enters the mesh."""

    namespace: str
    name: str
    type: str
    cluster_ip: str | None
    external_addresses: tuple[str, ...]
    ports: tuple[GatewayPort, ...]

    def node_port(self, port: int) -> int | None:
        return next((p.node_port for p in self.ports if p.port == port), None)


@dataclass(frozen=True)
class ControlPlane:
    namespace: str
    components: tuple[Component, ...]
    ingress: IngressGateway | None

    @property
    def istiod(self) -> Component | None:
        return next((c for c in self.components if c.name.startswith("istiod")), None)

    @property
    def installed(self) -> bool:
        return self.istiod is not None

    @property
    def version(self) -> str | None:
        return self.istiod.version if self.istiod else None

    @property
    def not_ready(self) -> tuple[Component, ...]:
        return tuple(c for c in self.components if not c.healthy)

    @property
    def ready(self) -> bool:
        return self.installed and not self.not_ready


def _component(deployment: V1Deployment) -> Component:
    spec = deployment.spec
    pod_spec = spec.template.spec if spec else None
    containers = pod_spec.containers if pod_spec else []
    desired = spec.replicas if spec and spec.replicas is not None else 1
    ready = (deployment.status.ready_replicas if deployment.status else None) or 0
    version = image_version(containers[0].image or "") if containers else None
    return Component(_meta(deployment).name or "", ready, desired, version)


def _component_order(component: Component) -> tuple[int, str]:
    name = component.name
    rank = 0 if name.startswith("istiod") else 1 if name.endswith("gateway") else 2
    return rank, name


def ingress_gateway_of(service: V1Service) -> IngressGateway:
    spec, status, meta = service.spec, service.status, _meta(service)
    lb = (status.load_balancer.ingress if status and status.load_balancer else None) or []
    addresses = tuple(a for entry in lb for a in (entry.ip, entry.hostname) if a)
    ports = tuple(
        GatewayPort(p.name or "", p.port, p.node_port, p.protocol or "TCP")
        for p in ((spec.ports if spec else None) or [])
    )
    return IngressGateway(
        meta.namespace or ISTIO_NAMESPACE,
        meta.name or "",
        (spec.type if spec else None) or "ClusterIP",
        spec.cluster_ip if spec else None,
        addresses,
        ports,
    )


def read_ingress_gateway(kube: Kube, namespace: str = ISTIO_NAMESPACE) -> IngressGateway | None:
    """The Service in front of the `istio: ingressgateway` pods, None when there is none."""
    with calling(f"listing the ingress gateway Services in {namespace}"):
        services = kube.core.list_namespaced_service(
            namespace, label_selector="istio=ingressgateway", _request_timeout=kube.timeout
        ).items
    if not services:
        return None
    preferred = next((s for s in services if _meta(s).name == "istio-ingressgateway"), services[0])
    return ingress_gateway_of(preferred)


def control_plane_status(kube: Kube, namespace: str = ISTIO_NAMESPACE) -> ControlPlane:
    """Each Deployment of istio-system with its readiness and version, and the ingress addresses:
    `kubectl get all -n istio-system`, summarised."""
    with calling(f"listing the Deployments in {namespace}"):
        deployments = kube.apps.list_namespaced_deployment(namespace, _request_timeout=kube.timeout).items
    components = tuple(sorted((_component(d) for d in deployments), key=_component_order))
    return ControlPlane(namespace, components, read_ingress_gateway(kube, namespace))
