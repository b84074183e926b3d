//! Memory figures of processes on this machine, for benchmarks: the embedded
//! cluster and podman run pods and containers as host processes.

/// One process's resident and peak memory, in MiB.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Memory {
    /// What `name_of` called it.
    pub name: &'static str,
    /// `VmRSS`.
    pub resident_mib: u64,
    /// `VmHWM`.
    pub peak_mib: u64,
}

/// The memory of every process whose command line (arguments joined by spaces)
/// `name_of` gives a name.
pub fn memory_of(name_of: impl Fn(&str) -> Option<&'static str>) -> Vec<Memory> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut found = Vec::new();
    for entry in entries.flatten() {
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        let Some(name) = name_of(&cmdline) else {
            continue;
        };
        let status = std::fs::read_to_string(entry.path().join("status")).unwrap_or_default();
        let field = |key: &str| {
            status
                .lines()
                .find(|l| l.starts_with(key))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
                .map_or(0, |kb| kb / 1024)
        };
        found.push(Memory {
            name,
            resident_mib: field("VmRSS:"),
            peak_mib: field("VmHWM:"),
        });
    }
    found
}

/// The EFD's servers by command line: the broker and InfluxDB.
pub fn efd_server(cmdline: &str) -> Option<&'static str> {
    if cmdline.contains("kafka.Kafka ") {
        Some("Apache Kafka")
    } else if cmdline.starts_with("/usr/bin/influxd") {
        Some("InfluxDB")
    } else {
        None
    }
}
