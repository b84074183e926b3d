//! CRI container log files (what the kubelet writes and the log shipper reads):
//! any text splits into lines that parse or are refused, and joining the
//! partial lines loses and invents nothing.

use testware_systems::logs::{join_partials, CriLine};

/// Panics where the input shows a bug.
pub fn check(data: &[u8]) {
    // libFuzzer's `&str` targets skip input that is not UTF-8.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let lines: Vec<CriLine> = text.lines().filter_map(CriLine::parse).collect();
    let whole = join_partials(&lines);
    let finals = lines.iter().filter(|l| !l.partial).count();
    assert_eq!(whole.len(), finals, "one whole line per final part");
    let joined: usize = whole.iter().map(String::len).sum();
    let parts: usize = lines.iter().map(|l| l.text.len()).sum();
    assert!(joined <= parts, "joining invented text");
}
