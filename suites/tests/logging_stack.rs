//! full_stack cases for the logging pipeline: a line an echo-server pod prints
//! on stdout must be found in the Elasticsearch-API store, once, with its pod,
//! namespace and container — also a line the runtime split into partial lines,
//! lines of pods in other namespaces, and lines printed while the shipper restarts.
//!
//! Every case runs once per store implementation (`noida-db`, `osmem-server`):
//! both speak the Elasticsearch API, neither is Elasticsearch, and a case that
//! passes on both does not lean on one emulator's quirks.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use kube::api::DeleteParams;
use testware::echo::EchoServer;
use testware::namespace::TestNamespace;
use testware::{cases, check, check_eq, CaseResult, Ctx, PodSecurity, Suite, Values};
use testware_systems::logs::{LogQuery, LoggingStack};

/// The stores, by name, with the values file that selects each.
const STORES: [(&str, &str); 2] = [
    ("noida_db", "ci/offline.yaml"),
    ("osmem_server", "ci/osmem.yaml"),
];

fn main() -> std::process::ExitCode {
    Suite::new("logging_stack")
        .charts(suites::charts_dir())
        .cases(cases![chart_deploy(full_stack, logging) for STORES:
            printed_line_is_found_once_with_its_pod,
            long_line_split_by_the_runtime_comes_back_whole,
            lines_of_pods_in_other_namespaces_never_mix,
            shipper_restarted_mid_stream_loses_nothing,
            indices_older_than_the_retention_are_deleted,
        ])
        .run()
}

/// Time to find a printed line: the shipper reads by inotify and ships at once.
const FIND: Duration = Duration::from_secs(60);

/// Installs the logging chart (`values` plus `sets`) into `ns` and reaches its store.
async fn install(
    ctx: &Ctx,
    ns: &TestNamespace,
    values: &str,
    sets: &[(&str, &str)],
) -> anyhow::Result<LoggingStack> {
    let mut values = Values::default().file(values);
    for (key, value) in sets {
        values = values.set(*key, *value);
    }
    let deployment = ctx
        .charts()?
        .install("logging")
        .with_values(values)
        .run(ctx, ns)
        .await?;
    let stack = LoggingStack::connect(&deployment).await?;
    println!("store: {}", stack.server().await?);
    Ok(stack)
}

/// The name of the echo pod's (only) container.
async fn container_of(ns: &TestNamespace, pod: &str) -> anyhow::Result<String> {
    let spec = ns.api::<Pod>().get(pod).await?.spec.unwrap_or_default();
    spec.containers
        .first()
        .map(|c| c.name.clone())
        .ok_or_else(|| anyhow::anyhow!("pod {pod} has no container"))
}

/// A namespace for the stack: its shipper reads the node's log files through
/// hostPath volumes, which only the `privileged` Pod Security level admits (as
/// a log shipper's namespace is labelled in production).
async fn stack_namespace(ctx: &Ctx) -> anyhow::Result<std::sync::Arc<TestNamespace>> {
    ctx.create_namespace_with(PodSecurity::Privileged).await
}

/// A line no other case prints.
fn unique_line(ctx: &Ctx, what: &str) -> String {
    format!(
        "{what} {} {}",
        ctx.config.run_id,
        testware::config::random_suffix(12)
    )
}

async fn printed_line_is_found_once_with_its_pod(values: &'static str, ctx: Ctx) -> CaseResult {
    let ns = stack_namespace(&ctx).await?;
    let stack = install(&ctx, &ns, values, &[]).await?;
    let echo = EchoServer::deploy_bundled(&ctx, &ns).await?;
    let container = container_of(&ns, echo.pod()).await?;
    let line = unique_line(&ctx, "hello logging");
    let printed = Instant::now();
    echo.print_to_stdout(&line).await?;
    let query = LogQuery::namespace(ns.name())
        .pod(echo.pod())
        .container(&container)
        .text(&line);
    let found = stack
        .wait_for_line(&query, ctx.deadline().cap(FIND))
        .await?;
    println!(
        "found {:.2} s after it was printed",
        printed.elapsed().as_secs_f64()
    );
    check_eq!(found.len(), 1, "lines found for {query}: {found:?}");
    let found = &found[0];
    check_eq!(&found.message, &line, "the line as stored");
    check_eq!(found.copies, 1, "documents stored for the line");
    check_eq!(found.namespace.as_str(), ns.name(), "namespace");
    check_eq!(found.pod.as_str(), echo.pod(), "pod");
    check_eq!(found.container, container, "container");
    check_eq!(found.stream.as_str(), "stdout", "stream");
    Ok(())
}

async fn long_line_split_by_the_runtime_comes_back_whole(
    values: &'static str,
    ctx: Ctx,
) -> CaseResult {
    let ns = stack_namespace(&ctx).await?;
    let stack = install(&ctx, &ns, values, &[]).await?;
    let echo = EchoServer::deploy_bundled(&ctx, &ns).await?;
    // 150 KiB: the runtime writes it as partial CRI lines of its maximum line
    // size (containerd's default 16 KiB; the local cluster's 64 KiB: 3 parts).
    let marker = unique_line(&ctx, "long");
    let mut line = marker.clone();
    while line.len() < 150 * 1024 {
        line.push_str(" 0123456789abcdef");
    }
    line.push_str(" end");
    echo.print_to_stdout(&line).await?;
    let query = LogQuery::namespace(ns.name()).pod(echo.pod()).text(&marker);
    let found = stack
        .wait_for_line(&query, ctx.deadline().cap(FIND))
        .await?;
    check_eq!(found.len(), 1, "lines starting with the marker");
    check!(
        found[0].parts >= 3,
        "a 150 KiB line should have been split into at least 3 partial lines, was {}",
        found[0].parts
    );
    check!(
        found[0].message == line,
        "the joined line differs: {} bytes stored vs {} printed; ends {:?}",
        found[0].message.len(),
        line.len(),
        found[0].message.chars().rev().take(20).collect::<String>()
    );
    Ok(())
}

async fn lines_of_pods_in_other_namespaces_never_mix(values: &'static str, ctx: Ctx) -> CaseResult {
    let ns = stack_namespace(&ctx).await?;
    let other = ctx.create_namespace().await?;
    // This case ships the whole node, as production does.
    let stack = install(
        &ctx,
        &ns,
        values,
        &[("shipper.releaseNamespaceOnly", "false")],
    )
    .await?;
    let (here, there) = tokio::try_join!(
        EchoServer::deploy_bundled(&ctx, &ns),
        EchoServer::deploy_bundled(&ctx, &other)
    )?;
    let shared = unique_line(&ctx, "same words");
    let (line_here, line_there) = (format!("{shared} here"), format!("{shared} there"));
    tokio::try_join!(
        here.print_to_stdout(&line_here),
        there.print_to_stdout(&line_there)
    )?;
    for (echo, namespace, line) in [(&here, &ns, &line_here), (&there, &other, &line_there)] {
        let found = stack
            .wait_for_line(
                &LogQuery::namespace(namespace.name()).text(line),
                ctx.deadline().cap(FIND),
            )
            .await?;
        check_eq!(found.len(), 1, "lines {line:?} in {}", namespace.name());
        check_eq!(found[0].pod.as_str(), echo.pod(), "pod of {line:?}");
    }
    for (namespace, foreign) in [(&ns, &line_there), (&other, &line_here)] {
        let mixed = stack
            .find(&LogQuery::namespace(namespace.name()).text(foreign))
            .await?;
        check!(
            mixed.is_empty(),
            "{foreign:?} was printed elsewhere but found in {}: {mixed:?}",
            namespace.name()
        );
    }
    Ok(())
}

/// Lines printed at a steady pace while the shipper pod is deleted (SIGTERM:
/// it saves its queue and read positions) and replaced: every line is stored,
/// once.
async fn shipper_restarted_mid_stream_loses_nothing(values: &'static str, ctx: Ctx) -> CaseResult {
    let ns = stack_namespace(&ctx).await?;
    let stack = Arc::new(install(&ctx, &ns, values, &[]).await?);
    let echo = Arc::new(EchoServer::deploy_bundled(&ctx, &ns).await?);
    let marker = unique_line(&ctx, "stream");
    let printer = {
        let (echo, marker) = (echo.clone(), marker.clone());
        tokio::spawn(async move {
            for i in 0..150 {
                echo.print_to_stdout(&format!("{marker} {i:04}")).await?;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            anyhow::Ok(())
        })
    };
    tokio::time::sleep(Duration::from_secs(1)).await;
    let shippers = ns
        .api::<Pod>()
        .list(&kube::api::ListParams::default().labels("app.kubernetes.io/component=shipper"))
        .await?;
    for pod in &shippers.items {
        let name = pod.metadata.name.clone().unwrap_or_default();
        ns.api::<Pod>()
            .delete(&name, &DeleteParams::default())
            .await?;
        println!("deleted shipper pod {name} mid-stream");
    }
    check!(!shippers.items.is_empty(), "no shipper pod to restart");
    printer.await??;

    let query = LogQuery::namespace(ns.name()).pod(echo.pod()).text(&marker);
    let deadline = Instant::now() + ctx.deadline().cap(Duration::from_secs(90));
    let lines = loop {
        let lines = stack.find(&query).await?;
        if lines.len() >= 150 || Instant::now() >= deadline {
            break lines;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for line in &lines {
        *seen.entry(line.message.clone()).or_default() += line.copies;
    }
    let missing: Vec<usize> = (0..150)
        .filter(|i| !seen.contains_key(&format!("{marker} {i:04}")))
        .collect();
    check!(
        missing.is_empty(),
        "{} of 150 lines missing after the shipper restarted (first: {:?}); {}",
        missing.len(),
        missing.iter().take(5).collect::<Vec<_>>(),
        stack.shipper_report().await
    );
    let twice: Vec<(&String, &usize)> = seen.iter().filter(|(_, n)| **n > 1).collect();
    check!(twice.is_empty(), "lines stored more than once: {twice:?}");
    Ok(())
}

/// The retention sweeper (a sweep every 2 s here) deletes the daily indices
/// older than `indices.retentionDays` and nothing else.
async fn indices_older_than_the_retention_are_deleted(
    values: &'static str,
    ctx: Ctx,
) -> CaseResult {
    let ns = stack_namespace(&ctx).await?;
    let stack = install(
        &ctx,
        &ns,
        values,
        &[
            ("retention.intervalSeconds", "2"),
            ("indices.retentionDays", "7"),
        ],
    )
    .await?;
    let today = time::OffsetDateTime::now_utc().date();
    let day = |days_ago: i64| format!("logs-{}", today - time::Duration::days(days_ago));
    let (old, older, recent) = (day(8), day(400), day(6));
    let other = "audit-2020-01-01".to_owned();
    for index in [&old, &older, &recent, &other] {
        stack
            .put_document(index, serde_json::json!({"message": "planted by the test"}))
            .await?;
    }
    let left = testware::wait::wait_until(
        format!("{old} and {older} to be deleted"),
        ctx.deadline().cap(Duration::from_secs(30)),
        || async {
            let indices = stack.indices().await.map_err(|e| format!("{e:#}"))?;
            if indices.contains(&old) || indices.contains(&older) {
                Err(format!("indices: {indices:?}"))
            } else {
                Ok(indices)
            }
        },
    )
    .await?;
    check!(
        left.contains(&recent) && left.contains(&other),
        "{recent} (within the retention) and {other} (another name) must stay: {left:?}"
    );
    Ok(())
}
