//! The unit of work: the one write path of the hub.
//!
//! A change is *planned* from fresh reads into a [`Tx`] (puts that must be new or must
//! still have the revision that was read, deletes, hub events) and *committed* as one
//! `TransactWriteItems` together with one outbox item holding its events and, for an
//! inbound message, its idempotency-ledger entry. Nothing is published here: the table's
//! stream carries the outbox item to the relay (see `events::outbox`). A lost condition
//! or a transaction conflict re-plans from fresh reads, a bounded number of times.

use std::{collections::HashMap, future::Future, time::Duration};

use aws_sdk_dynamodb::types::AttributeValue;
use serde::{Serialize, de::DeserializeOwned};

use crate::{
    clock,
    events::{EventError, HubEvent, OutboxRecord},
};

use super::{
    Inbound, Keys, LedgerEntry, Record, StoreError, Table,
    ledger::LEDGER_TTL_SECONDS,
    table::{PutCondition, to_item},
};

/// DynamoDB's limit of actions in one `TransactWriteItems`.
pub const MAX_ACTIONS: usize = 100;
/// Plans (and commits) tried before a change gives up with [`TxError::Conflict`].
const ATTEMPTS: u32 = 5;

#[derive(Debug, thiserror::Error)]
pub enum TxError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Event(#[from] EventError),
    /// The message id was recorded before with another body.
    #[error("the id {message_id} was already used for a different message")]
    Reused { message_id: String },
    /// More actions than one transaction may hold: bulk work goes through due items.
    #[error("a transaction of {actions} actions exceeds DynamoDB's limit of {MAX_ACTIONS}")]
    TooLarge { actions: usize },
    /// An event larger than EventBridge accepts (it could never be published), or a
    /// change whose events exceed what one outbox item holds.
    #[error("events of {bytes} bytes exceed the limit of {limit}")]
    EventTooLarge { bytes: usize, limit: usize },
    /// Concurrent changes kept winning; retrying later may succeed.
    #[error("the change kept conflicting with concurrent changes")]
    Conflict,
}

impl TxError {
    /// Worth retrying later (storage, the bus, conflicts), as opposed to a refusal.
    pub fn is_transient(&self) -> bool {
        match self {
            TxError::Store(e) => e.is_transient(),
            TxError::Event(_) | TxError::Conflict => true,
            TxError::Reused { .. } | TxError::TooLarge { .. } | TxError::EventTooLarge { .. } => {
                false
            }
        }
    }
}

enum Op {
    Put {
        item: HashMap<String, AttributeValue>,
        condition: PutCondition,
    },
    Delete(Keys),
    Add {
        keys: Keys,
        counters: Vec<(String, u64)>,
        if_absent: Vec<(String, AttributeValue)>,
    },
}

/// The writes and events of one change.
#[derive(Default)]
pub struct Tx {
    ops: Vec<Op>,
    events: Vec<HubEvent>,
}

impl Tx {
    pub fn new() -> Self {
        Self::default()
    }

    /// Writes the record, replacing any item with its key.
    pub fn put<R: Record>(&mut self, record: &R) -> Result<&mut Self, StoreError> {
        self.push_put(record, PutCondition::None)
    }

    /// Writes the record only if no item has its key.
    pub fn put_new<R: Record>(&mut self, record: &R) -> Result<&mut Self, StoreError> {
        self.push_put(record, PutCondition::New)
    }

    /// Writes the record only while the stored one still has revision `expected`
    /// (optimistic concurrency; `None`: the item must not exist yet).
    pub fn put_revision<R: Record>(
        &mut self,
        record: &R,
        expected: Option<u64>,
    ) -> Result<&mut Self, StoreError> {
        let condition = match expected {
            None => PutCondition::New,
            Some(revision) => PutCondition::Revision(revision),
        };
        self.push_put(record, condition)
    }

    /// Adds to counters of an item (`ADD`), creating it with `if_absent` attributes
    /// when it does not exist: counts that must move with the change (idempotent only
    /// through the rest of the transaction, e.g. a `put_new`).
    pub fn add_counts(
        &mut self,
        keys: Keys,
        counters: &[(&str, u64)],
        if_absent: Vec<(String, AttributeValue)>,
    ) -> &mut Self {
        self.ops.push(Op::Add {
            keys,
            counters: counters
                .iter()
                .map(|(n, v)| ((*n).to_owned(), *v))
                .collect(),
            if_absent,
        });
        self
    }

    pub fn delete(&mut self, keys: Keys) -> &mut Self {
        self.ops.push(Op::Delete(keys));
        self
    }

    /// A hub event the change causes: published if and only if the change commits.
    pub fn event(&mut self, event: HubEvent) -> &mut Self {
        self.events.push(event);
        self
    }

    pub fn is_empty(&self) -> bool {
        self.ops.is_empty() && self.events.is_empty()
    }

    /// Transaction actions this change needs (its events are one outbox item).
    pub fn actions(&self) -> usize {
        self.ops.len() + usize::from(!self.events.is_empty())
    }

    fn push_put<R: Record>(
        &mut self,
        record: &R,
        condition: PutCondition,
    ) -> Result<&mut Self, StoreError> {
        self.ops.push(Op::Put {
            item: to_item(record)?,
            condition,
        });
        Ok(self)
    }
}

/// A record written under optimistic concurrency: it carries the `revision` a write must
/// still find, and when it last changed.
pub trait Revisioned: Record + Clone {
    fn revision(&self) -> u64;
    fn set_revision(&mut self, revision: u64);
    fn set_updated_at(&mut self, at: String);
}

/// A planned change and what the caller answers once it committed.
pub struct Planned<T> {
    pub tx: Tx,
    pub outcome: T,
}

impl<T> Planned<T> {
    pub fn new(tx: Tx, outcome: T) -> Self {
        Self { tx, outcome }
    }

    /// Nothing to write (an inbound message still gets its ledger entry).
    pub fn nothing(outcome: T) -> Self {
        Self {
            tx: Tx::new(),
            outcome,
        }
    }
}

/// What an inbound message came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied<T> {
    /// This delivery made the change (or found nothing to change) and recorded it.
    Committed(T),
    /// An earlier delivery of the same message did: its stored outcome, nothing changed.
    Duplicate(T),
}

impl<T> Applied<T> {
    pub fn into_inner(self) -> T {
        match self {
            Applied::Committed(t) | Applied::Duplicate(t) => t,
        }
    }

    pub fn is_duplicate(&self) -> bool {
        matches!(self, Applied::Duplicate(_))
    }
}

enum CommitError {
    /// The ledger entry exists: another delivery of the message committed first.
    LedgerTaken,
    /// A condition on the planned state or a conflict: plan again from fresh reads.
    Replan,
    Failed(TxError),
}

/// What a caller already read for a change's first plan (beside its own checks, in one
/// round trip); a replan after a lost race reads afresh.
pub struct FirstRead<R>(std::sync::Mutex<Option<R>>);

impl<R> FirstRead<R> {
    pub fn new(read_already: Option<R>) -> Self {
        Self(std::sync::Mutex::new(read_already))
    }

    /// The first time, what was read already (if anything); afterwards `read()`.
    pub async fn or_read<E, Fut>(&self, read: impl FnOnce() -> Fut) -> Result<R, E>
    where
        Fut: Future<Output = Result<R, E>>,
    {
        let taken = self.0.lock().unwrap_or_else(|e| e.into_inner()).take();
        match taken {
            Some(record) => Ok(record),
            None => read().await,
        }
    }
}

/// The table: commits [`Tx`]s with their outbox items and ledger entries.
#[derive(Clone, Debug)]
pub struct UnitOfWork {
    table: Table,
}

impl UnitOfWork {
    pub fn new(table: Table) -> Self {
        Self { table }
    }

    pub fn table(&self) -> &Table {
        &self.table
    }

    /// Plans and commits one change. `plan` reads what it needs and answers the writes;
    /// it runs again (bounded) when a condition it relied on was lost meanwhile.
    pub async fn apply<T, E, F, Fut>(&self, mut plan: F) -> Result<T, E>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<Planned<T>, E>>,
        E: From<TxError>,
    {
        for attempt in 0..ATTEMPTS {
            backoff(attempt).await;
            let Planned { tx, outcome } = plan().await?;
            match self.commit(tx, None).await {
                Ok(()) => return Ok(outcome),
                Err(CommitError::Replan | CommitError::LedgerTaken) => continue,
                Err(CommitError::Failed(e)) => return Err(e.into()),
            }
        }
        Err(TxError::Conflict.into())
    }

    /// Commits `tx` once, without replanning: `Ok(false)` when one of its conditions no
    /// longer holds (another writer got there first; the caller drops its work).
    pub async fn commit_once(&self, tx: Tx) -> Result<bool, TxError> {
        match self.commit(tx, None).await {
            Ok(()) => Ok(true),
            Err(CommitError::Replan | CommitError::LedgerTaken) => Ok(false),
            Err(CommitError::Failed(e)) => Err(e),
        }
    }

    /// Changes one record: starts from `read_already` (the record as the caller read
    /// it, say beside its authentication: one round trip fewer) or reads it fresh,
    /// `change`s it (`false`: nothing to change, the record is answered as read), and
    /// writes it as the next revision on the condition that the stored one is still the
    /// one read; a lost race reads afresh.
    pub async fn update_from<R, E, Read, Fut, Change>(
        &self,
        read_already: Option<R>,
        read: Read,
        change: Change,
    ) -> Result<R, E>
    where
        R: Revisioned,
        E: From<TxError>,
        Read: Fn() -> Fut,
        Fut: Future<Output = Result<R, E>>,
        Change: Fn(&mut R) -> Result<bool, E>,
    {
        self.update_with(read_already, read, change, |_, _| Ok(()))
            .await
    }

    /// [`update_from`](Self::update_from), with `also` adding writes that go with the
    /// new revision in its transaction (a copy of it kept elsewhere, say).
    pub async fn update_with<R, E, Read, Fut, Change, Also>(
        &self,
        read_already: Option<R>,
        read: Read,
        change: Change,
        also: Also,
    ) -> Result<R, E>
    where
        R: Revisioned,
        E: From<TxError>,
        Read: Fn() -> Fut,
        Fut: Future<Output = Result<R, E>>,
        Change: Fn(&mut R) -> Result<bool, E>,
        Also: Fn(&R, &mut Tx) -> Result<(), TxError>,
    {
        let first = FirstRead::new(read_already);
        self.apply(|| async {
            let current = first.or_read(&read).await?;
            let mut next = current.clone();
            if !change(&mut next)? {
                return Ok(Planned::nothing(current));
            }
            next.set_revision(current.revision() + 1);
            next.set_updated_at(clock::sortable(clock::now()));
            let mut tx = Tx::new();
            tx.put_revision(&next, Some(current.revision()))
                .map_err(TxError::from)?;
            also(&next, &mut tx)?;
            Ok(Planned::new(tx, next))
        })
        .await
    }

    /// Plans and commits the change an inbound message causes, recorded in the ledger
    /// in the same transaction. A redelivery (same id, same body hash) answers the
    /// stored outcome and changes nothing; the same id with another body is
    /// [`TxError::Reused`].
    pub async fn apply_inbound<T, E, F, Fut>(
        &self,
        inbound: &Inbound,
        account: Option<crate::domain::AccountId>,
        mut plan: F,
    ) -> Result<Applied<T>, E>
    where
        T: Serialize + DeserializeOwned,
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<Planned<T>, E>>,
        E: From<TxError>,
    {
        // The ledger is read only when a message may have been seen: the entry's
        // condition in the transaction tells a redelivery (and a plan's error or a lost
        // race may be one), so a first delivery makes no ledger read at all.
        for attempt in 0..ATTEMPTS {
            backoff(attempt).await;
            let Planned { tx, outcome } = match plan().await {
                Ok(planned) => planned,
                Err(e) => {
                    return match self.recorded(inbound).await? {
                        Some(stored) => Ok(Applied::Duplicate(stored)),
                        None => Err(e),
                    };
                }
            };
            let now = clock::now();
            let entry = LedgerEntry {
                scope: inbound.scope.clone(),
                message_id: inbound.message_id.clone(),
                kind: inbound.kind.clone(),
                body_hash: inbound.body_hash.clone(),
                outcome: serde_json::to_string(&outcome).map_err(|e| TxError::Event(e.into()))?,
                account_id: account,
                recorded_at: clock::sortable(now),
                expires_at: now.unix_timestamp() + LEDGER_TTL_SECONDS,
            };
            match self.commit(tx, Some(&entry)).await {
                Ok(()) => return Ok(Applied::Committed(outcome)),
                Err(CommitError::LedgerTaken) => {
                    if let Some(stored) = self.recorded(inbound).await? {
                        return Ok(Applied::Duplicate(stored));
                    }
                }
                Err(CommitError::Replan) => {
                    if let Some(stored) = self.recorded(inbound).await? {
                        return Ok(Applied::Duplicate(stored));
                    }
                }
                Err(CommitError::Failed(e)) => return Err(e.into()),
            }
        }
        Err(TxError::Conflict.into())
    }

    /// The stored outcome of a message already recorded with the same body.
    async fn recorded<T: DeserializeOwned>(&self, inbound: &Inbound) -> Result<Option<T>, TxError> {
        let Some(entry) = self.table.get::<LedgerEntry>(&inbound.keys()).await? else {
            return Ok(None);
        };
        if entry.body_hash != inbound.body_hash {
            return Err(TxError::Reused {
                message_id: inbound.message_id.clone(),
            });
        }
        let outcome = serde_json::from_str(&entry.outcome).map_err(EventError::from)?;
        Ok(Some(outcome))
    }

    /// One transaction: the change, its outbox item, then the ledger entry (last, so
    /// a lost ledger condition is told apart from a lost condition of the change).
    async fn commit(&self, tx: Tx, ledger: Option<&LedgerEntry>) -> Result<(), CommitError> {
        let failed = |e: TxError| CommitError::Failed(e);
        let actions = tx.actions() + usize::from(ledger.is_some());
        if actions == 0 {
            return Ok(());
        }
        if actions > MAX_ACTIONS {
            return Err(failed(TxError::TooLarge { actions }));
        }
        let mut writes = Vec::with_capacity(actions);
        for op in tx.ops {
            let write = match op {
                Op::Put { item, condition } => self.table.transact_put(item, condition),
                Op::Delete(keys) => self.table.transact_delete(&keys),
                Op::Add {
                    keys,
                    counters,
                    if_absent,
                } => self.table.transact_add(&keys, &counters, &if_absent),
            };
            writes.push(write.map_err(|e| failed(e.into()))?);
        }
        match OutboxRecord::stage(&tx.events).map_err(|e| failed(e.into()))? {
            None => {}
            Some(Err(too_large)) => {
                return Err(failed(TxError::EventTooLarge {
                    bytes: too_large.bytes,
                    limit: too_large.limit,
                }));
            }
            Some(Ok(record)) => {
                let item = to_item(&record).map_err(|e| failed(e.into()))?;
                writes.push(
                    self.table
                        .transact_put(item, PutCondition::New)
                        .map_err(|e| failed(e.into()))?,
                );
            }
        }
        if let Some(entry) = ledger {
            let item = to_item(entry).map_err(|e| failed(e.into()))?;
            writes.push(
                self.table
                    .transact_put(item, PutCondition::New)
                    .map_err(|e| failed(e.into()))?,
            );
        }
        let ledger_index = ledger.map(|_| writes.len() - 1);
        match self.table.transact(writes).await {
            Ok(()) => Ok(()),
            Err(StoreError::TransactionConditionFailed { index })
                if Some(index) == ledger_index =>
            {
                Err(CommitError::LedgerTaken)
            }
            Err(
                StoreError::TransactionConditionFailed { .. } | StoreError::TransactionConflict,
            ) => Err(CommitError::Replan),
            Err(e) => Err(failed(e.into())),
        }
    }
}

/// A short, growing pause before a retry, so racing writers fall out of step.
async fn backoff(attempt: u32) {
    if attempt > 0 {
        let jitter = u64::from(rand::random::<u8>() % 20);
        tokio::time::sleep(Duration::from_millis(15 * u64::from(attempt) + jitter)).await;
    }
}
