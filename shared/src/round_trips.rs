//! Counts the AWS calls made on one request's or one event's path.
//!
//! Every AWS client of a [`crate::Hub`] carries [`CallCounter`], an SDK interceptor that
//! notes each attempt (service, operation, start and end) in the [`Trip`] of the task it
//! runs in, if any: [`measure`] runs a future with a fresh one. Calls made by tasks the
//! future spawns are not on its path and are not counted. `round_trips` counts the
//! sequential waves: calls that overlap in time (a `try_join!`) are one round trip.
//!
//! The stand-in measures every HTTP route and event handler this way (`hub-bench
//! round-trips` prints the table); on AWS nothing is in scope and the interceptor only
//! checks a task-local.

use std::{
    future::Future,
    sync::{Arc, Mutex},
    time::Instant,
};

use aws_smithy_runtime_api::{
    box_error::BoxError,
    client::{
        interceptors::{
            Intercept,
            context::{BeforeTransmitInterceptorContextRef, FinalizerInterceptorContextRef},
        },
        orchestrator::Metadata,
        runtime_components::RuntimeComponents,
    },
};
use aws_smithy_types::config_bag::{ConfigBag, Storable, StoreReplace};
use serde::Serialize;

tokio::task_local! {
    static TRIP: Trip;
}

/// The calls of one measured path.
#[derive(Clone, Debug, Default)]
pub struct Trip(Arc<Mutex<Vec<Call>>>);

#[derive(Clone, Debug)]
struct Call {
    operation: String,
    start: Instant,
    end: Option<Instant>,
}

/// What a measured path cost.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Measured {
    /// `Service.Operation` of each attempt, in the order they started.
    pub calls: Vec<String>,
    /// Sequential waves of calls (overlapping calls count once).
    pub round_trips: usize,
}

/// Runs `future`, counting the AWS calls it makes.
pub async fn measure<F: Future>(future: F) -> (F::Output, Measured) {
    let trip = Trip::default();
    let output = TRIP.scope(trip.clone(), future).await;
    (output, trip.measured())
}

impl Trip {
    fn start(&self, operation: String) -> usize {
        let mut calls = self.0.lock().unwrap_or_else(|e| e.into_inner());
        calls.push(Call {
            operation,
            start: Instant::now(),
            end: None,
        });
        calls.len() - 1
    }

    fn end(&self, index: usize) {
        let mut calls = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(call) = calls.get_mut(index) {
            call.end = Some(Instant::now());
        }
    }

    fn measured(&self) -> Measured {
        let calls = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let mut round_trips = 0;
        let mut wave_end: Option<Instant> = None;
        for call in calls.iter() {
            // A call that starts after every earlier call ended waited for them.
            if wave_end.is_none_or(|end| call.start >= end) {
                round_trips += 1;
                wave_end = call.end;
            } else if let (Some(end), Some(this)) = (wave_end, call.end) {
                wave_end = Some(end.max(this));
            }
        }
        Measured {
            calls: calls.iter().map(|c| c.operation.clone()).collect(),
            round_trips,
        }
    }
}

/// The index of the current attempt in its trip, kept in the request's config bag.
#[derive(Clone, Copy, Debug)]
struct AttemptIndex(usize);

impl Storable for AttemptIndex {
    type Storer = StoreReplace<Self>;
}

/// The interceptor every hub AWS client carries (see the module docs).
#[derive(Debug, Clone, Copy, Default)]
pub struct CallCounter;

impl Intercept for CallCounter {
    fn name(&self) -> &'static str {
        "RoundTripCounter"
    }

    fn read_before_attempt(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let operation = cfg
            .load::<Metadata>()
            .map(|m| format!("{}.{}", m.service(), m.name()))
            .unwrap_or_else(|| "unknown".to_owned());
        if let Ok(index) = TRIP.try_with(|trip| trip.start(operation)) {
            cfg.interceptor_state().store_put(AttemptIndex(index));
        }
        Ok(())
    }

    fn read_after_attempt(
        &self,
        _context: &FinalizerInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(AttemptIndex(index)) = cfg.load::<AttemptIndex>().copied() {
            let _ = TRIP.try_with(|trip| trip.end(index));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn overlapping_calls_are_one_round_trip() {
        let trip = Trip::default();
        let base = Instant::now();
        let at = |ms: u64| base + Duration::from_millis(ms);
        let mut calls = trip.0.lock().unwrap();
        for (name, start, end) in [("a", 0, 10), ("b", 11, 30), ("c", 12, 20), ("d", 31, 40)] {
            calls.push(Call {
                operation: name.into(),
                start: at(start),
                end: Some(at(end)),
            });
        }
        drop(calls);
        let measured = trip.measured();
        assert_eq!(measured.calls, ["a", "b", "c", "d"]);
        assert_eq!(measured.round_trips, 3, "b and c overlap");
        assert_eq!(Trip::default().measured().round_trips, 0);
    }
}
