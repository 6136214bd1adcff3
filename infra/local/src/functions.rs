//! The functions the stand-in runs in-process, by the template's `Binary` name: the same
//! routers and handler runner (`shared::runtime`) the Lambda binaries run. This is the
//! list of linked crates; which routes, rules and schedules reach them comes only from
//! the template.

pub use shared::runtime::{Entry, Function, Invoke};

/// Every function crate, one line each (a test checks it against the template).
pub fn all() -> Vec<Function> {
    vec![
        partner_api::function(),
        account_timeline::function(),
        outbox_relay::function(),
        subscription_events::function(),
        partner_notifier::function(),
        account_cleanup::function(),
        analytics_api::function(),
        marketplace_webhooks::function(),
        marketplace_suspensions::function(),
        outbound_deliveries::function(),
        billing_periods::function(),
        admin_web::function(),
        sms_api::function(),
        sms_trigger::function(),
        sms_actions::function(),
        embed_api::function(),
        connection_refresh::function(),
        usage_records::function(),
    ]
}

/// The function the template names by binary.
pub fn find(binary: &str) -> Option<Function> {
    all().into_iter().find(|f| f.name == binary)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    #[test]
    fn every_template_function_has_a_crate_and_is_linked_here() {
        let root = hub_emulator::project_root();
        let template = hub_emulator::Template::load(&root.join("infra/template.yaml")).unwrap();
        let in_template: BTreeSet<String> = template
            .functions()
            .unwrap()
            .into_iter()
            .map(|f| f.binary)
            .collect();
        let linked: BTreeSet<String> = all().iter().map(|f| f.name.to_owned()).collect();
        let crates: BTreeSet<String> = std::fs::read_dir(root.join("functions"))
            .unwrap()
            .filter_map(|entry| {
                let path = entry.ok()?.path();
                path.join("Cargo.toml")
                    .exists()
                    .then(|| path.file_name()?.to_str().map(str::to_owned))?
            })
            .collect();
        assert_eq!(
            in_template, crates,
            "template functions vs crates in functions/"
        );
        assert_eq!(
            in_template, linked,
            "template functions vs functions linked by hub-local"
        );
        for name in &crates {
            let manifest =
                std::fs::read_to_string(root.join("functions").join(name).join("Cargo.toml"))
                    .unwrap();
            assert!(
                manifest.contains(&format!("name = \"{name}\"")),
                "functions/{name}: the crate name must be the binary name"
            );
        }
    }
}
