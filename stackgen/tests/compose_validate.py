#!/usr/bin/env python3
"""Check YAML files against JSON Schemas (the compose-spec schema, docker/cli's
compose v3.8 schema) with the `jsonschema` package, reading each file with
PyYAML, a YAML parser independent of stackgen's.

usage: compose_validate.py --schema SCHEMA [--schema SCHEMA ...] FILE...

Prints one line per invalid file and schema error, then
`outputs=N valid=N invalid=N`; exits 1 when a file is invalid or unreadable.
"""
import argparse
import json
import sys

import jsonschema
import yaml


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--schema", action="append", required=True)
    ap.add_argument("files", nargs="+")
    args = ap.parse_args()
    validators = []
    for path in args.schema:
        with open(path, encoding="utf-8") as f:
            schema = json.load(f)
        # compose-spec names draft-07 as `https://json-schema.org/draft-07/schema`,
        # a spelling jsonschema does not know: default to draft-07.
        cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft7Validator)
        cls.check_schema(schema)
        validators.append((path, cls(schema)))
    valid = invalid = 0
    for path in args.files:
        try:
            with open(path, encoding="utf-8") as f:
                doc = yaml.safe_load(f)
        except (OSError, yaml.YAMLError) as e:
            print(f"{path}: unreadable: {e}".replace("\n", " "))
            invalid += 1
            continue
        errors = []
        for schema_path, v in validators:
            for e in v.iter_errors(doc):
                where = "/".join(str(p) for p in e.absolute_path)
                errors.append(f"{path}: {schema_path}: {where}: {e.message}")
        if errors:
            invalid += 1
            for line in errors:
                print(line[:400])
        else:
            valid += 1
    print(f"outputs={valid + invalid} valid={valid} invalid={invalid}")
    return 1 if invalid else 0


if __name__ == "__main__":
    sys.exit(main())
