//! The local stand-in for the cloud: runs everything `infra/template.yaml` declares on
//! one machine, with no AWS account and no Docker.
//!
//! - the emulator (moto) provides DynamoDB, EventBridge, KMS and SQS;
//! - the template's tables, buses, keys and queues are created in it;
//! - every HttpApi route is served on 127.0.0.1 through the function's own axum router;
//! - every EventBridgeRule becomes a rule on the emulator's bus targeting a queue that a
//!   poller hands to the function (the emulator does the pattern matching);
//! - every event source mapping on a table's stream (the outbox relay) is polled from the
//!   emulator's DynamoDB stream and delivered as Lambda would (`streams`);
//! - every schedule runs on a timer and can be fired now with
//!   `POST /_local/schedules/{name}`;
//! - a demo partner is seeded and written to `.hub/demo-partner.json`, a demo
//!   marketplace to `.hub/demo-marketplace.json`, and the demo loyalty site (activated
//!   against the fake SMS gateway) to `.hub/demo-site.json`.
//!
//! The template is the only list of routes, rules and schedules.

pub mod clock;
pub mod cron;
pub mod demo;
pub mod emails;
pub mod failures;
pub mod functions;
pub mod iam;
pub mod lambda_api;
pub mod oauth_provider;
pub mod partner_buses;
pub mod recorder;
pub mod round_trips;
pub mod routes;
pub mod rules;
pub mod schedules;
pub mod sms_gateway;
pub mod streams;

use std::{collections::HashMap, path::PathBuf, sync::Arc};

use aws_config::SdkConfig;
use hub_emulator::{Emulator, LocalResources, Physical, Template, template};
use shared::{Config, Hub};
use tokio::{sync::watch, task::JoinHandle};

pub use demo::{DemoMarketplace, DemoPartner};

#[derive(Debug, thiserror::Error)]
pub enum StandInError {
    #[error(transparent)]
    Emulator(#[from] hub_emulator::EmulatorError),
    #[error("template: {0}")]
    Template(String),
    #[error("function {function}: {message}")]
    Function { function: String, message: String },
    #[error("demo partner: {0}")]
    Demo(String),
    #[error("wiring the emulator: {0}")]
    Wiring(String),
    #[error("serving HTTP: {0}")]
    Serve(#[from] std::io::Error),
}

#[derive(Debug, Clone)]
pub struct Options {
    /// 0 picks a free port.
    pub port: u16,
    /// Prefix of every local resource name (lets several stand-ins share one emulator).
    pub prefix: String,
    /// Where to write the demo partner's file, if anywhere.
    pub demo_file: Option<PathBuf>,
    /// Run schedules on timers (they can always be fired on demand).
    pub run_timers: bool,
    /// Send the functions' outbound calls to the local recorder (`HUB_OUTBOUND=real`
    /// sends them to their URLs).
    pub record_outbound: bool,
    pub template_path: PathBuf,
    /// Template parameters to deploy with (as `sam deploy --parameter-overrides`).
    pub parameters: HashMap<String, String>,
    /// The template's text to deploy instead of `template_path`'s (tests of a changed
    /// template, e.g. a policy without an action the code needs).
    pub template_text: Option<String>,
}

impl Options {
    /// `HUB_PORT` (default 3000), `HUB_PREFIX` (default `hub-local`), `HUB_TIMERS=off`;
    /// the project is the one around the current directory (or `HUB_ROOT`).
    pub fn from_env() -> Result<Self, StandInError> {
        Self::from_env_at(hub_emulator::project_root())
    }

    /// The same for the project at `root` (`hub-local --root <dir>`).
    pub fn from_env_at(root: PathBuf) -> Result<Self, StandInError> {
        let port = match std::env::var("HUB_PORT") {
            Ok(p) => p
                .trim()
                .parse()
                .map_err(|_| StandInError::Wiring(format!("HUB_PORT={p} is not a port")))?,
            Err(_) => 3000,
        };
        if !root.join("infra/template.yaml").is_file() {
            return Err(StandInError::Template(format!(
                "{} is not a Partner Hub checkout (no infra/template.yaml): run hub-local inside one, or pass --root",
                root.display()
            )));
        }
        Ok(Self {
            port,
            prefix: std::env::var("HUB_PREFIX").unwrap_or_else(|_| "hub-local".into()),
            demo_file: Some(root.join(".hub/demo-partner.json")),
            run_timers: std::env::var("HUB_TIMERS")
                .map(|v| v != "off")
                .unwrap_or(true),
            record_outbound: std::env::var("HUB_OUTBOUND").map_or(true, |v| v != "real"),
            template_path: root.join("infra/template.yaml"),
            parameters: HashMap::new(),
            template_text: None,
        })
    }

    /// For tests: a free port, a unique prefix, no demo file, schedules fired on demand.
    pub fn for_tests(prefix: &str) -> Self {
        Self {
            port: 0,
            prefix: prefix.to_owned(),
            demo_file: None,
            run_timers: false,
            record_outbound: true,
            template_path: hub_emulator::project_root().join("infra/template.yaml"),
            parameters: HashMap::new(),
            template_text: None,
        }
    }
}

/// Which emulator the stand-in uses.
pub enum EmulatorHandle {
    /// Started for this stand-in and stopped with it.
    Owned(Emulator),
    /// Shared by the process (tests).
    Shared(&'static Emulator),
}

impl EmulatorHandle {
    fn get(&self) -> &Emulator {
        match self {
            EmulatorHandle::Owned(e) => e,
            EmulatorHandle::Shared(e) => e,
        }
    }
}

/// The `source` of the demo partner's EventBridge events.
pub const DEMO_EVENT_SOURCE: &str = "partner.demo";

/// A running stand-in.
pub struct StandIn {
    pub base_url: String,
    /// The emulator, as the account's administrator reaches it (no IAM).
    pub emulator_endpoint: String,
    /// The emulator behind IAM as AWS enforces it: where the functions and `hub-admin`
    /// send their AWS calls (see `iam`).
    pub aws_endpoint: String,
    /// The administrator's config (set-up, inspection): the emulator, unchecked.
    pub sdk: SdkConfig,
    /// Every IAM decision so far (see `iam`).
    pub authorizations: iam::AuthorizationLog,
    pub resources: LocalResources,
    /// A hub with the template's global configuration, for inspection.
    pub hub: Arc<Hub>,
    pub demo: DemoPartner,
    /// The demo marketplace (`.hub/demo-marketplace.json` beside the partner's file).
    pub demo_marketplace: DemoMarketplace,
    /// The demo loyalty site (`.hub/demo-site.json`), activated against the fake gateway.
    pub demo_site: demo::DemoSite,
    /// The demo partner's embed API token and origin (`.hub/demo-embed.json`).
    pub demo_embed: Option<demo::DemoEmbed>,
    /// The embed API function's services (its environment names the signing key).
    pub embed_hub: Option<Arc<Hub>>,
    /// `METHOD path -> function` lines, for the banner.
    pub served: Vec<String>,
    /// Partners' buses played locally (see `partner_buses`).
    pub partner_buses: partner_buses::PartnerBuses,
    /// Third parties' HTTP endpoints played locally (see `recorder`).
    pub recorder: recorder::Recorder,
    /// The AWS round trips of every request and event so far (see `round_trips`).
    pub round_trips: round_trips::RoundTripLog,
    /// The hub's "now" for everything this stand-in runs (`/_local/clock`).
    pub clock: clock::LocalClock,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    _emulator: EmulatorHandle,
}

impl StandIn {
    /// Environment lines that point the AWS SDK and `hub-admin` at this stand-in.
    pub fn env_lines(&self) -> String {
        let config = &self.hub.config;
        let embed_key = self.resources.lookup("EmbedSigningKey", Some("Arn"));
        [
            ("TABLE_NAME", config.table_name.as_str()),
            ("EVENT_BUS_NAME", config.event_bus_name.as_str()),
            (
                "INGRESS_BUS_NAME",
                config.ingress_bus_name.as_deref().unwrap_or_default(),
            ),
            ("KMS_KEY_ID", config.kms_key_id.as_str()),
            (
                "EMBED_SIGNING_KEY_IDS",
                embed_key.as_deref().unwrap_or_default(),
            ),
            (
                "DEAD_LETTER_QUEUE_URL",
                self.dead_letter_queue_url().unwrap_or_default(),
            ),
            // hub-admin's calls are checked against the template's OperatorPolicy, as
            // on AWS with that policy attached (the Lambda Invoke API included).
            ("AWS_ENDPOINT_URL", self.aws_endpoint.as_str()),
            // Its clock (`hub-admin sign` signs at the stand-in's "now").
            ("HUB_LOCAL_URL", self.base_url.as_str()),
            ("AWS_REGION", "us-east-1"),
            ("AWS_ACCESS_KEY_ID", iam::OPERATOR),
            ("AWS_SECRET_ACCESS_KEY", "testing"),
            ("AWS_EC2_METADATA_DISABLED", "true"),
        ]
        .iter()
        .map(|(k, v)| format!("{k}={v}\n"))
        .collect()
    }

    /// An AWS config signed as the operator (`hub-admin` under `OperatorPolicy`).
    pub fn operator_sdk(&self) -> SdkConfig {
        iam::signed_as(&self.sdk, iam::OPERATOR, &self.aws_endpoint)
    }

    /// The template's dead-letter queue, where failed invocations end.
    pub fn dead_letter_queue_url(&self) -> Option<&str> {
        match self.resources.by_logical_id.get("DeadLetterQueue")? {
            Physical::Queue { url, .. } => Some(url),
            _ => None,
        }
    }

    /// Stops serving, polling and timers (an owned emulator stops when dropped).
    pub async fn stop(self) {
        let _ = self.shutdown.send(true);
        for task in self.tasks {
            let _ = task.await;
        }
    }
}

/// The whole envelope, as EventBridge hands a Lambda target: moto's default delivery to
/// SQS leaves out `account`, which the handlers check against partners' bindings.
fn full_envelope() -> Result<aws_sdk_eventbridge::types::InputTransformer, StandInError> {
    let mut builder = aws_sdk_eventbridge::types::InputTransformer::builder().input_template(
        r#"{"id": "<id>", "time": <time>, "version": "0", "detail-type": "<detail-type>", "source": "<source>", "account": "<account>", "region": "<region>", "resources": <resources>, "detail": <detail>}"#,
    );
    for field in [
        "id",
        "time",
        "detail-type",
        "source",
        "account",
        "region",
        "resources",
        "detail",
    ] {
        builder = builder.input_paths_map(field, format!("$.{field}"));
    }
    builder
        .build()
        .map_err(|e| StandInError::Wiring(e.to_string()))
}

/// Starts the emulator of this process (installing it on first use).
pub async fn start_emulator(shared: bool) -> Result<EmulatorHandle, StandInError> {
    let handle = tokio::task::spawn_blocking(move || {
        if shared {
            Emulator::shared().map(EmulatorHandle::Shared)
        } else {
            Emulator::start().map(EmulatorHandle::Owned)
        }
    })
    .await
    .map_err(|e| StandInError::Wiring(e.to_string()))??;
    Ok(handle)
}

pub async fn start(options: Options, emulator: EmulatorHandle) -> Result<StandIn, StandInError> {
    let template = match &options.template_text {
        Some(text) => Template::parse(text),
        None => Template::load(&options.template_path),
    }
    .map_err(hub_emulator::EmulatorError::from)?;
    let endpoint = emulator.get().endpoint.clone();
    let sdk = emulator.get().sdk_config().await;
    let mut resources = LocalResources::create(&sdk, &template, &options.prefix).await?;
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", options.port)).await?;
    let base_url = format!("http://{}", listener.local_addr()?);
    // Links the hub hands out (installation snippets) point at the stand-in itself.
    resources
        .parameters
        .insert("PublicBaseUrl".to_owned(), base_url.clone());
    // moto serves one request at a time, so a call may wait behind others far longer
    // than DynamoDB would answer it: a longer operation timeout than AWS's default.
    resources
        .parameters
        .insert("AwsTimeoutSeconds".to_owned(), "30".to_owned());
    // Emails go through the emulator's SES, from a verified local sender.
    resources
        .parameters
        .insert("SenderEmail".to_owned(), emails::LOCAL_SENDER.to_owned());
    emails::verify_sender(&sdk, emails::LOCAL_SENDER)
        .await
        .map_err(StandInError::Wiring)?;
    resources.parameters.extend(options.parameters.clone());
    let conditions = template.conditions(&|id, attr| resources.lookup(id, attr));
    // Functions are named by their binary locally (`!Ref`), with the ARN Lambda would
    // give them (`!GetAtt X.Arn`, e.g. in the operator's policy).
    let definitions = template
        .functions()
        .map_err(|e| StandInError::Template(e.to_string()))?;
    let function_names: HashMap<&str, &str> = definitions
        .iter()
        .map(|def| (def.logical_id.as_str(), def.binary.as_str()))
        .collect();
    let lookup = |id: &str, attr: Option<&str>| match id.strip_prefix("Condition::") {
        Some(name) => conditions.get(name).map(bool::to_string),
        None => resources.lookup(id, attr).or_else(|| {
            let binary = *function_names.get(id)?;
            match attr {
                None => Some(binary.to_owned()),
                Some("Arn") => Some(failures::function_arn(binary)),
                _ => None,
            }
        }),
    };

    // IAM: each function's role, and the operator's policy, as the template renders them.
    let mut principals = HashMap::new();
    for def in &definitions {
        let policies = hub_emulator::iam::function_policies(&template, &def.logical_id, &lookup)
            .map_err(|message| StandInError::Function {
                function: def.logical_id.clone(),
                message: format!("its IAM policies: {message}"),
            })?;
        principals.insert(def.logical_id.clone(), iam::Principal { policies });
    }
    let operator = hub_emulator::iam::managed_policy(&template, iam::OPERATOR, &lookup)
        .map_err(|e| StandInError::Template(format!("{}: {e}", iam::OPERATOR)))?;
    principals.insert(
        iam::OPERATOR.to_owned(),
        iam::Principal {
            policies: vec![operator],
        },
    );
    let mut index = hub_emulator::iam::ResourceIndex::new(
        hub_emulator::ACCOUNT,
        hub_emulator::resources::REGION,
    );
    index
        .verified_email_identities
        .insert(emails::LOCAL_SENDER.to_owned());
    let aws_listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
    let aws_endpoint = format!("http://{}", aws_listener.local_addr()?);
    // A changed template (a test taking an action out) is no deployment of the
    // project's: its decisions stay out of the suite's log.
    let authorizations = match options.template_text {
        Some(_) => iam::AuthorizationLog::default(),
        None => iam::AuthorizationLog::from_env(),
    };
    let enforcer = iam::Enforcer::new(
        principals,
        index,
        endpoint.clone(),
        base_url.clone(),
        authorizations.clone(),
    );
    let unchecked = enforcer.unchecked();
    for line in &unchecked {
        tracing::warn!("IAM condition not checked by the stand-in: {line}");
    }
    let (shutdown, shutdown_rx) = watch::channel(false);
    let mut tasks = Vec::new();
    {
        let mut stop = shutdown_rx.clone();
        let app = enforcer.router();
        tasks.push(tokio::spawn(async move {
            let server = axum::serve(aws_listener, app).with_graceful_shutdown(async move {
                let _ = stop.changed().await;
            });
            if let Err(e) = server.await {
                tracing::error!(error = %e, "the stand-in's IAM proxy stopped");
            }
        }));
    }
    let mut bound_routes = Vec::new();
    let mut local_schedules = Vec::new();
    let mut pollers = Vec::new();
    let mut served = Vec::new();
    let mut global_hub = None;
    let mut embed_hub: Option<Arc<Hub>> = None;
    // Event functions by name, for the Lambda Invoke API the stand-in serves.
    let mut invocable: HashMap<String, functions::Invoke> = HashMap::new();
    let round_trip_log = round_trips::RoundTripLog::from_env();
    // Event functions by logical id, for the template's event source mappings.
    let mut by_logical_id: HashMap<String, (String, functions::Invoke)> = HashMap::new();
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let events = aws_sdk_eventbridge::Client::new(&sdk);
    let hub_clock = shared::clock::Clock::new();
    for def in &definitions {
        let mut env: HashMap<String, String> = def
            .environment
            .iter()
            .filter_map(|(k, v)| Some((k.clone(), template::resolve(v, &lookup)?)))
            .collect();
        if options.record_outbound {
            // The one address the outbound client may call despite its rules.
            env.insert("OUTBOUND_RECORDER_URL".to_owned(), base_url.clone());
        }
        let config = Config::from_lookup(|name| env.get(name).cloned()).map_err(|e| {
            StandInError::Function {
                function: def.logical_id.clone(),
                message: e.to_string(),
            }
        })?;
        // The stand-in's own hub (seeding, inspection) is not a function's: its caches
        // stay the functions' own, so their first invocation is cold.
        global_hub.get_or_insert_with(|| Arc::new(Hub::new(config.clone(), &sdk)));
        // The function calls AWS as its role, through the IAM proxy.
        let function_sdk = iam::signed_as(&sdk, &def.logical_id, &aws_endpoint);
        let hub = Arc::new(Hub::new(config, &function_sdk));
        if def.binary == embed_api::NAME {
            // Its environment names the signing key: the demo's tokens are issued here.
            embed_hub = Some(hub.clone());
        }
        let function = functions::find(&def.binary).ok_or_else(|| StandInError::Function {
            function: def.logical_id.clone(),
            message: format!(
                "binary {} is not known to hub-local (add it to functions.rs)",
                def.binary
            ),
        })?;
        let polls = function.polls;
        let function = function
            .bind(hub)
            .map_err(|message| StandInError::Function {
                function: def.logical_id.clone(),
                message,
            })?;
        let (router, invoke) = match function {
            functions::Entry::Http(router) => {
                (Some(clock::scoped_router(&hub_clock, router)), None)
            }
            functions::Entry::Event(invoke) => (
                None,
                Some(
                    round_trip_log
                        .measured_invoke(&def.binary, clock::scoped_invoke(&hub_clock, invoke)),
                ),
            ),
        };
        let missing = |what: &str| StandInError::Function {
            function: def.logical_id.clone(),
            message: format!("has {what} but its binary offers no entry point for them"),
        };
        for route in &def.routes {
            let router = router.clone().ok_or_else(|| missing("HttpApi routes"))?;
            served.push(format!(
                "{:<6} {}{}  -> {}",
                route.method, base_url, route.path, def.binary
            ));
            bound_routes.push(routes::BoundRoute {
                method: route.method.clone(),
                path: route.path.clone(),
                function: def.binary.clone(),
                target: router,
            });
        }
        let on_failure = failures::OnFailure {
            // Lambda sends a failed invocation to its destination with the function's role.
            sqs: aws_sdk_sqs::Client::new(&function_sdk),
            queue_url: def
                .on_failure
                .as_ref()
                .and_then(|arn| template::resolve(arn, &lookup))
                .and_then(|arn| {
                    resources.by_logical_id.values().find_map(|p| match p {
                        Physical::Queue { url, arn: a } if *a == arn => Some(url.clone()),
                        _ => None,
                    })
                }),
            function: def.binary.clone(),
        };
        if let Some(invoke) = &invoke {
            invocable.insert(def.binary.clone(), invoke.clone());
            by_logical_id.insert(def.logical_id.clone(), (def.binary.clone(), invoke.clone()));
        }
        for rule in &def.rules {
            let invoke = invoke.clone().ok_or_else(|| missing("EventBridge rules"))?;
            let name = format!("{}-{}-{}", options.prefix, def.logical_id, rule.name);
            let bus = match &rule.bus {
                Some(id) => resources
                    .lookup(id, None)
                    .ok_or_else(|| StandInError::Template(format!("{name}: unknown bus {id}")))?,
                None => "default".to_owned(),
            };
            let Physical::Queue { url, arn } = hub_emulator::resources::create_queue(&sqs, &name)
                .await
                .map_err(StandInError::Wiring)?
            else {
                unreachable!("create_queue returns a queue")
            };
            events
                .put_rule()
                .name(&name)
                .event_bus_name(&bus)
                .event_pattern(rule.resolved_pattern(&lookup).to_string())
                .send()
                .await
                .map_err(|e| {
                    StandInError::Wiring(
                        aws_sdk_eventbridge::error::DisplayErrorContext(e).to_string(),
                    )
                })?;
            events
                .put_targets()
                .rule(&name)
                .event_bus_name(&bus)
                .targets(
                    aws_sdk_eventbridge::types::Target::builder()
                        .id("stand-in-queue")
                        .arn(&arn)
                        .input_transformer(full_envelope()?)
                        .build()
                        .map_err(|e| StandInError::Wiring(e.to_string()))?,
                )
                .send()
                .await
                .map_err(|e| {
                    StandInError::Wiring(
                        aws_sdk_eventbridge::error::DisplayErrorContext(e).to_string(),
                    )
                })?;
            served.push(format!(
                "rule   {} {} -> {}",
                bus,
                rule.resolved_pattern(&lookup),
                def.binary
            ));
            pollers.push(rules::RulePoller {
                sqs: sqs.clone(),
                queue_url: url,
                label: name,
                invoke,
                on_failure: on_failure.clone(),
            });
        }
        for schedule in &def.schedules {
            let invoke = invoke.clone().ok_or_else(|| missing("schedules"))?;
            let name = format!("{}.{}", def.logical_id, schedule.name);
            // A parameter's expression (`!Ref SmsSendSchedule`) as the deployment sets it.
            let expression = schedule.resolved_expression(&lookup).ok_or_else(|| {
                StandInError::Template(format!("{name}: the schedule expression does not resolve"))
            })?;
            // Checked whether or not the timers run (the tests run none): a schedule the
            // stand-in cannot time is an error at start, not when `hub-local` is run.
            schedules::Timer::parse(&expression)
                .map_err(|e| StandInError::Template(format!("{name}: {e}")))?;
            served.push(format!(
                "every  {} -> {}  (fire now: POST {}/_local/schedules/{})",
                expression, def.binary, base_url, name
            ));
            local_schedules.push(schedules::LocalSchedule {
                name,
                expression,
                polls,
                invoke,
                on_failure: on_failure.clone(),
            });
        }
    }
    let mut stream_pollers = Vec::new();
    let queue_url_of = |arn: &str| {
        resources.by_logical_id.values().find_map(|p| match p {
            Physical::Queue { url, arn: a } if a == arn => Some(url.clone()),
            _ => None,
        })
    };
    for mapping in template
        .stream_mappings()
        .map_err(|e| StandInError::Template(e.to_string()))?
    {
        let id = &mapping.logical_id;
        let (binary, invoke) = by_logical_id
            .get(&mapping.function)
            .cloned()
            .ok_or_else(|| {
                StandInError::Template(format!(
                    "{id}: {} is not an event function of the template",
                    mapping.function
                ))
            })?;
        let stream_arn = template::resolve(&mapping.event_source, &lookup).ok_or_else(|| {
            StandInError::Template(format!(
                "{id}: the event source does not resolve to a stream"
            ))
        })?;
        streams::StreamPoller::check_filters(&mapping)
            .map_err(|e| StandInError::Template(format!("{id}: {e}")))?;
        served.push(format!("stream {stream_arn} -> {binary}"));
        stream_pollers.push(streams::StreamPoller {
            http: reqwest::Client::new(),
            // Lambda reads the stream with the function's role.
            endpoint: aws_endpoint.clone(),
            access_key: mapping.function.clone(),
            stream_arn,
            on_failure: failures::OnFailure {
                sqs: aws_sdk_sqs::Client::new(&iam::signed_as(
                    &sdk,
                    &mapping.function,
                    &aws_endpoint,
                )),
                queue_url: mapping
                    .on_failure
                    .as_ref()
                    .and_then(|arn| template::resolve(arn, &lookup))
                    .and_then(|arn| queue_url_of(&arn)),
                function: binary,
            },
            invoke,
            mapping,
        });
    }
    let hub = global_hub
        .ok_or_else(|| StandInError::Template("the template declares no function".into()))?;

    // The stand-in's own tasks read the time on its clock too (failure records, stream
    // records' arrival times).
    for poller in pollers {
        tasks.push(tokio::spawn(
            hub_clock
                .clone()
                .scope_owned(poller.run(shutdown_rx.clone())),
        ));
    }
    for poller in stream_pollers {
        tasks.push(tokio::spawn(
            hub_clock
                .clone()
                .scope_owned(poller.run(shutdown_rx.clone())),
        ));
    }
    if options.run_timers {
        for schedule in &local_schedules {
            let timer = schedules::Timer::parse(&schedule.expression)
                .map_err(|e| StandInError::Template(format!("{}: {e}", schedule.name)))?;
            tasks.push(tokio::spawn(hub_clock.clone().scope_owned(
                schedules::run_timer(
                    schedule.clone(),
                    timer,
                    shutdown_rx.clone(),
                    schedules::of(&hub_clock),
                ),
            )));
        }
    }
    let partner_buses = partner_buses::PartnerBuses::new(&sdk, &options.prefix);
    let recorder = recorder::Recorder::default();
    let local_clock = clock::LocalClock::new(
        hub_clock.clone(),
        &local_schedules,
        aws_sdk_dynamodb::Client::new(&sdk),
        resources
            .table_name()
            .ok_or_else(|| StandInError::Template("the template declares no table".into()))?
            .to_owned(),
    )
    .map_err(StandInError::Template)?;
    let app = shared::http::with_fallbacks(
        routes::build(bound_routes, &round_trip_log)?
            .merge(round_trip_log.clone().router())
            .merge(local_clock.clone().router())
            .merge(schedules::admin_router(local_schedules))
            .merge(partner_buses.clone().admin_router())
            .merge(recorder.clone().router())
            .merge(lambda_api::router(invocable))
            .merge(iam::admin_router(authorizations.clone(), unchecked))
            .merge(emails::router(endpoint.clone())),
    );
    let app = clock::scoped_router(&hub_clock, app);
    let mut stop = shutdown_rx.clone();
    tasks.push(tokio::spawn(async move {
        let app = app.into_make_service_with_connect_info::<std::net::SocketAddr>();
        let server = axum::serve(listener, app).with_graceful_shutdown(async move {
            let _ = stop.changed().await;
        });
        if let Err(e) = server.await {
            tracing::error!(error = %e, "the stand-in's HTTP server stopped");
        }
    }));

    let demo = demo::seed(&hub.partners, &base_url, options.demo_file.as_deref()).await?;
    // The plan catalog partners list: the contract's two examples and a third.
    let catalog = options
        .template_path
        .parent()
        .and_then(|infra| infra.parent())
        .map(|root| root.join("events/partner-api/plans.json"))
        .ok_or_else(|| StandInError::Demo("no project root above the template".into()))?;
    let plans = std::fs::read_to_string(&catalog)
        .map_err(|e| StandInError::Demo(format!("{}: {e}", catalog.display())))?;
    let specs = shared::plans::parse_catalog(&plans)
        .map_err(|e| StandInError::Demo(format!("{}: {e}", catalog.display())))?;
    hub.plans
        .put(&specs)
        .await
        .map_err(|e| StandInError::Demo(e.to_string()))?;
    let marketplace_file = options
        .demo_file
        .as_deref()
        .map(|f| f.with_file_name("demo-marketplace.json"));
    let demo_marketplace =
        demo::seed_marketplace(&hub.partners, &base_url, marketplace_file.as_deref()).await?;
    let demo_site = demo::seed_site(
        &hub.sms,
        demo.partner_id,
        &base_url,
        options
            .demo_file
            .as_deref()
            .map(|f| f.with_file_name("demo-site.json"))
            .as_deref(),
    )
    .await?;
    let demo_embed = match &embed_hub {
        Some(embed_hub) => Some(
            demo::seed_embed(
                &embed_hub.embed,
                demo.partner_id,
                &base_url,
                options
                    .demo_file
                    .as_deref()
                    .map(|f| f.with_file_name("demo-embed.json"))
                    .as_deref(),
            )
            .await?,
        ),
        None => None,
    };
    // The demo partner also talks EventBridge: its events carry `source: partner.demo`
    // and the hub answers on a local bus recorded at /_local/partner-buses/demo/events.
    let demo_bus = partner_buses
        .create("demo")
        .await
        .map_err(StandInError::Demo)?;
    hub.set_partner_events(
        demo.partner_id,
        DEMO_EVENT_SOURCE,
        &demo_bus,
        &[shared::domain::AwsAccountId::of_arn(&demo_bus)
            .ok_or_else(|| StandInError::Demo(format!("no account in {demo_bus}")))?],
    )
    .await
    .map_err(|e| StandInError::Demo(e.to_string()))?;
    Ok(StandIn {
        partner_buses,
        recorder,
        round_trips: round_trip_log,
        clock: local_clock,
        base_url,
        emulator_endpoint: endpoint,
        aws_endpoint,
        authorizations,
        sdk,
        resources,
        hub,
        demo,
        demo_marketplace,
        demo_site,
        demo_embed,
        embed_hub,
        served,
        shutdown,
        tasks,
        _emulator: emulator,
    })
}
