#!/usr/bin/env python3
"""Tiny authoritative-looking DNS responder for the netns capture harness (stdlib only).

Answers every query on UDP and TCP port 53 of the given addresses: A -> --a (198.18.2.2),
AAAA -> --aaaa (2001:db8:2::2), anything else NOERROR with no answer. It exists so that dig's
queries in scripts/netns/traffic.sh get answers (UDP and TCP flows both complete); it is not a
resolver and never sends anything anywhere else.

usage: dns_server.py [--a ADDR] [--aaaa ADDR] [--port 53] [--log FILE] LISTEN_ADDR [...]
"""
import argparse
import asyncio
import ipaddress
import struct
import sys

LOG = sys.stderr


def answer(q, a4, a6):
    if len(q) < 12:
        return None
    qid, flags, qd = struct.unpack("!HHH", q[:6])
    if flags & 0x8000 or qd != 1:
        return None
    i, labels = 12, []
    while i < len(q) and q[i] != 0:
        n = q[i]
        labels.append(q[i + 1:i + 1 + n].decode("ascii", "replace"))
        i += 1 + n
    end = i + 5
    if end > len(q):
        return None
    qtype, qclass = struct.unpack("!HH", q[i + 1:end])
    rr = b""
    if qclass == 1 and qtype == 1:
        rr = b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 60, 4) + a4
    elif qclass == 1 and qtype == 28:
        rr = b"\xc0\x0c" + struct.pack("!HHIH", 28, 1, 60, 16) + a6
    rflags = 0x8400 | (flags & 0x7900)  # QR AA, keep opcode and RD
    print(f"query {'.'.join(labels)} type {qtype}", file=LOG, flush=True)
    return struct.pack("!HHHHHH", qid, rflags, 1, 1 if rr else 0, 0, 0) + q[12:end] + rr


class Udp(asyncio.DatagramProtocol):
    def __init__(self, a4, a6):
        self.a4, self.a6 = a4, a6

    def connection_made(self, transport):
        self.t = transport

    def datagram_received(self, data, addr):
        r = answer(data, self.a4, self.a6)
        if r:
            self.t.sendto(r, addr)


async def main():
    global LOG
    ap = argparse.ArgumentParser()
    ap.add_argument("--a", default="198.18.2.2")
    ap.add_argument("--aaaa", default="2001:db8:2::2")
    ap.add_argument("--port", type=int, default=53)
    ap.add_argument("--log")
    ap.add_argument("addrs", nargs="+")
    a = ap.parse_args()
    if a.log:
        LOG = open(a.log, "a", buffering=1)
    a4 = ipaddress.IPv4Address(a.a).packed
    a6 = ipaddress.IPv6Address(a.aaaa).packed

    async def tcp(reader, writer):
        try:
            while True:
                n = struct.unpack("!H", await reader.readexactly(2))[0]
                r = answer(await reader.readexactly(n), a4, a6)
                if not r:
                    break
                writer.write(struct.pack("!H", len(r)) + r)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        writer.close()

    loop = asyncio.get_running_loop()
    for addr in a.addrs:
        await loop.create_datagram_endpoint(lambda: Udp(a4, a6), local_addr=(addr, a.port))
        await asyncio.start_server(tcp, addr, a.port)
        print(f"listening udp+tcp {addr} {a.port}", file=LOG, flush=True)
    await asyncio.Future()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
