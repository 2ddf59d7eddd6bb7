#!/usr/bin/env python3
"""A minimal OTLP/HTTP traces endpoint for benchmarks: it accepts spans and counts them.

It answers 200 (an empty ExportTraceServiceResponse) to every POST /v1/traces after
reading the whole body, and counts requests, body bytes and the spans inside (walking
the protobuf just deep enough to count spans per service.name; span contents are
skipped, not decoded). Nothing is stored. It listens on 127.0.0.1 only.

    python3 scripts/otlp_sink.py                      # a free port, printed on stderr
    python3 scripts/otlp_sink.py --port 4318
    python3 scripts/otlp_sink.py --port 0 --port-file target/sink.port

    GET /stats        the counts so far, as JSON
    GET /healthz      200 "ok"
    SIGTERM, SIGINT   print the counts (JSON, one line) on stdout and exit 0

    python3 scripts/otlp_sink.py --mark synthetic_request
                                                      # also: server spans marked so

The counts: requests (POST /v1/traces answered 200), bytes (their bodies), spans,
spans_by_service; with --mark KEY, server_spans_by_service and marked_by_service (server
spans whose attribute KEY is true); undecodable (bodies that are not an ExportTraceServiceRequest; still
answered 200 and counted in requests and bytes), rejected (anything other than
POST /v1/traces, answered 404/405/411/415), uptime_s. Python 3.8+ standard library only.
"""

import argparse
import json
import os
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

TRACES_PATH = "/v1/traces"
MAX_BODY = 64 * 1024 * 1024  # far above any batch; a guard against nonsense lengths


class Counts:
    def __init__(self):
        self.lock = threading.Lock()
        self.started = time.monotonic()
        self.requests = 0
        self.bytes = 0
        self.spans = 0
        self.spans_by_service = {}
        self.server_spans_by_service = {}
        self.marked_by_service = {}
        self.undecodable = 0
        self.rejected = 0

    def add(self, size, counted):
        with self.lock:
            self.requests += 1
            self.bytes += size
            if counted is None:
                self.undecodable += 1
                return
            for service, (n, servers, marked) in counted.items():
                self.spans += n
                for table, k in ((self.spans_by_service, n),
                                 (self.server_spans_by_service, servers),
                                 (self.marked_by_service, marked)):
                    table[service] = table.get(service, 0) + k

    def reject(self):
        with self.lock:
            self.rejected += 1

    def snapshot(self):
        with self.lock:
            return {
                "requests": self.requests,
                "bytes": self.bytes,
                "spans": self.spans,
                "spans_by_service": dict(sorted(self.spans_by_service.items())),
                **({
                    "server_spans_by_service": dict(sorted(self.server_spans_by_service.items())),
                    "marked_by_service": dict(sorted(self.marked_by_service.items())),
                } if MARK else {}),
                "undecodable": self.undecodable,
                "rejected": self.rejected,
                "uptime_s": round(time.monotonic() - self.started, 3),
            }


# ---- just enough protobuf --------------------------------------------------------------
#
# ExportTraceServiceRequest { repeated ResourceSpans resource_spans = 1; }
# ResourceSpans { Resource resource = 1; repeated ScopeSpans scope_spans = 2; }
# Resource      { repeated KeyValue attributes = 1; }
# KeyValue      { string key = 1; AnyValue value = 2; }
# AnyValue      { string string_value = 1; ... }
# ScopeSpans    { InstrumentationScope scope = 1; repeated Span spans = 2; }
# Span          { ... SpanKind kind = 6; repeated KeyValue attributes = 9; ... }
#               (kind 2: server); AnyValue { ... bool bool_value = 2; ... }

MARK = None  # --mark: the attribute key (bytes) whose true value marks a server span


class Malformed(Exception):
    pass


def varint(buf, pos, end):
    result = shift = 0
    while True:
        if pos >= end or shift > 63:
            raise Malformed("truncated varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, pos
        shift += 7


def fields(buf, start, end):
    """(field number, wire type, value start, value end) for each field in buf[start:end];
    for varint and fixed fields the value bounds are those of the encoded bytes."""
    pos = start
    while pos < end:
        key, pos = varint(buf, pos, end)
        number, wire = key >> 3, key & 7
        if wire == 0:
            _, after = varint(buf, pos, end)
        elif wire == 1:
            after = pos + 8
        elif wire == 2:
            length, pos = varint(buf, pos, end)
            after = pos + length
        elif wire == 5:
            after = pos + 4
        else:
            raise Malformed(f"wire type {wire}")
        if after > end:
            raise Malformed("field runs past its message")
        yield number, wire, pos, after
        pos = after


def key_value(buf, start, end):
    """(key bytes, (start, end) of the AnyValue or None) of one KeyValue."""
    key = value = None
    for number, wire, s, e in fields(buf, start, end):
        if number == 1 and wire == 2:
            key = bytes(buf[s:e])
        elif number == 2 and wire == 2:
            value = (s, e)
    return key, value


def service_name(buf, start, end):
    for number, wire, s, e in fields(buf, start, end):  # Resource
        if number != 1 or wire != 2:
            continue
        key, value = key_value(buf, s, e)
        if key == b"service.name" and value:
            for n3, w3, s3, e3 in fields(buf, *value):  # AnyValue
                if n3 == 1 and w3 == 2:
                    return bytes(buf[s3:e3]).decode("utf-8", "replace")
    return "unknown"


def server_and_marked(buf, start, end):
    """(is a server span, is marked) for one Span."""
    server = marked = False
    for number, wire, s, e in fields(buf, start, end):
        if number == 6 and wire == 0:
            server = varint(buf, s, e)[0] == 2
        elif number == 9 and wire == 2 and not marked:
            key, value = key_value(buf, s, e)
            if key == MARK and value:
                marked = any(n3 == 2 and w3 == 0 and varint(buf, s3, e3)[0] == 1
                             for n3, w3, s3, e3 in fields(buf, *value))  # AnyValue
    return server, marked


def count_spans(body):
    """{service.name: (spans, server spans, marked server spans)} of one
    ExportTraceServiceRequest (the last two only with --mark), None if it is not one."""
    buf = memoryview(body)
    counts = {}
    try:
        for number, wire, s, e in fields(buf, 0, len(buf)):
            if number != 1 or wire != 2:
                continue
            service, spans, servers, marked = "unknown", 0, 0, 0
            for n2, w2, s2, e2 in fields(buf, s, e):  # ResourceSpans
                if n2 == 1 and w2 == 2:
                    service = service_name(buf, s2, e2)
                elif n2 == 2 and w2 == 2:
                    for n3, w3, s3, e3 in fields(buf, s2, e2):  # ScopeSpans
                        if n3 == 2 and w3 == 2:
                            spans += 1
                            if MARK:
                                is_server, is_marked = server_and_marked(buf, s3, e3)
                                servers += is_server
                                marked += is_server and is_marked
            n, sv, mk = counts.get(service, (0, 0, 0))
            counts[service] = (n + spans, sv + servers, mk + marked)
    except Malformed:
        return None
    return counts


# ---- HTTP --------------------------------------------------------------------------------


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as exporters expect
    server_version = "otlp-sink"
    counts = None  # set in main

    def log_message(self, fmt, *args):  # no line per request
        pass

    def reply(self, status, body=b"", content_type="text/plain; charset=utf-8"):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body and self.command != "HEAD":
            self.wfile.write(body)

    def read_body(self):
        """The whole request body (Content-Length or chunked), None if neither is given."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            parts, size = [], 0
            while True:
                line = self.rfile.readline(1024)
                chunk = int(line.split(b";", 1)[0].strip() or b"0", 16)
                if chunk == 0:
                    while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(parts)
                size += chunk
                if size > MAX_BODY:
                    raise ValueError("body too large")
                parts.append(self.rfile.read(chunk))
                self.rfile.readline(8)  # the CRLF after the chunk
        length = self.headers.get("Content-Length")
        if length is None:
            return None
        n = int(length)
        if n < 0 or n > MAX_BODY:
            raise ValueError("bad Content-Length")
        body = self.rfile.read(n)
        if len(body) != n:
            raise ValueError("body shorter than Content-Length")
        return body

    def do_POST(self):
        path = self.path.split("?", 1)[0]
        if path != TRACES_PATH:
            self.counts.reject()
            self.drain()
            self.reply(404, b"not found\n")
            return
        try:
            body = self.read_body()
        except ValueError as e:
            self.counts.reject()
            self.close_connection = True
            self.reply(400, f"{e}\n".encode())
            return
        if body is None:
            self.counts.reject()
            self.close_connection = True
            self.reply(411, b"length required\n")
            return
        content_type = self.headers.get("Content-Type", "").split(";", 1)[0].strip().lower()
        if content_type != "application/x-protobuf":
            self.counts.reject()
            self.reply(415, b"only application/x-protobuf\n")
            return
        self.counts.add(len(body), count_spans(body))
        self.reply(200, content_type="application/x-protobuf")

    def do_GET(self):
        path = self.path.split("?", 1)[0]
        if path == "/stats":
            body = (json.dumps(self.counts.snapshot()) + "\n").encode()
            self.reply(200, body, "application/json")
        elif path == "/healthz":
            self.reply(200, b"ok\n")
        else:
            self.counts.reject()
            self.reply(404, b"not found\n")

    def other(self):
        self.counts.reject()
        self.drain()
        self.reply(405, b"method not allowed\n")

    do_PUT = do_DELETE = do_PATCH = other

    def drain(self):
        try:
            if self.read_body() is None:
                return
        except ValueError:
            self.close_connection = True


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0: a free one)")
    parser.add_argument("--port-file", help="write the port here once listening")
    parser.add_argument("--mark", help="count server spans whose attribute MARK is true")
    args = parser.parse_args()
    global MARK
    MARK = args.mark.encode() if args.mark else None

    counts = Counts()
    Handler.counts = counts
    server = Server(("127.0.0.1", args.port), Handler)
    port = server.server_address[1]

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True)
    thread.start()

    if args.port_file:
        tmp = f"{args.port_file}.tmp{os.getpid()}"
        with open(tmp, "w") as f:
            f.write(f"{port}\n")
        os.replace(tmp, args.port_file)
    print(f"otlp-sink: listening on http://127.0.0.1:{port}{TRACES_PATH}", file=sys.stderr, flush=True)

    while not stop.wait(1.0):
        pass
    server.shutdown()
    server.server_close()
    print(json.dumps(counts.snapshot()), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
