"""A minimal OTLP/HTTP receiver for the telemetry tests.

Listens on 127.0.0.1 (port 0 unless given), prints `port N` once it listens, and decodes every
ExportTraceServiceRequest (POST /v1/traces) and ExportMetricsServiceRequest (POST /v1/metrics)
with the `opentelemetry-proto` messages, appending each as one JSON line
`{"path", "content_type", "authorization", "body": <MessageToDict>, "raw": <the bytes, latin-1>}` to the
output file. `raw` lets a test search the wire bytes themselves, not only what decoding kept.

Usage: receiver.py OUTPUT_FILE
"""

import gzip
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from google.protobuf.json_format import MessageToDict
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

MESSAGES = {
    "/v1/traces": (ExportTraceServiceRequest, ExportTraceServiceResponse),
    "/v1/metrics": (ExportMetricsServiceRequest, ExportMetricsServiceResponse),
}
MAX_BODY = 16 * 1024 * 1024
LOCK = threading.Lock()


class Receiver(BaseHTTPRequestHandler):
    output = None

    def do_POST(self):
        messages = MESSAGES.get(self.path)
        length = int(self.headers.get("content-length", "0"))
        if messages is None or length > MAX_BODY:
            self.send_error(404)
            return
        raw = self.rfile.read(length)
        if self.headers.get("content-encoding", "") == "gzip":
            raw = gzip.decompress(raw)
        request_type, response_type = messages
        request = request_type()
        request.ParseFromString(raw)
        record = {
            "path": self.path,
            "content_type": self.headers.get("content-type", ""),
            "authorization": self.headers.get("authorization", ""),
            "body": MessageToDict(request, preserving_proto_field_name=True),
            "raw": raw.decode("latin-1"),
        }
        with LOCK, open(self.output, "a", encoding="utf-8") as out:
            out.write(json.dumps(record) + "\n")
        answer = response_type().SerializeToString()
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.send_header("content-length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args):
        pass


def main():
    Receiver.output = sys.argv[1]
    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    print(f"port {server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
