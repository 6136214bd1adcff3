//! The table: typed records (serde_dynamo), conditional and transactional writes, queries
//! paginated to the end, batch reads and deletes. Keys live in `keys`.

use std::collections::HashMap;

use aws_sdk_dynamodb::{
    Client,
    error::{ProvideErrorMetadata, SdkError},
    operation::transact_write_items::TransactWriteItemsError,
    types::{AttributeValue, Delete, Put, TransactWriteItem},
};
use serde::{Deserialize, Serialize, de::DeserializeOwned};

use super::keys::{DUE_INDEX, GSI1};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A conditional write lost: the item existed (or not) contrary to the condition.
    #[error("condition failed")]
    ConditionFailed,
    /// A transaction was cancelled because of one of its conditions; `index` is the
    /// position of the write whose condition failed.
    #[error("transaction condition failed on write {index}")]
    TransactionConditionFailed { index: usize },
    /// Another transaction touched the same items; retrying may succeed.
    #[error("transaction conflict")]
    TransactionConflict,
    #[error("item could not be (de)serialized: {0}")]
    Serde(#[from] serde_dynamo::Error),
    #[error("DynamoDB request failed: {0}")]
    Dynamo(String),
    /// The item would exceed DynamoDB's 400 KB limit: a refusal, never retried.
    #[error("an item of {bytes} bytes exceeds DynamoDB's limit of {MAX_ITEM_BYTES}")]
    ItemTooLarge { bytes: usize },
}

impl StoreError {
    pub(crate) fn from_sdk<E: ProvideErrorMetadata + std::fmt::Debug, R: std::fmt::Debug>(
        err: SdkError<E, R>,
    ) -> Self {
        if err.code() == Some("ConditionalCheckFailedException") {
            return StoreError::ConditionFailed;
        }
        let detail = match err.message() {
            Some(msg) => format!("{}: {msg}", err.code().unwrap_or("error")),
            None => format!("{err:?}"),
        };
        StoreError::Dynamo(detail)
    }

    /// Worth retrying (throttling, conflicts, the network), as opposed to a lost condition.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            StoreError::TransactionConflict | StoreError::Dynamo(_)
        )
    }
}

/// The key attributes of an item. Records embed it with `#[serde(flatten)]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Keys {
    #[serde(rename = "PK")]
    pub pk: String,
    #[serde(rename = "SK")]
    pub sk: String,
    #[serde(rename = "GSI1PK", default, skip_serializing_if = "Option::is_none")]
    pub gsi1pk: Option<String>,
    #[serde(rename = "GSI1SK", default, skip_serializing_if = "Option::is_none")]
    pub gsi1sk: Option<String>,
    /// Kind of due work; only items that are due carry it (sparse index).
    #[serde(rename = "DuePK", default, skip_serializing_if = "Option::is_none")]
    pub due_pk: Option<String>,
    #[serde(rename = "DueAt", default, skip_serializing_if = "Option::is_none")]
    pub due_at: Option<String>,
}

impl Keys {
    pub fn new(pk: impl Into<String>, sk: impl Into<String>) -> Self {
        Self {
            pk: pk.into(),
            sk: sk.into(),
            ..Self::default()
        }
    }

    pub fn with_gsi1(mut self, pk: impl Into<String>, sk: impl Into<String>) -> Self {
        self.gsi1pk = Some(pk.into());
        self.gsi1sk = Some(sk.into());
        self
    }

    pub fn due(mut self, kind: super::keys::Due, at: impl Into<String>) -> Self {
        self.due_pk = Some(kind.as_str().to_owned());
        self.due_at = Some(at.into());
        self
    }

    /// Due in one shard of the kind's work (`Due::shard`).
    pub fn due_in_shard(
        mut self,
        kind: super::keys::Due,
        shard: &str,
        at: impl Into<String>,
    ) -> Self {
        self.due_pk = Some(kind.shard(shard));
        self.due_at = Some(at.into());
        self
    }

    pub fn primary(&self) -> HashMap<String, AttributeValue> {
        HashMap::from([
            ("PK".to_owned(), AttributeValue::S(self.pk.clone())),
            ("SK".to_owned(), AttributeValue::S(self.sk.clone())),
        ])
    }
}

/// The condition of a put inside a transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PutCondition {
    None,
    /// No item has the key yet.
    New,
    /// The stored item still has this `revision` (optimistic concurrency).
    Revision(u64),
}

/// A record that lives in the table: it knows its own keys.
pub trait Record: Serialize + DeserializeOwned {
    fn keys(&self) -> Keys;
}

/// Serializes a record together with its keys.
pub(crate) fn to_item<R: Record>(
    record: &R,
) -> Result<HashMap<String, AttributeValue>, StoreError> {
    let mut item: HashMap<String, AttributeValue> = serde_dynamo::to_item(record)?;
    let keys: HashMap<String, AttributeValue> = serde_dynamo::to_item(record.keys())?;
    item.extend(keys);
    let bytes = item_size(&item);
    if bytes > MAX_ITEM_BYTES {
        return Err(StoreError::ItemTooLarge { bytes });
    }
    Ok(item)
}

pub(crate) fn from_item<R: Record>(
    mut item: HashMap<String, AttributeValue>,
) -> Result<R, StoreError> {
    for key in ["PK", "SK", "GSI1PK", "GSI1SK", "DuePK", "DueAt"] {
        item.remove(key);
    }
    Ok(serde_dynamo::from_item(item)?)
}

/// A query on the table or one of its indexes.
#[derive(Debug, Clone)]
pub struct Query {
    index: Option<&'static str>,
    partition: (&'static str, String),
    sort: Option<SortCondition>,
    limit: Option<i32>,
    /// Only these attributes (large items read for a few fields).
    projection: Option<&'static [&'static str]>,
    /// Highest sort key first.
    descending: bool,
}

#[derive(Debug, Clone)]
enum SortCondition {
    BeginsWith(&'static str, String),
    AtMost(&'static str, String),
    After(&'static str, String),
    Between(&'static str, String, String),
}

impl Query {
    pub fn partition(pk: impl Into<String>) -> Self {
        Self {
            index: None,
            partition: ("PK", pk.into()),
            sort: None,
            limit: None,
            projection: None,
            descending: false,
        }
    }

    pub fn gsi1(pk: impl Into<String>) -> Self {
        Self {
            index: Some(GSI1),
            partition: ("GSI1PK", pk.into()),
            sort: None,
            limit: None,
            projection: None,
            descending: false,
        }
    }

    /// Due work of one kind whose due time is at or before `until`.
    pub fn due(kind: super::keys::Due, until: impl Into<String>) -> Self {
        Self {
            index: Some(DUE_INDEX),
            partition: ("DuePK", kind.as_str().to_owned()),
            sort: Some(SortCondition::AtMost("DueAt", until.into())),
            limit: None,
            projection: None,
            descending: false,
        }
    }

    /// One shard of a kind's due work, due at or before `until`.
    pub fn due_in_shard(kind: super::keys::Due, shard: &str, until: impl Into<String>) -> Self {
        Self {
            index: Some(DUE_INDEX),
            partition: ("DuePK", kind.shard(shard)),
            sort: Some(SortCondition::AtMost("DueAt", until.into())),
            limit: None,
            projection: None,
            descending: false,
        }
    }

    pub fn sort_begins_with(mut self, prefix: impl Into<String>) -> Self {
        let attr = self.sort_attribute();
        self.sort = Some(SortCondition::BeginsWith(attr, prefix.into()));
        self
    }

    /// Only sort keys after `value` (a page's cursor on an index, where a query cannot
    /// start from a primary key alone).
    pub fn sort_after(mut self, value: impl Into<String>) -> Self {
        let attr = self.sort_attribute();
        self.sort = Some(SortCondition::After(attr, value.into()));
        self
    }

    /// Only sort keys from `low` to `high`, both included (a range of days).
    pub fn sort_between(mut self, low: impl Into<String>, high: impl Into<String>) -> Self {
        let attr = self.sort_attribute();
        self.sort = Some(SortCondition::Between(attr, low.into(), high.into()));
        self
    }

    /// The sort key of the table or index queried.
    fn sort_attribute(&self) -> &'static str {
        match self.index {
            Some(GSI1) => "GSI1SK",
            Some(DUE_INDEX) => "DueAt",
            _ => "SK",
        }
    }

    /// Reads only `attributes` of each item (the record must default the others).
    pub fn project(mut self, attributes: &'static [&'static str]) -> Self {
        self.projection = Some(attributes);
        self
    }

    /// Highest sort key first (the newest, for time-ordered keys).
    pub fn descending(mut self) -> Self {
        self.descending = true;
        self
    }

    pub fn page_size(mut self, limit: i32) -> Self {
        self.limit = Some(limit);
        self
    }
}

/// A page of primary keys and where the next one starts.
type PartitionKeyPage = (
    Vec<HashMap<String, AttributeValue>>,
    Option<HashMap<String, AttributeValue>>,
);

/// The table, with narrow operations the rest of the hub composes.
#[derive(Clone, Debug)]
pub struct Table {
    client: Client,
    name: String,
    /// Ids this process reserved from named counters and has not handed out yet.
    reserved_ids: std::sync::Arc<std::sync::Mutex<HashMap<String, std::ops::RangeInclusive<u64>>>>,
}

/// How many ids [`Table::next_id`] reserves at a time.
const ID_BLOCK: u64 = 20;

impl Table {
    pub fn new(client: Client, name: impl Into<String>) -> Self {
        Self {
            client,
            name: name.into(),
            reserved_ids: Default::default(),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// A strongly consistent read of one record.
    pub async fn get<R: Record>(&self, keys: &Keys) -> Result<Option<R>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.name)
            .set_key(Some(keys.primary()))
            .consistent_read(true)
            .send()
            .await
            .map_err(StoreError::from_sdk)?;
        out.item.map(from_item).transpose()
    }

    /// Writes a record, replacing any item with the same key.
    pub async fn put<R: Record>(&self, record: &R) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.name)
            .set_item(Some(to_item(record)?))
            .send()
            .await
            .map_err(StoreError::from_sdk)?;
        Ok(())
    }

    /// Writes the record's attributes over the stored item in one request, without
    /// reading it (`UpdateItem`): an attribute the record leaves out (an absent optional
    /// field) keeps its stored value. Answers the item as it now is.
    pub async fn merge<R: Record>(&self, record: &R) -> Result<R, StoreError> {
        self.merge_with(record, &[], false)
            .await?
            .ok_or_else(|| StoreError::Dynamo("UpdateItem answered no item".into()))
    }

    /// [`merge`](Self::merge), where the attributes named in `keep_stored` are written
    /// only if the item has none yet, and with `existing_only` nothing is created (`None`
    /// when there was no item).
    pub async fn merge_with<R: Record>(
        &self,
        record: &R,
        keep_stored: &[&str],
        existing_only: bool,
    ) -> Result<Option<R>, StoreError> {
        let mut update = self
            .client
            .update_item()
            .table_name(&self.name)
            .set_key(Some(record.keys().primary()))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllNew);
        let mut sets = Vec::new();
        for (i, (name, value)) in to_item(record)?.into_iter().enumerate() {
            if name == "PK" || name == "SK" {
                continue;
            }
            sets.push(if keep_stored.contains(&name.as_str()) {
                format!("#m{i} = if_not_exists(#m{i}, :m{i})")
            } else {
                format!("#m{i} = :m{i}")
            });
            update = update
                .expression_attribute_names(format!("#m{i}"), name)
                .expression_attribute_values(format!(":m{i}"), value);
        }
        if existing_only {
            update = update.condition_expression("attribute_exists(PK)");
        }
        match update
            .update_expression(format!("SET {}", sets.join(", ")))
            .send()
            .await
            .map_err(StoreError::from_sdk)
        {
            Ok(out) => out.attributes.map(from_item).transpose(),
            Err(StoreError::ConditionFailed) if existing_only => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Writes a record only if no item has its key: `ConditionFailed` otherwise.
    pub async fn put_new<R: Record>(&self, record: &R) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.name)
            .set_item(Some(to_item(record)?))
            .condition_expression("attribute_not_exists(PK)")
            .send()
            .await
            .map_err(StoreError::from_sdk)?;
        Ok(())
    }

    pub async fn delete(&self, keys: &Keys) -> Result<(), StoreError> {
        self.client
            .delete_item()
            .table_name(&self.name)
            .set_key(Some(keys.primary()))
            .send()
            .await
            .map_err(StoreError::from_sdk)?;
        Ok(())
    }

    /// Deletes an item and returns what it held, in one request: of concurrent takers
    /// only one gets it (single-use tokens).
    pub async fn take<R: Record>(&self, keys: &Keys) -> Result<Option<R>, StoreError> {
        let out = self
            .client
            .delete_item()
            .table_name(&self.name)
            .set_key(Some(keys.primary()))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllOld)
            .send()
            .await
            .map_err(StoreError::from_sdk)?;
        match out.attributes {
            Some(item) if !item.is_empty() => Ok(Some(from_item(item)?)),
            _ => Ok(None),
        }
    }

    /// A put inside a transaction, under a condition.
    pub(crate) fn transact_put(
        &self,
        item: HashMap<String, AttributeValue>,
        condition: PutCondition,
    ) -> Result<TransactWriteItem, StoreError> {
        let mut put = Put::builder().table_name(&self.name).set_item(Some(item));
        put = match condition {
            PutCondition::None => put,
            PutCondition::New => put.condition_expression("attribute_not_exists(PK)"),
            PutCondition::Revision(revision) => put
                .condition_expression("#revision = :expected")
                .expression_attribute_names("#revision", "revision")
                .expression_attribute_values(":expected", AttributeValue::N(revision.to_string())),
        };
        let put = put.build().map_err(|e| StoreError::Dynamo(e.to_string()))?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    /// Reads several records by key (`BatchGetItem`, 100 keys per request, unprocessed
    /// keys retried); missing records are skipped. Order is not preserved.
    pub async fn get_many<R: Record>(&self, keys: &[Keys]) -> Result<Vec<R>, StoreError> {
        let mut records = Vec::with_capacity(keys.len());
        for chunk in keys.chunks(100) {
            let mut pending: Vec<HashMap<String, AttributeValue>> =
                chunk.iter().map(Keys::primary).collect();
            for attempt in 0..5u32 {
                if pending.is_empty() {
                    break;
                }
                if attempt > 0 {
                    tokio::time::sleep(std::time::Duration::from_millis(25 << attempt)).await;
                }
                let request = aws_sdk_dynamodb::types::KeysAndAttributes::builder()
                    .set_keys(Some(std::mem::take(&mut pending)))
                    .consistent_read(true)
                    .build()
                    .map_err(|e| StoreError::Dynamo(e.to_string()))?;
                let out = self
                    .client
                    .batch_get_item()
                    .request_items(&self.name, request)
                    .send()
                    .await
                    .map_err(StoreError::from_sdk)?;
                for item in out
                    .responses
                    .unwrap_or_default()
                    .remove(&self.name)
                    .unwrap_or_default()
                {
                    records.push(from_item(item)?);
                }
                pending = out
                    .unprocessed_keys
                    .unwrap_or_default()
                    .remove(&self.name)
                    .map(|k| k.keys)
                    .unwrap_or_default();
            }
            if !pending.is_empty() {
                return Err(StoreError::Dynamo(
                    "BatchGetItem left keys unprocessed".into(),
                ));
            }
        }
        Ok(records)
    }

    /// Deletes items by key, 25 per `BatchWriteItem` (unprocessed ones retried).
    pub async fn delete_many(&self, keys: &[Keys]) -> Result<(), StoreError> {
        self.delete_items(keys.iter().map(Keys::primary).collect())
            .await
    }

    /// Deletes items by key: `BatchWriteItem`s of 25, sent together (up to 8 at a time),
    /// each retrying what DynamoDB left unprocessed.
    pub(crate) async fn delete_items(
        &self,
        keys: Vec<HashMap<String, AttributeValue>>,
    ) -> Result<(), StoreError> {
        use futures::{StreamExt, TryStreamExt};
        let chunks: Vec<_> = keys
            .chunks(25)
            .map(|chunk| self.delete_chunk(chunk.to_vec()))
            .collect();
        futures::stream::iter(chunks)
            .buffer_unordered(8)
            .try_collect::<Vec<()>>()
            .await?;
        Ok(())
    }

    async fn delete_chunk(
        &self,
        chunk: Vec<HashMap<String, AttributeValue>>,
    ) -> Result<(), StoreError> {
        let mut writes: Vec<aws_sdk_dynamodb::types::WriteRequest> = chunk
            .iter()
            .map(|key| {
                let delete = aws_sdk_dynamodb::types::DeleteRequest::builder()
                    .set_key(Some(key.clone()))
                    .build()
                    .map_err(|e| StoreError::Dynamo(e.to_string()))?;
                Ok(aws_sdk_dynamodb::types::WriteRequest::builder()
                    .delete_request(delete)
                    .build())
            })
            .collect::<Result<_, StoreError>>()?;
        for attempt in 0..5u32 {
            if writes.is_empty() {
                break;
            }
            if attempt > 0 {
                tokio::time::sleep(std::time::Duration::from_millis(25 << attempt)).await;
            }
            let out = self
                .client
                .batch_write_item()
                .request_items(&self.name, std::mem::take(&mut writes))
                .send()
                .await
                .map_err(StoreError::from_sdk)?;
            writes = out
                .unprocessed_items
                .unwrap_or_default()
                .remove(&self.name)
                .unwrap_or_default();
        }
        if !writes.is_empty() {
            return Err(StoreError::Dynamo(
                "BatchWriteItem left deletes unprocessed".into(),
            ));
        }
        Ok(())
    }

    /// One page of a partition's primary keys (`Query` of `PK, SK`) and where the next
    /// page starts, if there is one.
    async fn partition_key_page(
        &self,
        pk: &str,
        start: Option<HashMap<String, AttributeValue>>,
    ) -> Result<PartitionKeyPage, StoreError> {
        let out = self
            .client
            .query()
            .table_name(&self.name)
            .key_condition_expression("PK = :pk")
            .expression_attribute_values(":pk", AttributeValue::S(pk.to_owned()))
            .projection_expression("PK, SK")
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(StoreError::from_sdk)?;
        let next = out.last_evaluated_key.filter(|key| !key.is_empty());
        Ok((out.items.unwrap_or_default(), next))
    }

    /// Deletes every item of a partition unless one of them has the sort key `unless_sk`
    /// (a record that began a new life there meanwhile: an account deleted and created
    /// again under the same id). `None` when it has; else how many items went.
    pub async fn purge_partition_unless(
        &self,
        pk: &str,
        unless_sk: &str,
    ) -> Result<Option<usize>, StoreError> {
        let mut keys = Vec::new();
        let mut start = None;
        loop {
            let (page, next) = self.partition_key_page(pk, start).await?;
            keys.extend(page);
            match next {
                Some(key) => start = Some(key),
                None => break,
            }
        }
        let living = AttributeValue::S(unless_sk.to_owned());
        if keys.iter().any(|key| key.get("SK") == Some(&living)) {
            return Ok(None);
        }
        let purged = keys.len();
        self.delete_items(keys).await?;
        Ok(Some(purged))
    }

    /// Deletes every item of a partition (`Query` for the keys, `BatchWriteItem` in 25s).
    /// Returns how many items were deleted.
    pub async fn delete_partition(&self, pk: &str) -> Result<usize, StoreError> {
        let mut deleted = 0;
        let mut start = None;
        loop {
            let (keys, next) = self.partition_key_page(pk, start).await?;
            deleted += keys.len();
            self.delete_items(keys).await?;
            match next {
                Some(key) => start = Some(key),
                None => return Ok(deleted),
            }
        }
    }

    /// The raw client, for modules with a specialised write (analytics counters).
    /// Every item of the table (a paginated `Scan`): for tests and operators' checks,
    /// never on a request path.
    pub async fn scan_all(&self) -> Result<Vec<HashMap<String, AttributeValue>>, StoreError> {
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let out = self
                .client
                .scan()
                .table_name(&self.name)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(StoreError::from_sdk)?;
            items.extend(out.items.unwrap_or_default());
            match out.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => return Ok(items),
            }
        }
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub(crate) fn transact_add(
        &self,
        keys: &Keys,
        counters: &[(String, u64)],
        if_absent: &[(String, AttributeValue)],
    ) -> Result<TransactWriteItem, StoreError> {
        let mut update = aws_sdk_dynamodb::types::Update::builder()
            .table_name(&self.name)
            .set_key(Some(keys.primary()));
        let mut sets = Vec::new();
        for (i, (name, value)) in if_absent.iter().enumerate() {
            sets.push(format!("#s{i} = if_not_exists(#s{i}, :s{i})"));
            update = update
                .expression_attribute_names(format!("#s{i}"), name)
                .expression_attribute_values(format!(":s{i}"), value.clone());
        }
        let mut adds = Vec::new();
        for (i, (name, n)) in counters.iter().enumerate() {
            adds.push(format!("#a{i} :a{i}"));
            update = update
                .expression_attribute_names(format!("#a{i}"), name)
                .expression_attribute_values(format!(":a{i}"), AttributeValue::N(n.to_string()));
        }
        let mut expression = String::new();
        if !sets.is_empty() {
            expression.push_str(&format!("SET {} ", sets.join(", ")));
        }
        expression.push_str(&format!("ADD {}", adds.join(", ")));
        let update = update
            .update_expression(expression)
            .build()
            .map_err(|e| StoreError::Dynamo(e.to_string()))?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    pub(crate) fn transact_delete(&self, keys: &Keys) -> Result<TransactWriteItem, StoreError> {
        let delete = Delete::builder()
            .table_name(&self.name)
            .set_key(Some(keys.primary()))
            .build()
            .map_err(|e| StoreError::Dynamo(e.to_string()))?;
        Ok(TransactWriteItem::builder().delete(delete).build())
    }

    /// Writes all items or none (`TransactWriteItems`); the unit of work builds them.
    pub(crate) async fn transact(&self, writes: Vec<TransactWriteItem>) -> Result<(), StoreError> {
        let result = self
            .client
            .transact_write_items()
            .set_transact_items(Some(writes))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(err) => Err(match err.as_service_error() {
                Some(TransactWriteItemsError::TransactionCanceledException(cancel)) => {
                    let reasons = cancel.cancellation_reasons();
                    if let Some(index) = reasons
                        .iter()
                        .position(|r| r.code() == Some("ConditionalCheckFailed"))
                    {
                        StoreError::TransactionConditionFailed { index }
                    } else if reasons
                        .iter()
                        .any(|r| r.code() == Some("TransactionConflict"))
                    {
                        StoreError::TransactionConflict
                    } else {
                        StoreError::Dynamo(format!("transaction cancelled: {reasons:?}"))
                    }
                }
                Some(e) if e.code() == Some("TransactionConflictException") => {
                    StoreError::TransactionConflict
                }
                _ => StoreError::from_sdk(err),
            }),
        }
    }

    /// The next value of a named counter: 1, 2, 3, ... (one atomic `ADD`; never reused,
    /// gaps possible when a caller fails after taking one).
    pub async fn next_counter(&self, name: &str) -> Result<u64, StoreError> {
        self.add_to_counter(name, 1).await
    }

    /// A new id from a named counter without a round trip most of the time: the process
    /// reserves [`ID_BLOCK`] values at once (one `ADD`) and hands them out in turn. Ids
    /// stay unique and never reused; across processes they are not in creation order,
    /// and a process that ends leaves the rest of its block unused.
    pub async fn next_id(&self, name: &str) -> Result<u64, StoreError> {
        let take = |reserved: &mut HashMap<String, std::ops::RangeInclusive<u64>>| {
            reserved.get_mut(name).and_then(Iterator::next)
        };
        if let Some(id) = take(&mut self.reserved_ids.lock().unwrap_or_else(|e| e.into_inner())) {
            return Ok(id);
        }
        let last = self.add_to_counter(name, ID_BLOCK).await?;
        let first = last + 1 - ID_BLOCK;
        let mut reserved = self.reserved_ids.lock().unwrap_or_else(|e| e.into_inner());
        // (Tasks that reserved at once each keep their first id; the last block stays.)
        reserved.insert(name.to_owned(), first + 1..=last);
        Ok(first)
    }

    async fn add_to_counter(&self, name: &str, n: u64) -> Result<u64, StoreError> {
        let out = self
            .client
            .update_item()
            .table_name(&self.name)
            .set_key(Some(super::keys::counter(name).primary()))
            .update_expression("ADD #value :one")
            .expression_attribute_names("#value", "value")
            .expression_attribute_values(":one", AttributeValue::N(n.to_string()))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::UpdatedNew)
            .send()
            .await
            .map_err(StoreError::from_sdk)?;
        out.attributes
            .and_then(|a| a.get("value").cloned())
            .and_then(|v| v.as_n().ok().and_then(|n| n.parse().ok()))
            .ok_or_else(|| StoreError::Dynamo(format!("counter {name} returned no value")))
    }

    /// One page of a query on the table (not an index): at most `limit` records after
    /// the item with key `after`; `true` when more may follow.
    pub async fn query_page<R: Record>(
        &self,
        query: &Query,
        limit: usize,
        after: Option<Keys>,
    ) -> Result<(Vec<R>, bool), StoreError> {
        let mut records = Vec::new();
        let mut start = after.map(|k| k.primary());
        loop {
            let request = self
                .query_request(query)
                .limit((limit - records.len()).clamp(1, 1000) as i32)
                .set_exclusive_start_key(start.take());
            let out = request.send().await.map_err(StoreError::from_sdk)?;
            for item in out.items.unwrap_or_default() {
                records.push(from_item(item)?);
            }
            match out.last_evaluated_key {
                Some(key) if !key.is_empty() && records.len() < limit => start = Some(key),
                Some(key) if !key.is_empty() => return Ok((records, true)),
                _ => return Ok((records, false)),
            }
        }
    }

    fn query_request(
        &self,
        query: &Query,
    ) -> aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder {
        let request = self
            .client
            .query()
            .table_name(&self.name)
            .set_index_name(query.index.map(str::to_owned))
            .set_scan_index_forward(query.descending.then_some(false))
            .expression_attribute_names("#pk", query.partition.0)
            .expression_attribute_values(":pk", AttributeValue::S(query.partition.1.clone()));
        let request = match query.projection {
            None => request,
            Some(attributes) => {
                // Placeholders for every name: `day`, `users` and others are reserved words.
                let mut request = request.projection_expression(
                    (0..attributes.len())
                        .map(|i| format!("#p{i}"))
                        .collect::<Vec<_>>()
                        .join(", "),
                );
                for (i, name) in attributes.iter().enumerate() {
                    request = request.expression_attribute_names(format!("#p{i}"), *name);
                }
                request
            }
        };
        match &query.sort {
            None => request.key_condition_expression("#pk = :pk"),
            Some(SortCondition::Between(attr, low, high)) => request
                .key_condition_expression("#pk = :pk AND #sk BETWEEN :low AND :high")
                .expression_attribute_names("#sk", *attr)
                .expression_attribute_values(":low", AttributeValue::S(low.clone()))
                .expression_attribute_values(":high", AttributeValue::S(high.clone())),
            Some(SortCondition::BeginsWith(attr, prefix)) => request
                .key_condition_expression("#pk = :pk AND begins_with(#sk, :sk)")
                .expression_attribute_names("#sk", *attr)
                .expression_attribute_values(":sk", AttributeValue::S(prefix.clone())),
            Some(SortCondition::AtMost(attr, until)) => request
                .key_condition_expression("#pk = :pk AND #sk <= :sk")
                .expression_attribute_names("#sk", *attr)
                .expression_attribute_values(":sk", AttributeValue::S(until.clone())),
            Some(SortCondition::After(attr, after)) => request
                .key_condition_expression("#pk = :pk AND #sk > :sk")
                .expression_attribute_names("#sk", *attr)
                .expression_attribute_values(":sk", AttributeValue::S(after.clone())),
        }
    }

    /// Runs a query and follows its pagination to the end.
    pub async fn query_all<R: Record>(&self, query: &Query) -> Result<Vec<R>, StoreError> {
        let mut records = Vec::new();
        let mut start: Option<HashMap<String, AttributeValue>> = None;
        loop {
            let request = self
                .query_request(query)
                .set_limit(query.limit)
                .set_exclusive_start_key(start.take());
            let out = request.send().await.map_err(StoreError::from_sdk)?;
            for item in out.items.unwrap_or_default() {
                records.push(from_item(item)?);
            }
            match out.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => return Ok(records),
            }
        }
    }
}

/// DynamoDB's limit on one item, names and values together.
pub const MAX_ITEM_BYTES: usize = 400 * 1024;

/// An item's size as DynamoDB counts it: attribute names and values in UTF-8 bytes,
/// numbers at most 21 bytes, 1 byte per null or boolean, 3 bytes per list or map plus
/// 1 per element. Checked before a write, so an item over the limit is a clear refusal
/// instead of a `ValidationException` from the service.
pub fn item_size(item: &HashMap<String, AttributeValue>) -> usize {
    item.iter()
        .map(|(name, value)| name.len() + value_size(value))
        .sum()
}

fn value_size(value: &AttributeValue) -> usize {
    match value {
        AttributeValue::S(s) => s.len(),
        AttributeValue::N(n) => n.len().min(21),
        AttributeValue::B(b) => b.as_ref().len(),
        AttributeValue::Bool(_) | AttributeValue::Null(_) => 1,
        AttributeValue::Ss(v) => v.iter().map(String::len).sum(),
        AttributeValue::Ns(v) => v.iter().map(|n| n.len().min(21)).sum(),
        AttributeValue::Bs(v) => v.iter().map(|b| b.as_ref().len()).sum(),
        AttributeValue::L(v) => 3 + v.iter().map(|e| 1 + value_size(e)).sum::<usize>(),
        AttributeValue::M(m) => {
            3 + m
                .iter()
                .map(|(k, e)| 1 + k.len() + value_size(e))
                .sum::<usize>()
        }
        _ => 0,
    }
}
