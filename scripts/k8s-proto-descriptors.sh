#!/usr/bin/env bash
# Regenerates playground/src/playground/data/k8s-protobuf.desc.gz: the message definitions the
# playground decodes kubectl's protobuf bodies with, compiled from upstream's generated.proto files.
# Run it when the playground moves to another Kubernetes minor (SERVER_VERSION in server.py).
#   scripts/k8s-proto-descriptors.sh API_CHECKOUT APIMACHINERY_CHECKOUT
# with checkouts of k8s.io/api and k8s.io/apimachinery at the matching release (v0.<minor>.x).
# Needs grpcio-tools (protoc as a Python module): pip install grpcio-tools.
set -euo pipefail
api=$1 machinery=$2
out=$(cd "$(dirname "$0")/.." && pwd)/playground/src/playground/data/k8s-protobuf.desc.gz
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for p in core/v1 apps/v1 batch/v1 rbac/v1; do
    mkdir -p "$work/k8s.io/api/$p" && cp "$api/$p/generated.proto" "$work/k8s.io/api/$p/"
done
for p in pkg/apis/meta/v1 pkg/api/resource pkg/util/intstr pkg/runtime pkg/runtime/schema; do
    mkdir -p "$work/k8s.io/apimachinery/$p" && cp "$machinery/$p/generated.proto" "$work/k8s.io/apimachinery/$p/"
done
(cd "$work" && python -m grpc_tools.protoc -I. --include_imports --descriptor_set_out=set.pb \
    k8s.io/api/core/v1/generated.proto k8s.io/api/apps/v1/generated.proto \
    k8s.io/api/batch/v1/generated.proto k8s.io/api/rbac/v1/generated.proto)
gzip -9 -n -c "$work/set.pb" > "$out"
