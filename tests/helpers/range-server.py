#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""A tiny HTTP/1.1 file server on 127.0.0.1 for the catalog tests: serves
ROOT with Range support (206 + Content-Range), logs every request as one
line "GET PATH RANGE" (RANGE '-' when none) to LOG, and can drop the
connection mid-body (--cut PATH:BYTES: the first full GET of PATH stops after
BYTES bytes, as a broken network would).  It binds port 0 and writes the port
it got to PORT_FILE (a FIFO the test reads: no polling)."""
import argparse
import http.server
import os
import re
import socketserver
import threading

ap = argparse.ArgumentParser()
ap.add_argument("--root", required=True)
ap.add_argument("--log", required=True)
ap.add_argument("--port-file", required=True)
ap.add_argument("--cut", action="append", default=[], help="PATH:BYTES")
args = ap.parse_args()

cuts = {}
for c in args.cut:
    path, n = c.rsplit(":", 1)
    cuts[path] = int(n)
lock = threading.Lock()
log = open(args.log, "a", buffering=1)


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *a):
        pass

    def do_GET(self):
        rng = self.headers.get("Range")
        with lock:
            log.write("GET %s %s\n" % (self.path, rng or "-"))
        rel = os.path.normpath(self.path.split("?", 1)[0]).lstrip("/")
        full = os.path.join(args.root, rel)
        if rel.startswith("..") or not os.path.isfile(full):
            body = b"not found\n"
            self.send_response(404)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        size = os.path.getsize(full)
        start = 0
        if rng:
            m = re.fullmatch(r"bytes=(\d+)-", rng)
            if not m:
                self.send_error(400)
                return
            start = int(m.group(1))
            if start >= size:
                self.send_response(416)
                self.send_header("Content-Range", "bytes */%d" % size)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", "bytes %d-%d/%d" % (start, size - 1, size))
        else:
            self.send_response(200)
        ctype = "text/html" if full.endswith(".html") else "application/octet-stream"
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(size - start))
        self.end_headers()
        limit = None
        with lock:
            if not rng and self.path in cuts:
                limit = cuts.pop(self.path)
        with open(full, "rb") as f:
            if limit is None:
                # zero-copy, so the server is not what a benchmark measures
                self.wfile.flush()
                self.connection.sendfile(f, offset=start, count=size - start)
                return
            f.seek(start)
            sent = 0
            while True:
                chunk = f.read(256 * 1024)
                if not chunk:
                    break
                if limit is not None and sent + len(chunk) > limit:
                    self.wfile.write(chunk[: limit - sent])
                    self.wfile.flush()
                    # a broken network: the connection goes, the body unfinished
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                self.wfile.write(chunk)
                sent += len(chunk)


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass  # a client that gives up mid-body (a refused download) is no error here


srv = Server(("127.0.0.1", 0), Handler)
with open(args.port_file, "w") as p:
    p.write("%d\n" % srv.server_address[1])
srv.serve_forever()
