"""The live view alone, served by uvicorn in its own process (the bench measures it from outside).

``python -m bench.live.hub_proc --nats URL --port PORT``; prints ``ready`` once it serves.
"""

from __future__ import annotations

import argparse
import asyncio

import uvicorn
from litestar import Litestar
from swtel.hub.live.routes import live_components
from swtel.shared import settings as settings_mod
from swtel.shared.natsconn import connect


async def main(nats_url: str, port: int, frame_interval: float, deflate: bool = False) -> None:
    s = settings_mod.load({"nats_url": nats_url, "live_frame_interval_s": frame_interval}, env={})
    nc = await connect(s, name="bench-hub", long_running=True)
    handlers, on_startup, on_shutdown, service = live_components(s, nc)
    app = Litestar(route_handlers=handlers, on_startup=on_startup, on_shutdown=on_shutdown)
    # permessage-deflate off, as docs/DASHBOARD.md recommends for the hub: compressing every frame costs
    # more hub CPU than the whole fan-out
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                           ws="websockets-sansio", ws_per_message_deflate=deflate))
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.05)
    await service.wait_ready()
    print("ready", flush=True)
    await task
    await nc.close()


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--nats", required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--frame-interval", type=float, default=0.2)
    ap.add_argument("--profile", help="write a cProfile of the hub here")
    ap.add_argument("--deflate", action="store_true", help="allow permessage-deflate")
    a = ap.parse_args()
    if a.profile:
        import cProfile
        import signal
        import sys

        # uvicorn re-raises SIGTERM after its graceful shutdown; exit normally so the profile is written
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))

        with cProfile.Profile() as prof:
            try:
                asyncio.run(main(a.nats, a.port, a.frame_interval, a.deflate))
            finally:
                prof.dump_stats(a.profile)
    else:
        asyncio.run(main(a.nats, a.port, a.frame_interval, a.deflate))
