//! From a raw AWS API call to what IAM authorizes: one `(action, resource, context)` per
//! permission the call needs, as the Service Authorization Reference names them. A call
//! the stand-in cannot map is an error, never a pass.

use std::collections::{BTreeMap, HashMap, HashSet};

use base64::Engine;
use serde_json::Value;

/// An HTTP request as the stand-in's proxy received it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RawRequest {
    pub method: String,
    /// The path, still percent-encoded, without the query.
    pub path: String,
    pub query: Option<String>,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl RawRequest {
    /// The first header of that name (names are case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        header(&self.headers, name)
    }
}

/// One permission a call needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthzRequest {
    /// `dynamodb:PutItem`.
    pub action: String,
    /// The resource's ARN, or `*` for actions on no resource.
    pub resource: String,
    /// Condition keys and their values (keys compare case-insensitively).
    pub context: BTreeMap<String, Vec<String>>,
}

/// What the stand-in knows about the local account, filled by it.
#[derive(Debug, Clone, Default)]
pub struct ResourceIndex {
    pub account: String,
    pub region: String,
    /// `alias/<name>` to the key id (or key ARN) it points to.
    pub kms_aliases: HashMap<String, String>,
    /// Email addresses verified as SES identities (a sender whose address is not one is
    /// authorized on its domain's identity).
    pub verified_email_identities: HashSet<String>,
    /// Access key id (a function's logical id) to its role's ARN; one not here is
    /// `arn:aws:iam::<account>:role/<access key id>`.
    pub roles: HashMap<String, String>,
}

impl ResourceIndex {
    pub fn new(account: impl Into<String>, region: impl Into<String>) -> Self {
        Self {
            account: account.into(),
            region: region.into(),
            ..Self::default()
        }
    }

    /// The role the caller's credentials stand for (`aws:PrincipalArn`).
    pub fn role_arn(&self, access_key_id: &str) -> String {
        self.roles
            .get(access_key_id)
            .cloned()
            .unwrap_or_else(|| format!("arn:aws:iam::{}:role/{access_key_id}", self.account))
    }

    /// The caller as AccessDenied messages name it: a Lambda function's session of its
    /// role, `arn:aws:sts::<account>:assumed-role/<role name>/<function>`.
    pub fn caller_arn(&self, access_key_id: &str) -> String {
        let role = self.role_arn(access_key_id);
        let role_name = role.rsplit('/').next().unwrap_or(&role);
        format!(
            "arn:aws:sts::{}:assumed-role/{role_name}/{access_key_id}",
            self.account
        )
    }
}

/// The SigV4 credential scope: `Credential=AKID/20261204/us-east-1/dynamodb/aws4_request`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential {
    pub access_key_id: String,
    pub date: String,
    pub region: String,
    /// The signing name (`dynamodb`, `kms`, `events`, `sqs`, `ses`, `lambda`).
    pub service: String,
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

fn parse_credential(text: &str) -> Option<Credential> {
    let parts: Vec<&str> = text.trim().split('/').collect();
    match parts.as_slice() {
        [akid, date, region, service, "aws4_request"] if !akid.is_empty() => Some(Credential {
            access_key_id: (*akid).to_owned(),
            date: (*date).to_owned(),
            region: (*region).to_owned(),
            service: (*service).to_owned(),
        }),
        _ => None,
    }
}

/// The credential scope of the `Authorization` header.
pub fn credential(headers: &[(String, String)]) -> Option<Credential> {
    let auth = header(headers, "authorization")?;
    let start = auth.find("Credential=")? + "Credential=".len();
    let rest = &auth[start..];
    let end = rest.find([',', ' ']).unwrap_or(rest.len());
    parse_credential(&rest[..end])
}

/// The caller's access key id (the stand-in gives each function its logical id).
pub fn access_key_id(headers: &[(String, String)]) -> Option<String> {
    credential(headers).map(|c| c.access_key_id)
}

/// The header's credential, or a presigned URL's `X-Amz-Credential`.
fn request_credential(req: &RawRequest) -> Option<Credential> {
    credential(&req.headers).or_else(|| {
        let query = form_params(req.query.as_deref().unwrap_or_default());
        let (_, value) = query.iter().find(|(k, _)| k == "X-Amz-Credential")?;
        parse_credential(value)
    })
}

/// `dynamodb DynamoDB_20120810.GetItem`, `ses POST /v2/email/outbound-emails`: the call,
/// for messages.
pub fn describe_operation(req: &RawRequest) -> String {
    let service = request_credential(req)
        .map(|c| c.service)
        .unwrap_or_else(|| "(unsigned)".into());
    if let Some(target) = req.header("x-amz-target") {
        return format!("{service} {target}");
    }
    if let Some(action) = query_params(req).get("Action") {
        return format!("{service} {action}");
    }
    format!("{service} {} {}", req.method, req.path)
}

/// Condition keys the stand-in puts in requests, by action (`*`, `svc:*` or one action);
/// `kms:EncryptionContext:*` stands for every key of that family. Conditions on other
/// keys are reported by [`super::unchecked_conditions`].
pub(crate) fn supplied_context_keys() -> &'static [(&'static str, &'static [&'static str])] {
    &[
        (
            "*",
            &[
                "aws:ResourceAccount",
                "aws:RequestedRegion",
                "aws:PrincipalArn",
                "aws:PrincipalAccount",
            ],
        ),
        ("events:PutEvents", &["events:source", "events:detail-type"]),
        ("events:PutTargets", &["events:TargetArn"]),
        (
            "ses:SendEmail",
            &[
                "ses:FromAddress",
                "ses:FromDisplayName",
                "ses:Recipients",
                "ses:FeedbackAddress",
            ],
        ),
        ("ses:*", &["ses:ApiVersion"]),
        (
            "kms:*",
            &[
                "kms:CallerAccount",
                "kms:EncryptionContextKeys",
                "kms:EncryptionContext:*",
                "kms:RequestAlias",
                "kms:EncryptionAlgorithm",
                "kms:SigningAlgorithm",
            ],
        ),
        (
            "dynamodb:*",
            &[
                "dynamodb:Select",
                "dynamodb:ReturnValues",
                "dynamodb:ReturnConsumedCapacity",
            ],
        ),
    ]
}

type Context = BTreeMap<String, Vec<String>>;

/// What every mapping needs: the account, the call's region and the caller.
struct Scope<'a> {
    index: &'a ResourceIndex,
    region: String,
    principal_arn: String,
    out: Vec<AuthzRequest>,
}

impl Scope<'_> {
    fn account(&self) -> &str {
        &self.index.account
    }

    fn push(&mut self, action: impl Into<String>, resource: impl Into<String>, context: Context) {
        let resource = resource.into();
        let mut context = context;
        if let Some(account) = arn_part(&resource, 4).filter(|a| !a.is_empty()) {
            context.insert("aws:ResourceAccount".into(), vec![account.to_owned()]);
        }
        context.insert("aws:RequestedRegion".into(), vec![self.region.clone()]);
        context.insert("aws:PrincipalArn".into(), vec![self.principal_arn.clone()]);
        context.insert(
            "aws:PrincipalAccount".into(),
            vec![self.index.account.clone()],
        );
        let request = AuthzRequest {
            action: action.into(),
            resource,
            context,
        };
        // A transaction of ten Puts on one table needs PutItem once.
        if !self.out.contains(&request) {
            self.out.push(request);
        }
    }
}

/// `arn:partition:service:region:account:resource`: the part at `index`.
fn arn_part(arn: &str, index: usize) -> Option<&str> {
    if !arn.starts_with("arn:") {
        return None;
    }
    arn.splitn(6, ':').nth(index)
}

/// Every permission the call needs (all must be allowed, as on AWS), or why the stand-in
/// cannot tell (then the call must not pass).
pub fn authorization_requests(
    req: &RawRequest,
    index: &ResourceIndex,
) -> Result<Vec<AuthzRequest>, String> {
    let credential = request_credential(req).ok_or_else(|| {
        format!(
            "{} is not signed with AWS Signature Version 4 (no Credential=<key>/<date>/<region>/<service>/aws4_request)",
            describe_operation(req)
        )
    })?;
    let mut scope = Scope {
        index,
        region: if credential.region.is_empty() {
            index.region.clone()
        } else {
            credential.region.clone()
        },
        principal_arn: index.role_arn(&credential.access_key_id),
        out: Vec::new(),
    };
    let cannot = || format!("the stand-in cannot authorize {}", describe_operation(req));
    let target = req.header("x-amz-target").and_then(|t| t.split_once('.'));
    match (credential.service.as_str(), target) {
        ("dynamodb", Some(("DynamoDB_20120810", op))) => dynamodb(&mut scope, op, &json_body(req)?),
        ("dynamodb" | "dynamodbstreams", Some(("DynamoDBStreams_20120810", op))) => {
            dynamodb_streams(&mut scope, op, &json_body(req)?)
        }
        ("kms", Some(("TrentService", op))) => kms(&mut scope, op, &json_body(req)?),
        ("events", Some(("AWSEvents", op))) => events(&mut scope, op, &json_body(req)?),
        ("sqs", Some(("AmazonSQS", op))) => sqs(&mut scope, op, &json_body(req)?),
        ("sqs", None) => {
            // The query protocol: `Action=SendMessage&QueueUrl=...` in the body or query.
            let params = query_params(req);
            let op = params.get("Action").cloned().ok_or_else(cannot)?;
            let params = Value::Object(
                params
                    .into_iter()
                    .map(|(k, v)| (k, Value::String(v)))
                    .collect(),
            );
            sqs(&mut scope, &op, &params)
        }
        ("ses", None) => sesv2(&mut scope, req),
        ("lambda", None) => lambda(&mut scope, req),
        _ => Err(Unmapped::Cannot),
    }
    .map_err(|e| match e {
        Unmapped::Cannot => cannot(),
        Unmapped::Because(why) => format!("{}: {why}", cannot()),
    })?;
    Ok(scope.out)
}

/// Why a call could not be mapped: not an operation the stand-in knows, or one it knows
/// with a request it cannot read.
enum Unmapped {
    Cannot,
    Because(String),
}

impl From<String> for Unmapped {
    fn from(why: String) -> Self {
        Unmapped::Because(why)
    }
}

impl From<&str> for Unmapped {
    fn from(why: &str) -> Self {
        Unmapped::Because(why.to_owned())
    }
}

type Mapped = Result<(), Unmapped>;

fn json_body(req: &RawRequest) -> Result<Value, String> {
    if req.body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Object(Default::default()));
    }
    serde_json::from_slice(&req.body)
        .map_err(|e| format!("the body of {} is not JSON: {e}", describe_operation(req)))
}

fn str_field<'a>(body: &'a Value, name: &str) -> Option<&'a str> {
    body.get(name)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

fn required<'a>(body: &'a Value, name: &str, op: &str) -> Result<&'a str, Unmapped> {
    str_field(body, name).ok_or_else(|| Unmapped::Because(format!("{op} without {name}")))
}

// ------------------------------------------------------------------ DynamoDB

/// Operations on the table named by `TableName`.
const DYNAMODB_TABLE_OPS: &[&str] = &[
    "GetItem",
    "PutItem",
    "UpdateItem",
    "DeleteItem",
    "DescribeTable",
    "CreateTable",
    "DeleteTable",
    "UpdateTable",
    "DescribeTimeToLive",
    "UpdateTimeToLive",
    "DescribeContinuousBackups",
    "UpdateContinuousBackups",
    "CreateBackup",
    "DescribeKinesisStreamingDestination",
    "DescribeContributorInsights",
    "UpdateContributorInsights",
];
/// Operations on the resource named by `ResourceArn`.
const DYNAMODB_ARN_OPS: &[&str] = &[
    "TagResource",
    "UntagResource",
    "ListTagsOfResource",
    "GetResourcePolicy",
    "PutResourcePolicy",
    "DeleteResourcePolicy",
];
/// Operations on no resource (`*`).
const DYNAMODB_STAR_OPS: &[&str] = &[
    "ListTables",
    "DescribeLimits",
    "DescribeEndpoints",
    "ListBackups",
    "ListGlobalTables",
    "ListExports",
    "ListImports",
    "ListContributorInsights",
];

impl Scope<'_> {
    /// `TableName` may be a name or the table's ARN.
    fn table_arn(&self, name: &str) -> String {
        if name.starts_with("arn:") {
            name.to_owned()
        } else {
            format!(
                "arn:aws:dynamodb:{}:{}:table/{name}",
                self.region,
                self.account()
            )
        }
    }
}

/// `dynamodb:Select` and friends, when the request sets them.
fn dynamodb_context(body: &Value) -> Context {
    ["Select", "ReturnValues", "ReturnConsumedCapacity"]
        .iter()
        .filter_map(|name| {
            let value = str_field(body, name)?;
            Some((format!("dynamodb:{name}"), vec![value.to_owned()]))
        })
        .collect()
}

fn dynamodb(s: &mut Scope, op: &str, body: &Value) -> Mapped {
    let table = |s: &Scope, item: &Value, what: &str| -> Result<String, Unmapped> {
        Ok(s.table_arn(required(item, "TableName", what)?))
    };
    match op {
        // Not IAM actions: each item is authorized as its own action on its own table.
        "TransactWriteItems" | "TransactGetItems" => {
            let items = body
                .get("TransactItems")
                .and_then(Value::as_array)
                .ok_or_else(|| format!("{op} without TransactItems"))?;
            for item in items {
                let kinds = item
                    .as_object()
                    .ok_or_else(|| format!("{op}: an item is not an object"))?;
                for (kind, inner) in kinds {
                    let action = match (op, kind.as_str()) {
                        ("TransactWriteItems", "Put") => "PutItem",
                        ("TransactWriteItems", "Update") => "UpdateItem",
                        ("TransactWriteItems", "Delete") => "DeleteItem",
                        ("TransactWriteItems", "ConditionCheck") => "ConditionCheckItem",
                        ("TransactGetItems", "Get") => "GetItem",
                        _ => return Err(format!("{op}: unknown item kind {kind}").into()),
                    };
                    let resource = table(s, inner, &format!("{op} {kind}"))?;
                    s.push(format!("dynamodb:{action}"), resource, Context::new());
                }
            }
        }
        "BatchGetItem" | "BatchWriteItem" => {
            let tables = body
                .get("RequestItems")
                .and_then(Value::as_object)
                .ok_or_else(|| format!("{op} without RequestItems"))?;
            for name in tables.keys() {
                let resource = s.table_arn(name);
                s.push(format!("dynamodb:{op}"), resource, dynamodb_context(body));
            }
        }
        "Query" | "Scan" => {
            let mut resource = table(s, body, op)?;
            if let Some(index) = str_field(body, "IndexName") {
                resource = format!("{resource}/index/{index}");
            }
            s.push(format!("dynamodb:{op}"), resource, dynamodb_context(body));
        }
        op if DYNAMODB_TABLE_OPS.contains(&op) => {
            let resource = table(s, body, op)?;
            s.push(format!("dynamodb:{op}"), resource, dynamodb_context(body));
        }
        op if DYNAMODB_ARN_OPS.contains(&op) => {
            let resource = required(body, "ResourceArn", op)?.to_owned();
            s.push(format!("dynamodb:{op}"), resource, Context::new());
        }
        op if DYNAMODB_STAR_OPS.contains(&op) => {
            s.push(format!("dynamodb:{op}"), "*", Context::new())
        }
        _ => return Err(Unmapped::Cannot),
    }
    Ok(())
}

/// moto 5.2.5 (`moto/dynamodbstreams/models.py`, `ShardIterator.arn`) hands out shard
/// iterators as `<stream ARN>|1|<base64 of random bytes>`.
pub(crate) fn stream_arn_of_shard_iterator(iterator: &str) -> Result<&str, String> {
    let (arn, rest) = iterator.split_once('|').ok_or_else(|| {
        "the shard iterator is not moto's `<stream ARN>|1|<id>`, so the stream it reads cannot be told".to_owned()
    })?;
    let moto_shaped = arn.starts_with("arn:")
        && arn.contains(":table/")
        && arn.contains("/stream/")
        && rest.starts_with("1|");
    if !moto_shaped {
        return Err(format!(
            "the shard iterator does not start with a stream ARN (moto's `<stream ARN>|1|<id>`): {arn}"
        ));
    }
    Ok(arn)
}

fn dynamodb_streams(s: &mut Scope, op: &str, body: &Value) -> Mapped {
    match op {
        "DescribeStream" | "GetShardIterator" => {
            let resource = required(body, "StreamArn", op)?.to_owned();
            s.push(format!("dynamodb:{op}"), resource, Context::new());
        }
        "GetRecords" => {
            let iterator = required(body, "ShardIterator", op)?;
            let resource = stream_arn_of_shard_iterator(iterator)?.to_owned();
            s.push("dynamodb:GetRecords", resource, Context::new());
        }
        "ListStreams" => s.push("dynamodb:ListStreams", "*", Context::new()),
        _ => return Err(Unmapped::Cannot),
    }
    Ok(())
}

// ----------------------------------------------------------------------- KMS

/// Operations on the key named by `KeyId`.
const KMS_KEY_OPS: &[&str] = &[
    "Encrypt",
    "GenerateDataKey",
    "GenerateDataKeyWithoutPlaintext",
    "GenerateDataKeyPair",
    "GenerateDataKeyPairWithoutPlaintext",
    "GenerateMac",
    "VerifyMac",
    "Sign",
    "Verify",
    "GetPublicKey",
    "DescribeKey",
    "EnableKey",
    "DisableKey",
    "EnableKeyRotation",
    "DisableKeyRotation",
    "GetKeyRotationStatus",
    "ListKeyRotations",
    "RotateKeyOnDemand",
    "GetKeyPolicy",
    "PutKeyPolicy",
    "ListKeyPolicies",
    "ListResourceTags",
    "TagResource",
    "UntagResource",
    "ScheduleKeyDeletion",
    "CancelKeyDeletion",
    "UpdateKeyDescription",
    "CreateGrant",
    "ListGrants",
    "RevokeGrant",
];
const KMS_STAR_OPS: &[&str] = &["ListKeys", "ListAliases", "CreateKey", "GenerateRandom"];

/// The key id moto 5.2.5 put in a ciphertext blob (`moto/kms/utils.py`,
/// `_serialize_ciphertext_blob`): the blob (base64 in JSON) starts with the key id in 36
/// bytes (`>36s12s16s`: key id, IV, tag), then the ciphertext.
pub(crate) fn key_id_of_moto_ciphertext(blob_base64: &str) -> Result<String, String> {
    let blob = base64::engine::general_purpose::STANDARD
        .decode(blob_base64)
        .map_err(|e| format!("CiphertextBlob is not base64: {e}"))?;
    const KEY_ID_LEN: usize = 36;
    const HEADER_LEN: usize = KEY_ID_LEN + 12 + 16;
    if blob.len() < HEADER_LEN {
        return Err(format!(
            "CiphertextBlob is {} bytes, shorter than moto's {HEADER_LEN}-byte header",
            blob.len()
        ));
    }
    let id = std::str::from_utf8(&blob[..KEY_ID_LEN])
        .map_err(|_| "CiphertextBlob does not start with a key id (moto's format)".to_owned())?
        .trim_end_matches('\0');
    if id.is_empty() || !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
        return Err(format!(
            "CiphertextBlob does not start with a key id (moto's format): {id:?}"
        ));
    }
    Ok(id.to_owned())
}

impl Scope<'_> {
    /// The key's ARN and the alias the caller named it by (`kms:RequestAlias`), from a
    /// key id, key ARN, `alias/<name>` or alias ARN.
    fn kms_key(&self, key_id: &str) -> Result<(String, Option<String>), String> {
        let (region, account) = match (arn_part(key_id, 3), arn_part(key_id, 4)) {
            (Some(r), Some(a)) => (r.to_owned(), a.to_owned()),
            _ => (self.region.clone(), self.account().to_owned()),
        };
        let local = match arn_part(key_id, 5) {
            Some(resource) => resource,
            None if key_id.starts_with("arn:") => {
                return Err(format!("KeyId {key_id} is not a KMS ARN"));
            }
            None => key_id,
        };
        let key_arn = |id: &str| {
            if id.starts_with("arn:") {
                id.to_owned()
            } else {
                format!(
                    "arn:aws:kms:{region}:{account}:key/{}",
                    id.trim_start_matches("key/")
                )
            }
        };
        if local.starts_with("alias/") {
            let target =
                self.index.kms_aliases.get(local).ok_or_else(|| {
                    format!("the KMS alias {local} is not one the stand-in knows")
                })?;
            Ok((key_arn(target), Some(local.to_owned())))
        } else if key_id.starts_with("arn:") && !local.starts_with("key/") {
            Err(format!("KeyId {key_id} is neither a key nor an alias ARN"))
        } else {
            Ok((key_arn(local), None))
        }
    }

    fn alias_arn(&self, alias: &str) -> String {
        if alias.starts_with("arn:") {
            alias.to_owned()
        } else {
            format!("arn:aws:kms:{}:{}:{alias}", self.region, self.account())
        }
    }
}

/// `encryption_context` names the request's field holding it (ReEncrypt has a source
/// and a destination one).
fn kms_context(
    s: &Scope,
    body: &Value,
    alias: Option<String>,
    encryption_context: &str,
) -> Context {
    let mut context = Context::new();
    context.insert("kms:CallerAccount".into(), vec![s.account().to_owned()]);
    if let Some(alias) = alias {
        context.insert("kms:RequestAlias".into(), vec![alias]);
    }
    if let Some(pairs) = body.get(encryption_context).and_then(Value::as_object) {
        context.insert(
            "kms:EncryptionContextKeys".into(),
            pairs.keys().cloned().collect(),
        );
        for (k, v) in pairs {
            if let Some(v) = v.as_str() {
                context.insert(format!("kms:EncryptionContext:{k}"), vec![v.to_owned()]);
            }
        }
    }
    for name in ["EncryptionAlgorithm", "SigningAlgorithm"] {
        if let Some(v) = str_field(body, name) {
            context.insert(format!("kms:{name}"), vec![v.to_owned()]);
        }
    }
    context
}

fn kms(s: &mut Scope, op: &str, body: &Value) -> Mapped {
    match op {
        "Decrypt" | "ReEncrypt" => {
            // The key that encrypted the blob is the one authorized (a KeyId, if given,
            // must name it).
            let source = match str_field(body, "CiphertextBlob").map(key_id_of_moto_ciphertext) {
                Some(Ok(id)) => s.kms_key(&id)?,
                Some(Err(e)) => match str_field(body, "KeyId").or(str_field(body, "SourceKeyId")) {
                    Some(id) => s.kms_key(id)?,
                    None => return Err(e.into()),
                },
                None => return Err(format!("{op} without CiphertextBlob").into()),
            };
            let (key, alias) = source;
            let action = if op == "Decrypt" {
                "kms:Decrypt"
            } else {
                "kms:ReEncryptFrom"
            };
            let field = if op == "Decrypt" {
                "EncryptionContext"
            } else {
                "SourceEncryptionContext"
            };
            let context = kms_context(s, body, alias, field);
            s.push(action, key, context);
            if op == "ReEncrypt" {
                let (key, alias) = s.kms_key(required(body, "DestinationKeyId", op)?)?;
                let context = kms_context(s, body, alias, "DestinationEncryptionContext");
                s.push("kms:ReEncryptTo", key, context);
            }
        }
        "CreateAlias" | "UpdateAlias" | "DeleteAlias" => {
            // On the alias and on the key(s) it points to.
            let alias = required(body, "AliasName", op)?.to_owned();
            let alias_arn = s.alias_arn(&alias);
            let context = kms_context(s, body, None, "EncryptionContext");
            s.push(format!("kms:{op}"), alias_arn, context.clone());
            if op != "CreateAlias" {
                // The key it points to now; an alias the stand-in does not know has none
                // to check (moto answers NotFound).
                let local = alias.rsplit_once(':').map_or(alias.as_str(), |(_, l)| l);
                if s.index.kms_aliases.contains_key(local) {
                    let (key, _) = s.kms_key(local)?;
                    s.push(format!("kms:{op}"), key, context.clone());
                }
            }
            if op != "DeleteAlias" {
                let (key, _) = s.kms_key(required(body, "TargetKeyId", op)?)?;
                s.push(format!("kms:{op}"), key, context);
            }
        }
        op if KMS_KEY_OPS.contains(&op) => {
            let (key, alias) = s.kms_key(required(body, "KeyId", op)?)?;
            let context = kms_context(s, body, alias, "EncryptionContext");
            s.push(format!("kms:{op}"), key, context);
        }
        op if KMS_STAR_OPS.contains(&op) => {
            let context = kms_context(s, body, None, "EncryptionContext");
            s.push(format!("kms:{op}"), "*", context);
        }
        _ => return Err(Unmapped::Cannot),
    }
    Ok(())
}

// ---------------------------------------------------------------- EventBridge

impl Scope<'_> {
    /// A bus by name or ARN; absent or empty is the account's `default` bus.
    fn bus_arn(&self, name: Option<&str>) -> Result<String, String> {
        // moto delivers to the local bus named by an ARN's last segment, whatever its
        // account, region or path: such an ARN would reach a bus AWS would never
        // deliver it to, so the stand-in refuses what it cannot play.
        let plain = |name: &str| {
            !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        };
        Ok(match name {
            Some(arn) if arn.starts_with("arn:") => {
                let expected = format!(
                    "arn:aws:events:{}:{}:event-bus/",
                    self.region,
                    self.account()
                );
                match arn.strip_prefix(&expected) {
                    Some(bus) if plain(bus) => arn.to_owned(),
                    _ => {
                        return Err(format!(
                            "the event bus {arn} is not a bus of the stand-in's account and region ({expected}<name>)"
                        ));
                    }
                }
            }
            Some(name) if !plain(name) => {
                return Err(format!(
                    "the event bus name {name:?} is not one the stand-in can play"
                ));
            }
            Some(name) => format!(
                "arn:aws:events:{}:{}:event-bus/{name}",
                self.region,
                self.account()
            ),
            None => format!(
                "arn:aws:events:{}:{}:event-bus/default",
                self.region,
                self.account()
            ),
        })
    }

    /// A rule lives in its bus's account: `rule/<name>` on the default bus,
    /// `rule/<bus>/<name>` on any other.
    fn rule_arn(&self, bus: Option<&str>, rule: &str) -> Result<String, String> {
        let bus = self.bus_arn(bus)?;
        let region = arn_part(&bus, 3).unwrap_or(&self.region);
        let account = arn_part(&bus, 4).unwrap_or(self.account());
        let name = bus.rsplit_once("event-bus/").map_or("default", |(_, n)| n);
        Ok(if name == "default" {
            format!("arn:aws:events:{region}:{account}:rule/{rule}")
        } else {
            format!("arn:aws:events:{region}:{account}:rule/{name}/{rule}")
        })
    }
}

fn events(s: &mut Scope, op: &str, body: &Value) -> Mapped {
    let bus_name = |field: &str| str_field(body, field);
    match op {
        "PutEvents" => {
            let entries = body
                .get("Entries")
                .and_then(Value::as_array)
                .ok_or("PutEvents without Entries")?;
            for entry in entries {
                let mut context = Context::new();
                if let Some(source) = str_field(entry, "Source") {
                    context.insert("events:source".into(), vec![source.to_owned()]);
                }
                if let Some(detail_type) = str_field(entry, "DetailType") {
                    context.insert("events:detail-type".into(), vec![detail_type.to_owned()]);
                }
                let bus = s.bus_arn(str_field(entry, "EventBusName"))?;
                s.push("events:PutEvents", bus, context);
            }
        }
        "PutPermission" | "RemovePermission" => {
            let bus = s.bus_arn(bus_name("EventBusName"))?;
            s.push(format!("events:{op}"), bus, Context::new());
        }
        // These name the bus `Name` (EventBusName accepted too).
        "DescribeEventBus" | "CreateEventBus" | "DeleteEventBus" | "UpdateEventBus" => {
            let bus = s.bus_arn(bus_name("Name").or(bus_name("EventBusName")))?;
            s.push(format!("events:{op}"), bus, Context::new());
        }
        "PutRule" | "DeleteRule" | "DescribeRule" | "EnableRule" | "DisableRule" => {
            let rule = s.rule_arn(bus_name("EventBusName"), required(body, "Name", op)?)?;
            s.push(format!("events:{op}"), rule, Context::new());
        }
        "PutTargets" | "RemoveTargets" | "ListTargetsByRule" => {
            let rule = s.rule_arn(bus_name("EventBusName"), required(body, "Rule", op)?)?;
            let mut context = Context::new();
            if op == "PutTargets" {
                let targets: Vec<String> = body
                    .get("Targets")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(|t| str_field(t, "Arn").map(str::to_owned))
                    .collect();
                if !targets.is_empty() {
                    context.insert("events:TargetArn".into(), targets);
                }
            }
            s.push(format!("events:{op}"), rule, context);
        }
        "TagResource" | "UntagResource" | "ListTagsForResource" => {
            let resource = required(body, "ResourceARN", op)?.to_owned();
            s.push(format!("events:{op}"), resource, Context::new());
        }
        "ListRules" | "ListEventBuses" | "ListRuleNamesByTarget" | "TestEventPattern" => {
            s.push(format!("events:{op}"), "*", Context::new());
        }
        _ => return Err(Unmapped::Cannot),
    }
    Ok(())
}

// ----------------------------------------------------------------------- SQS

/// Operations on the queue named by `QueueUrl`, with the IAM action they need (the batch
/// operations are authorized as their single forms).
const SQS_QUEUE_OPS: &[(&str, &str)] = &[
    ("SendMessage", "SendMessage"),
    ("SendMessageBatch", "SendMessage"),
    ("ReceiveMessage", "ReceiveMessage"),
    ("DeleteMessage", "DeleteMessage"),
    ("DeleteMessageBatch", "DeleteMessage"),
    ("ChangeMessageVisibility", "ChangeMessageVisibility"),
    ("ChangeMessageVisibilityBatch", "ChangeMessageVisibility"),
    ("GetQueueAttributes", "GetQueueAttributes"),
    ("SetQueueAttributes", "SetQueueAttributes"),
    ("PurgeQueue", "PurgeQueue"),
    ("DeleteQueue", "DeleteQueue"),
    ("ListQueueTags", "ListQueueTags"),
    ("TagQueue", "TagQueue"),
    ("UntagQueue", "UntagQueue"),
    ("ListDeadLetterSourceQueues", "ListDeadLetterSourceQueues"),
    ("AddPermission", "AddPermission"),
    ("RemovePermission", "RemovePermission"),
];

impl Scope<'_> {
    /// `http://host/<account>/<name>` to `arn:aws:sqs:<region>:<account>:<name>`.
    fn queue_arn(&self, url: &str) -> Result<String, String> {
        let after_scheme = url.split_once("://").map_or(url, |(_, rest)| rest);
        let path = after_scheme.split_once('/').map_or("", |(_, path)| path);
        let path = path.split(['?', '#']).next().unwrap_or_default();
        let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        match segments.as_slice() {
            [account, name] => Ok(format!("arn:aws:sqs:{}:{account}:{name}", self.region)),
            _ => Err(format!(
                "QueueUrl {url} is not http://<host>/<account>/<queue name>"
            )),
        }
    }
}

fn sqs(s: &mut Scope, op: &str, body: &Value) -> Mapped {
    if let Some((_, action)) = SQS_QUEUE_OPS.iter().find(|(o, _)| *o == op) {
        let queue = s.queue_arn(required(body, "QueueUrl", op)?)?;
        s.push(format!("sqs:{action}"), queue, Context::new());
        return Ok(());
    }
    match op {
        "CreateQueue" | "GetQueueUrl" => {
            let name = required(body, "QueueName", op)?;
            let account = str_field(body, "QueueOwnerAWSAccountId").unwrap_or(s.account());
            let queue = format!("arn:aws:sqs:{}:{account}:{name}", s.region);
            s.push(format!("sqs:{op}"), queue, Context::new());
        }
        "StartMessageMoveTask" | "ListMessageMoveTasks" => {
            let source = required(body, "SourceArn", op)?.to_owned();
            s.push(format!("sqs:{op}"), source, Context::new());
        }
        "ListQueues" => s.push("sqs:ListQueues", "*", Context::new()),
        _ => return Err(Unmapped::Cannot),
    }
    Ok(())
}

// -------------------------------------------------------------------- SES v2

/// `"Name" <a@b>` or `a@b` to (display name, address).
pub(crate) fn split_address(text: &str) -> (Option<String>, String) {
    let text = text.trim();
    match (text.rfind('<'), text.rfind('>')) {
        (Some(open), Some(close)) if open < close => {
            let name = text[..open].trim().trim_matches('"').trim();
            let name = (!name.is_empty()).then(|| name.to_owned());
            (name, text[open + 1..close].trim().to_owned())
        }
        _ => (None, text.to_owned()),
    }
}

/// A raw MIME message's `From:` header (base64 in JSON).
fn raw_from(body: &Value) -> Option<String> {
    let data = body.get("Content")?.get("Raw")?.get("Data")?.as_str()?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(data)
        .ok()?;
    let text = String::from_utf8_lossy(&bytes);
    text.lines()
        .take_while(|line| !line.trim().is_empty())
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("from")
                .then(|| value.trim().to_owned())
        })
}

impl Scope<'_> {
    fn ses_arn(&self, kind: &str, name: &str) -> String {
        format!(
            "arn:aws:ses:{}:{}:{kind}/{name}",
            self.region,
            self.account()
        )
    }
}

fn ses_context() -> Context {
    Context::from([("ses:ApiVersion".into(), vec!["2".into()])])
}

fn sesv2(s: &mut Scope, req: &RawRequest) -> Mapped {
    let segments = path_segments(&req.path);
    let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
    let method = req.method.to_ascii_uppercase();
    match (method.as_str(), segments.as_slice()) {
        ("POST", ["v2", "email", "outbound-emails"]) => {
            let body = json_body(req)?;
            let from = str_field(&body, "FromEmailAddress")
                .map(str::to_owned)
                .or_else(|| raw_from(&body))
                .ok_or("SendEmail without FromEmailAddress (or a raw message's From:)")?;
            let (display_name, from) = split_address(&from);
            let identity = match str_field(&body, "FromEmailAddressIdentityArn") {
                Some(arn) => arn.to_owned(),
                None => {
                    let verified = s
                        .index
                        .verified_email_identities
                        .iter()
                        .any(|v| v.eq_ignore_ascii_case(&from));
                    let domain = from.rsplit_once('@').map(|(_, d)| d);
                    match (verified, domain) {
                        (true, _) => s.ses_arn("identity", &from),
                        (false, Some(domain)) => s.ses_arn("identity", domain),
                        (false, None) => {
                            return Err(format!(
                                "SendEmail from {from}, which is not an email address"
                            )
                            .into());
                        }
                    }
                }
            };
            let recipients: Vec<String> = ["ToAddresses", "CcAddresses", "BccAddresses"]
                .iter()
                .flat_map(|field| {
                    body.get("Destination")
                        .and_then(|d| d.get(field))
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                        .filter_map(Value::as_str)
                        .map(|a| split_address(a).1)
                })
                .collect();
            let mut context = ses_context();
            context.insert("ses:FromAddress".into(), vec![from]);
            if !recipients.is_empty() {
                context.insert("ses:Recipients".into(), recipients);
            }
            if let Some(name) = display_name {
                context.insert("ses:FromDisplayName".into(), vec![name]);
            }
            if let Some(feedback) = str_field(&body, "FeedbackForwardingEmailAddress") {
                context.insert(
                    "ses:FeedbackAddress".into(),
                    vec![split_address(feedback).1],
                );
            }
            s.push("ses:SendEmail", identity, context.clone());
            // A configuration set is a resource of SendEmail too.
            if let Some(set) = str_field(&body, "ConfigurationSetName") {
                let set = s.ses_arn("configuration-set", set);
                s.push("ses:SendEmail", set, context);
            }
        }
        ("POST", ["v2", "email", "identities"]) => {
            let body = json_body(req)?;
            let identity = s.ses_arn(
                "identity",
                required(&body, "EmailIdentity", "CreateEmailIdentity")?,
            );
            s.push("ses:CreateEmailIdentity", identity, ses_context());
        }
        ("GET", ["v2", "email", "identities"]) => {
            s.push("ses:ListEmailIdentities", "*", ses_context());
        }
        ("GET", ["v2", "email", "identities", identity]) => {
            let identity = s.ses_arn("identity", identity);
            s.push("ses:GetEmailIdentity", identity, ses_context());
        }
        ("DELETE", ["v2", "email", "identities", identity]) => {
            let identity = s.ses_arn("identity", identity);
            s.push("ses:DeleteEmailIdentity", identity, ses_context());
        }
        ("GET", ["v2", "email", "account"]) => s.push("ses:GetAccount", "*", ses_context()),
        _ => return Err(Unmapped::Cannot),
    }
    Ok(())
}

// -------------------------------------------------------------------- Lambda

impl Scope<'_> {
    /// A function by name, `name:qualifier`, full or partial ARN; a qualifier (in the
    /// name or `?Qualifier=`) makes it the version's or alias's ARN, as IAM sees it.
    fn function_arn(&self, name: &str, qualifier: Option<&str>) -> Result<String, String> {
        let (region, account, rest) = if let Some(rest) = name.strip_prefix("arn:") {
            let parts: Vec<&str> = rest.splitn(6, ':').collect();
            match parts.as_slice() {
                [_, "lambda", region, account, "function", rest] => {
                    ((*region).to_owned(), (*account).to_owned(), *rest)
                }
                _ => return Err(format!("{name} is not a Lambda function ARN")),
            }
        } else if let Some((account, rest)) = name.split_once(":function:") {
            (self.region.clone(), account.to_owned(), rest)
        } else {
            (self.region.clone(), self.account().to_owned(), name)
        };
        let (function, own_qualifier) = match rest.split_once(':') {
            Some((f, q)) => (f, Some(q)),
            None => (rest, None),
        };
        let base = format!("arn:aws:lambda:{region}:{account}:function:{function}");
        Ok(
            match own_qualifier.or(qualifier).filter(|q| !q.is_empty()) {
                Some(q) => format!("{base}:{q}"),
                None => base,
            },
        )
    }
}

fn lambda(s: &mut Scope, req: &RawRequest) -> Mapped {
    let segments = path_segments(&req.path);
    let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
    let query = form_params(req.query.as_deref().unwrap_or_default());
    let qualifier = query
        .iter()
        .find(|(k, _)| k == "Qualifier")
        .map(|(_, v)| v.as_str());
    let method = req.method.to_ascii_uppercase();
    let (action, function) = match (method.as_str(), segments.as_slice()) {
        ("POST", ["2015-03-31", "functions", function, "invocations"]) => {
            ("lambda:InvokeFunction", *function)
        }
        ("POST", ["2014-11-13", "functions", function, "invoke-async"]) => {
            ("lambda:InvokeAsync", *function)
        }
        ("GET", ["2015-03-31", "functions", function]) => ("lambda:GetFunction", *function),
        ("GET", ["2015-03-31", "functions", function, "configuration"]) => {
            ("lambda:GetFunctionConfiguration", *function)
        }
        ("GET", ["2015-03-31", "functions"]) => {
            s.push("lambda:ListFunctions", "*", Context::new());
            return Ok(());
        }
        _ => return Err(Unmapped::Cannot),
    };
    let resource = s.function_arn(function, qualifier)?;
    s.push(action, resource, Context::new());
    Ok(())
}

// ---------------------------------------------------------------- encodings

/// The path's segments, percent-decoded (`a%40b.com` is `a@b.com`).
fn path_segments(path: &str) -> Vec<String> {
    path.split('?')
        .next()
        .unwrap_or_default()
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| percent_decode(s, false))
        .collect()
}

fn percent_decode(text: &str, plus_is_space: bool) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push((h * 16 + l) as u8);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b'+' if plus_is_space => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `application/x-www-form-urlencoded` pairs.
fn form_params(text: &str) -> Vec<(String, String)> {
    text.split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k, true), percent_decode(v, true))
        })
        .collect()
}

/// The query protocol's parameters: the query string's, then a form body's.
fn query_params(req: &RawRequest) -> BTreeMap<String, String> {
    let mut params: BTreeMap<String, String> =
        form_params(req.query.as_deref().unwrap_or_default())
            .into_iter()
            .collect();
    let form = req.header("content-type").is_some_and(|t| {
        t.to_ascii_lowercase()
            .starts_with("application/x-www-form-urlencoded")
    });
    if form {
        params.extend(form_params(&String::from_utf8_lossy(&req.body)));
    }
    params
}
