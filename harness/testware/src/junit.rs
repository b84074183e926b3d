//! JUnit XML in the shape GitLab renders: one `<testsuite>` per suite binary,
//! tier, marks and quarantine details as `<properties>` of each `<testcase>`.
//! A quarantined failure is written as `<skipped>` whose message starts with
//! `quarantined failure:`, so it shows up without failing the pipeline's report.

use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

/// How a case ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CaseStatus {
    /// It passed.
    Passed,
    /// It failed; the message carries the error chain.
    Failed(String),
    /// It did not run, and why.
    Ignored(String),
    /// It failed while quarantined; the build is not failed by it.
    QuarantinedFailure(String),
}

/// One case's entry in the report.
#[derive(Debug, Clone)]
pub struct CaseRecord {
    /// The case name.
    pub name: String,
    /// Tier and marks, comma-separated (the libtest kind).
    pub kind: String,
    /// Wall time of the case.
    pub duration: Duration,
    /// Name/value pairs written as `<property>`.
    pub properties: Vec<(String, String)>,
    /// The outcome.
    pub status: CaseStatus,
}

/// Renders the report for one suite.
pub fn render(suite: &str, records: &[CaseRecord]) -> String {
    let count = |f: fn(&CaseStatus) -> bool| records.iter().filter(|r| f(&r.status)).count();
    let failures = count(|s| matches!(s, CaseStatus::Failed(_)));
    let skipped = count(|s| {
        matches!(
            s,
            CaseStatus::Ignored(_) | CaseStatus::QuarantinedFailure(_)
        )
    });
    let total: f64 = records.iter().map(|r| r.duration.as_secs_f64()).sum();
    let timestamp = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();

    let mut xml = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites>\n");
    let _ = writeln!(
        xml,
        "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{failures}\" errors=\"0\" skipped=\"{skipped}\" time=\"{total:.3}\" timestamp=\"{timestamp}\">",
        escape(suite),
        records.len()
    );
    for r in records {
        let _ = writeln!(
            xml,
            "    <testcase classname=\"{}\" name=\"{}\" time=\"{:.3}\">",
            escape(suite),
            escape(&r.name),
            r.duration.as_secs_f64()
        );
        xml.push_str("      <properties>\n");
        for (name, value) in
            std::iter::once(&("kind".to_owned(), r.kind.clone())).chain(&r.properties)
        {
            let _ = writeln!(
                xml,
                "        <property name=\"{}\" value=\"{}\"/>",
                escape(name),
                escape(value)
            );
        }
        xml.push_str("      </properties>\n");
        match &r.status {
            CaseStatus::Passed => {}
            CaseStatus::Failed(m) => {
                let _ = writeln!(
                    xml,
                    "      <failure message=\"{}\" type=\"failure\">{}</failure>",
                    escape(first_line(m)),
                    escape(m)
                );
            }
            CaseStatus::Ignored(m) => {
                let _ = writeln!(xml, "      <skipped message=\"{}\"/>", escape(m));
            }
            CaseStatus::QuarantinedFailure(m) => {
                let _ = writeln!(
                    xml,
                    "      <skipped message=\"quarantined failure: {}\"/>\n      <system-err>{}</system-err>",
                    escape(first_line(m)),
                    escape(m)
                );
            }
        }
        xml.push_str("    </testcase>\n");
    }
    xml.push_str("  </testsuite>\n</testsuites>\n");
    xml
}

/// Writes the report, creating parent directories.
///
/// # Errors
/// The directory or file cannot be written.
pub fn write(path: &Path, suite: &str, records: &[CaseRecord]) -> std::io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(path, render(suite, records))
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or_default()
}

/// Escapes text for XML attributes and content; drops characters XML 1.0 forbids.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' | '\t' | '\r' => out.push(c),
            c if (c as u32) < 0x20 => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_to_junit_elements() {
        let record = |name: &str, status| CaseRecord {
            name: name.into(),
            kind: "no_deploy".into(),
            duration: Duration::from_millis(1500),
            properties: vec![("tier".into(), "no_deploy".into())],
            status,
        };
        let xml = render(
            "echo",
            &[
                record("ok", CaseStatus::Passed),
                record(
                    "bad",
                    CaseStatus::Failed("expected <1> & got \"2\"\nmore".into()),
                ),
                record("skip", CaseStatus::Ignored("needs a cluster".into())),
                record("flaky", CaseStatus::QuarantinedFailure("boom\u{1b}".into())),
            ],
        );
        assert!(
            xml.contains("tests=\"4\" failures=\"1\" errors=\"0\" skipped=\"2\" time=\"6.000\""),
            "{xml}"
        );
        assert!(
            xml.contains("<failure message=\"expected &lt;1&gt; &amp; got &quot;2&quot;\""),
            "{xml}"
        );
        assert!(
            xml.contains("<skipped message=\"needs a cluster\"/>"),
            "{xml}"
        );
        assert!(
            xml.contains("<skipped message=\"quarantined failure: boom\"/>"),
            "{xml}"
        );
        assert!(
            xml.contains("<property name=\"tier\" value=\"no_deploy\"/>"),
            "{xml}"
        );
    }
}
