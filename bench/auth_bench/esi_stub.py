"""An offline ESI for the auth_tasks bench: the seven endpoints Auth 5.5's eveonline provider uses.

Run inside the Auth container (stdlib only) by driver.py::

    python esi_stub.py --port 8091 [--min-ms 100] [--max-ms 300]

Every request waits a random 100 to 300 ms (uniform), then answers with an ESI-shaped JSON payload
(field names and types of ESI's own responses) and ESI's headers (Date, Last-Modified, Expires, ETag,
Cache-Control). The bench's universe is arithmetic, so no state is needed: character 90000001 + i is
in corporation 98000001 + i // 10, corporation 98000001 + c in alliance 99000001 + c // 5
(CHARACTERS_PER_CORP, CORPS_PER_ALLIANCE; driver.py loads the same layout into Auth's database).

Date and Last-Modified carry the run's marker (POST /_bench/marker {"marker": epoch seconds}), which Auth
writes into last_updated_affiliations, last_updated_other and last_updated: the driver counts the rows
with the marker to see which tasks had their effect. GET /_bench/stats returns the requests since the
last marker (count, first and last arrival, epoch seconds).
"""

import argparse
import email.utils
import hashlib
import json
import random
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

CHAR_BASE, CORP_BASE, ALLIANCE_BASE = 90000001, 98000001, 99000001
CHARACTERS_PER_CORP, CORPS_PER_ALLIANCE = 10, 5


def corp_of(character_id):
    return CORP_BASE + (character_id - CHAR_BASE) // CHARACTERS_PER_CORP


def alliance_of(corporation_id):
    return ALLIANCE_BASE + (corporation_id - CORP_BASE) // CORPS_PER_ALLIANCE


def character(character_id):
    corp = corp_of(character_id)
    return {"alliance_id": alliance_of(corp), "birthday": "2015-03-24T11:37:00Z", "bloodline_id": 3,
            "corporation_id": corp, "description": "Bench pilot %d, flying offline." % character_id,
            "gender": "male", "name": "Bench Pilot %d" % character_id, "race_id": 2,
            "security_status": -0.37, "title": ""}


def corporation(corporation_id):
    index = corporation_id - CORP_BASE
    return {"alliance_id": alliance_of(corporation_id), "ceo_id": CHAR_BASE + index * CHARACTERS_PER_CORP,
            "creator_id": CHAR_BASE + index * CHARACTERS_PER_CORP, "date_founded": "2016-06-26T21:00:00Z",
            "description": "Bench corporation %d." % index, "home_station_id": 60003760,
            "member_count": CHARACTERS_PER_CORP, "name": "Bench Corp %d" % index, "shares": 1000,
            "tax_rate": 0.1, "ticker": "BC%d" % (index % 1000), "url": "http://", "war_eligible": True}


def alliance(alliance_id):
    index = alliance_id - ALLIANCE_BASE
    executor = CORP_BASE + index * CORPS_PER_ALLIANCE
    return {"creator_corporation_id": executor, "creator_id": CHAR_BASE + index * CORPS_PER_ALLIANCE * CHARACTERS_PER_CORP,
            "date_founded": "2016-06-26T21:00:00Z", "executor_corporation_id": executor,
            "name": "Bench Alliance %d" % index, "ticker": "BA%d" % (index % 1000)}


def alliance_corporations(alliance_id):
    first = CORP_BASE + (alliance_id - ALLIANCE_BASE) * CORPS_PER_ALLIANCE
    return list(range(first, first + CORPS_PER_ALLIANCE))


def affiliations(ids):
    return [{"character_id": i, "corporation_id": corp_of(i), "alliance_id": alliance_of(corp_of(i))} for i in ids]


def names(ids):
    out = []
    for i in ids:
        kind = "character" if i < CORP_BASE else "corporation" if i < ALLIANCE_BASE else "alliance"
        out.append({"category": kind, "id": i, "name": "Bench %s %d" % (kind, i)})
    return out


FACTIONS = [{"corporation_id": 1000035, "description": "The Caldari State.", "faction_id": 500001,
             "is_unique": True, "militia_corporation_id": 1000180, "name": "Caldari State", "size_factor": 5.0,
             "solar_system_id": 30000145, "station_count": 1503, "station_system_count": 503}]

ROUTES = [  # method, path pattern, handler(match, body) -> payload
    ("GET", re.compile(r"^/characters/(\d+)/$"), lambda m, b: character(int(m.group(1)))),
    ("POST", re.compile(r"^/characters/affiliation/$"), lambda m, b: affiliations(b)),
    ("GET", re.compile(r"^/corporations/(\d+)/$"), lambda m, b: corporation(int(m.group(1)))),
    ("GET", re.compile(r"^/alliances/(\d+)/$"), lambda m, b: alliance(int(m.group(1)))),
    ("GET", re.compile(r"^/alliances/(\d+)/corporations/$"), lambda m, b: alliance_corporations(int(m.group(1)))),
    ("GET", re.compile(r"^/universe/factions/$"), lambda m, b: FACTIONS),
    ("POST", re.compile(r"^/universe/names/$"), lambda m, b: names(b)),
]


class State:
    lock = threading.Lock()
    marker = time.time()
    requests = 0
    first = None
    last = None
    min_s, max_s = 0.1, 0.3


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as ESI and httpx use it

    def log_message(self, *args):  # quiet
        return

    def date_time_string(self, timestamp=None):
        """The Date header send_response writes: the run's marker on ESI answers (ESI's Date is the
        response time; Auth stores it as last_updated_affiliations)."""
        return getattr(self, "stamp", None) or super().date_time_string(timestamp)

    def _send(self, status, payload, headers=()):
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        for key, value in headers:
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)

    def _handle(self, method):
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        path = self.path.split("?", 1)[0]
        if path == "/_bench/marker" and method == "POST":
            with State.lock:
                State.marker = int(json.loads(raw)["marker"])
                State.requests, State.first, State.last = 0, None, None
            return self._send(200, {"marker": State.marker})
        if path == "/_bench/stats":
            with State.lock:
                return self._send(200, {"marker": State.marker, "requests": State.requests,
                                        "first": State.first, "last": State.last})
        arrived = time.time()
        with State.lock:
            State.requests += 1
            State.first = arrived if State.first is None else State.first
            State.last = arrived
            marker = State.marker
        time.sleep(random.uniform(State.min_s, State.max_s))
        for route_method, pattern, handler in ROUTES:
            match = pattern.match(path)
            if match and route_method == method:
                payload = handler(match, json.loads(raw) if raw else None)
                stamp = self.stamp = email.utils.formatdate(marker, usegmt=True)
                etag = '"%s"' % hashlib.md5(("%s%s" % (path, marker)).encode()).hexdigest()
                return self._send(200, payload, [
                    ("Last-Modified", stamp), ("ETag", etag), ("Cache-Control", "public"),
                    ("Expires", email.utils.formatdate(marker + 3600, usegmt=True)),
                    ("X-ESI-Request-ID", "bench")])
        return self._send(404, {"error": "not found: %s %s" % (method, path)})

    def do_GET(self):  # noqa: N802 (http.server's names)
        self._handle("GET")

    def do_POST(self):  # noqa: N802
        self._handle("POST")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--min-ms", type=float, default=100)
    parser.add_argument("--max-ms", type=float, default=300)
    opts = parser.parse_args()
    State.min_s, State.max_s = opts.min_ms / 1000, opts.max_ms / 1000
    server = ThreadingHTTPServer(("127.0.0.1", opts.port), Handler)
    server.daemon_threads = True
    server.request_queue_size = 128
    server.serve_forever()


if __name__ == "__main__":
    main()
