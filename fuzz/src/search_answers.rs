//! Elasticsearch-API search answers (what the logging pipeline's store
//! returns): any JSON gives the log lines it holds, each document once.

use testware_systems::logs::lines_of_search;

/// Panics where the input shows a bug.
pub fn check(body: &[u8]) {
    let Ok(body) = serde_json::from_slice::<serde_json::Value>(body) else {
        return;
    };
    let hits = body["hits"]["hits"].as_array().map_or(0, Vec::len);
    let lines = lines_of_search(&body);
    let parts: usize = lines.iter().map(|l| l.parts).sum();
    assert!(parts <= hits, "{parts} parts joined from {hits} hits");
}
