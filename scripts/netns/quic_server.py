#!/usr/bin/env python3
"""Minimal QUIC server for the netns capture harness (scripts/netns/servers.sh starts it).

Completes QUIC handshakes with ALPN "h3" or "hq-interop" on UDP 443 of the given addresses and
answers any request stream opened by an "hq-interop" client with "ok\n". It does not speak
HTTP/3 beyond the handshake: the harness's clients only need to see the handshake succeed.
Needs the PyPI package aioquic (scripts/install-test-deps.sh puts it into a venv).

usage: quic_server.py --cert CERT --key KEY [--port 443] [--log FILE] ADDR [ADDR...]
"""
import argparse
import asyncio
import sys

from aioquic.asyncio import QuicConnectionProtocol, serve
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.events import HandshakeCompleted, StreamDataReceived

LOG = sys.stderr


class Proto(QuicConnectionProtocol):
    peer = None

    def datagram_received(self, data, addr):
        self.peer = addr
        super().datagram_received(data, addr)

    def quic_event_received(self, event):
        if isinstance(event, HandshakeCompleted):
            print(f"handshake ok alpn={event.alpn_protocol} peer={self.peer}", file=LOG, flush=True)
        elif isinstance(event, StreamDataReceived) and event.end_stream:
            if self._quic.tls.alpn_negotiated == "hq-interop":
                self._quic.send_stream_data(event.stream_id, b"ok\n", end_stream=True)
                self.transmit()


async def main():
    global LOG
    ap = argparse.ArgumentParser()
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--port", type=int, default=443)
    ap.add_argument("--log")
    ap.add_argument("addrs", nargs="+")
    a = ap.parse_args()
    if a.log:
        LOG = open(a.log, "a", buffering=1)
    cfg = QuicConfiguration(is_client=False, alpn_protocols=["h3", "hq-interop"])
    cfg.load_cert_chain(a.cert, a.key)
    for addr in a.addrs:
        await serve(addr, a.port, configuration=cfg, create_protocol=Proto)
        print(f"listening udp {addr} {a.port}", file=LOG, flush=True)
    await asyncio.Future()  # run until signalled


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
