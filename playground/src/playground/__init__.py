"""A local stand-in for the Kubernetes API server: real HTTP, driven by the official client and kubectl.

No kube-apiserver can run on the machines meshbot is developed and tested on, so this package serves
the parts of the Kubernetes REST API that meshbot and kubectl use, with the API server's semantics
(resourceVersion, Status errors, watch, patch types, CRD validation) and a small controller loop.
"""
