"""Bodies in `application/vnd.kubernetes.protobuf`, as kubectl's typed clients send them.

`kubectl create namespace|configmap|deployment|…` write through client-go's typed clients, which
send built-in kinds as protobuf; a real API server decodes that, so the playground does too.
The wire format is decoded by Google's `protobuf` package against upstream's own message
definitions (`data/k8s-protobuf.desc.gz`, made by scripts/k8s-proto-descriptors.sh from the
`generated.proto` files of k8s.io/api and k8s.io/apimachinery); this module maps the decoded message
to the JSON object the same request would have carried.
"""

from __future__ import annotations

import base64
import functools
import gzip
import json
from datetime import UTC, datetime
from importlib import resources
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import DecodeError, Message

from playground import errors

MEDIA_TYPE = "application/vnd.kubernetes.protobuf"
_MAGIC = b"k8s\x00"
# Which proto package holds a group's kinds (the ones kubectl's `create` generators write).
_PACKAGES = {
    "": "k8s.io.api.core.v1",
    "apps": "k8s.io.api.apps.v1",
    "batch": "k8s.io.api.batch.v1",
    "rbac.authorization.k8s.io": "k8s.io.api.rbac.v1",
}
_META = "k8s.io.apimachinery.pkg.apis.meta.v1"
# Go writes every non-pointer field, zero or not, and its JSON drops zeros (omitempty); pointer
# fields are written only when set, and there a zero means something (`--replicas=0`).
_ZERO_MEANS_SOMETHING = frozenset(
    {
        "replicas",
        "parallelism",
        "completions",
        "backoffLimit",
        "suspend",
        "immutable",
        "automountServiceAccountToken",
        "terminationGracePeriodSeconds",
        "activeDeadlineSeconds",
        "ttlSecondsAfterFinished",
        "revisionHistoryLimit",
        "progressDeadlineSeconds",
        "successfulJobsHistoryLimit",
        "failedJobsHistoryLimit",
        "startingDeadlineSeconds",
        "runAsUser",
        "runAsGroup",
        "runAsNonRoot",
        "privileged",
        "allowPrivilegeEscalation",
        "readOnlyRootFilesystem",
        "optional",
    }
)


@functools.cache
def _pool() -> descriptor_pool.DescriptorPool:
    raw = (resources.files("playground") / "data" / "k8s-protobuf.desc.gz").read_bytes()
    files = descriptor_pb2.FileDescriptorSet.FromString(gzip.decompress(raw))
    pool = descriptor_pool.DescriptorPool()
    for file in files.file:
        pool.Add(file)
    return pool


def _message(full_name: str) -> Message:
    return message_factory.GetMessageClass(_pool().FindMessageTypeByName(full_name))()


def decode(raw: bytes) -> dict[str, Any]:
    """The JSON form of a protobuf-encoded object; a 400 for bodies upstream could not read."""
    if not raw.startswith(_MAGIC):
        raise errors.bad_request("the body is not a protobuf-encoded Kubernetes object (no k8s prefix)")
    try:
        envelope = _message("k8s.io.apimachinery.pkg.runtime.Unknown")
        envelope.ParseFromString(raw[len(_MAGIC) :])
        api_version = envelope.typeMeta.apiVersion
        kind = envelope.typeMeta.kind
        group, _, version = api_version.rpartition("/")
        package = _PACKAGES.get(group)
        if package is None or version != "v1":
            raise errors.bad_request(
                f"no protobuf definition of {api_version}, Kind={kind} in the playground"
            )
        try:
            obj = _message(f"{package}.{kind}")
        except KeyError:
            raise errors.bad_request(f"no kind {kind!r} is registered for version {api_version!r}") from None
        obj.ParseFromString(envelope.raw)
    except DecodeError as exc:
        raise errors.bad_request(f"the protobuf body could not be decoded: {exc}") from None
    return {"apiVersion": api_version, "kind": kind, **_to_json(obj)}


def _to_json(msg: Message) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for field, value in msg.ListFields():
        converted = _field(field, value)
        if converted is None:
            continue
        if converted in ("", 0, False) and not field.is_repeated and field.name not in _ZERO_MEANS_SOMETHING:
            continue
        out[field.name] = converted
    return out


def _field(field: FieldDescriptor, value: Any) -> Any:
    if field.type == FieldDescriptor.TYPE_MESSAGE and field.message_type.GetOptions().map_entry:
        value_field = field.message_type.fields_by_name["value"]
        return {k: _single(value_field, v) for k, v in value.items()}
    if field.is_repeated:
        return [_single(field, v) for v in value]
    return _single(field, value)


def _single(field: FieldDescriptor, value: Any) -> Any:
    if field.type == FieldDescriptor.TYPE_MESSAGE:
        return _special(field.message_type, value)
    if field.type == FieldDescriptor.TYPE_BYTES:
        return base64.b64encode(value).decode()
    return value


def _special(descriptor: Descriptor, value: Any) -> Any:
    """Types whose JSON is no object: times, durations, quantities, int-or-strings, raw JSON."""
    name = descriptor.full_name
    if name in (f"{_META}.Time", f"{_META}.MicroTime"):
        if not value.seconds and not value.nanos:
            return None  # Go's zero time marshals as null
        stamp = datetime.fromtimestamp(value.seconds, UTC)
        if name.endswith("MicroTime"):
            return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.nanos // 1000:06d}Z"
        return stamp.strftime("%Y-%m-%dT%H:%M:%SZ")
    if name == f"{_META}.Duration":
        return _go_duration(value.duration)
    if name == "k8s.io.apimachinery.pkg.api.resource.Quantity":
        return value.string
    if name == "k8s.io.apimachinery.pkg.util.intstr.IntOrString":
        return value.strVal if value.type == 1 else value.intVal
    if name == f"{_META}.FieldsV1":
        return json.loads(value.Raw) if value.Raw else {}
    if name == "k8s.io.apimachinery.pkg.runtime.RawExtension":
        return json.loads(value.raw) if value.raw else None
    return _to_json(value)


def _go_duration(nanos: int) -> str:
    """Go's time.Duration.String() for whole seconds and above, which is what users write."""
    seconds, rest = divmod(nanos, 1_000_000_000)
    hours, seconds = divmod(seconds, 3600)
    minutes, seconds = divmod(seconds, 60)
    fraction = f".{rest:09d}".rstrip("0") if rest else ""
    if hours:
        return f"{hours}h{minutes}m{seconds}{fraction}s"
    if minutes:
        return f"{minutes}m{seconds}{fraction}s"
    return f"{seconds}{fraction}s"
