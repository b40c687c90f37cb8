"""Check that every role's meta/argument_specs.yml mirrors defaults/main.yml key for key and value
for value, so the documented interface cannot drift from the real one. Exit 1 listing mismatches."""

import pathlib
import sys

import yaml

ROOT = pathlib.Path(__file__).resolve().parent.parent


def main():
    problems = []
    for role in sorted((ROOT / "roles").iterdir()):
        defaults_file = role / "defaults" / "main.yml"
        specs_file = role / "meta" / "argument_specs.yml"
        if not specs_file.exists():
            problems.append("%s: meta/argument_specs.yml is missing" % role.name)
            continue
        defaults = yaml.safe_load(defaults_file.read_text()) if defaults_file.exists() else {}
        defaults = defaults or {}
        options = yaml.safe_load(specs_file.read_text())["argument_specs"]["main"].get("options", {})
        for name in sorted(set(defaults) - set(options)):
            problems.append("%s: %s is in defaults/main.yml but not in argument_specs" % (role.name, name))
        for name, spec in sorted(options.items()):
            if not name.startswith(role.name.lstrip("_") + "_"):
                problems.append("%s: %s does not carry the role's prefix" % (role.name, name))
            if "description" not in spec:
                problems.append("%s: %s has no description" % (role.name, name))
            if name in defaults:
                if "default" not in spec:
                    problems.append("%s: %s has a default in defaults/main.yml but none in argument_specs" % (role.name, name))
                elif spec["default"] != defaults[name]:
                    problems.append("%s: %s default differs: specs %r, defaults %r" % (role.name, name, spec["default"], defaults[name]))
            elif "default" in spec:
                problems.append("%s: %s has a default in argument_specs but not in defaults/main.yml" % (role.name, name))
    for line in problems:
        print(line)
    print("argument_specs: %d role(s) checked, %d problem(s)" % (len(list((ROOT / "roles").iterdir())), len(problems)))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
