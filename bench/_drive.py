"""A paced load of signed /mesh slash commands, run in a process of its own (so its own work never
shares an interpreter lock with the server it measures, or with the fake Slack).

    python -m bench._drive URL TEXT RATE SECONDS RESPONSE_BASE SECRET

Open loop: request n leaves at start + n/RATE whatever happened to earlier ones, and its latency is
counted from that moment, so a server that stalls is not excused by the client waiting for it.
Prints one JSON object: latencies (ms) of acks, and counts of busy answers and errors.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import sys
import time
from urllib.parse import urlencode

import httpx

# A bound on the whole run, whatever the arguments say: loops here are bounded in count and time.
MAX_REQUESTS = 5_000
TIMEOUT_SECONDS = 10.0


def signed(body: str, secret: str) -> dict[str, str]:
    ts = str(int(time.time()))
    digest = hmac.new(secret.encode(), f"v0:{ts}:{body}".encode(), hashlib.sha256).hexdigest()
    return {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": f"v0={digest}",
    }


async def drive(url: str, text: str, rate: float, seconds: float, response_base: str, secret: str) -> dict:
    count = min(MAX_REQUESTS, int(rate * seconds))
    latencies: list[float] = []
    busy = errors = 0
    run = f"{time.time_ns():x}"
    limits = httpx.Limits(max_connections=512, max_keepalive_connections=64)
    async with httpx.AsyncClient(
        base_url=url, trust_env=False, limits=limits, timeout=TIMEOUT_SECONDS
    ) as http:

        async def one(n: int, due: float) -> None:
            nonlocal busy, errors
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            body = urlencode(
                {
                    "team_id": "T0BENCH",
                    "channel_id": "C0BENCH",
                    "user_id": f"U0LOAD{n % 50}",
                    "user_name": "load",
                    "command": "/mesh",
                    "text": text,
                    "response_url": f"{response_base}/response/{run}-{n}",
                    "trigger_id": f"{run}-{n}",
                }
            )
            try:
                response = await http.post("/slack/events", content=body, headers=signed(body, secret))
            except httpx.HTTPError:
                errors += 1
                return
            latencies.append((time.perf_counter() - due) * 1000)
            if response.status_code != 200:
                errors += 1
            elif b"busy" in response.content:
                busy += 1

        start = time.perf_counter() + 0.2
        await asyncio.gather(*(one(n, start + n / rate) for n in range(count)))
    return {"sent": count, "latencies_ms": latencies, "busy": busy, "errors": errors}


def main() -> None:
    url, text, rate, seconds, response_base, secret = sys.argv[1:7]
    result = asyncio.run(drive(url, text, float(rate), float(seconds), response_base, secret))
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()
