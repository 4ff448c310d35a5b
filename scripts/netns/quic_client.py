#!/usr/bin/env python3
"""Minimal QUIC client for the netns capture harness (scripts/netns/traffic.sh runs it).

Connects to ADDR:PORT with the given SNI and ALPN, waits for the handshake, sends a PING, closes.
The server's certificate is not verified (self-signed test cert). --big adds many long ALPN
values in front of the real one, so the ClientHello (> 1200 bytes) spans two Initial packets.
Exit status 0 only if the handshake completed.

usage: quic_client.py --sni NAME [--alpn h3] [--big] [--port 443] [--timeout 5] ADDR
"""
import argparse
import asyncio
import ssl
import sys

from aioquic.asyncio import connect
from aioquic.quic.configuration import QuicConfiguration


async def run(a):
    alpn = [a.alpn]
    if a.big:
        # 48 x 34-byte bogus protocol ids (~1.6 KB) before the real one: ClientHello ~1.9 KB
        alpn = [f"x-bawaba-two-initials-pad-{i:03d}-xxx" for i in range(48)] + alpn
    cfg = QuicConfiguration(is_client=True, alpn_protocols=alpn, server_name=a.sni,
                            verify_mode=ssl.CERT_NONE)
    async with connect(a.addr, a.port, configuration=cfg, wait_connected=True) as client:
        await client.ping()
        print(f"quic ok sni={a.sni} alpn={client._quic.tls.alpn_negotiated} "
              f"hello_alpn_count={len(alpn)}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sni", required=True)
    ap.add_argument("--alpn", default="h3")
    ap.add_argument("--big", action="store_true")
    ap.add_argument("--port", type=int, default=443)
    ap.add_argument("--timeout", type=float, default=5.0)
    ap.add_argument("addr")
    a = ap.parse_args()
    try:
        asyncio.run(asyncio.wait_for(run(a), a.timeout))
    except Exception as e:  # noqa: BLE001 - any failure is a failed run
        print(f"quic FAILED sni={a.sni}: {type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
