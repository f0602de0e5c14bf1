#!/usr/bin/env python3
"""Validate Argo Workflow / WorkflowTemplate YAML files the way Argo does.

1. Schema: the document must load into hera's models of Argo's published
   OpenAPI schema (hera-workflows, generated from argo-workflows 4.x), and
   dumping the model back must give the same document: a field the schema
   does not know would be dropped, so it fails (like `argo lint --strict`).
2. DAG rules Argo enforces: names (workflow and templates <= 63 characters,
   templates and tasks matching [a-zA-Z0-9][-a-zA-Z0-9]*, tasks <= 128),
   unique template names and task names per DAG, every `template` reference
   defined, every dependency defined, no cycles, no mixing of `depends` and
   `dependencies`, at least one task per DAG, at most 200 templates and 200
   tasks per DAG, podGC strategy one of the four, entrypoint and onExit
   defined.

3. Argo's published JSON schema (argo-workflows v4.1.2), with every object
   closed (`additionalProperties: false` where the schema lists properties),
   as `argo lint --strict` refuses unknown fields. No package ships that
   schema: it is read from $ARGO_SCHEMA, else from ../shared/realworld/schemas/
   next to the workspace (never copied into this repository). Missing, the
   check fails.

Usage: argo_validate.py FILE...   (exit 0 when all pass; errors on stderr)
"""
import copy
import json
import os
import re
import sys

import yaml
from hera.workflows.models import Workflow, WorkflowTemplate

NAME = re.compile(r"^[a-zA-Z0-9][-a-zA-Z0-9]*$")
GC = {"OnPodCompletion", "OnPodSuccess", "OnWorkflowCompletion", "OnWorkflowSuccess"}


def diff(a, b, path="$"):
    if isinstance(a, dict) and isinstance(b, dict):
        for k in a:
            if k not in b:
                yield f"{path}.{k}: not in Argo's schema"
            else:
                yield from diff(a[k], b[k], f"{path}.{k}")
        for k in b:
            if k not in a:
                yield f"{path}.{k}: added by the schema"
    elif isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            yield f"{path}: length {len(a)} != {len(b)}"
        for i, (x, y) in enumerate(zip(a, b)):
            yield from diff(x, y, f"{path}[{i}]")
    elif a != b and not (isinstance(a, (int, float)) and str(a) == str(b)):
        yield f"{path}: {a!r} != {b!r}"


_VALIDATOR = None


def published_schema_validator():
    global _VALIDATOR
    if _VALIDATOR is None:
        import jsonschema

        here = os.path.dirname(os.path.abspath(__file__))
        rel = os.path.join("shared", "realworld", "schemas", "argo-workflows-v4.1.2-schema.json")
        # ../shared next to the workspace (or next to a directory above it: worktrees).
        d = os.path.normpath(os.path.join(here, "..", "..", ".."))
        default = os.path.join(d, rel)
        while not os.path.exists(default) and os.path.dirname(d) != d:
            d = os.path.dirname(d)
            default = os.path.join(d, rel)
        path = os.environ.get("ARGO_SCHEMA") or default
        if not os.path.exists(path):
            raise SystemExit(f"argo_validate: Argo's published schema not found at {path} (set ARGO_SCHEMA)")
        with open(path) as f:
            schema = json.load(f)
        defs = copy.deepcopy(schema["definitions"])
        for d in defs.values():
            if isinstance(d, dict) and "properties" in d and "additionalProperties" not in d:
                d["additionalProperties"] = False
        _VALIDATOR = (jsonschema.Draft7Validator, defs)
    return _VALIDATOR


def published_schema_errors(doc, kind):
    cls, defs = published_schema_validator()
    v = cls({"$ref": f"#/definitions/io.argoproj.workflow.v1alpha1.{kind}", "definitions": defs})
    out = []
    for e in sorted(v.iter_errors(doc), key=lambda e: list(e.absolute_path)):
        path = "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in e.absolute_path)
        out.append(f"published schema: {path}: {e.message[:200]}")
        if len(out) >= 20:
            break
    return out


def check(doc):
    errors = []
    kind = doc.get("kind")
    model = {"Workflow": Workflow, "WorkflowTemplate": WorkflowTemplate}.get(kind)
    if model is None:
        return [f"kind {kind!r} is not Workflow or WorkflowTemplate"]
    if doc.get("apiVersion") != "argoproj.io/v1alpha1":
        errors.append(f"apiVersion {doc.get('apiVersion')!r}")
    try:
        m = model.model_validate(doc)
    except Exception as e:  # pydantic.ValidationError
        return [f"schema: {e}"]
    back = m.model_dump(by_alias=True, exclude_none=True, mode="json")
    errors += [f"schema: {d}" for d in diff(doc, back)]
    errors += published_schema_errors(doc, kind)

    meta = doc.get("metadata", {})
    name = meta.get("name") or meta.get("generateName", "")
    limit = 63 if "name" in meta else 58
    if not name or len(name) > limit or not re.match(r"^[a-z0-9]([-a-z0-9]*[a-z0-9-])?$", name):
        errors.append(f"metadata name {name!r} invalid (<= {limit})")
    spec = doc.get("spec", {})
    templates = spec.get("templates", [])
    if len(templates) > 200:
        errors.append(f"{len(templates)} templates > 200")
    tnames = [t.get("name", "") for t in templates]
    if len(set(tnames)) != len(tnames):
        errors.append("duplicate template names")
    for t in tnames:
        if not NAME.match(t) or len(t) > 63:
            errors.append(f"template name {t!r} invalid")
    defined = set(tnames)
    for ref in ("entrypoint", "onExit"):
        if ref in spec and spec[ref] not in defined:
            errors.append(f"spec.{ref} {spec[ref]!r} is not a template")
    if "entrypoint" not in spec:
        errors.append("no entrypoint")
    gc = spec.get("podGC", {}).get("strategy")
    if gc is not None and gc not in GC:
        errors.append(f"podGC.strategy {gc!r}")
    for t in templates:
        dag = t.get("dag")
        if dag is None:
            continue
        tasks = dag.get("tasks", [])
        where = f"template {t['name']}"
        if not tasks:
            errors.append(f"{where}: a DAG needs at least one task")
        if len(tasks) > 200:
            errors.append(f"{where}: {len(tasks)} tasks > 200")
        names = [x.get("name", "") for x in tasks]
        if len(set(names)) != len(names):
            errors.append(f"{where}: duplicate task names")
        for n in names:
            if not NAME.match(n) or len(n) > 128:
                errors.append(f"{where}: task name {n!r} invalid")
        has_depends = any("depends" in x for x in tasks)
        has_deps = any("dependencies" in x for x in tasks)
        if has_depends and has_deps:
            errors.append(f"{where}: mixes depends and dependencies")
        graph = {}
        for x in tasks:
            if x.get("template") not in defined:
                errors.append(f"{where}: task {x.get('name')} uses undefined template {x.get('template')!r}")
            deps = x.get("dependencies", [])
            for d in deps:
                if d not in names:
                    errors.append(f"{where}: task {x['name']} depends on undefined {d!r}")
            graph[x["name"]] = deps
        # cycle check (iterative DFS)
        state = {}
        for start in graph:
            if state.get(start):
                continue
            stack = [(start, iter(graph[start]))]
            state[start] = 1
            while stack:
                node, it = stack[-1]
                nxt = next(it, None)
                if nxt is None:
                    state[node] = 2
                    stack.pop()
                elif nxt in graph:
                    s = state.get(nxt, 0)
                    if s == 1:
                        errors.append(f"{where}: cycle through {nxt}")
                        stack = []
                        break
                    if s == 0:
                        state[nxt] = 1
                        stack.append((nxt, iter(graph[nxt])))
    return errors


def main(paths):
    failed = False
    for p in paths:
        with open(p) as f:
            docs = [d for d in yaml.safe_load_all(f) if d is not None]
        if not docs:
            print(f"{p}: no document", file=sys.stderr)
            failed = True
        for i, doc in enumerate(docs):
            for e in check(doc):
                print(f"{p}[{i}]: {e}", file=sys.stderr)
                failed = True
    if not failed:
        print(f"ok: {len(paths)} file(s)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
