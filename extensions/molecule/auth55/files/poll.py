"""Poll a URL every INTERVAL s until STOPFILE exists; print a JSON summary of the failures.

Usage: python3 poll.py URL STOPFILE [INTERVAL]. A poll fails on any error or a status other than
200/302. longest_outage_s is the time from the first failing poll of a streak to the first good one.
"""
import json
import os
import sys
import time
import urllib.error
import urllib.request


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def ok(opener, url):
    try:
        with opener.open(url, timeout=1) as response:
            return response.status in (200, 302)
    except urllib.error.HTTPError as exc:
        return exc.code == 302
    except Exception:  # pylint: disable=broad-except
        return False


def main():
    url, stopfile = sys.argv[1], sys.argv[2]
    interval = float(sys.argv[3]) if len(sys.argv) > 3 else 0.2
    opener = urllib.request.build_opener(NoRedirect)
    polls = failures = 0
    down_since = None
    longest = 0.0
    while not os.path.exists(stopfile):
        now = time.monotonic()
        polls += 1
        if ok(opener, url):
            if down_since is not None:
                longest = max(longest, now - down_since)
                down_since = None
        else:
            failures += 1
            if down_since is None:
                down_since = now
        time.sleep(interval)
    if down_since is not None:
        longest = max(longest, time.monotonic() - down_since)
    print(json.dumps(dict(polls=polls, failures=failures, longest_outage_s=round(longest, 2))))


if __name__ == "__main__":
    main()
