#!/usr/bin/env bash
# digest-resolve over the real-world manifest corpus (issue 13), without network.
#
#   scripts/bench/realworld-digest-resolve.sh [CORPUS]   (default: ../shared/realworld from the repo root)
#
# For every file of CORPUS/manifests/files (valid manifests as published):
#   1. `digest-resolve --list FILE` lists the images it finds; a non-zero exit is a refusal.
#   2. An independent reference (python3 + PyYAML, libyaml-like: merge keys, flow collections)
#      walks the documents' image positions: pod specs of Pod, PodTemplate, ReplicationController,
#      Deployment, StatefulSet, DaemonSet, ReplicaSet, Job, CronJob (containers, initContainers,
#      ephemeralContainers), Argo Workflow / WorkflowTemplate / ClusterWorkflowTemplate /
#      CronWorkflow templates (container, script, containerSet, initContainers, sidecars, inline
#      templates of DAG tasks and steps at any depth, templateDefaults), Compose services.*.image,
#      and List items. Found = (document, path, value) in both; extra = found by the tool only.
#   3. `digest-resolve --lock` with a generated lock (a made-up digest per reference) rewrites the
#      file; the output must be the input plus, right after image values, only `@sha256:…`
#      (or `:latest@sha256:…` for an image without a tag): no other byte may change.
# Every file of CORPUS/manifests/invalid must be refused with an error naming document and path.
#
# Prints: digest-resolve: files=N found_images=N refused=N mismatched=N
#   files        valid files checked
#   found_images reference images the tool found (stderr also gives the reference total)
#   refused      valid files the tool refuses
#   mismatched   invalid files not refused (or refused without document and path), plus valid
#                files with an extra image or with bytes changed outside image values
# Details of each miss go to stderr. Exit status 0 (counts are the result).
set -euo pipefail
cd "$(dirname "$0")/../.."
CORPUS=${1:-../shared/realworld}
if [ ! -d "$CORPUS/manifests/files" ] || [ ! -d "$CORPUS/manifests/invalid" ]; then
  echo "realworld-digest-resolve: no corpus at $CORPUS (expected manifests/files and manifests/invalid)" >&2
  exit 2
fi
# DIGEST_RESOLVE=path/to/binary checks that binary instead of building one.
if [ -n "${DIGEST_RESOLVE:-}" ]; then
  BIN=$DIGEST_RESOLVE
else
  export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/work/targets/digest-resolve}
  cargo build --release -q -p digest-resolve --bin digest-resolve
  BIN=$CARGO_TARGET_DIR/release/digest-resolve
fi

python3 - "$BIN" "$CORPUS/manifests" <<'PY'
import hashlib, json, os, re, subprocess, sys, tempfile
import yaml

BIN, ROOT = sys.argv[1], sys.argv[2]

def files_under(d):
    out = []
    for dp, _, fs in os.walk(d):
        for f in fs:
            if f.endswith(('.yaml', '.yml', '.json')):
                out.append(os.path.join(dp, f))
    return sorted(out)

# --- the reference ----------------------------------------------------------
POD = {
    'Pod': (['spec'], {'v1'}),
    'PodTemplate': (['template', 'spec'], {'v1'}),
    'ReplicationController': (['spec', 'template', 'spec'], {'v1'}),
    'Deployment': (['spec', 'template', 'spec'], {'apps', 'extensions'}),
    'StatefulSet': (['spec', 'template', 'spec'], {'apps', 'extensions'}),
    'DaemonSet': (['spec', 'template', 'spec'], {'apps', 'extensions'}),
    'ReplicaSet': (['spec', 'template', 'spec'], {'apps', 'extensions'}),
    'Job': (['spec', 'template', 'spec'], {'batch'}),
    'CronJob': (['spec', 'jobTemplate', 'spec', 'template', 'spec'], {'batch'}),
}

def group(v):
    return v.split('/')[0] if '/' in v else 'v1'

def at(node, keys):
    for k in keys:
        if not isinstance(node, dict):
            return None
        node = node.get(k)
    return node

def image(out, path, v):
    if isinstance(v, str):
        out.append((path, v))

def containers(out, base, node, lists):
    for lst in lists:
        items = node.get(lst) if isinstance(node, dict) else None
        if isinstance(items, list):
            for i, c in enumerate(items):
                if isinstance(c, dict):
                    image(out, f'{base}{lst}[{i}].image', c.get('image'))

def argo_template(out, base, t):
    if not isinstance(t, dict):
        return
    for k in ('container', 'script'):
        if isinstance(t.get(k), dict):
            image(out, f'{base}{k}.image', t[k].get('image'))
    cs = t.get('containerSet')
    if isinstance(cs, dict):
        containers(out, f'{base}containerSet.', cs, ['containers'])
    containers(out, base, t, ['initContainers', 'sidecars'])
    dag = t.get('dag')
    if isinstance(dag, dict) and isinstance(dag.get('tasks'), list):
        for i, task in enumerate(dag['tasks']):
            if isinstance(task, dict) and 'inline' in task:
                argo_template(out, f'{base}dag.tasks[{i}].inline.', task['inline'])
    if isinstance(t.get('steps'), list):
        for i, group_ in enumerate(t['steps']):
            if isinstance(group_, list):
                for j, step in enumerate(group_):
                    if isinstance(step, dict) and 'inline' in step:
                        argo_template(out, f'{base}steps[{i}][{j}].inline.', step['inline'])

def reference(doc, prefix='', depth=0):
    out = []
    if not isinstance(doc, dict):
        return out
    kind, api = doc.get('kind'), doc.get('apiVersion')
    kind = kind if isinstance(kind, str) else None
    api = api if isinstance(api, str) else None
    if kind == 'List':
        if depth < 8 and isinstance(doc.get('items'), list):
            for i, item in enumerate(doc['items']):
                out += reference(item, f'{prefix}items[{i}].', depth + 1)
        return out
    if kind in POD and (api is None or group(api) in POD[kind][1]):
        keys = POD[kind][0]
        spec = at(doc, keys)
        if isinstance(spec, dict):
            containers(out, prefix + ''.join(k + '.' for k in keys), spec,
                       ['containers', 'initContainers', 'ephemeralContainers'])
    argo = api is None or group(api) == 'argoproj.io'
    base = {'Workflow': ['spec'], 'WorkflowTemplate': ['spec'], 'ClusterWorkflowTemplate': ['spec'],
            'CronWorkflow': ['spec', 'workflowSpec']}.get(kind) if argo else None
    if base:
        spec = at(doc, base)
        b = prefix + ''.join(k + '.' for k in base)
        if isinstance(spec, dict):
            if isinstance(spec.get('templates'), list):
                for i, t in enumerate(spec['templates']):
                    argo_template(out, f'{b}templates[{i}].', t)
            td = spec.get('templateDefaults')
            if isinstance(td, dict):
                for k in ('container', 'script'):
                    if isinstance(td.get(k), dict):
                        image(out, f'{b}templateDefaults.{k}.image', td[k].get('image'))
    if kind is None and isinstance(doc.get('services'), dict):
        for name, svc in doc['services'].items():
            if isinstance(svc, dict):
                image(out, f'{prefix}services.{name}.image', svc.get('image'))
    return out

def load(path):
    text = open(path, encoding='utf-8-sig').read()
    if path.endswith('.json'):
        dec, i, docs = json.JSONDecoder(), 0, []
        while True:
            while i < len(text) and text[i] in ' \t\r\n':
                i += 1
            if i >= len(text):
                return docs
            d, i = dec.raw_decode(text, i)
            docs.append(d)
    return list(yaml.load_all(text, Loader=yaml.CSafeLoader if hasattr(yaml, 'CSafeLoader') else yaml.SafeLoader))

# --- the rewrite check --------------------------------------------------------
INSERT = re.compile(r'(:latest)?@sha256:([0-9a-f]{64})')

def only_insertions(src, out, fakes):
    """Whether out is src plus only `@D` / `:latest@D` insertions of made-up digests."""
    pos, last, n = 0, 0, 0
    for m in INSERT.finditer(out):
        if m.group(2) not in fakes:
            continue
        seg = out[last:m.start()]
        if not src.startswith(seg, pos):
            return False, n
        pos += len(seg)
        if m.group(1):
            # An explicit `:latest` stays in the input; an implicit one was added.
            if src.startswith(':latest', pos) and not src.startswith(':latest@sha256:', pos):
                pos += len(':latest')
        last, n = m.end(), n + 1
    return src[pos:] == out[last:], n

def fake(ref):
    return hashlib.sha256(ref.encode()).hexdigest()

def run(args):
    return subprocess.run([BIN, *args], capture_output=True, text=True)

files = files_under(os.path.join(ROOT, 'files'))
invalid = files_under(os.path.join(ROOT, 'invalid'))
found = ref_total = refused = mismatched = extra = 0
ref_failed = 0
tmp = tempfile.mkdtemp(prefix='realworld-digest-resolve.')
for f in files:
    r = run(['--quiet', '--list', f])
    tool = None
    if r.returncode != 0:
        refused += 1
        print(f'refused: {f}: {r.stderr.strip().splitlines()[:1]}', file=sys.stderr)
    else:
        tool = json.loads(r.stdout)['images']
    try:
        docs = load(f)
    except Exception as e:  # noqa: BLE001 - the reference cannot read it: not counted
        ref_failed += 1
        print(f'reference cannot parse: {f}: {str(e).splitlines()[0]}', file=sys.stderr)
        continue
    want = []
    for d, doc in enumerate(docs):
        want += [(d, p, v.strip()) for p, v in reference(doc)]
    ref_total += len(want)
    if tool is None:
        continue
    got = [(e['document'], e['path'], e['image'].strip()) for e in tool]
    gs = set(got)
    for w in want:
        if w in gs:
            found += 1
        else:
            print(f'missed: {f}: document {w[0]}: {w[1]} = {w[2]!r}', file=sys.stderr)
    ws = set(want)
    extras = [g for g in got if g not in ws]
    for g in extras:
        print(f'extra: {f}: document {g[0]}: {g[1]} = {g[2]!r}', file=sys.stderr)
    bad = bool(extras)
    refs = {e['reference'] for e in tool if e['reference'] and not e['pinned']}
    if refs:
        lock = {r_: 'sha256:' + fake(r_) for r_ in refs}
        lp = os.path.join(tmp, 'lock.json')
        json.dump({'schema_version': 1, 'platform': None, 'images': lock}, open(lp, 'w'))
        r = run(['--quiet', '--lock', lp, f])
        src = open(f, encoding='utf-8').read()
        ok, n = (False, 0)
        if r.returncode == 0:
            ok, n = only_insertions(src, r.stdout, {d[7:] for d in lock.values()})
        want_n = sum(1 for e in tool if e['reference'] and not e['pinned'])
        if r.returncode != 0 or not ok:
            bad = True
            print(f'rewrite changed other bytes: {f}: exit {r.returncode} {r.stderr.strip()[:200]}', file=sys.stderr)
        elif n < len(refs) or n > want_n:
            bad = True
            print(f'rewrite count: {f}: {n} insertions for {want_n} images', file=sys.stderr)
    mismatched += bad
for f in invalid:
    r = run(['--quiet', '--list', f])
    named = re.search(r': document \d+: line \d+: [A-Za-z0-9_.\[\]-]+\.image: ', r.stderr)
    if r.returncode == 0 or not named:
        mismatched += 1
        print(f'invalid not refused with document and path: {f}: exit {r.returncode} {r.stderr.strip()[:200]}', file=sys.stderr)
print(f'reference: images={ref_total} missed={ref_total - found} files_it_cannot_parse={ref_failed} invalid_files={len(invalid)}', file=sys.stderr)
print(f'digest-resolve: files={len(files)} found_images={found} refused={refused} mismatched={mismatched}')
PY
