//! How a function runs, on Lambda and in the local stand-in alike.
//!
//! An HTTP function is an axum `Router`. An event or schedule function is a handler
//! that answers `Ok(outcome)`, `Err(Failure::Retry)` (transient: the invocation fails,
//! so Lambda or the stand-in retries it) or `Err(Failure::Park)` (it can never be
//! processed: the runner parks the event as a dead letter and acknowledges it, so no
//! retry storm follows). An event that does not even deserialize is parked too. Each
//! function crate describes itself with a [`Function`]; its `main.rs` hands that to
//! [`serve_events`] or [`serve_http`], and the stand-in builds the same entry points.

use futures::FutureExt;
use std::{fmt, future::Future, pin::Pin, sync::Arc};

use serde::{Serialize, de::DeserializeOwned};
use serde_json::Value;

use crate::Hub;

/// Why a handler did not finish an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// Transient (storage, the bus, a dependency): retry the event.
    Retry(String),
    /// The event can never be processed as sent: park it for an operator.
    Park(String),
}

impl Failure {
    /// Retry when the error is transient, park otherwise.
    pub fn classify(err: impl fmt::Display, transient: bool) -> Self {
        if transient {
            Failure::Retry(err.to_string())
        } else {
            Failure::Park(err.to_string())
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Retry(reason) => write!(f, "transient failure, will be retried: {reason}"),
            Failure::Park(reason) => write!(f, "cannot be processed: {reason}"),
        }
    }
}

/// The future a handler returns, borrowing the hub.
pub type HandlerFuture<'a, O> = Pin<Box<dyn Future<Output = Result<O, Failure>> + Send + 'a>>;

/// An invocation of an event function: the raw event in, the outcome (or the reason for
/// a retry) out.
pub type Invocation = Pin<Box<dyn Future<Output = Result<Value, String>> + Send>>;

/// An event entry point bound to its hub.
pub type Invoke = Arc<dyn Fn(Value) -> Invocation + Send + Sync>;

/// Binds an event function to its hub (building its own clients once), or says why not.
type EventEntry = Arc<dyn Fn(Arc<Hub>) -> Result<Invoke, String> + Send + Sync>;

#[derive(Clone)]
enum Kind {
    Http(fn(Arc<Hub>) -> axum::Router),
    Event(EventEntry),
}

/// A function of the hub: its name (the template's `Binary`) and its entry point.
#[derive(Clone)]
pub struct Function {
    pub name: &'static str,
    /// The due work its schedule looks for (`DueIndex` kinds): a run when none of it is
    /// due finds nothing to do, so the stand-in's clock may skip it (`/_local/clock`).
    pub polls: &'static [crate::store::keys::Due],
    kind: Kind,
}

/// A function's entry point, bound to a hub.
pub enum Entry {
    Http(axum::Router),
    Event(Invoke),
}

impl Function {
    pub fn http(name: &'static str, router: fn(Arc<Hub>) -> axum::Router) -> Self {
        Self {
            name,
            polls: &[],
            kind: Kind::Http(router),
        }
    }

    /// An event or schedule function. `E` is the event as Lambda delivers it.
    pub fn event<E, O>(
        name: &'static str,
        handler: for<'a> fn(&'a Hub, E) -> HandlerFuture<'a, O>,
    ) -> Self
    where
        E: DeserializeOwned + Send + 'static,
        O: Serialize + fmt::Debug + Send + 'static,
    {
        let entry: EventEntry = Arc::new(move |hub: Arc<Hub>| {
            let invoke: Invoke = Arc::new(move |raw| {
                let hub = hub.clone();
                Box::pin(async move { run_handler(&hub, name, raw, |e| handler(&hub, e)).await })
            });
            Ok(invoke)
        });
        Self {
            name,
            polls: &[],
            kind: Kind::Event(entry),
        }
    }

    /// An event or schedule function with state of its own (e.g. the outbound client),
    /// built once when the function starts.
    pub fn event_with<S, E, O>(
        name: &'static str,
        init: fn(&Hub) -> Result<S, String>,
        handler: for<'a> fn(&'a Hub, &'a S, E) -> HandlerFuture<'a, O>,
    ) -> Self
    where
        S: Send + Sync + 'static,
        E: DeserializeOwned + Send + 'static,
        O: Serialize + fmt::Debug + Send + 'static,
    {
        let entry: EventEntry = Arc::new(move |hub: Arc<Hub>| {
            let state = Arc::new(init(&hub)?);
            let invoke: Invoke = Arc::new(move |raw| {
                let (hub, state) = (hub.clone(), state.clone());
                Box::pin(
                    async move { run_handler(&hub, name, raw, |e| handler(&hub, &state, e)).await },
                )
            });
            Ok(invoke)
        });
        Self {
            name,
            polls: &[],
            kind: Kind::Event(entry),
        }
    }

    /// Declares the due work a scheduled function looks for (see [`Function::polls`]).
    pub fn polling(mut self, due: &'static [crate::store::keys::Due]) -> Self {
        self.polls = due;
        self
    }

    pub fn bind(&self, hub: Arc<Hub>) -> Result<Entry, String> {
        match &self.kind {
            Kind::Http(router) => Ok(Entry::Http(crate::http::edge(router(hub)))),
            Kind::Event(entry) => entry(hub)
                .map(Entry::Event)
                .map_err(|e| format!("{}: {e}", self.name)),
        }
    }
}

/// Runs one event through a handler: deserialize, handle, park or retry.
async fn run_handler<'h, E, O, F>(
    hub: &'h Hub,
    name: &'static str,
    raw: Value,
    handler: F,
) -> Result<Value, String>
where
    E: DeserializeOwned,
    O: Serialize + fmt::Debug,
    F: FnOnce(E) -> HandlerFuture<'h, O>,
{
    let result = match serde_json::from_value::<E>(raw.clone()) {
        // A panic parks the event with the reason instead of failing the invocation
        // (which Lambda would retry twice with the same input, then drop).
        Ok(event) => std::panic::AssertUnwindSafe(handler(event))
            .catch_unwind()
            .await
            .unwrap_or_else(|panic| {
                Err(Failure::Park(format!(
                    "the handler panicked: {}",
                    panic_message(&*panic)
                )))
            }),
        Err(e) => Err(Failure::Park(format!(
            "the event does not have the expected shape: {e}"
        ))),
    };
    match result {
        Ok(outcome) => {
            tracing::debug!(function = name, ?outcome, "event handled");
            Ok(serde_json::to_value(&outcome).unwrap_or(Value::Null))
        }
        Err(Failure::Retry(reason)) => {
            tracing::warn!(function = name, %reason, "event failed; it will be retried");
            Err(reason)
        }
        Err(Failure::Park(reason)) => {
            hub.dead_letters
                .park(name, &reason, &raw)
                .await
                .map_err(|e| format!("parking failed: {e}"))?;
            Ok(Value::String("parked".into()))
        }
    }
}

/// Invokes an event function, turning a panic anywhere in it into an error, so that a
/// caller that handles many events (the stand-in's pollers and timers) goes on.
pub async fn invoke_guarded(invoke: &Invoke, event: Value) -> Result<Value, String> {
    std::panic::AssertUnwindSafe(async { invoke(event).await })
        .catch_unwind()
        .await
        .unwrap_or_else(|panic| Err(format!("the function panicked: {}", panic_message(&*panic))))
}

/// The text a panic was raised with.
pub fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".to_owned())
}

/// The error a function's `main` ends with.
pub type Error = lambda_runtime::Error;

/// `main` of an event or schedule function on Lambda.
pub async fn serve_events(function: Function) -> Result<(), Error> {
    crate::telemetry::init();
    let hub = Arc::new(Hub::from_env().await?);
    let Entry::Event(invoke) = function.bind(hub)? else {
        return Err(format!("{} is an HTTP function: use serve_http", function.name).into());
    };
    lambda_runtime::run(lambda_runtime::service_fn(
        move |event: lambda_runtime::LambdaEvent<Value>| {
            use tracing::Instrument as _;
            let invoke = invoke.clone();
            // Every log line of the invocation carries Lambda's request id.
            let span = tracing::info_span!("invocation", request_id = %event.context.request_id);
            async move { invoke(event.payload).await.map_err(Error::from) }.instrument(span)
        },
    ))
    .await
}

/// `main` of an HTTP function on Lambda.
pub async fn serve_http(router: fn(Arc<Hub>) -> axum::Router) -> Result<(), Error> {
    crate::telemetry::init();
    let hub = Arc::new(Hub::from_env().await?);
    lambda_http::run(crate::http::edge(router(hub))).await
}
