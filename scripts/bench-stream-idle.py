#!/usr/bin/env python3
"""Two proxy figures ../shared/bench does not take, measured on a release build of Gatehouse:

1. Server-sent events: time from sending a streaming chat-completion request to the first event's
   bytes, directly and through Gatehouse (interception, full pipeline, metering), N times each.
   The origin writes its first event at once and the next ones 20 ms apart, so a proxy that
   buffers shows it.
2. Memory per idle intercepted connection: RSS of the proxy before and after opening IDLE
   connections (CONNECT, TLS handshake with the minted leaf, one request answered, then idle),
   divided by their number.

Usage (from the project root, after `cargo build --release`):
    scripts/bench-stream-idle.py [--events-runs 200] [--idle 1000]
Every loop is bounded in count and by timeouts; everything runs on 127.0.0.1.
"""

import argparse
import http.server
import json
import os
import resource
import socket
import socketserver
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time

BIN = os.environ.get("GATEHOUSE_BIN", "target/release/gatehouse")
HOST = "localhost"


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_origin_pki(d):
    """A CA and a P-256 leaf for localhost, made with the openssl CLI."""
    openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "ca.key", cwd=d)
    openssl("req", "-x509", "-new", "-key", "ca.key", "-subj", "/CN=Stream Bench CA", "-days", "2",
            "-out", "ca.pem", cwd=d)
    openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "leaf.key", cwd=d)
    openssl("req", "-new", "-key", "leaf.key", "-subj", "/CN=localhost", "-out", "leaf.csr", cwd=d)
    with open(os.path.join(d, "ext.cnf"), "w") as f:
        f.write("subjectAltName=DNS:localhost\n")
    openssl("x509", "-req", "-in", "leaf.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-days", "2", "-extfile", "ext.cnf", "-out", "leaf.pem", cwd=d)


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Small writes leave at once (Nagle plus delayed ACKs would add 40 ms to every first event).
    disable_nagle_algorithm = True

    def log_message(self, *args):
        pass

    def do_POST(self):
        length = int(self.headers.get("content-length", "0"))
        self.rfile.read(length)
        if self.path.startswith("/v1/chat/completions"):
            self.send_response(200)
            self.send_header("content-type", "text/event-stream")
            self.send_header("transfer-encoding", "chunked")
            self.end_headers()
            for i in range(3):
                event = {"id": "c", "object": "chat.completion.chunk", "model": "gpt-4o-mini",
                         "choices": [{"index": 0, "delta": {"content": f"part {i}"}}]}
                self.chunk(f"data: {json.dumps(event)}\n\n".encode())
                time.sleep(0.02)
            usage = {"id": "c", "object": "chat.completion.chunk", "model": "gpt-4o-mini",
                     "choices": [], "usage": {"prompt_tokens": 20, "completion_tokens": 3,
                                              "total_tokens": 23}}
            self.chunk(f"data: {json.dumps(usage)}\n\ndata: [DONE]\n\n".encode())
            self.chunk(b"")
        else:
            body = b'{"ok":true}'
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    def chunk(self, data):
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()


class Origin(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    request_queue_size = 1024


def start_origin(d):
    server = Origin(("127.0.0.1", 0), Handler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(os.path.join(d, "leaf.pem"), os.path.join(d, "leaf.key"))
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server.server_address[1]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_proxy(d, idle):
    port = free_port()
    os.makedirs(os.path.join(d, "policies"), exist_ok=True)
    with open(os.path.join(d, "gatehouse.yaml"), "w") as f:
        f.write(f"""listen: 127.0.0.1:{port}
ca: {{ dir: {d}/certs }}
upstream: {{ extra_ca_files: [{d}/ca.pem] }}
network: {{ allow_cidrs: [127.0.0.1/32] }}
identity: {{ allow_anonymous: true }}
limits: {{ max_connections: {idle + 512}, max_connections_per_agent: {idle + 256} }}
policies: {{ dir: {d}/policies }}
audit: {{ file: {d}/audit/decisions.jsonl, store: {d}/audit/decisions.sqlite }}
budget:
  store: {d}/data/budget.sqlite
  budgets:
    - {{ id: everyone-day, limit_usd: '1000000', window: day }}
log: {{ level: warn }}
admin: {{ listen: "off" }}
""")
    with open(os.path.join(d, "policies", "allow.yaml"), "w") as f:
        f.write(f"""rules:
  - {{ id: allow-connect, trigger: connect, match: {{ hosts: [{HOST}] }}, effect: allow }}
  - {{ id: allow-requests, trigger: http.request, match: {{ hosts: [{HOST}] }}, effect: allow }}
  - id: mask-contact-data
    trigger: llm.request
    effect: redact
    redact: {{ kinds: [email, phone], style: mask }}
""")
    config = os.path.join(d, "gatehouse.yaml")
    subprocess.run([BIN, "ca", "init", "--config", config], check=True, capture_output=True)
    proc = subprocess.Popen([BIN, "run", "--config", config], stdout=subprocess.DEVNULL,
                            stderr=open(os.path.join(d, "proxy.log"), "w"))
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc, port, os.path.join(d, "certs", "gatehouse-ca.pem")
        except OSError:
            time.sleep(0.05)
    proc.kill()
    sys.exit("the proxy did not start; see " + os.path.join(d, "proxy.log"))


def connect(origin_port, proxy_port, ca):
    """A TLS socket to the origin, through the proxy when proxy_port is set."""
    if proxy_port is None:
        raw = socket.create_connection(("127.0.0.1", origin_port), timeout=10)
    else:
        raw = socket.create_connection(("127.0.0.1", proxy_port), timeout=10)
        raw.sendall(f"CONNECT {HOST}:{origin_port} HTTP/1.1\r\nHost: {HOST}:{origin_port}\r\n\r\n"
                    .encode())
        head = b""
        while b"\r\n\r\n" not in head:
            data = raw.recv(4096)
            if not data:
                raise RuntimeError("the proxy closed the CONNECT")
            head += data
        if not head.startswith(b"HTTP/1.1 200"):
            raise RuntimeError(head.split(b"\r\n")[0].decode())
    raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    ctx = ssl.create_default_context(cafile=ca)
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx.wrap_socket(raw, server_hostname=HOST)


BODY = json.dumps({"model": "gpt-4o-mini", "stream": True, "max_tokens": 64,
                   "stream_options": {"include_usage": True},
                   "messages": [{"role": "user", "content": "write to jane@example.com"}]}).encode()


def first_event_ms(sock, origin_port):
    request = (f"POST /v1/chat/completions HTTP/1.1\r\nHost: {HOST}:{origin_port}\r\n"
               f"Content-Type: application/json\r\nContent-Length: {len(BODY)}\r\n\r\n").encode()
    start = time.perf_counter()
    sock.sendall(request + BODY)
    seen = b""
    first = None
    while b"[DONE]" not in seen:
        data = sock.recv(65536)
        if not data:
            raise RuntimeError("closed before the stream ended")
        seen += data
        if first is None and b"data: " in seen:
            first = (time.perf_counter() - start) * 1000
    # Read the terminating chunk so the connection can be reused.
    while not seen.endswith(b"0\r\n\r\n"):
        data = sock.recv(65536)
        if not data:
            break
        seen += data
    return first


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def idle_connection(origin_port, proxy_port, ca):
    sock = connect(origin_port, proxy_port, ca)
    sock.sendall(f"POST /answer HTTP/1.1\r\nHost: {HOST}:{origin_port}\r\nContent-Length: 2\r\n"
                 "Content-Type: application/json\r\n\r\n{}".encode())
    seen = b""
    while b'{"ok":true}' not in seen:
        data = sock.recv(65536)
        if not data:
            raise RuntimeError("closed before the answer")
        seen += data
    return sock


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--events-runs", type=int, default=200)
    parser.add_argument("--idle", type=int, default=1000)
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, args.idle * 2 + 256)), hard))
    with tempfile.TemporaryDirectory() as d:
        make_origin_pki(d)
        origin_port = start_origin(d)
        proxy, proxy_port, gatehouse_ca = start_proxy(d, args.idle)
        try:
            rows = []
            for name, port, ca in (("direct", None, os.path.join(d, "ca.pem")),
                                   ("gatehouse", proxy_port, gatehouse_ca)):
                sock = connect(origin_port, port, ca)
                first_event_ms(sock, origin_port)  # warm-up: leaf minted, upstream pooled
                times = [first_event_ms(sock, origin_port) for _ in range(args.events_runs)]
                sock.close()
                times.sort()
                rows.append((name, statistics.median(times), times[int(len(times) * 0.99) - 1]))
            print(f"## Server-sent events: first event ({args.events_runs} streams each, one "
                  "keep-alive connection)\n")
            print("| route | p50 ms | p99 ms |\n|---|---|---|")
            for name, p50, p99 in rows:
                print(f"| {name} | {p50:.3f} | {p99:.3f} |")
            print(f"\nadded by the proxy at p50: {rows[1][1] - rows[0][1]:+.3f} ms\n")

            idle_connection(origin_port, proxy_port, gatehouse_ca).close()
            time.sleep(0.5)
            before = rss_kib(proxy.pid)
            socks = []
            deadline = time.monotonic() + 120
            for _ in range(args.idle):
                if time.monotonic() > deadline:
                    break
                socks.append(idle_connection(origin_port, proxy_port, gatehouse_ca))
            time.sleep(1.0)
            after = rss_kib(proxy.pid)
            print(f"## Idle intercepted connections ({len(socks)} opened, each after one "
                  "request)\n")
            print("| RSS before KiB | RSS after KiB | per connection KiB |\n|---|---|---|")
            print(f"| {before} | {after} | {(after - before) / max(1, len(socks)):.1f} |")
            for s in socks:
                s.close()
        finally:
            proxy.terminate()
            try:
                proxy.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proxy.kill()


if __name__ == "__main__":
    main()
