# A loopback HTTP server for the app's tests: serves the files of a
# directory at about 1 MiB/s (a download slow enough to be cancelled).
# Prints its port on stdout, then serves until killed.
#   python3 slowhttp.py DIR
import http.server, os, sys, time

root = sys.argv[1]


class Slow(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        p = os.path.join(root, os.path.basename(self.path))
        if not os.path.isfile(p):
            self.send_error(404)
            return
        size = os.path.getsize(p)
        self.send_response(200)
        self.send_header("Content-Length", str(size))
        self.end_headers()
        with open(p, "rb") as f:
            try:
                while True:
                    b = f.read(65536)
                    if not b:
                        break
                    self.wfile.write(b)
                    time.sleep(0.06)
            except OSError:
                pass

    def log_message(self, *a):
        pass


s = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Slow)
print(s.server_address[1], flush=True)
s.serve_forever()
