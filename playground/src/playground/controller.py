"""The cluster's moving parts, for the playground: deployment, replicaset, job, endpoints and
garbage-collector controllers plus a kubelet that starts pods at once.

Changes are queued as the store reports them and worked off after every API call, so by the time
a client sees its write acknowledged the cluster has settled (pods exist, are Ready, endpoints
list them). Each sync writes only when something changed, which makes the loop converge.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections import deque
from collections.abc import Callable

from playground import istio_sim
from playground.api import ClusterApi, Target
from playground.meta import Obj, controller_uid, dig, owner_ref
from playground.selectors import label_selector_from_match
from playground.state import TypeKey

NAMESPACES: TypeKey = ("", "namespaces")
SERVICE_ACCOUNTS: TypeKey = ("", "serviceaccounts")
CONFIG_MAPS: TypeKey = ("", "configmaps")
PODS: TypeKey = ("", "pods")
SERVICES: TypeKey = ("", "services")
ENDPOINTS: TypeKey = ("", "endpoints")
DEPLOYMENTS: TypeKey = ("apps", "deployments")
REPLICASETS: TypeKey = ("apps", "replicasets")
JOBS: TypeKey = ("batch", "jobs")
NODE_NAME = "playground-node"
# Not a usable certificate: nothing verifies TLS against the playground, which serves plain HTTP.
ROOT_CA = "-----BEGIN CERTIFICATE-----\nplayground\n-----END CERTIFICATE-----\n"
NODE_IP = "172.18.0.2"
_NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"

# Decides how a Job's pod ends: (succeeded, log) or None to let the next behaviour decide.
JobBehaviour = Callable[[ClusterApi, Obj], tuple[bool, str] | None]


class Controller:
    def __init__(self, api: ClusterApi) -> None:
        self.api = api
        # (event, type, namespace, name, kind and name of the controlling owner or "")
        self._queue: deque[tuple[str, TypeKey, str, str, str, str]] = deque()
        self._running = False
        self.pod_ips = 0
        self.job_behaviours: list[JobBehaviour] = [istio_sim.job_behaviour]
        # Test hook: jobs (namespace, name) whose pods fail, with the log they print.
        self.failing_jobs: dict[tuple[str, str], str] = {}
        # Test hook: pods (namespace, name prefix) the kubelet leaves not Ready.
        self.unready_pods: set[tuple[str, str]] = set()
        api.store.add_listener(self._enqueue)

    def _enqueue(self, event: str, key: TypeKey, obj: Obj) -> None:
        meta = obj["metadata"]
        owner: Obj = next((r for r in meta.get("ownerReferences") or [] if r.get("controller")), {})
        self._queue.append(
            (
                event,
                key,
                meta.get("namespace", ""),
                meta["name"],
                owner.get("kind", ""),
                owner.get("name", ""),
            )
        )

    def reconcile(self) -> None:
        if self._running:
            return
        self._running = True
        try:
            with self.api.store.lock:
                budget = 100_000
                while self._queue and budget:
                    budget -= 1
                    self._handle(*self._queue.popleft())
        finally:
            self._running = False

    def _handle(
        self, event: str, key: TypeKey, namespace: str, name: str, owner_kind: str, owner_name: str
    ) -> None:
        if key == NAMESPACES and event == "ADDED":
            self._seed_namespace(name)
        elif key == DEPLOYMENTS and event != "DELETED":
            self._sync_deployment(namespace, name)
        elif key == REPLICASETS:
            if event != "DELETED":
                self._sync_replicaset(namespace, name)
            if owner_kind == "Deployment":
                owner = self.api.store.get(DEPLOYMENTS, namespace, owner_name)
                if owner is not None:
                    self._update_deployment_status(owner)
        elif key == PODS:
            if event != "DELETED":
                self._kubelet(namespace, name)
            if owner_kind == "ReplicaSet":
                self._sync_replicaset(namespace, owner_name)
            elif owner_kind == "Job":
                self._sync_job(namespace, owner_name)
            self._sync_endpoints_in(namespace)
        elif key == SERVICES:
            if event == "DELETED":
                if self.api.store.exists(ENDPOINTS, namespace, name):
                    self.api.store.remove(ENDPOINTS, namespace, name)
            else:
                self._sync_endpoints(namespace, name)
        elif key == JOBS and event != "DELETED":
            self._sync_job(namespace, name)

    # ------------------------------------------------------------ helpers

    def _suffix(self, length: int = 5) -> str:
        return "".join(self.api.random.choice(_NAME_ALPHABET) for _ in range(length))

    def _owned(self, key: TypeKey, namespace: str, owner_uid: str) -> list[Obj]:
        items, _ = self.api.store.list(key, namespace)
        return [o for o in items if controller_uid(o) == owner_uid]

    def _write_if_changed(self, key: TypeKey, before: Obj, after: Obj) -> None:
        if before != after:
            self.api.store.write(key, after)

    def _create(self, key: TypeKey, obj: Obj) -> None:
        """Creates through the API server's create path, so admission (injection) applies."""
        rtype = self.api.registry.get(*key)
        assert rtype is not None
        self.api.create(Target(rtype, rtype.storage_version, obj["metadata"]["namespace"]), obj)

    def _create_pod_of(self, owner: Obj) -> None:
        """A pod from a ReplicaSet's or Job's template, named and owned as their controllers do."""
        name, namespace = owner["metadata"]["name"], owner["metadata"]["namespace"]
        template = copy.deepcopy(owner["spec"]["template"])
        template.setdefault("metadata", {}).update(
            {
                "name": f"{name}-{self._suffix()}",
                "namespace": namespace,
                "generateName": f"{name}-",
                "ownerReferences": [owner_ref(owner)],
            }
        )
        self._create(PODS, {"apiVersion": "v1", "kind": "Pod", **template})

    def _delete(self, key: TypeKey, namespace: str, name: str) -> None:
        rtype = self.api.registry.get(*key)
        assert rtype is not None
        self.api.remove_object(rtype, namespace, name, "Background")

    # ------------------------------------------------------------ namespaces

    def _seed_namespace(self, namespace: str) -> None:
        """What the serviceaccount and root-ca-cert-publisher controllers put in every namespace."""
        if not self.api.store.exists(NAMESPACES, "", namespace):
            return
        if not self.api.store.exists(SERVICE_ACCOUNTS, namespace, "default"):
            self._create(
                SERVICE_ACCOUNTS,
                {
                    "apiVersion": "v1",
                    "kind": "ServiceAccount",
                    "metadata": {"name": "default", "namespace": namespace},
                },
            )
        if not self.api.store.exists(CONFIG_MAPS, namespace, "kube-root-ca.crt"):
            self._create(
                CONFIG_MAPS,
                {
                    "apiVersion": "v1",
                    "kind": "ConfigMap",
                    "metadata": {
                        "name": "kube-root-ca.crt",
                        "namespace": namespace,
                        "annotations": {
                            "kubernetes.io/description": "Contains a CA bundle that can be used to "
                            "verify the kube-apiserver when using internal endpoints such as the "
                            "internal service IP or kubernetes.default.svc. No other usage is "
                            "guaranteed across distributions of Kubernetes clusters."
                        },
                    },
                    "data": {"ca.crt": ROOT_CA},
                },
            )

    # ------------------------------------------------------------ deployments

    def _sync_deployment(self, namespace: str, name: str) -> None:
        deployment = self.api.store.get(DEPLOYMENTS, namespace, name)
        if deployment is None:
            return
        template = deployment["spec"]["template"]
        template_hash = _template_hash(template)
        owned = self._owned(REPLICASETS, namespace, deployment["metadata"]["uid"])
        current = next(
            (rs for rs in owned if dig(rs, "metadata", "labels", "pod-template-hash") == template_hash),
            None,
        )
        revisions = [
            int(dig(rs, "metadata", "annotations", "deployment.kubernetes.io/revision", default="0"))
            for rs in owned
        ]
        desired = deployment["spec"].get("replicas", 1)
        if current is None:
            rs_template = copy.deepcopy(template)
            rs_template.setdefault("metadata", {}).setdefault("labels", {})["pod-template-hash"] = (
                template_hash
            )
            selector = copy.deepcopy(deployment["spec"]["selector"])
            selector.setdefault("matchLabels", {})["pod-template-hash"] = template_hash
            labels = dict(rs_template["metadata"]["labels"])
            self._create(
                REPLICASETS,
                {
                    "apiVersion": "apps/v1",
                    "kind": "ReplicaSet",
                    "metadata": {
                        "name": f"{name}-{template_hash}",
                        "namespace": namespace,
                        "labels": labels,
                        "annotations": {
                            "deployment.kubernetes.io/desired-replicas": str(desired),
                            "deployment.kubernetes.io/max-replicas": str(desired + 1),
                            "deployment.kubernetes.io/revision": str(max(revisions, default=0) + 1),
                        },
                        "ownerReferences": [owner_ref(deployment)],
                    },
                    "spec": {"replicas": desired, "selector": selector, "template": rs_template},
                },
            )
        else:
            if current["spec"]["replicas"] != desired:
                updated = copy.deepcopy(current)
                updated["spec"]["replicas"] = desired
                updated["metadata"]["annotations"]["deployment.kubernetes.io/desired-replicas"] = str(desired)
                self.api.store.write(REPLICASETS, updated)
        # A rollout: old ReplicaSets scale to zero once the new one exists (no surge modelled).
        for rs in owned:
            if (
                rs is not current
                and dig(rs, "metadata", "labels", "pod-template-hash") != template_hash
                and rs["spec"]["replicas"] != 0
            ):
                scaled = copy.deepcopy(rs)
                scaled["spec"]["replicas"] = 0
                self.api.store.write(REPLICASETS, scaled)
        fresh = self.api.store.get(DEPLOYMENTS, namespace, name)
        if fresh is not None:
            self._update_deployment_status(fresh)

    def _update_deployment_status(self, deployment: Obj) -> None:
        meta = deployment["metadata"]
        owned = self._owned(REPLICASETS, meta["namespace"], meta["uid"])
        template_hash = _template_hash(deployment["spec"]["template"])
        new_rs = [rs for rs in owned if dig(rs, "metadata", "labels", "pod-template-hash") == template_hash]
        replicas = sum(dig(rs, "status", "replicas", default=0) for rs in owned)
        updated = sum(dig(rs, "status", "replicas", default=0) for rs in new_rs)
        ready = sum(dig(rs, "status", "readyReplicas", default=0) for rs in owned)
        available = sum(dig(rs, "status", "availableReplicas", default=0) for rs in owned)
        desired = deployment["spec"].get("replicas", 1)
        previous = deployment.get("status") or {}
        status: Obj = {"observedGeneration": meta.get("generation", 1)}
        if replicas:
            status["replicas"] = replicas
        if updated:
            status["updatedReplicas"] = updated
        if ready:
            status["readyReplicas"] = ready
        if available:
            status["availableReplicas"] = available
        if replicas - available > 0:
            status["unavailableReplicas"] = replicas - available
        conditions = []
        is_available = available >= desired
        progressed = bool(new_rs) and updated == desired and replicas == desired
        old_conditions = {c["type"]: c for c in previous.get("conditions", [])}
        for ctype, ok, reason, message in (
            (
                "Available",
                is_available,
                "MinimumReplicasAvailable" if is_available else "MinimumReplicasUnavailable",
                "Deployment has minimum availability."
                if is_available
                else "Deployment does not have minimum availability.",
            ),
            (
                "Progressing",
                True,
                "NewReplicaSetAvailable" if progressed else "ReplicaSetUpdated",
                f'ReplicaSet "{new_rs[0]["metadata"]["name"] if new_rs else meta["name"]}" '
                + ("has successfully progressed." if progressed else "is progressing."),
            ),
        ):
            old = old_conditions.get(ctype, {})
            status_text = "True" if ok else "False"
            same = old.get("status") == status_text and old.get("reason") == reason
            now = self.api.now()
            conditions.append(
                {
                    "type": ctype,
                    "status": status_text,
                    "reason": reason,
                    "message": message,
                    "lastUpdateTime": old.get("lastUpdateTime", now) if same else now,
                    "lastTransitionTime": old.get("lastTransitionTime", now)
                    if old.get("status") == status_text
                    else now,
                }
            )
        status["conditions"] = conditions
        if status != previous:
            fresh = copy.deepcopy(deployment)
            fresh["status"] = status
            self.api.store.write(DEPLOYMENTS, fresh)
            if new_rs:
                revision = dig(new_rs[0], "metadata", "annotations", "deployment.kubernetes.io/revision")
                annotations = fresh["metadata"].setdefault("annotations", {})
                if revision and annotations.get("deployment.kubernetes.io/revision") != revision:
                    annotations["deployment.kubernetes.io/revision"] = revision
                    self.api.store.write(DEPLOYMENTS, fresh)

    # ------------------------------------------------------------ replicasets

    def _sync_replicaset(self, namespace: str, name: str) -> None:
        rs = self.api.store.get(REPLICASETS, namespace, name)
        if rs is None:
            return
        pods = [p for p in self._owned(PODS, namespace, rs["metadata"]["uid"]) if _is_active(p)]
        desired = rs["spec"].get("replicas", 1)
        for _ in range(desired - len(pods)):
            self._create_pod_of(rs)
        for pod in pods[desired:] if len(pods) > desired else []:
            self._delete(PODS, namespace, pod["metadata"]["name"])
        self._update_replicaset_status(namespace, name)

    def _update_replicaset_status(self, namespace: str, name: str) -> None:
        rs = self.api.store.get(REPLICASETS, namespace, name)
        if rs is None:
            return
        pods = [p for p in self._owned(PODS, namespace, rs["metadata"]["uid"]) if _is_active(p)]
        ready = sum(1 for p in pods if _is_ready(p))
        status: Obj = {
            "replicas": len(pods),
            "observedGeneration": rs["metadata"].get("generation", 1),
        }
        if pods:
            status["fullyLabeledReplicas"] = len(pods)
        if ready:
            status["readyReplicas"] = ready
            status["availableReplicas"] = ready
        after = copy.deepcopy(rs)
        after["status"] = status
        self._write_if_changed(REPLICASETS, rs, after)

    # ------------------------------------------------------------ kubelet

    def _kubelet(self, namespace: str, name: str) -> None:
        pod = self.api.store.get(PODS, namespace, name)
        if pod is None or dig(pod, "status", "startTime"):
            return
        now = self.api.now()
        self.pod_ips += 1
        after = copy.deepcopy(pod)
        after["spec"].setdefault("nodeName", NODE_NAME)
        job_name = dig(pod, "metadata", "labels", "job-name")
        outcome = self._run_job_pod(namespace, job_name, pod) if job_name else None
        ready = outcome is None and not any(
            namespace == ns and name.startswith(prefix) for ns, prefix in self.unready_pods
        )
        statuses = []
        for container in pod["spec"]["containers"]:
            image = container["image"]
            state: Obj
            if outcome is None:
                state = {"running": {"startedAt": now}}
            else:
                state = {
                    "terminated": {
                        "exitCode": 0 if outcome[0] else 1,
                        "reason": "Completed" if outcome[0] else "Error",
                        "startedAt": now,
                        "finishedAt": now,
                    }
                }
            statuses.append(
                {
                    "name": container["name"],
                    "image": image,
                    "imageID": _image_id(image),
                    "containerID": f"containerd://{_digest(name + container['name'])}",
                    "ready": ready,
                    "started": outcome is None,
                    "restartCount": 0,
                    "state": state,
                }
            )
        init_statuses = [
            {
                "name": c["name"],
                "image": c["image"],
                "imageID": _image_id(c["image"]),
                "ready": True,
                "restartCount": 0,
                "state": {
                    "terminated": {
                        "exitCode": 0,
                        "reason": "Completed",
                        "startedAt": now,
                        "finishedAt": now,
                    }
                },
            }
            for c in pod["spec"].get("initContainers", [])
        ]
        phase = "Running" if outcome is None else ("Succeeded" if outcome[0] else "Failed")
        truth = "True" if ready else "False"
        status: Obj = {
            "phase": phase,
            "hostIP": NODE_IP,
            "hostIPs": [{"ip": NODE_IP}],
            "podIP": f"10.244.{self.pod_ips // 250}.{self.pod_ips % 250 + 2}",
            "startTime": now,
            "qosClass": "BestEffort",
            "conditions": [
                {"type": "PodReadyToStartContainers", "status": "True", "lastTransitionTime": now},
                {"type": "Initialized", "status": "True", "lastTransitionTime": now},
                {"type": "Ready", "status": truth, "lastTransitionTime": now},
                {"type": "ContainersReady", "status": truth, "lastTransitionTime": now},
                {"type": "PodScheduled", "status": "True", "lastTransitionTime": now},
            ],
            "containerStatuses": statuses,
        }
        status["podIPs"] = [{"ip": status["podIP"]}]
        if init_statuses:
            status["initContainerStatuses"] = init_statuses
        after["status"] = status
        self.api.store.write(PODS, after)

    def _run_job_pod(self, namespace: str, job_name: str, pod: Obj) -> tuple[bool, str]:
        failing = self.failing_jobs.get((namespace, job_name))
        if failing is not None:
            outcome = (False, failing)
        else:
            outcome = (True, "")
            for behaviour in self.job_behaviours:
                decided = behaviour(self.api, pod)
                if decided is not None:
                    outcome = decided
                    break
        self.api.logs[(namespace, pod["metadata"]["name"])] = outcome[1]
        return outcome

    # ------------------------------------------------------------ jobs

    def _sync_job(self, namespace: str, name: str) -> None:
        job = self.api.store.get(JOBS, namespace, name)
        if job is None or _job_finished(job):
            return
        pods = self._owned(PODS, namespace, job["metadata"]["uid"])
        succeeded = sum(1 for p in pods if dig(p, "status", "phase") == "Succeeded")
        failed = sum(1 for p in pods if dig(p, "status", "phase") == "Failed")
        active = [p for p in pods if _is_active(p)]
        completions = job["spec"].get("completions", 1)
        backoff_limit = job["spec"].get("backoffLimit", 6)
        now = self.api.now()
        status: Obj = dict(job.get("status") or {})
        status.setdefault("startTime", now)
        conditions: list[Obj] = []
        if succeeded >= completions:
            status["completionTime"] = now
            conditions = [
                {
                    "type": "SuccessCriteriaMet",
                    "status": "True",
                    "reason": "CompletionsReached",
                    "message": "Reached expected number of succeeded pods",
                    "lastProbeTime": now,
                    "lastTransitionTime": now,
                },
                {
                    "type": "Complete",
                    "status": "True",
                    "reason": "CompletionsReached",
                    "message": "Reached expected number of succeeded pods",
                    "lastProbeTime": now,
                    "lastTransitionTime": now,
                },
            ]
        elif failed > backoff_limit:
            conditions = [
                {
                    "type": "FailureTarget",
                    "status": "True",
                    "reason": "BackoffLimitExceeded",
                    "message": "Job has reached the specified backoff limit",
                    "lastProbeTime": now,
                    "lastTransitionTime": now,
                },
                {
                    "type": "Failed",
                    "status": "True",
                    "reason": "BackoffLimitExceeded",
                    "message": "Job has reached the specified backoff limit",
                    "lastProbeTime": now,
                    "lastTransitionTime": now,
                },
            ]
        elif not active:
            self._create_pod_of(job)
            return
        for counter, value in (
            ("succeeded", succeeded),
            ("failed", failed),
            ("active", len(active)),
        ):
            if value:
                status[counter] = value
            else:
                status.pop(counter, None)
        status["ready"] = sum(1 for p in active if _is_ready(p))
        status["terminating"] = 0
        status["uncountedTerminatedPods"] = {}
        if conditions:
            status["conditions"] = conditions
        after = copy.deepcopy(job)
        after["status"] = status
        self._write_if_changed(JOBS, job, after)

    # ------------------------------------------------------------ endpoints

    def _sync_endpoints_in(self, namespace: str) -> None:
        services, _ = self.api.store.list(SERVICES, namespace)
        for service in services:
            self._sync_endpoints(namespace, service["metadata"]["name"])

    def _sync_endpoints(self, namespace: str, name: str) -> None:
        service = self.api.store.get(SERVICES, namespace, name)
        if service is None or not dig(service, "spec", "selector"):
            return
        selector = label_selector_from_match({"matchLabels": service["spec"]["selector"]})
        pods, _ = self.api.store.list(PODS, namespace)
        matching = [
            p
            for p in pods
            if _is_active(p)
            and dig(p, "status", "podIP")
            and selector.matches(dig(p, "metadata", "labels", default={}) or {})
        ]

        def address(pod: Obj) -> Obj:
            return {
                "ip": pod["status"]["podIP"],
                "nodeName": pod["spec"].get("nodeName", NODE_NAME),
                "targetRef": {
                    "kind": "Pod",
                    "namespace": namespace,
                    "name": pod["metadata"]["name"],
                    "uid": pod["metadata"]["uid"],
                },
            }

        ready = [address(p) for p in matching if _is_ready(p)]
        not_ready = [address(p) for p in matching if not _is_ready(p)]
        ports = [
            {
                k: v
                for k, v in (
                    ("name", p.get("name")),
                    ("port", _target_port(p, matching)),
                    ("protocol", p.get("protocol", "TCP")),
                )
                if v is not None
            }
            for p in service["spec"].get("ports", [])
        ]
        subset: Obj = {"ports": ports}
        if ready:
            subset["addresses"] = ready
        if not_ready:
            subset["notReadyAddresses"] = not_ready
        subsets = [subset] if matching else []
        existing = self.api.store.get(ENDPOINTS, namespace, name)
        if existing is None:
            self._create(
                ENDPOINTS,
                {
                    "apiVersion": "v1",
                    "kind": "Endpoints",
                    "metadata": {
                        "name": name,
                        "namespace": namespace,
                        "labels": dict(dig(service, "metadata", "labels", default={}) or {}),
                    },
                    "subsets": subsets,
                },
            )
            return
        after = copy.deepcopy(existing)
        after["subsets"] = subsets
        self._write_if_changed(ENDPOINTS, existing, after)

    # ------------------------------------------------------------ garbage collection

    def orphan_or_collect(self, owner: Obj, propagation: str) -> None:
        """After an owner is deleted: delete its dependents, or with Orphan drop their reference."""
        uid = owner["metadata"]["uid"]
        namespace = owner["metadata"].get("namespace", "")
        for key in (REPLICASETS, PODS, ENDPOINTS, JOBS, DEPLOYMENTS):
            items, _ = self.api.store.list(key, namespace or None)
            for item in items:
                refs = item["metadata"].get("ownerReferences") or []
                if not any(r.get("uid") == uid for r in refs):
                    continue
                if propagation == "Orphan":
                    item["metadata"]["ownerReferences"] = [r for r in refs if r.get("uid") != uid]
                    self.api.store.write(key, item)
                else:
                    self._delete(key, item["metadata"].get("namespace", ""), item["metadata"]["name"])


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _image_id(image: str) -> str:
    """A pulled image's id as the kubelet reports it: the repository at a content digest."""
    return f"{image.rsplit(':', 1)[0]}@sha256:{_digest(image)}"


def _template_hash(template: Obj) -> str:
    """A pod-template-hash shaped like upstream's: a 32-bit FNV-1a hash printed in decimal, each
    digit passed through rand.SafeEncodeString, hence names such as web-54f74db995-c26xv."""
    value = 0x811C9DC5
    for byte in json.dumps(template, sort_keys=True).encode():
        value = ((value ^ byte) * 0x01000193) & 0xFFFFFFFF
    return "".join(_NAME_ALPHABET[ord(digit) % len(_NAME_ALPHABET)] for digit in str(value))


def _is_active(pod: Obj) -> bool:
    return dig(pod, "status", "phase") not in ("Succeeded", "Failed") and not dig(
        pod, "metadata", "deletionTimestamp"
    )


def _is_ready(pod: Obj) -> bool:
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in dig(pod, "status", "conditions", default=[]) or []
    )


def _job_finished(job: Obj) -> bool:
    return any(
        c.get("type") in ("Complete", "Failed") and c.get("status") == "True"
        for c in dig(job, "status", "conditions", default=[]) or []
    )


def _target_port(port: Obj, pods: list[Obj]) -> int | None:
    target = port.get("targetPort", port.get("port"))
    if isinstance(target, int):
        return target
    for pod in pods:
        for container in pod["spec"]["containers"]:
            for cport in container.get("ports", []):
                if cport.get("name") == target:
                    return int(cport["containerPort"])
    return port.get("port")
