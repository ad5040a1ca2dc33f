"""Everything that talks to Kubernetes/Istio, Prometheus and Kiali.

Pure functions build manifests and patches; thin functions do the I/O with the official clients.
"""
