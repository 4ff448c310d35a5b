#!/usr/bin/env python3
"""TCP client that cuts its first message into segments at chosen places (capture harness).

TLS mode (default): makes a TLS ClientHello for --sni with Python's ssl (MemoryBIO), sends it in
three TCP segments: the first 3 bytes (inside the 5-byte TLS record header), then up to the middle
of the SNI host name, then the rest; the handshake then completes normally and one HTTP/1.1 GET is
made. --plain: sends an HTTP/1.1 GET cut the same way: inside "Host", then in the middle of the
host name, then the rest. TCP_NODELAY plus a short pause between sends puts each piece in its own
segment. Certificates are not verified. Stdlib only. Prints the status line; exit 0 on HTTP 200.

usage: tcp_split_client.py --sni NAME [--plain] [--port N] [--timeout S] ADDR
"""
import argparse
import socket
import ssl
import sys
import time


def send_cut(sock, data, cuts):
    last = 0
    for c in sorted(set(cuts)) + [len(data)]:
        if last < c <= len(data):
            sock.sendall(data[last:c])
            last = c
            time.sleep(0.05)


def request(host):
    return f"GET / HTTP/1.1\r\nHost: {host}\r\nUser-Agent: bawaba-split\r\nConnection: close\r\n\r\n".encode()


def mid_name_cut(data, name):
    i = data.find(name.encode())
    if i < 0:
        raise RuntimeError(f"{name} not found in the first message")
    return i + len(name) // 2


def run_plain(a, sock):
    req = request(a.sni)
    send_cut(sock, req, [req.find(b"Host") + 2, mid_name_cut(req, a.sni)])
    resp = b""
    while chunk := sock.recv(4096):
        resp += chunk
    return resp


def run_tls(a, sock):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(["http/1.1"])
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = ctx.wrap_bio(inc, out, server_hostname=a.sni)

    def pump(op):  # run op, moving bytes between the socket and the BIOs until it succeeds
        while True:
            try:
                r = op()
            except ssl.SSLWantReadError:
                if out.pending:
                    sock.sendall(out.read())
                data = sock.recv(65536)
                if not data:
                    raise ConnectionError("server closed during TLS")
                inc.write(data)
                continue
            if out.pending:
                sock.sendall(out.read())
            return r

    try:
        tls.do_handshake()
    except ssl.SSLWantReadError:
        pass
    hello = out.read()
    send_cut(sock, hello, [3, mid_name_cut(hello, a.sni)])
    pump(tls.do_handshake)
    pump(lambda: tls.write(request(a.sni)))
    resp = b""
    while True:
        try:
            chunk = pump(lambda: tls.read(65536))
        except (ssl.SSLZeroReturnError, ssl.SSLEOFError, ConnectionError):
            break
        if not chunk:
            break
        resp += chunk
    return resp


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sni", required=True)
    ap.add_argument("--plain", action="store_true")
    ap.add_argument("--port", type=int)
    ap.add_argument("--timeout", type=float, default=5.0)
    ap.add_argument("addr")
    a = ap.parse_args()
    port = a.port or (80 if a.plain else 443)
    try:
        with socket.create_connection((a.addr, port), timeout=a.timeout) as sock:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            resp = run_plain(a, sock) if a.plain else run_tls(a, sock)
    except Exception as e:  # noqa: BLE001 - any failure is a failed run
        print(f"split FAILED {a.sni}: {type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(1)
    status = resp.split(b"\r\n", 1)[0].decode("latin-1")
    print(f"{status} ({len(resp)} bytes)")
    sys.exit(0 if " 200 " in status + " " else 1)


if __name__ == "__main__":
    main()
