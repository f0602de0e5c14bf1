//! monobuild's JSON (`schema_version` 1) as `stackgen workflow` reads it: the components' hashes and the schedule's jobs, checked field by field.

use std::collections::{BTreeMap, HashMap};

use serde_json::Value;

use crate::error::{Error, Result};

/// The monobuild JSON version this reads.
pub const SCHEMA_VERSION: u64 = 1;

/// A scheduled job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    /// The component (a path such as `services/api`).
    pub name: String,
    /// Jobs that must finish first.
    pub needs: Vec<String>,
}

/// What `stackgen workflow` needs from monobuild's output.
#[derive(Debug, Clone, Default)]
pub struct Schedule {
    /// Component name → content hash (64 hex).
    pub hashes: BTreeMap<String, String>,
    /// The jobs in a topological order (stage by stage, as monobuild lists them).
    pub jobs: Vec<Job>,
}

fn bad(field: impl Into<String>, message: impl Into<String>) -> Error {
    Error::Schedule {
        field: field.into(),
        message: message.into(),
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn get<'a>(obj: &'a serde_json::Map<String, Value>, parent: &str, key: &str) -> Result<&'a Value> {
    obj.get(key).ok_or_else(|| {
        bad(
            if parent.is_empty() {
                key.to_string()
            } else {
                format!("{parent}.{key}")
            },
            "missing",
        )
    })
}

fn object<'a>(v: &'a Value, field: &str) -> Result<&'a serde_json::Map<String, Value>> {
    v.as_object()
        .ok_or_else(|| bad(field, format!("expected an object, found {}", kind(v))))
}

fn array<'a>(v: &'a Value, field: &str) -> Result<&'a Vec<Value>> {
    v.as_array()
        .ok_or_else(|| bad(field, format!("expected an array, found {}", kind(v))))
}

fn string<'a>(v: &'a Value, field: &str) -> Result<&'a str> {
    v.as_str()
        .ok_or_else(|| bad(field, format!("expected a string, found {}", kind(v))))
}

/// Parse and check monobuild's JSON. Unknown extra fields are ignored.
pub fn parse(text: &str) -> Result<Schedule> {
    let root: Value =
        serde_json::from_str(text).map_err(|source| Error::ScheduleJson { source })?;
    let root = object(&root, "(document)")?;
    let version = get(root, "", "schema_version")?;
    match version.as_u64() {
        Some(SCHEMA_VERSION) => {}
        Some(v) => {
            return Err(bad(
                "schema_version",
                format!("unsupported version {v} (stackgen reads {SCHEMA_VERSION})"),
            ));
        }
        None => {
            return Err(bad(
                "schema_version",
                format!(
                    "expected the number {SCHEMA_VERSION}, found {}",
                    kind(version)
                ),
            ));
        }
    }
    for (key, inner) in [("base", &["commit"][..]), ("head", &["commit"][..])] {
        if let Some(v) = root.get(key)
            && !v.is_null()
        {
            let o = object(v, key)?;
            for f in inner {
                if let Some(c) = o.get(*f)
                    && !c.is_null()
                {
                    string(c, &format!("{key}.{f}"))?;
                }
            }
        }
    }
    if let Some(v) = root.get("changed_files") {
        array(v, "changed_files")?;
    }
    let components = object(get(root, "", "components")?, "components")?;
    let mut hashes = BTreeMap::new();
    for (name, c) in components {
        let field = format!("components.{name}");
        let c = object(c, &field)?;
        let hf = format!("{field}.hash");
        let hash = string(get(c, &field, "hash")?, &hf)?;
        if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad(hf, format!("`{hash}` is not 64 hex digits")));
        }
        for flag in ["changed", "affected"] {
            if let Some(v) = c.get(flag)
                && !v.is_boolean()
            {
                return Err(bad(
                    format!("{field}.{flag}"),
                    format!("expected a boolean, found {}", kind(v)),
                ));
            }
        }
        if let Some(deps) = c.get("dependencies") {
            for (i, d) in array(deps, &format!("{field}.dependencies"))?
                .iter()
                .enumerate()
            {
                let df = format!("{field}.dependencies[{i}]");
                let d = object(d, &df)?;
                string(get(d, &df, "name")?, &format!("{df}.name"))?;
            }
        }
        hashes.insert(name.clone(), hash.to_ascii_lowercase());
    }
    let schedule = object(get(root, "", "schedule")?, "schedule")?;
    let jobs_v = array(get(schedule, "schedule", "jobs")?, "schedule.jobs")?;
    let mut jobs = Vec::with_capacity(jobs_v.len());
    let mut index: HashMap<String, usize> = HashMap::with_capacity(jobs_v.len());
    for (i, j) in jobs_v.iter().enumerate() {
        let jf = format!("schedule.jobs[{i}]");
        let o = object(j, &jf)?;
        let name = string(get(o, &jf, "name")?, &format!("{jf}.name"))?;
        if name.is_empty() {
            return Err(bad(format!("{jf}.name"), "empty job name"));
        }
        if !hashes.contains_key(name) {
            return Err(bad(
                format!("{jf}.name"),
                format!("`{name}` is not in `components`"),
            ));
        }
        if index.insert(name.to_string(), i).is_some() {
            return Err(bad(format!("{jf}.name"), format!("duplicate job `{name}`")));
        }
        let mut needs = Vec::new();
        if let Some(n) = o.get("needs") {
            for (k, d) in array(n, &format!("{jf}.needs"))?.iter().enumerate() {
                needs.push(string(d, &format!("{jf}.needs[{k}]"))?.to_string());
            }
        }
        jobs.push(Job {
            name: name.to_string(),
            needs,
        });
    }
    // Needs name scheduled jobs.
    for (i, j) in jobs.iter().enumerate() {
        for (k, n) in j.needs.iter().enumerate() {
            if !index.contains_key(n) {
                return Err(Error::Graph {
                    field: format!("schedule.jobs[{i}].needs[{k}]"),
                    message: format!("`{}` needs `{n}`, which is not a scheduled job", j.name),
                });
            }
        }
    }
    // Stages, when present, list exactly the jobs.
    if let Some(st) = schedule.get("stages") {
        let mut seen = 0usize;
        for (i, stage) in array(st, "schedule.stages")?.iter().enumerate() {
            for (k, n) in array(stage, &format!("schedule.stages[{i}]"))?
                .iter()
                .enumerate()
            {
                let f = format!("schedule.stages[{i}][{k}]");
                let n = string(n, &f)?;
                if !index.contains_key(n) {
                    return Err(bad(f, format!("`{n}` is not in `schedule.jobs`")));
                }
                seen += 1;
            }
        }
        if seen != jobs.len() {
            return Err(bad(
                "schedule.stages",
                format!("list {seen} jobs, but `schedule.jobs` has {}", jobs.len()),
            ));
        }
    }
    let jobs = topological(jobs, &index)?;
    Ok(Schedule { hashes, jobs })
}

/// Order jobs so every job comes after what it needs (stable: input order
/// among ready jobs); a cycle is an error naming a job on it.
fn topological(jobs: Vec<Job>, index: &HashMap<String, usize>) -> Result<Vec<Job>> {
    let n = jobs.len();
    let mut indegree = vec![0usize; n];
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (i, j) in jobs.iter().enumerate() {
        for need in &j.needs {
            let d = index[need];
            indegree[i] += 1;
            dependents[d].push(i);
        }
    }
    let mut ready: std::collections::BinaryHeap<std::cmp::Reverse<usize>> = (0..n)
        .filter(|i| indegree[*i] == 0)
        .map(std::cmp::Reverse)
        .collect();
    let mut order = Vec::with_capacity(n);
    while let Some(std::cmp::Reverse(i)) = ready.pop() {
        order.push(i);
        for &d in &dependents[i] {
            indegree[d] -= 1;
            if indegree[d] == 0 {
                ready.push(std::cmp::Reverse(d));
            }
        }
    }
    if order.len() != n {
        let stuck = (0..n).find(|i| indegree[*i] > 0).expect("a job on a cycle");
        return Err(Error::Graph {
            field: format!("schedule.jobs[{stuck}]"),
            message: format!("`{}` is on a dependency cycle", jobs[stuck].name),
        });
    }
    let mut slots: Vec<Option<Job>> = jobs.into_iter().map(Some).collect();
    Ok(order
        .into_iter()
        .map(|i| slots[i].take().expect("each job once"))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(jobs: &str) -> String {
        let h = "a".repeat(64);
        format!(
            r#"{{"schema_version":1,"base":null,"head":null,"changed_files":[],"extra":1,
            "components":{{"a":{{"changed":true,"affected":true,"hash":"{h}","dependencies":[],"reasons":[]}},
                           "b":{{"changed":false,"affected":true,"hash":"{h}","dependencies":[{{"name":"a","strong":true}}],"reasons":[]}}}},
            "schedule":{{"jobs":{jobs}}}}}"#
        )
    }

    #[test]
    fn reads_and_orders() {
        let s = parse(&doc(
            r#"[{"name":"b","needs":["a"]},{"name":"a","needs":[]}]"#,
        ))
        .unwrap();
        let names: Vec<_> = s.jobs.iter().map(|j| j.name.as_str()).collect();
        assert_eq!(names, ["a", "b"]);
    }

    #[test]
    fn errors_name_the_field() {
        let e = parse(&doc(r#"[{"name":"a","needs":"x"}]"#)).unwrap_err();
        assert_eq!(
            e.to_string(),
            "schedule: schedule.jobs[0].needs: expected an array, found a string"
        );
        let e = parse(&doc(r#"[{"name":"a","needs":["zz"]}]"#)).unwrap_err();
        assert!(matches!(e, Error::Graph { .. }), "{e}");
        let e = parse(&doc(
            r#"[{"name":"a","needs":["b"]},{"name":"b","needs":["a"]}]"#,
        ))
        .unwrap_err();
        assert!(e.to_string().contains("cycle"), "{e}");
        let e = parse(r#"{"schema_version":2}"#).unwrap_err();
        assert!(
            e.to_string()
                .contains("schema_version: unsupported version 2"),
            "{e}"
        );
        let e = parse("[1]").unwrap_err();
        assert!(e.to_string().contains("expected an object"), "{e}");
    }
}
