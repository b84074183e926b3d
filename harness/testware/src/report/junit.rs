//! JUnit XML in the shape GitLab renders: one `<testsuite>` per suite binary,
//! tier, marks and quarantine details as `<properties>` of each `<testcase>`.
//! A quarantined failure is written as `<skipped>` whose message starts with
//! `quarantined failure:`, so it shows up without failing the pipeline's report.

use std::path::Path;
use std::time::Duration;

use quick_junit::{NonSuccessKind, Property, Report, TestCase, TestCaseStatus, TestSuite};

/// How a case ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CaseStatus {
    /// It passed.
    Passed,
    /// It failed; the message carries the error chain.
    Failed(String),
    /// It could not do what it checks (a chart that does not render): JUnit's
    /// `<error>`, not a `<failure>` of the thing checked.
    Errored(String),
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
    /// What the case reported beside its outcome (a passing check's
    /// warnings), written as `<system-out>`.
    pub output: Option<String>,
}

/// Renders the report for one suite (with quick-junit: escaping, characters
/// XML forbids and ANSI colour codes are its business).
pub fn render(suite: &str, records: &[CaseRecord]) -> String {
    let mut test_suite = TestSuite::new(suite);
    test_suite.set_timestamp(chrono::DateTime::<chrono::Utc>::from(
        std::time::SystemTime::now(),
    ));
    test_suite.set_time(records.iter().map(|r| r.duration).sum());
    for r in records {
        let status = match &r.status {
            CaseStatus::Passed => TestCaseStatus::success(),
            CaseStatus::Failed(message) => {
                let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
                status
                    .set_message(first_line(message))
                    .set_type("failure")
                    .set_description(message.as_str());
                status
            }
            CaseStatus::Errored(message) => {
                let mut status = TestCaseStatus::non_success(NonSuccessKind::Error);
                status
                    .set_message(first_line(message))
                    .set_type("error")
                    .set_description(message.as_str());
                status
            }
            CaseStatus::Ignored(why) => {
                let mut status = TestCaseStatus::skipped();
                status.set_message(why.as_str());
                status
            }
            CaseStatus::QuarantinedFailure(message) => {
                let mut status = TestCaseStatus::skipped();
                status.set_message(format!("quarantined failure: {}", first_line(message)));
                status
            }
        };
        let mut case = TestCase::new(r.name.as_str(), status);
        case.set_classname(suite).set_time(r.duration);
        case.add_property(Property::new("kind", r.kind.as_str()));
        for (name, value) in &r.properties {
            case.add_property(Property::new(name.as_str(), value.as_str()));
        }
        if let CaseStatus::QuarantinedFailure(message) = &r.status {
            case.set_system_err(message.as_str());
        }
        if let Some(output) = &r.output {
            case.set_system_out(output.as_str());
        }
        test_suite.add_test_case(case);
    }
    let mut report = Report::new(suite);
    report.add_test_suite(test_suite);
    report
        .to_string()
        .unwrap_or_else(|e| format!("<!-- the JUnit report could not be written: {e} -->\n"))
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
            output: None,
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
                record("unrendered", CaseStatus::Errored("no chart".into())),
                CaseRecord {
                    output: Some("1 warning".into()),
                    ..record("warned", CaseStatus::Passed)
                },
            ],
        );
        assert!(
            xml.contains("tests=\"6\" skipped=\"2\" errors=\"1\" failures=\"1\"")
                && xml.contains("time=\"9.000\""),
            "{xml}"
        );
        assert!(
            xml.contains("<failure message=\"expected &lt;1&gt; &amp; got &quot;2&quot;\""),
            "{xml}"
        );
        assert!(
            xml.contains("<error message=\"no chart\" type=\"error\">"),
            "{xml}"
        );
        assert!(xml.contains("<system-out>1 warning</system-out>"), "{xml}");
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
