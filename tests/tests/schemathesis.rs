//! Schemathesis (PyPI, pinned in `tests/schemathesis/requirements.txt`, installed into
//! `.hub/` on first use) against a stand-in, from `infra/openapi.yaml` alone: every
//! operation, generated positive and negative requests (about 25 per operation; the
//! checks, and why three do not apply, in `schemathesis.toml`), the
//! provisioning payload signed RS512 by the hooks (`tests/schemathesis/hooks.py`) so
//! generated claims get past authentication. No 5xx, and every response, status and
//! header as the document says.
//!
//! `HUB_SCHEMATHESIS_SEED` picks another seed (the default one keeps CI reproducible);
//! `HUB_SCHEMATHESIS_EXAMPLES` another number of examples per operation.

use hub_tests::{PARTNER_A_KEY, PARTNER_A_PUB, TestHub};

#[tokio::test(flavor = "multi_thread")]
async fn schemathesis_finds_no_server_error_and_nothing_undocumented() {
    let root = hub_emulator::project_root();
    let install_root = root.clone();
    let python = tokio::task::spawn_blocking(move || {
        hub_emulator::ensure_python_tool(
            &install_root,
            "schemathesis",
            "tests/schemathesis/requirements.txt",
        )
    })
    .await
    .unwrap()
    .expect("schemathesis installs");

    // Its negative cases call without credentials, all from 127.0.0.1: the failure
    // limits (tested in attacks.rs) would answer 429 to the rest of the run.
    let hub = TestHub::start_with(
        "schemathesis",
        &[
            ("AuthFailureLimit", "1000000"),
            ("SignatureFailureLimit", "1000000"),
        ],
    )
    .await;
    let partner = hub
        .register("Schemathesis", PARTNER_A_PUB, PARTNER_A_KEY)
        .await;
    let marketplace = hub.register_marketplace("Schemathesis Market").await;
    let site = hub
        .stand_in
        .hub
        .sms
        .register_site(partner.id, "Schemathesis loyalty site")
        .await
        .unwrap();
    let private_key = root.join("tests/fixtures/keys/partner-a.key");
    // The embed API: the partner's token, and a tenant's. The tenant is another
    // partner's, so the generated deletions and revocations (ids from 1) cannot end it.
    let embed = &hub
        .stand_in
        .embed_hub
        .as_ref()
        .expect("the embed API runs")
        .embed;
    let embed_partner_token = embed.issue_partner_token(partner.id).await.unwrap().token;
    let tenant_owner = hub
        .register(
            "Schemathesis tenants",
            hub_tests::PARTNER_B_PUB,
            hub_tests::PARTNER_B_KEY,
        )
        .await;
    let (tenant, _) = embed
        .create_sub_account(
            tenant_owner.id,
            shared::domain::ExternalId::parse("schemathesis-tenant").unwrap(),
            Default::default(),
        )
        .await
        .unwrap();
    let embed_tenant_token = embed
        .issue_tenant_token(&tenant, false)
        .await
        .unwrap()
        .token;

    let hooks_dir = root.join("tests/schemathesis");
    let python_path = python
        .env
        .iter()
        .find(|(k, _)| k == "PYTHONPATH")
        .map(|(_, v)| format!("{}:{v}", hooks_dir.display()))
        .unwrap_or_else(|| hooks_dir.display().to_string());
    let seed = std::env::var("HUB_SCHEMATHESIS_SEED").unwrap_or_else(|_| "20261124".into());
    let examples = std::env::var("HUB_SCHEMATHESIS_EXAMPLES").unwrap_or_else(|_| "25".into());
    let report = std::env::temp_dir().join(format!(
        "hub-schemathesis-{}.xml",
        shared::secrets::random_hex16()
    ));
    let output = tokio::process::Command::new(&python.program)
        .args(["-m", "schemathesis.cli", "--config-file"])
        .arg(hooks_dir.join("schemathesis.toml"))
        .arg("run")
        .arg(root.join("infra/openapi.yaml"))
        .args(["--url", &hub.stand_in.base_url])
        .args(["--max-examples", &examples, "--seed", &seed])
        .args([
            "--workers",
            "1",
            "--generation-database",
            "none",
            "--no-color",
        ])
        .args(["--report", "junit", "--report-junit-path"])
        .arg(&report)
        .env("PYTHONPATH", python_path)
        .env("SCHEMATHESIS_HOOKS", "hooks")
        .env("HUB_SCHEMATHESIS_PRIVATE_KEY", &private_key)
        .env("HUB_PARTNER_TOKEN", &partner.token)
        .env("HUB_ANALYTICS_KEY", &partner.analytics_key)
        .env("HUB_MARKETPLACE_KEY", &marketplace.token)
        .env("HUB_SITE_ACCESS_TOKEN", &site.access_token)
        .env("HUB_EMBED_PARTNER_TOKEN", &embed_partner_token)
        .env("HUB_EMBED_TENANT_TOKEN", &embed_tenant_token)
        .current_dir(&root)
        .output()
        .await
        .expect("schemathesis runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}");
    // The hook's signed payloads got past authentication: shops were provisioned.
    let shops = hub
        .table_keys()
        .await
        .iter()
        .filter(|k| k.starts_with("ACCOUNT#") && k.ends_with(" ACCOUNT"))
        .count();
    hub.stop().await;
    assert!(
        output.status.success(),
        "schemathesis found failures (seed {seed}):\n{stdout}\n{stderr}"
    );
    let junit = std::fs::read_to_string(&report).unwrap_or_default();
    let _ = std::fs::remove_file(&report);
    assert!(junit.contains("testsuite"), "no report: {stdout}");
    // Every documented operation was exercised.
    let operations: usize = hub_tests::openapi()["paths"]
        .as_object()
        .unwrap()
        .values()
        .map(|methods| methods.as_object().unwrap().len())
        .sum();
    assert!(
        stdout.contains(&format!("Tested: {operations}")),
        "{operations} operations: {stdout}"
    );
    assert!(shops > 0, "no generated payload was provisioned");
    println!("schemathesis provisioned {shops} shops from generated claims");
}
