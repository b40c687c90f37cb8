# Managed by authops.celery_tuning (role supervisor). GPL-3.0-or-later.
"""Check a supervisord configuration the way supervisord itself will read it.

Used as the ``validate:`` command of the roles that write supervisor files, so a broken
candidate never replaces a working file:

    python3 supervisor_check_config.py --config /etc/supervisor/supervisord.conf
    python3 supervisor_check_config.py --config /etc/supervisor/supervisord.conf \
        --replace /etc/supervisor/conf.d/myauth.conf=/tmp/candidate

``--replace LIVE=CANDIDATE`` checks the configuration as it will be once CANDIDATE is
installed at LIVE (LIVE may not exist yet). ``--main-candidate FILE`` checks FILE as the
main configuration. ``--expect-sections a,b`` (with one ``--replace``) also requires the candidate to
define exactly these sections, so a value that smuggled in a ``[program:x]`` is refused. Besides supervisor's own parser (unknown options, bad values, unknown
users), it refuses a program, group or listener defined in more than one file: supervisor merges such sections
silently, so two files that both define ``[program:worker]`` give one surprising program.
Exit 0 when the configuration is good, 1 with the reasons on stderr otherwise.
"""

import argparse
import configparser
import fnmatch
import glob
import os
import sys
import tempfile


OWNED_KINDS = ("program", "group", "eventlistener", "fcgi-program")


def fail(msg):
    sys.stderr.write("supervisor-check-config: %s\n" % msg)
    sys.exit(1)


def read_sections(path):
    parser = configparser.RawConfigParser(interpolation=None, strict=False, inline_comment_prefixes=(";", "#"))
    try:
        with open(path, encoding="utf-8") as handle:
            parser.read_file(handle, source=path)
    except (OSError, configparser.Error) as exc:
        fail("cannot parse %s: %s" % (path, exc))
    return parser


def include_files(main_path, parser, replacements):
    """The files supervisord will include, with replacements applied."""
    if not parser.has_section("include") or not parser.has_option("include", "files"):
        return []
    here = os.path.dirname(os.path.abspath(main_path))
    found = []
    for pattern in parser.get("include", "files").split():
        pattern = os.path.join(here, pattern.replace("%(here)s", here))
        for path in sorted(glob.glob(pattern)):
            path = os.path.abspath(path)
            found.append(replacements.get(path, path))
        for live, candidate in replacements.items():
            if fnmatch.fnmatch(live, pattern) and not os.path.exists(live) and candidate not in found:
                found.append(candidate)
    # A file removed by the change (``LIVE=``) is left out.
    return [path for path in found if path]


def check(main_path, replacements):
    main = read_sections(main_path)
    files = include_files(main_path, main, replacements)
    owners = {}
    for section in main.sections():
        owners.setdefault(section, []).append(main_path)
    for path in files:
        for section in read_sections(path).sections():
            owners.setdefault(section, []).append(path)
    # [supervisord] may be extended from an included file (Auth's own supervisor.conf sets its
    # environment there); a process, group or listener must be defined exactly once.
    dupes = ["[%s] in %s" % (name, " and ".join(paths)) for name, paths in sorted(owners.items())
             if len(paths) > 1 and name.split(":", 1)[0] in OWNED_KINDS]
    if dupes:
        fail("sections defined more than once (supervisor would merge them silently): " + "; ".join(dupes))

    try:
        from supervisor.options import ServerOptions
    except ImportError:
        fail("the supervisor package is not importable by %s; run this check with supervisor's Python" % sys.executable)

    # Let supervisor parse exactly this set of files: a copy of the main file whose [include]
    # names the resolved files explicitly.
    main.remove_section("include")
    with tempfile.TemporaryDirectory(prefix="supervisor-check-") as tmp:
        combined = os.path.join(tmp, "supervisord.conf")
        with open(combined, "w", encoding="utf-8") as handle:
            main.write(handle)
            if files:
                handle.write("[include]\nfiles = %s\n" % " ".join(files))
        options = ServerOptions()
        options.configfile = combined
        try:
            options.process_config(do_usage=False)
        except ValueError as exc:
            fail("supervisor rejects the configuration: %s" % exc)
    return files


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--config", help="the main supervisord.conf (the role passes its own; not with --main-candidate)")
    parser.add_argument("--main-candidate", help="check this file as the main configuration")
    parser.add_argument("--replace", action="append", default=[], metavar="LIVE=CANDIDATE",
                        help="check as if CANDIDATE were installed at LIVE (empty CANDIDATE: LIVE removed)")
    parser.add_argument("--expect-sections", help="comma-separated sections the --replace candidate must define, no others")
    parser.add_argument("--same-effect", nargs=2, metavar=("OLD", "NEW"),
                        help="exit 0 when both files configure supervisord the same (comments and layout aside), 3 otherwise")
    args = parser.parse_args()
    if args.same_effect:
        old, new = (read_sections(path) for path in args.same_effect)
        same = all(dict(old.items(s)) == dict(new.items(s)) for s in old.sections()) and \
            set(old.sections()) == set(new.sections())
        print("supervisor-check-config: %s" % ("same effect" if same else "the settings differ"))
        sys.exit(0 if same else 3)
    if not args.config and not args.main_candidate:
        fail("--config (the main supervisord.conf) is needed, unless --main-candidate is given")
    replacements = {}
    for item in args.replace:
        live, sep, candidate = item.partition("=")
        if not sep:
            fail("--replace takes LIVE=CANDIDATE, got %r" % item)
        replacements[os.path.abspath(live)] = os.path.abspath(candidate) if candidate else ""
    main_path = args.main_candidate or args.config
    if not os.path.exists(main_path):
        fail("%s does not exist" % main_path)
    if args.expect_sections is not None:
        candidates = [c for c in replacements.values() if c]
        if len(candidates) != 1:
            fail("--expect-sections needs exactly one --replace LIVE=CANDIDATE")
        expected = set(s for s in args.expect_sections.split(",") if s)
        found = set(read_sections(candidates[0]).sections())
        if found != expected:
            fail("the candidate defines %s; expected exactly %s (unexpected: %s; missing: %s)"
                 % (", ".join(sorted(found)) or "nothing", ", ".join(sorted(expected)),
                    ", ".join(sorted(found - expected)) or "none", ", ".join(sorted(expected - found)) or "none"))
    files = check(main_path, replacements)
    print("supervisor-check-config: OK (%s, %d included file(s))" % (main_path, len(files)))


if __name__ == "__main__":
    main()
