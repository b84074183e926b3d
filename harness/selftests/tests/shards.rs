//! Shards sharing one cluster: the `shard-examples` binary run as several
//! concurrent shard processes, each with its own run and CI job id, beside a
//! janitor — every case runs exactly once, none fails because of another shard,
//! a SIGKILLed shard's namespace and cluster-scoped object are reaped while the
//! others go on, and nothing is left. Without the claims on cluster-scoped
//! objects, two installs of one ClusterRole collide.

use std::collections::BTreeMap;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
use kube::api::{DeleteParams, ListParams};
use testware::cluster::{claims, labels};
use testware::runner::shard;
use testware::{cases, check, check_eq, Ctx, Suite};
use testware_selftests::ExampleRun;
use tokio::io::AsyncBufReadExt as _;

fn main() -> std::process::ExitCode {
    Suite::new("shards")
        .cases(cases![chart_deploy:
            concurrent_shards_run_every_case_once_and_a_killed_one_is_reaped,
            without_claims_two_installs_of_one_cluster_role_collide,
        ])
        .run()
}

const SHARDS: usize = 3;

fn example_run(ctx: &Ctx, prefix: &str, reader: &str) -> ExampleRun {
    let mut run = ExampleRun::new(
        env!("CARGO_BIN_EXE_shard-examples"),
        prefix,
        &ctx.artifacts_dir(),
    );
    run.command.env("SHARD_EXAMPLES_READER", reader);
    run
}

/// The cases a shard run lists (`--list` prints `name: test` lines).
async fn listed(ctx: &Ctx, filter: &[&str]) -> anyhow::Result<Vec<String>> {
    let mut run = example_run(ctx, "list", "none");
    let output = run.command.arg("--list").args(filter).output().await?;
    let text = String::from_utf8_lossy(&output.stdout);
    Ok(text
        .lines()
        .filter_map(|l| l.strip_suffix(": test"))
        .map(|l| l.rsplit("] ").next().unwrap_or(l).to_owned())
        .collect())
}

/// Everything left of `runs`: namespaces, claim Leases, and the ClusterRole
/// and ClusterRoleBinding named `reader`.
async fn leftovers(
    client: &kube::Client,
    runs: &[String],
    reader: &str,
) -> anyhow::Result<Vec<String>> {
    let mut left = Vec::new();
    for run in runs {
        let selector = format!("{}={run}", labels::RUN_ID);
        let params = ListParams::default().labels(&selector);
        for ns in kube::Api::<Namespace>::all(client.clone())
            .list_metadata(&params)
            .await?
            .items
        {
            left.push(format!(
                "namespace {}",
                ns.metadata.name.unwrap_or_default()
            ));
        }
        let leases = kube::Api::<Lease>::namespaced(client.clone(), claims::CLAIMS_NAMESPACE);
        for lease in leases.list_metadata(&params).await?.items {
            left.push(format!(
                "claim Lease {}",
                lease.metadata.name.unwrap_or_default()
            ));
        }
    }
    if kube::Api::<ClusterRole>::all(client.clone())
        .get_opt(reader)
        .await?
        .is_some()
    {
        left.push(format!("ClusterRole/{reader}"));
    }
    if kube::Api::<ClusterRoleBinding>::all(client.clone())
        .get_opt(reader)
        .await?
        .is_some()
    {
        left.push(format!("ClusterRoleBinding/{reader}"));
    }
    Ok(left)
}

async fn concurrent_shards_run_every_case_once_and_a_killed_one_is_reaped(
    ctx: Ctx,
) -> anyhow::Result<()> {
    let client = ctx.client().await?;
    let reader = "shard-proof-reader";
    let skip = ["--skip", "waits_to_be_killed"];
    let all = listed(&ctx, &skip).await?;
    check_eq!(all.len(), 6, "the examples' cases: {all:?}");

    // The shard that gets killed: it claims the ClusterRole, then SIGKILL.
    let mut victim = example_run(&ctx, "victim", reader);
    victim
        .command
        .env("CI_JOB_ID", "victim")
        .env("HARNESS_NAMESPACE_LEASE", "10")
        .args(["--exact", "waits_to_be_killed"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut victim_child = victim.command.spawn()?;
    // The shards, at once, each its own run and job.
    let mut shards = Vec::new();
    for index in 1..=SHARDS {
        let mut run = example_run(&ctx, "shard", reader);
        let junit = run.artifacts.join("junit/");
        run.command
            .env("CI_JOB_ID", format!("shard-proof-{index}"))
            .env(shard::ENV_SHARD, format!("{index}/{SHARDS}"))
            .env("HARNESS_JUNIT", &junit)
            .args(["--test-threads", "2"])
            .args(skip);
        let child = run
            .command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        shards.push((index, run.run_id, junit, child));
    }
    // A janitor beside them, as every job's start and a cleanup job run it.
    let reaped: Arc<Mutex<Vec<String>>> = Arc::default();
    let janitor = {
        let (client, reaped) = (client.clone(), reaped.clone());
        tokio::spawn(async move {
            loop {
                if let Ok(objects) = claims::reap_expired(&client).await {
                    reaped
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .extend(objects);
                }
                if let Ok(namespaces) = testware::namespace::reap_expired(&client).await {
                    reaped
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .extend(namespaces);
                }
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
        })
    };

    // Kill the victim once it holds the ClusterRole.
    let stderr = victim_child
        .stderr
        .take()
        .ok_or_else(|| anyhow::anyhow!("no stderr"))?;
    let mut lines = tokio::io::BufReader::new(stderr).lines();
    let wait = ctx.deadline().cap(Duration::from_secs(240));
    let victim_namespace = tokio::time::timeout(wait, async {
        let mut said = Vec::new();
        while let Some(line) = lines.next_line().await? {
            if let Some(ns) = line.strip_prefix("READY-TO-BE-KILLED ") {
                return Ok(ns.to_owned());
            }
            said.push(line);
        }
        let mut out = String::new();
        if let Some(mut stdout) = victim_child.stdout.take() {
            use tokio::io::AsyncReadExt as _;
            stdout.read_to_string(&mut out).await?;
        }
        anyhow::bail!(
            "the victim ended before it was ready:\n{}\n{out}",
            said.join("\n")
        )
    })
    .await
    .map_err(|_| anyhow::anyhow!("the victim was not ready within {wait:?}"))??;
    victim_child.kill().await?;

    // The shards finish, each passing, together running every case once.
    let mut runs = vec![victim.run_id.clone()];
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for (index, run_id, junit, child) in shards {
        let output = tokio::time::timeout(
            ctx.deadline().cap(Duration::from_secs(420)),
            child.wait_with_output(),
        )
        .await
        .map_err(|_| anyhow::anyhow!("shard {index} did not finish"))??;
        let text = format!(
            "{}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        check_eq!(
            output.status.code(),
            Some(0),
            "shard {index} (run {run_id}) failed:\n{text}"
        );
        let ran = shard::read_junit(std::slice::from_ref(&junit)).map_err(anyhow::Error::msg)?;
        check!(!ran.is_empty(), "shard {index} ran nothing:\n{text}");
        for case in ran.keys() {
            *counts
                .entry(case.trim_start_matches("shard_examples::").to_owned())
                .or_default() += 1;
        }
        runs.push(run_id);
    }
    let expected: BTreeMap<String, usize> = all.iter().map(|c| (c.clone(), 1)).collect();
    check_eq!(counts, expected, "every case exactly once over the shards");

    // The victim's claim and namespace are reaped (by the janitor, or by the
    // shard that took its expired claim over), and nothing of any run is left.
    testware::wait::namespace_gone(
        &client,
        &victim_namespace,
        ctx.deadline().cap(Duration::from_secs(120)),
    )
    .await?;
    testware::wait::wait_until(
        "nothing of the shards' and the victim's runs to be left",
        ctx.deadline().cap(Duration::from_secs(90)),
        || async {
            match leftovers(&client, &runs, reader).await {
                Ok(left) if left.is_empty() => Ok(()),
                Ok(left) => Err(format!("left: {}", left.join(", "))),
                Err(e) => Err(e.to_string()),
            }
        },
    )
    .await?;
    janitor.abort();
    eprintln!(
        "janitor reaped: {:?}",
        reaped.lock().unwrap_or_else(|p| p.into_inner())
    );
    Ok(())
}

async fn without_claims_two_installs_of_one_cluster_role_collide(ctx: Ctx) -> anyhow::Result<()> {
    let client = ctx.client().await?;
    let reader = "shard-collision-reader";
    let mut children = Vec::new();
    let mut runs = Vec::new();
    for case in ["reader_1", "reader_2"] {
        let mut run = example_run(&ctx, "collide", reader);
        run.command
            .env("HARNESS_CLUSTER_CLAIMS", "0")
            .args(["--exact", case])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        children.push(run.command.spawn()?);
        runs.push(run.run_id);
    }
    let mut outputs = Vec::new();
    for child in children {
        let output = tokio::time::timeout(
            ctx.deadline().cap(Duration::from_secs(240)),
            child.wait_with_output(),
        )
        .await
        .map_err(|_| anyhow::anyhow!("an unclaimed install did not finish"))??;
        outputs.push(output);
    }
    let texts: Vec<String> = outputs
        .iter()
        .map(|o| {
            format!(
                "{}\n{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            )
        })
        .collect();
    // One fails, or both: when each install created one of the two objects
    // (the ClusterRole, the ClusterRoleBinding) before the other did, each
    // collides on the other's (seen on 1.36, once).
    let failures: Vec<&String> = outputs
        .iter()
        .zip(&texts)
        .filter(|(o, _)| !o.status.success())
        .map(|(_, t)| t)
        .collect();
    check!(
        !failures.is_empty(),
        "an unclaimed install fails:\n{}",
        texts.join("\n----\n")
    );
    // helm 4 applies server-side: both installs can pass its ownership check
    // before either object exists, and the later apply takes the object over
    // without an error — which the earlier case's own ownership check reports.
    let taken_over = format!("ClusterRole/{reader} belongs to namespace");
    let collision = failures.iter().all(|t| {
        t.contains("cannot be imported into the current release")
            || t.contains("already exists")
            || t.contains(&taken_over)
    });
    check!(
        collision,
        "each failure is helm's collision on ClusterRole/{reader} or its binding:\n{}",
        texts.join("\n----\n")
    );
    // Unclaimed, the winner's cluster-scoped objects outlive its namespace.
    let left = leftovers(&client, &runs, reader).await?;
    check!(
        left.contains(&format!("ClusterRole/{reader}")),
        "without a claim nothing deletes the ClusterRole after the case: {left:?}"
    );
    kube::Api::<ClusterRole>::all(client.clone())
        .delete(reader, &DeleteParams::default())
        .await?;
    kube::Api::<ClusterRoleBinding>::all(client.clone())
        .delete(reader, &DeleteParams::default())
        .await?;
    Ok(())
}
