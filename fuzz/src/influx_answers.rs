//! InfluxDB `/query` answers: any body gives series or an error, and every
//! series' rows can be read.

use testware_systems::influx::series_of;

/// Panics where the input shows a bug.
pub fn check(body: &[u8]) {
    let Ok(series) = series_of(body) else {
        return;
    };
    for s in &series {
        let rows = s.rows();
        assert!(rows.len() <= s.values.len());
        let _ = s.column("time");
    }
}
