"""The reference for ack latency: a bare FastAPI endpoint under uvicorn that checks Slack's
signature (the same check meshbot's gate makes) and answers, nothing more.

    python -m bench._bare PORT SECRET
"""

from __future__ import annotations

import sys

import uvicorn
from fastapi import FastAPI, Request, Response

from bot.slack.gate import signed


def app(secret: str) -> FastAPI:
    bare = FastAPI()

    @bare.post("/slack/events")
    async def events(request: Request) -> Response:
        body = await request.body()
        headers = request.headers
        if not signed(
            secret, body, headers.get("x-slack-request-timestamp"), headers.get("x-slack-signature")
        ):
            return Response("signature check failed", status_code=401)
        return Response('{"response_type":"ephemeral","text":"ok"}', media_type="application/json")

    return bare


if __name__ == "__main__":
    uvicorn.run(app(sys.argv[2]), host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
