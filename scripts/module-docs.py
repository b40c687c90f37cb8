"""Write worker_flags' DOCUMENTATION suboptions of ``workers`` from the option table
(plugins/module_utils/worker_options.py, WORKER_OPTIONS), so the docs cannot drift from the table.

    python scripts/module-docs.py          # rewrite the block between the markers
    python scripts/module-docs.py --check  # exit 1 when the block is out of date (make lint)

Then run scripts/role-docs.py, which carries the module docs into docs/reference.md.
"""

import pathlib
import sys

import yaml

ROOT = pathlib.Path(__file__).resolve().parent.parent
MODULE = ROOT / "plugins" / "modules" / "worker_flags.py"
BEGIN = "      # BEGIN generated from worker_options.WORKER_OPTIONS by scripts/module-docs.py: edit the table\n"
END = "      # END generated\n"
INDENT = " " * 6


class _Dumper(yaml.SafeDumper):
    """Sequences indented under their key, as in the rest of the DOCUMENTATION."""

    def increase_indent(self, flow=False, indentless=False):
        return super().increase_indent(flow, False)


def suboptions_yaml(doc):
    """The suboptions block, indented under C(workers.suboptions)."""
    text = yaml.dump(doc, Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=110, allow_unicode=True)
    return "".join(INDENT + line if line.strip() else line for line in text.splitlines(True))


def render(source, doc):
    head, rest = source.split(BEGIN, 1)
    _old, tail = rest.split(END, 1)
    return head + BEGIN + suboptions_yaml(doc) + END + tail


def main(argv):
    sys.path.insert(0, str(ROOT / ".cache" / "collections"))
    from ansible_collections.authops.celery_tuning.plugins.module_utils.worker_options import (
        worker_suboptions_doc,
    )

    source = MODULE.read_text()
    new = render(source, worker_suboptions_doc())
    if "--check" in argv:
        if new != source:
            print("%s: the workers suboptions differ from WORKER_OPTIONS; run scripts/module-docs.py"
                  % MODULE.relative_to(ROOT))
            return 1
        return 0
    MODULE.write_text(new)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
