"""The seed write-up's manifests (sections 4 and 5.1), as the article shows them.

The Gateway and VirtualService that expose emoji-istio.test.net through the ingress gateway, and
the same VirtualService with the abort fault the article adds; its one stray comment is made a
comment. Several test packages compare what meshbot and the playground produce with these.
"""

from __future__ import annotations

from typing import Any

import yaml

EXPOSE_YAML = """
apiVersion: networking.istio.io/v1alpha3
kind: Gateway
metadata:
  name: emojivoto-gateway
  namespace: emojivoto-istio
spec:
  selector:
    istio: ingressgateway # use istio default controller
  servers:
  - port:
      number: 80
      name: http
      protocol: HTTP
    hosts:
    - "emoji-istio.test.net"
---
apiVersion: networking.istio.io/v1alpha3
kind: VirtualService
metadata:
  name: emojivoto
  namespace: emojivoto-istio
spec:
  hosts:
  - "emoji-istio.test.net"
  gateways:
  - emojivoto-gateway
  http:
  - match:
    - uri:
        prefix: /
    route:
    - destination:
        host: web-svc
        port:
          number: 80
"""
ABORT_YAML = """
apiVersion: networking.istio.io/v1alpha3
kind: VirtualService
metadata:
  name: emojivoto
  namespace: emojivoto-istio
spec:
  hosts:
  - "emoji-istio.test.net"
  gateways:
  - emojivoto-gateway
  http:
  - fault:
      abort:
        httpStatus: 500
        percentage:
          value: 50
    match:
    - uri:
        prefix: /
    route:
    - destination:
        host: web-svc
        port:
          number: 80
"""

GATEWAY: dict[str, Any]
VIRTUAL_SERVICE: dict[str, Any]
GATEWAY, VIRTUAL_SERVICE = yaml.safe_load_all(EXPOSE_YAML)
ABORT_VIRTUAL_SERVICE: dict[str, Any] = yaml.safe_load(ABORT_YAML)
