"""A stand-in for ESI: answers every GET after a delay (default 100 ms). Test bed only.

    python3 esi_stub.py [--port 8090] [--delay 0.1] [--port-file FILE]

Listens on 127.0.0.1 only (--port 0 picks a free port), prints the port (and writes it to
--port-file), then serves until killed. One thread per request, so slow answers overlap.
"""
import argparse
import http.server
import time


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument("--delay", type=float, default=0.1, help="seconds before each answer")
    parser.add_argument("--port-file")
    opts = parser.parse_args()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's naming)
            time.sleep(opts.delay)
            body = b'{"ok": true}'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):  # quiet
            pass

    class Server(http.server.ThreadingHTTPServer):
        daemon_threads = True
        request_queue_size = 512  # many workers connect at once in a benchmark

    server = Server(("127.0.0.1", opts.port), Handler)
    port = server.server_address[1]
    if opts.port_file:
        with open(opts.port_file, "w", encoding="ascii") as handle:
            handle.write(f"{port}\n")
    print(port, flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
