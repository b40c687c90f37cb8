"""A stand-in for ESI: answers every GET after a fixed delay (default 100 ms).

    python esi_stub.py [--port 0] [--delay 0.1] [--port-file FILE]

Prints (and with --port-file writes) the port it listens on, then serves until killed.
"""

import argparse
import http.server
import sys
import time


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--delay", type=float, default=0.1)
    parser.add_argument("--port-file")
    opts = parser.parse_args()

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"

        def do_GET(self):  # noqa: N802 (http.server's naming)
            time.sleep(opts.delay)
            body = b'{"ok": true}'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    class Server(http.server.ThreadingHTTPServer):
        daemon_threads = True
        request_queue_size = 512  # a benchmark opens 50 connections at once

    server = Server(("127.0.0.1", opts.port), Handler)
    port = server.server_address[1]
    if opts.port_file:
        with open(opts.port_file, "w", encoding="ascii") as handle:
            handle.write(str(port))
    print(port, flush=True)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
