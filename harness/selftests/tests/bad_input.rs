//! Bad input gets a clear error, never a hang or a panic: missing or old helm,
//! a chart path that does not exist, a template that does not parse, output that
//! is not YAML, values that violate the schema, a values file that is missing.

use std::path::PathBuf;
use std::sync::Arc;

use testware::chart::ChartError;
use testware::helm::{Helm, HelmError};
use testware::{
    cases, check, expect_err, ChartSet, Ctx, HelmChart, RenderOptions, RunConfig, Suite,
};
use testware_selftests::fixture;

fn main() -> std::process::ExitCode {
    Suite::new("bad_input")
        .charts(testware_selftests::charts_dir())
        .cases(cases![no_deploy:
            missing_helm_is_named_with_a_hint,
            old_helm_is_refused,
            missing_chart_path_is_named,
            unparsable_template_shows_helms_error,
            output_that_is_not_yaml_is_refused,
            values_violating_the_schema_are_refused,
            missing_values_file_is_named,
            helm_variable_that_cannot_be_helm_is_named,
            unreadable_kubeconfig_is_named_with_its_origin,
            dead_api_server_is_named_and_the_probe_ends,
            invalid_test_namespace_names_its_origin,
            unparsable_mark_expression_names_its_origin,
        ])
        .cases(cases![chart_deploy: expired_client_certificate_is_refused_with_a_hint])
        .run()
}

async fn missing_helm_is_named_with_a_hint(ctx: Ctx) -> anyhow::Result<()> {
    let empty = ctx.artifacts_dir();
    let err = expect_err(
        Helm::locate_in(None, std::ffi::OsStr::new(""), &empty).await,
        "locating helm nowhere",
    )?;
    let text = err.to_string();
    check!(matches!(err, HelmError::NotFound { .. }), "{text}");
    check!(
        text.starts_with("helm not found")
            && text.contains("hint: set HELM to a helm 3.8.0+ binary or put one on PATH"),
        "{text}"
    );
    let err = expect_err(Helm::at("/nonexistent/helm").await, "using a missing helm")?;
    check!(
        testware::error_chain(&err).starts_with("failed to start /nonexistent/helm: No such file"),
        "{}",
        testware::error_chain(&err)
    );
    Ok(())
}

async fn old_helm_is_refused(ctx: Ctx) -> anyhow::Result<()> {
    let dir = ctx.artifacts_dir();
    std::fs::create_dir_all(&dir)?;
    let fake = dir.join("helm");
    std::fs::write(&fake, "#!/bin/sh\necho v3.7.2\n")?;
    std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755))?;
    let text = expect_err(Helm::at(&fake).await, "using helm 3.7.2")?.to_string();
    check!(
        text.contains("is helm 3.7.2, but 3.8.0 or newer is needed"),
        "{text}"
    );
    Ok(())
}

async fn missing_chart_path_is_named(charts: Arc<ChartSet>) -> anyhow::Result<()> {
    let err = expect_err(charts.open("no-such-chart"), "opening a missing chart")?.to_string();
    check!(
        err.starts_with("chart not found: ")
            && err.ends_with("charts-under-test/no-such-chart has no Chart.yaml"),
        "{err}"
    );
    Ok(())
}

async fn render_error(
    charts: &ChartSet,
    chart: &HelmChart,
    options: RenderOptions,
) -> anyhow::Result<(ChartError, String)> {
    let renderer = charts.renderer().await?;
    match renderer.render(chart, &options).await {
        Ok(_) => anyhow::bail!("rendering {} should have failed", chart.dir().display()),
        Err(e) => {
            let chain = testware::error_chain(&e);
            Ok((e, chain))
        }
    }
}

async fn unparsable_template_shows_helms_error(charts: Arc<ChartSet>) -> anyhow::Result<()> {
    let chart = HelmChart::open(fixture("broken-charts/unparsable-template"))?;
    let (err, text) = render_error(&charts, &chart, RenderOptions::default()).await?;
    check!(
        matches!(
            err,
            ChartError::Helm {
                source: HelmError::Failed { .. },
                ..
            }
        ),
        "{text}"
    );
    check!(
        text.starts_with("failed to render chart unparsable-template: `"),
        "{text}"
    );
    check!(
        text.contains(" template test ") && text.contains("failed with exit status: 1"),
        "the command and status are named: {text}"
    );
    check!(
        text.contains("templates/configmap.yaml") && text.contains("parse error"),
        "helm's stderr is carried: {text}"
    );
    Ok(())
}

async fn output_that_is_not_yaml_is_refused(charts: Arc<ChartSet>) -> anyhow::Result<()> {
    let chart = HelmChart::open(fixture("broken-charts/invalid-yaml"))?;
    let (_, text) = render_error(&charts, &chart, RenderOptions::default()).await?;
    check!(
        text.starts_with("failed to render chart invalid-yaml")
            || text.starts_with("failed to parse the rendered chart invalid-yaml"),
        "{text}"
    );
    check!(
        text.contains("configmap.yaml"),
        "the template is named: {text}"
    );
    Ok(())
}

async fn values_violating_the_schema_are_refused(charts: Arc<ChartSet>) -> anyhow::Result<()> {
    let chart = charts.open("echo-server")?;
    let options = RenderOptions::default().values(fixture("values/echo-server-bad-schema.yaml"));
    let (_, text) = render_error(&charts, &chart, options).await?;
    check!(
        text.contains("values don't meet the specifications of the schema"),
        "{text}"
    );
    check!(
        text.contains("replicaCount"),
        "the offending value is named: {text}"
    );
    Ok(())
}

async fn missing_values_file_is_named(charts: Arc<ChartSet>) -> anyhow::Result<()> {
    let chart = charts.open("echo-server")?;
    let options = RenderOptions::default().values(fixture("values/no-such-file.yaml"));
    let (err, text) = render_error(&charts, &chart, options).await?;
    check!(matches!(err, ChartError::MissingValues { .. }), "{text}");
    check!(
        text.starts_with("values file ")
            && text.ends_with("fixtures/values/no-such-file.yaml does not exist"),
        "{text}"
    );
    Ok(())
}

/// `RunConfig::parse` with `args` and only `env` in the environment.
fn parse_config(
    args: &[&str],
    env: &[(&str, &str)],
) -> Result<RunConfig, testware::config::ConfigError> {
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    RunConfig::parse(
        std::iter::once("bad_input".to_owned()).chain(args.iter().map(|a| a.to_string())),
        move |key| env.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone()),
    )
    .map(|(config, _)| config)
}

async fn helm_variable_that_cannot_be_helm_is_named(ctx: Ctx) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = ctx.artifacts_dir();
    std::fs::create_dir_all(&dir)?;
    let not_executable = dir.join("helm-not-executable");
    std::fs::write(&not_executable, "#!/bin/sh\necho v3.10.1\n")?;
    std::fs::set_permissions(&not_executable, std::fs::Permissions::from_mode(0o644))?;
    let cases = [
        (PathBuf::new(), "HELM= is empty"),
        (dir.clone(), "is a directory"),
        (not_executable.clone(), "is not executable"),
        (dir.join("no-such-helm"), "does not exist"),
    ];
    for (value, problem) in cases {
        let err = expect_err(
            Helm::locate_in(Some(value.clone()), std::ffi::OsStr::new(""), &dir).await,
            &format!("locating helm with HELM={}", value.display()),
        )?;
        let text = err.to_string();
        check!(
            matches!(err, HelmError::BadVariable { .. })
                && text.starts_with("HELM=")
                && text.contains(problem)
                && text.contains("(hint: point HELM to a helm"),
            "HELM={}: {text}",
            value.display()
        );
    }
    Ok(())
}

async fn unreadable_kubeconfig_is_named_with_its_origin(ctx: Ctx) -> anyhow::Result<()> {
    let dir = ctx.artifacts_dir();
    std::fs::create_dir_all(&dir)?;
    let garbage = dir.join("garbage-kubeconfig");
    std::fs::write(&garbage, "clusters: [this is: not, a kubeconfig\n")?;
    let garbage_text = garbage.display().to_string();
    let dir_text = dir.display().to_string();
    for (args, env, path, origin) in [
        (
            vec![],
            vec![("KUBECONFIG", garbage_text.as_str())],
            &garbage_text,
            "KUBECONFIG",
        ),
        (
            vec!["--kubeconfig", dir_text.as_str()],
            vec![],
            &dir_text,
            "--kubeconfig",
        ),
    ] {
        let config = parse_config(&args, &env)?;
        let err = expect_err(
            testware::cluster::probe(&config).await,
            "probing with a broken kubeconfig",
        )?;
        let text = err.to_string();
        check!(
            text.starts_with(&format!(
                "failed to read the kubeconfig {path} (named by {origin})"
            )) && text.contains("hint:"),
            "{text}"
        );
    }
    Ok(())
}

/// A kubeconfig whose only cluster is `server` and whose user is `user` (a
/// flow mapping: `{token: …}` or `{client-certificate-data: …, …}`).
fn kubeconfig_for(server: &str, user: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Config\ncurrent-context: c\nclusters:\n- name: k\n  cluster:\n    server: {server}\n    insecure-skip-tls-verify: true\ncontexts:\n- name: c\n  context: {{cluster: k, user: u}}\nusers:\n- name: u\n  user: {user}\n"
    )
}

async fn dead_api_server_is_named_and_the_probe_ends(ctx: Ctx) -> anyhow::Result<()> {
    let dir = ctx.artifacts_dir();
    std::fs::create_dir_all(&dir)?;
    // A port nothing listens on: connection refused, at once.
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let path = dir.join("dead-kubeconfig");
    std::fs::write(
        &path,
        kubeconfig_for(
            &format!("https://127.0.0.1:{port}"),
            "{token: not-a-real-token}",
        ),
    )?;
    let config = parse_config(&["--kubeconfig", &path.display().to_string()], &[])?;
    let started = std::time::Instant::now();
    let err = expect_err(
        testware::cluster::probe(&config).await,
        "probing a dead server",
    )?;
    let text = testware::error_chain(&err);
    check!(
        text.starts_with(&format!(
            "API server https://127.0.0.1:{port}/ did not answer"
        )) && text.contains("hint:"),
        "{text}"
    );
    check!(
        started.elapsed() < std::time::Duration::from_secs(10),
        "the probe must end by its own timeout: took {:?}",
        started.elapsed()
    );
    Ok(())
}

async fn invalid_test_namespace_names_its_origin(_: Ctx) -> anyhow::Result<()> {
    for (args, env, origin) in [
        (
            vec!["--test-namespace", "Bad_Name"],
            vec![],
            "--test-namespace",
        ),
        (
            vec![],
            vec![("HARNESS_TEST_NAMESPACE", "Bad_Name")],
            "HARNESS_TEST_NAMESPACE",
        ),
    ] {
        let err = expect_err(parse_config(&args, &env), "a namespace name with capitals")?;
        check!(
            err.to_string()
                == format!("invalid value \"Bad_Name\" for {origin}: expected a DNS label (lowercase letters, digits and '-', at most 63)"),
            "{err}"
        );
    }
    Ok(())
}

async fn unparsable_mark_expression_names_its_origin(_: Ctx) -> anyhow::Result<()> {
    for (args, env, origin) in [
        (vec!["--mark", "kafka and"], vec![], "--mark"),
        (vec![], vec![("HARNESS_MARK", "kafka and")], "HARNESS_MARK"),
    ] {
        let err = expect_err(parse_config(&args, &env), "a mark expression cut short")?;
        let text = testware::error_chain(&err);
        check!(
            text.starts_with(&format!(
                "invalid mark expression \"kafka and\" from {origin}"
            )) && text.contains("hint:"),
            "{text}"
        );
    }
    Ok(())
}

/// A kubeconfig for the real cluster whose client certificate expired (and is
/// self-signed): the API server answers and refuses it; the error says so.
async fn expired_client_certificate_is_refused_with_a_hint(ctx: Ctx) -> anyhow::Result<()> {
    let server = testware::cluster::client_config(&ctx.config)
        .await?
        .cluster_url
        .to_string();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new())?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "expired-user");
    params.not_before = rcgen::date_time_ymd(2020, 1, 1);
    params.not_after = rcgen::date_time_ymd(2020, 2, 1);
    let key = rcgen::KeyPair::generate()?;
    let cert = params.self_signed(&key)?;
    let b64 = |pem: String| {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(pem)
    };
    let kubeconfig = kubeconfig_for(
        &server,
        &format!(
            "{{client-certificate-data: {}, client-key-data: {}}}",
            b64(cert.pem()),
            b64(key.serialize_pem())
        ),
    );
    let dir = ctx.artifacts_dir();
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("expired-kubeconfig");
    std::fs::write(&path, kubeconfig)?;
    let config = parse_config(&["--kubeconfig", &path.display().to_string()], &[])?;
    let err = expect_err(
        testware::cluster::probe(&config).await,
        "probing with an expired certificate",
    )?;
    let text = testware::error_chain(&err);
    check!(
        text.starts_with(&format!(
            "API server {server} refused the kubeconfig's credentials"
        )) && text.contains("hint: an expired or revoked client certificate"),
        "{text}"
    );
    Ok(())
}
