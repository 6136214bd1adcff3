//! Creates the template's stateful resources (tables, buses, KMS keys, queues) in the
//! emulator, named `<prefix>-<LogicalId>`, and resolves `!Ref`/`!GetAtt` to them.

use std::collections::HashMap;

use aws_config::SdkConfig;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, StreamSpecification, StreamViewType,
    TimeToLiveSpecification,
};
use yaml_serde::Value;

use crate::{EmulatorError, template::Template};

/// The account moto stamps on every event (the stand-in's own account).
pub const ACCOUNT: &str = "123456789012";
pub const REGION: &str = "us-east-1";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Physical {
    /// `stream_arn`: the table's stream, when the template gives it one.
    Table {
        name: String,
        stream_arn: Option<String>,
    },
    Bus {
        name: String,
        arn: String,
    },
    Key {
        id: String,
        arn: String,
    },
    Queue {
        url: String,
        arn: String,
    },
}

/// The resources created for one stand-in, by logical id.
#[derive(Debug, Clone, Default)]
pub struct LocalResources {
    pub prefix: String,
    pub by_logical_id: HashMap<String, Physical>,
    pub parameters: HashMap<String, String>,
}

impl LocalResources {
    /// `!Ref id` (attr `None`) or `!GetAtt id.attr`, as CloudFormation would answer.
    pub fn lookup(&self, id: &str, attr: Option<&str>) -> Option<String> {
        match id {
            "AWS::Region" => return Some(REGION.into()),
            "AWS::AccountId" => return Some(ACCOUNT.into()),
            "AWS::StackName" => return Some(self.prefix.clone()),
            "AWS::Partition" => return Some("aws".into()),
            _ => {}
        }
        if let Some(value) = self.parameters.get(id) {
            return Some(value.clone());
        }
        let physical = self.by_logical_id.get(id)?;
        Some(match (physical, attr) {
            (Physical::Table { name, .. }, None) => name.clone(),
            (Physical::Table { stream_arn, .. }, Some("StreamArn")) => stream_arn.clone()?,
            (Physical::Table { name, .. }, Some("Arn")) => {
                format!("arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{name}")
            }
            (Physical::Bus { name, .. }, None | Some("Name")) => name.clone(),
            (Physical::Bus { arn, .. }, Some("Arn")) => arn.clone(),
            (Physical::Key { id, .. }, None | Some("KeyId")) => id.clone(),
            (Physical::Key { arn, .. }, Some("Arn")) => arn.clone(),
            (Physical::Queue { url, .. }, None | Some("QueueUrl")) => url.clone(),
            (Physical::Queue { arn, .. }, Some("Arn")) => arn.clone(),
            _ => return None,
        })
    }

    pub fn table_name(&self) -> Option<&str> {
        self.by_logical_id.values().find_map(|p| match p {
            Physical::Table { name, .. } => Some(name.as_str()),
            _ => None,
        })
    }

    /// Creates every table, bus, key and queue the template declares.
    pub async fn create(
        sdk: &SdkConfig,
        template: &Template,
        prefix: &str,
    ) -> Result<Self, EmulatorError> {
        let mut resources = LocalResources {
            prefix: prefix.to_owned(),
            ..Self::default()
        };
        // Every parameter at its default, as a deploy without overrides; the stand-in
        // overrides some (PublicBaseUrl) and tests may override others.
        resources.parameters.extend(template.parameter_defaults());
        let dynamodb = aws_sdk_dynamodb::Client::new(sdk);
        for (id, props) in template.resources_of_type("AWS::DynamoDB::Table") {
            let name = format!("{prefix}-{id}");
            let stream_arn = create_table(&dynamodb, &name, props)
                .await
                .map_err(|message| EmulatorError::Resource {
                    resource: id.to_owned(),
                    message,
                })?;
            resources
                .by_logical_id
                .insert(id.to_owned(), Physical::Table { name, stream_arn });
        }
        let events = aws_sdk_eventbridge::Client::new(sdk);
        for (id, _) in template.resources_of_type("AWS::Events::EventBus") {
            let name = format!("{prefix}-{id}");
            let out = events
                .create_event_bus()
                .name(&name)
                .send()
                .await
                .map_err(|e| EmulatorError::Resource {
                    resource: id.to_owned(),
                    message: err_text(e),
                })?;
            let arn = out.event_bus_arn.unwrap_or_default();
            resources
                .by_logical_id
                .insert(id.to_owned(), Physical::Bus { name, arn });
        }
        let kms = aws_sdk_kms::Client::new(sdk);
        for (id, resource) in template.resources_of_type("AWS::KMS::Key") {
            // An asymmetric key (the embed API's signing key) as the template declares it.
            let property = |name: &str| {
                resource
                    .get(name)
                    .and_then(|v| v.as_str())
                    .map(str::to_owned)
            };
            let out = kms
                .create_key()
                .description(format!("{prefix}-{id}"))
                .set_key_spec(
                    property("KeySpec").map(|s| aws_sdk_kms::types::KeySpec::from(s.as_str())),
                )
                .set_key_usage(
                    property("KeyUsage")
                        .map(|u| aws_sdk_kms::types::KeyUsageType::from(u.as_str())),
                )
                .send()
                .await
                .map_err(|e| EmulatorError::Resource {
                    resource: id.to_owned(),
                    message: err_text(e),
                })?;
            let meta = out.key_metadata.ok_or_else(|| EmulatorError::Resource {
                resource: id.to_owned(),
                message: "no key metadata".into(),
            })?;
            resources.by_logical_id.insert(
                id.to_owned(),
                Physical::Key {
                    id: meta.key_id,
                    arn: meta.arn.unwrap_or_default(),
                },
            );
        }
        let sqs = aws_sdk_sqs::Client::new(sdk);
        for (id, _) in template.resources_of_type("AWS::SQS::Queue") {
            let queue = create_queue(&sqs, &format!("{prefix}-{id}"))
                .await
                .map_err(|message| EmulatorError::Resource {
                    resource: id.to_owned(),
                    message,
                })?;
            resources.by_logical_id.insert(id.to_owned(), queue);
        }
        Ok(resources)
    }
}

/// Creates an SQS queue and returns its URL and ARN.
pub async fn create_queue(sqs: &aws_sdk_sqs::Client, name: &str) -> Result<Physical, String> {
    let url = sqs
        .create_queue()
        .queue_name(name)
        .send()
        .await
        .map_err(err_text)?
        .queue_url
        .unwrap_or_default();
    let arn = format!("arn:aws:sqs:{REGION}:{ACCOUNT}:{name}");
    Ok(Physical::Queue { url, arn })
}

/// An SDK error with its chain of sources, as one line.
pub fn err_text<E: std::error::Error + 'static>(e: E) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

fn key_schema(value: Option<&Value>) -> Result<Vec<KeySchemaElement>, String> {
    value
        .and_then(Value::as_sequence)
        .ok_or("KeySchema missing")?
        .iter()
        .map(|k| {
            let name = k
                .get("AttributeName")
                .and_then(Value::as_str)
                .ok_or("AttributeName missing")?;
            let kind = match k.get("KeyType").and_then(Value::as_str) {
                Some("HASH") => KeyType::Hash,
                Some("RANGE") => KeyType::Range,
                other => return Err(format!("unknown KeyType {other:?}")),
            };
            KeySchemaElement::builder()
                .attribute_name(name)
                .key_type(kind)
                .build()
                .map_err(|e| e.to_string())
        })
        .collect()
}

/// Creates the table as declared; answers its stream's ARN when it has one.
async fn create_table(
    client: &aws_sdk_dynamodb::Client,
    name: &str,
    props: &Value,
) -> Result<Option<String>, String> {
    let mut request = client
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest);
    for def in props
        .get("AttributeDefinitions")
        .and_then(Value::as_sequence)
        .ok_or("AttributeDefinitions missing")?
    {
        let attr = def
            .get("AttributeName")
            .and_then(Value::as_str)
            .ok_or("AttributeName missing")?;
        let kind = match def.get("AttributeType").and_then(Value::as_str) {
            Some("S") => ScalarAttributeType::S,
            Some("N") => ScalarAttributeType::N,
            Some("B") => ScalarAttributeType::B,
            other => return Err(format!("unknown AttributeType {other:?}")),
        };
        request = request.attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name(attr)
                .attribute_type(kind)
                .build()
                .map_err(|e| e.to_string())?,
        );
    }
    request = request.set_key_schema(Some(key_schema(props.get("KeySchema"))?));
    for gsi in props
        .get("GlobalSecondaryIndexes")
        .and_then(Value::as_sequence)
        .into_iter()
        .flatten()
    {
        let index = gsi
            .get("IndexName")
            .and_then(Value::as_str)
            .ok_or("IndexName missing")?;
        let projection = match gsi
            .get("Projection")
            .and_then(|p| p.get("ProjectionType"))
            .and_then(Value::as_str)
        {
            Some("KEYS_ONLY") => ProjectionType::KeysOnly,
            Some("INCLUDE") => ProjectionType::Include,
            _ => ProjectionType::All,
        };
        request = request.global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name(index)
                .set_key_schema(Some(key_schema(gsi.get("KeySchema"))?))
                .projection(Projection::builder().projection_type(projection).build())
                .build()
                .map_err(|e| e.to_string())?,
        );
    }
    if let Some(view) = props
        .get("StreamSpecification")
        .and_then(|spec| spec.get("StreamViewType"))
        .and_then(Value::as_str)
    {
        request = request.stream_specification(
            StreamSpecification::builder()
                .stream_enabled(true)
                .stream_view_type(StreamViewType::from(view))
                .build()
                .map_err(|e| e.to_string())?,
        );
    }
    let created = request.send().await.map_err(err_text)?;
    let stream_arn = created
        .table_description
        .and_then(|table| table.latest_stream_arn);
    let ttl_attribute = props
        .get("TimeToLiveSpecification")
        .and_then(|ttl| ttl.get("AttributeName"))
        .and_then(Value::as_str);
    if let Some(attr) = ttl_attribute {
        let spec = TimeToLiveSpecification::builder()
            .attribute_name(attr)
            .enabled(true)
            .build()
            .map_err(|e| e.to_string())?;
        client
            .update_time_to_live()
            .table_name(name)
            .time_to_live_specification(spec)
            .send()
            .await
            .map_err(err_text)?;
    }
    Ok(stream_arn)
}
