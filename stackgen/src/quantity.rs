//! Kubernetes resource quantities (`250m`, `0.5`, `64Mi`, `1G`) and their Docker compose forms (`cpus: "0.25"`, `memory: 64M`).

/// CPU in millicores: `250m` → 250, `0.5` → 500, `2` → 2000.
pub fn cpu_millis(q: &str) -> Option<u64> {
    if let Some(m) = q.strip_suffix('m') {
        return digits(m).filter(|v| *v > 0);
    }
    let (int, frac) = q.split_once('.').unwrap_or((q, ""));
    if frac.len() > 3 || (int.is_empty() && frac.is_empty()) {
        return None;
    }
    let int = if int.is_empty() { 0 } else { digits(int)? };
    let frac_val = if frac.is_empty() {
        0
    } else {
        let f = digits(frac)?;
        f * 10u64.pow(u32::try_from(3 - frac.len()).ok()?)
    };
    let v = int.checked_mul(1000)?.checked_add(frac_val)?;
    (v > 0).then_some(v)
}

fn digits(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Memory in bytes: `64Mi`, `1G`, `512Ki`, `1048576`.
pub fn memory_bytes(q: &str) -> Option<u64> {
    const SUFFIXES: [(&str, u64); 10] = [
        ("Ki", 1 << 10),
        ("Mi", 1 << 20),
        ("Gi", 1 << 30),
        ("Ti", 1 << 40),
        ("Pi", 1 << 50),
        ("k", 1_000),
        ("M", 1_000_000),
        ("G", 1_000_000_000),
        ("T", 1_000_000_000_000),
        ("P", 1_000_000_000_000_000),
    ];
    for (suffix, mult) in SUFFIXES {
        if let Some(n) = q.strip_suffix(suffix) {
            return digits(n)?.checked_mul(mult).filter(|v| *v > 0);
        }
    }
    digits(q).filter(|v| *v > 0)
}

/// Compose `cpus`: cores as a decimal string (`0.25`, `2`).
pub fn compose_cpus(q: &str) -> Option<String> {
    let m = cpu_millis(q)?;
    let (int, frac) = (m / 1000, m % 1000);
    Some(if frac == 0 {
        int.to_string()
    } else {
        format!("{int}.{frac:03}").trim_end_matches('0').to_string()
    })
}

/// Compose `memory`: bytes with a binary unit when exact (`64M` means 64 MiB
/// to Docker), else plain bytes.
pub fn compose_memory(q: &str) -> Option<String> {
    let b = memory_bytes(q)?;
    Some(if b % (1 << 30) == 0 {
        format!("{}G", b >> 30)
    } else if b % (1 << 20) == 0 {
        format!("{}M", b >> 20)
    } else if b % (1 << 10) == 0 {
        format!("{}K", b >> 10)
    } else {
        b.to_string()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu() {
        assert_eq!(cpu_millis("250m"), Some(250));
        assert_eq!(cpu_millis("0.5"), Some(500));
        assert_eq!(cpu_millis(".5"), Some(500));
        assert_eq!(cpu_millis("2"), Some(2000));
        assert_eq!(cpu_millis("0"), None);
        assert_eq!(cpu_millis("1.2345"), None);
        assert_eq!(cpu_millis("x"), None);
        assert_eq!(compose_cpus("250m").as_deref(), Some("0.25"));
        assert_eq!(compose_cpus("1500m").as_deref(), Some("1.5"));
        assert_eq!(compose_cpus("2").as_deref(), Some("2"));
    }

    #[test]
    fn memory() {
        assert_eq!(memory_bytes("64Mi"), Some(64 << 20));
        assert_eq!(memory_bytes("1G"), Some(1_000_000_000));
        assert_eq!(memory_bytes("1024"), Some(1024));
        assert_eq!(memory_bytes("1.5Gi"), None);
        assert_eq!(memory_bytes("Mi"), None);
        assert_eq!(compose_memory("64Mi").as_deref(), Some("64M"));
        assert_eq!(compose_memory("2Gi").as_deref(), Some("2G"));
        assert_eq!(compose_memory("1G").as_deref(), Some("1000000000"));
    }
}
