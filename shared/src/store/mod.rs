//! The hub's single DynamoDB table: its keys (`keys`, with the access-pattern table),
//! typed reads and writes (`table`), and the one write path that every change goes
//! through (`tx`: transaction + outbox + idempotency ledger).

pub mod keys;
pub mod ledger;
mod table;
pub mod tx;

pub use ledger::{Inbound, LedgerEntry, canonical_hash};
pub use table::{Keys, Query, Record, StoreError, Table};
pub use tx::{Applied, FirstRead, Planned, Revisioned, Tx, TxError, UnitOfWork};
