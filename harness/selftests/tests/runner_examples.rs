//! Shows the runner's quarantine at work on a case that always fails.
//!
//! By default the quarantine holds: the failure is reported loudly (and in JUnit
//! as a quarantined failure) and the run exits 0. Set
//! `QUARANTINE_EXAMPLE_EXPIRES=2020-01-01` to see an expired quarantine fail the run.

use testware::{Case, CaseResult, Quarantine, Suite, Tier};

fn main() -> std::process::ExitCode {
    let mut quarantine =
        Quarantine::new("demonstrates quarantine: this case always fails").ticket("EXAMPLE-1");
    if let Ok(date) = std::env::var("QUARANTINE_EXAMPLE_EXPIRES") {
        quarantine = quarantine.expires(date);
    }
    Suite::new("runner_examples")
        .case(
            Case::from_fn(
                Tier::NoDeploy,
                "quarantined_case_that_always_fails",
                quarantined_case_that_always_fails,
            )
            .quarantine(quarantine),
        )
        .run()
}

async fn quarantined_case_that_always_fails() -> CaseResult {
    let answer = 6 * 7;
    testware::check_eq!(answer, 43, "deliberately wrong expectation");
    Ok(())
}
