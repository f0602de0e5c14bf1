#!/usr/bin/env python3
"""Validate the Argo Events manifests of scripts/argo/events/ the way Argo Events reads them.

1. Schema: every EventSource and Sensor loads into hera's models of Argo
   Events' published OpenAPI schema (hera.events.models), and dumping the
   model back gives the same document: a field the schema does not know would
   be dropped, so it fails (unknown fields refused). The Workflow a Sensor's
   argoWorkflow trigger submits is opaque to that schema, so it is checked
   the same way against Argo Workflows' schema (hera.workflows.models).
2. References: each Sensor dependency names an EventSource and event that
   exist; trigger conditions and parameter sources name declared
   dependencies; each `dest` is an existing path of the submitted Workflow;
   the submitted Workflow references a WorkflowTemplate given on the command
   line, passes only parameters that template declares, and every parameter
   the template declares without a default is passed.
3. Routing: each fixture GitHub event (FIXTURES/*.json, the event body as
   the GitHub EventSource puts it on the bus, with its X-GitHub-Event and
   X-GitHub-Delivery headers copied into the body) is run through every
   Sensor's data filters with Argo Events' semantics (string values are
   unanchored Go regexps, `!=` negates, filters are ANDed, values ORed;
   bools compare parsed values), and the triggers that fire, with the
   parameters they pass, must equal FIXTURES/expected.json.

Usage: argo_events_validate.py --templates T.yaml... --fixtures DIR FILE...
Exit 0 and "ok: N file(s), M event(s)" when all pass; errors on stderr.
"""
import argparse
import json
import re
import sys
from pathlib import Path

import yaml
from hera.events.models import EventSource, Sensor
from hera.workflows.models import Workflow

API = "argoproj.io/v1alpha1"


def diff(a, b, path="$"):
    if isinstance(a, dict) and isinstance(b, dict):
        for k in a:
            if k not in b:
                yield f"{path}.{k}: not in the schema"
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


def roundtrip(model, doc, where):
    """Schema errors of doc (without apiVersion/kind, which hera leaves out)."""
    body = {k: v for k, v in doc.items() if k not in ("apiVersion", "kind")}
    try:
        back = model.model_validate(body).model_dump(by_alias=True, exclude_none=True, mode="json")
    except Exception as e:  # pydantic.ValidationError
        return [f"{where}: schema: {e}"]
    return [f"{where}: schema: {d}" for d in diff(body, back)]


def triggers_resources(sensor):
    for trig in sensor["spec"].get("triggers", []):
        tmpl = trig.get("template", {})
        wf = tmpl.get("argoWorkflow")
        if wf is not None:
            yield tmpl, wf


def check_sensor(doc, where):
    errors = []
    # The submitted resource is opaque to the Sensor schema: check it separately.
    stripped = json.loads(json.dumps(doc))
    for tmpl, wf in triggers_resources(stripped):
        wf.get("source", {}).pop("resource", None)
    errors += roundtrip(Sensor, stripped, where)
    for tmpl, wf in triggers_resources(doc):
        name = tmpl.get("name")
        res = wf.get("source", {}).get("resource")
        if not isinstance(res, dict):
            errors.append(f"{where}: trigger {name}: argoWorkflow.source.resource missing")
            continue
        if res.get("apiVersion") != API or res.get("kind") != "Workflow":
            errors.append(f"{where}: trigger {name}: resource is not an {API} Workflow")
        errors += roundtrip(Workflow, res, f"{where}: trigger {name}: workflow")
        if wf.get("operation") != "submit":
            errors.append(f"{where}: trigger {name}: operation {wf.get('operation')!r}, want submit")
    return errors


def lookup(data, path):
    """A gjson-style dotted path (the subset the Sensors use)."""
    cur = data
    for part in path.split("."):
        if isinstance(cur, dict) and part in cur:
            cur = cur[part]
        elif isinstance(cur, list) and part.isdigit() and int(part) < len(cur):
            cur = cur[int(part)]
        else:
            return None
    return cur


def set_path(obj, path, value):
    parts = path.split(".")
    cur = obj
    for part in parts[:-1]:
        cur = cur[int(part)] if isinstance(cur, list) else cur[part]
    last = parts[-1]
    if isinstance(cur, list):
        cur[int(last)] = value
    else:
        cur[last] = value


def path_exists(obj, path):
    cur = obj
    for part in path.split("."):
        if isinstance(cur, list):
            if not part.isdigit() or int(part) >= len(cur):
                return False
            cur = cur[int(part)]
        elif isinstance(cur, dict) and part in cur:
            cur = cur[part]
        else:
            return False
    return True


def data_filters_pass(filters, data):
    """Argo Events' data filter semantics (pkg/sensors/dependencies/filter.go), AND operator."""
    for f in filters:
        value = lookup(data, f["path"])
        if value is None:
            return False
        comparator = f.get("comparator", "=")
        kind = f["type"]
        if kind == "string":
            text = value if isinstance(value, str) else json.dumps(value)
            hits = [bool(re.search(v, text)) for v in f["value"]]
            ok = any(hits) if comparator in ("=", "") else any(not h for h in hits)
        elif kind == "bool":
            if not isinstance(value, bool):
                return False
            wants = [v.lower() == "true" for v in f["value"]]
            ok = any((value == w) if comparator in ("=", "") else (value != w) for w in wants)
        else:
            raise SystemExit(f"filter type {kind!r} not modelled by this checker")
        if not ok:
            return False
    return True


TEMPLATE = re.compile(r'^\{\{\s*\.Input\.([A-Za-z0-9_.\-]+)\s*\|\s*trimPrefix\s+"([^"]*)"\s*\}\}$')


def param_value(src, events):
    data = events[src["dependencyName"]]
    if "dataTemplate" in src:
        m = TEMPLATE.match(src["dataTemplate"])
        if not m:
            raise SystemExit(f"dataTemplate {src['dataTemplate']!r} not modelled by this checker")
        raw = lookup(data, m.group(1))
        return str(raw).removeprefix(m.group(2))
    if "dataKey" in src:
        return str(lookup(data, src["dataKey"]))
    return src.get("value")


def conditions_hold(expr, fired):
    """Trigger conditions: dependency names joined by && and || (no parentheses used here)."""
    if not expr:
        return all(fired.values())
    return any(all(fired.get(term.strip(), False) for term in clause.split("&&"))
               for clause in expr.split("||"))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--templates", nargs="+", required=True)
    ap.add_argument("--fixtures", required=True)
    ap.add_argument("files", nargs="+")
    args = ap.parse_args()

    errors = []
    sources, sensors, templates = {}, [], {}
    for path in args.templates:
        for doc in yaml.safe_load_all(Path(path).read_text()):
            if doc and doc.get("kind") == "WorkflowTemplate":
                templates[doc["metadata"]["name"]] = doc
    for path in args.files:
        for i, doc in enumerate(yaml.safe_load_all(Path(path).read_text())):
            if not doc:
                continue
            where = f"{path}: document {i + 1} ({doc.get('kind')} {doc.get('metadata', {}).get('name')})"
            if doc.get("apiVersion") != API:
                errors.append(f"{where}: apiVersion {doc.get('apiVersion')!r}, want {API}")
            kind = doc.get("kind")
            if kind == "EventSource":
                errors += roundtrip(EventSource, doc, where)
                for section, events in doc["spec"].items():
                    if section == "service" or not isinstance(events, dict):
                        continue
                    for event in events:
                        sources.setdefault(doc["metadata"]["name"], set()).add(event)
            elif kind == "Sensor":
                errors += check_sensor(doc, where)
                sensors.append((where, doc))
            else:
                errors.append(f"{where}: kind {kind!r} is not EventSource or Sensor")

    for where, sensor in sensors:
        deps = {d["name"]: d for d in sensor["spec"].get("dependencies", [])}
        for d in deps.values():
            if d.get("eventName") not in sources.get(d.get("eventSourceName"), set()):
                errors.append(f"{where}: dependency {d['name']}: no event {d.get('eventName')!r} in EventSource {d.get('eventSourceName')!r}")
        for tmpl, wf in triggers_resources(sensor):
            name = tmpl.get("name")
            for term in re.split(r"&&|\|\|", tmpl.get("conditions", "")):
                if term.strip() and term.strip() not in deps:
                    errors.append(f"{where}: trigger {name}: condition names unknown dependency {term.strip()!r}")
            res = wf["source"]["resource"]
            for p in wf.get("parameters", []):
                if p["src"]["dependencyName"] not in deps:
                    errors.append(f"{where}: trigger {name}: parameter from unknown dependency {p['src']['dependencyName']!r}")
                if not path_exists(res, p["dest"]):
                    errors.append(f"{where}: trigger {name}: dest {p['dest']} is not a path of the workflow")
            ref = res.get("spec", {}).get("workflowTemplateRef", {}).get("name")
            tpl = templates.get(ref)
            if tpl is None:
                errors.append(f"{where}: trigger {name}: WorkflowTemplate {ref!r} is not among {sorted(templates)}")
                continue
            declared = {p["name"]: p for p in tpl["spec"].get("arguments", {}).get("parameters", [])}
            passed = [p["name"] for p in res["spec"].get("arguments", {}).get("parameters", [])]
            for p in passed:
                if p not in declared:
                    errors.append(f"{where}: trigger {name}: {ref} declares no parameter {p!r}")
            for p, spec in declared.items():
                if "value" not in spec and p not in passed:
                    errors.append(f"{where}: trigger {name}: {ref} needs parameter {p!r}, which is not passed")

    fixtures = Path(args.fixtures)
    expected = json.loads((fixtures / "expected.json").read_text())
    for fname, want in sorted(expected.items()):
        body = json.loads((fixtures / fname).read_text())
        data = {"body": body, "headers": {"X-Github-Event": [body.get("X-GitHub-Event")]}}
        got = []
        for where, sensor in sensors:
            fired = {d["name"]: data_filters_pass(d.get("filters", {}).get("data", []), data)
                     for d in sensor["spec"].get("dependencies", [])}
            if not any(fired.values()):
                continue
            events = {n: data for n, ok in fired.items() if ok}
            for tmpl, wf in triggers_resources(sensor):
                needed = {p["src"]["dependencyName"] for p in wf.get("parameters", [])}
                if not conditions_hold(tmpl.get("conditions", ""), fired) or not needed <= set(events):
                    continue
                res = json.loads(json.dumps(wf["source"]["resource"]))
                for p in wf.get("parameters", []):
                    set_path(res, p["dest"], param_value(p["src"], events))
                got.append({
                    "sensor": sensor["metadata"]["name"],
                    "trigger": tmpl["name"],
                    "template": res["spec"]["workflowTemplateRef"]["name"],
                    "parameters": {p["name"]: p.get("value") for p in res["spec"]["arguments"]["parameters"]},
                })
        if got != want:
            errors.append(f"{fname}: triggers {json.dumps(got)} != expected {json.dumps(want)}")

    for e in errors:
        print(e, file=sys.stderr)
    if errors:
        return 1
    print(f"ok: {len(args.files)} file(s), {len(expected)} event(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
