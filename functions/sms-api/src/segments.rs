//! Segments, as the loyalty contract's `POST /api/3.0/segment` documents them: its
//! fields, its answer (`segmentFromDate` as `2020-01-17T00:00:00+0000`, `segmentToDate`
//! as `2020-02-14T23:59:00+0000`) and its error shape `{errorCode, errorMessage}`:
//!
//! | errorCode | HTTP | when |
//! |-----------|------|------|
//! | AC1001 | 500 | something went wrong on the hub's side ("Oops! Something went wrong.") |
//! | AC1002 | 401 | the access token is missing or not a site's |
//! | AC1003 | 400 | the body is not JSON |
//! | AC1004 | 422 | a field is missing or invalid (the message names it) |
//! | AC1005 | 404 | no such segment |
//! | AC1006 | 409 | the `externalId` names another segment with other fields |
//! | AC1007 | 429 | too many failed authentications (`Retry-After`) |
//! | AC1008 | 413 | the body is too large |

use axum::{
    Json,
    extract::State,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use shared::{
    http::{AnyJson, ApiError, Path, Query, auth::SiteAuth},
    sms::segments::{
        Created, NewSegment, Segment, SegmentStatus, SegmentType, parse_day, parse_members,
    },
};

use crate::SmsApi;

/// An error as the segment API writes it.
pub struct AcError {
    status: StatusCode,
    code: &'static str,
    message: String,
    retry_after: Option<std::time::Duration>,
}

impl AcError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    fn invalid(field: &str, message: impl std::fmt::Display) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "AC1004",
            format!("{field}: {message}"),
        )
    }
}

impl From<ApiError> for AcError {
    fn from(e: ApiError) -> Self {
        let code = match e.status.as_u16() {
            401 => "AC1002",
            400 => "AC1003",
            422 => "AC1004",
            404 => "AC1005",
            409 => "AC1006",
            429 => "AC1007",
            413 => "AC1008",
            _ => "AC1001",
        };
        let message = match (code, &e.field) {
            ("AC1001", _) => "Oops! Something went wrong.".to_owned(),
            (_, Some(field)) if !e.message.starts_with(field.as_str()) => {
                format!("{field}: {}", e.message)
            }
            _ => e.message.clone(),
        };
        Self {
            status: e.status,
            code,
            message,
            retry_after: e.retry_after,
        }
    }
}

impl From<shared::sms::SmsError> for AcError {
    fn from(e: shared::sms::SmsError) -> Self {
        ApiError::from(e).into()
    }
}

impl IntoResponse for AcError {
    fn into_response(self) -> Response {
        let mut response = (
            self.status,
            Json(serde_json::json!({"errorCode": self.code, "errorMessage": self.message})),
        )
            .into_response();
        if let Some(wait) = self.retry_after {
            response.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from(wait.as_secs().max(1)),
            );
        }
        response
    }
}

/// A segment as the contract's answer writes it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SegmentView {
    segment_id: u64,
    segment_name: String,
    segment_type: SegmentType,
    segment_from_date: String,
    segment_to_date: String,
    member: String,
    status: SegmentStatus,
    external_id: String,
    external_name: String,
}

impl SegmentView {
    fn of(s: &Segment) -> Self {
        Self {
            segment_id: s.segment_id,
            segment_name: s.name.clone(),
            segment_type: s.segment_type,
            segment_from_date: format!("{}T00:00:00+0000", s.from_date),
            segment_to_date: format!("{}T23:59:00+0000", s.to_date),
            member: s.members.join(","),
            status: s.status,
            external_id: s.external_id.clone(),
            external_name: s.external_name.clone(),
        }
    }
}

fn text<'a>(body: &'a Value, field: &str, required: bool) -> Result<&'a str, AcError> {
    match body.get(field) {
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(s.trim()),
        None | Some(Value::Null) if !required => Ok(""),
        Some(Value::String(_)) if !required => Ok(""),
        Some(Value::String(_)) | None | Some(Value::Null) => {
            Err(AcError::invalid(field, "is required"))
        }
        Some(_) => Err(AcError::invalid(field, "must be a string")),
    }
}

fn parse(body: &Value) -> Result<NewSegment, AcError> {
    if !body.is_object() {
        return Err(AcError::invalid("body", "must be a JSON object"));
    }
    let bounded = |field: &str, value: &str| -> Result<String, AcError> {
        shared::domain::free_text(value)
            .map(|v| v.unwrap_or_default())
            .map_err(|e| AcError::invalid(field, e))
    };
    let name = bounded("name", text(body, "name", true)?)?;
    let segment_type = match text(body, "type", true)? {
        "Current Data" => SegmentType::CurrentData,
        "Past Data" => SegmentType::PastData,
        _ => {
            return Err(AcError::invalid(
                "type",
                "must be \"Current Data\" or \"Past Data\"",
            ));
        }
    };
    let from =
        parse_day(text(body, "fromDate", true)?).map_err(|e| AcError::invalid("fromDate", e))?;
    let to = parse_day(text(body, "toDate", true)?).map_err(|e| AcError::invalid("toDate", e))?;
    if to < from {
        return Err(AcError::invalid("toDate", "must not be before fromDate"));
    }
    let members =
        parse_members(text(body, "member", true)?).map_err(|e| AcError::invalid("member", e))?;
    let status = match text(body, "status", true)? {
        "ACTIVE" => SegmentStatus::Active,
        "INACTIVE" => SegmentStatus::Inactive,
        _ => return Err(AcError::invalid("status", "must be ACTIVE or INACTIVE")),
    };
    let external_id = match body.get("externalId") {
        Some(Value::Number(n)) => n.to_string(),
        _ => bounded("externalId", text(body, "externalId", false)?)?,
    };
    Ok(NewSegment {
        name,
        segment_type,
        from_date: from.to_string(),
        to_date: to.to_string(),
        members,
        status,
        external_id,
        external_name: bounded("externalName", text(body, "externalName", false)?)?,
    })
}

/// `POST /api/3.0/segment`: 200 with the segment (the same `externalId` with the same
/// fields again: the same segment).
pub async fn create(
    State(api): State<SmsApi>,
    site: Result<SiteAuth, ApiError>,
    body: Result<AnyJson<Value>, ApiError>,
) -> Result<Json<SegmentView>, AcError> {
    let SiteAuth(site) = site?;
    let AnyJson(body) = body?;
    let request = parse(&body)?;
    match api.hub.sms.create_segment(&site, &request).await? {
        Created::New(segment) | Created::Existing(segment) => Ok(Json(SegmentView::of(&segment))),
        Created::Conflict(id) => Err(AcError::new(
            StatusCode::CONFLICT,
            "AC1006",
            format!(
                "externalId {} already names segment {id}, with other fields",
                request.external_id
            ),
        )),
    }
}

#[derive(Deserialize)]
pub struct SegmentParam {
    segment_id: String,
}

async fn find(api: &SmsApi, site: &shared::sms::SmsSite, id: &str) -> Result<Segment, AcError> {
    let id: u64 = id
        .trim()
        .parse()
        .map_err(|_| AcError::invalid("segmentId", "must be a whole number"))?;
    api.hub
        .sms
        .segment(site, id)
        .await?
        .ok_or_else(|| AcError::new(StatusCode::NOT_FOUND, "AC1005", format!("no segment {id}")))
}

/// `GET /api/3.0/segment/{segmentId}`.
pub async fn get_one(
    State(api): State<SmsApi>,
    site: Result<SiteAuth, ApiError>,
    path: Result<Path<SegmentParam>, ApiError>,
) -> Result<Json<SegmentView>, AcError> {
    let SiteAuth(site) = site?;
    let Path(SegmentParam { segment_id }) = path?;
    Ok(Json(SegmentView::of(
        &find(&api, &site, &segment_id).await?,
    )))
}

#[derive(Deserialize)]
pub struct ListQuery {
    limit: Option<String>,
    after: Option<String>,
}

/// `GET /api/3.0/segment?limit=&after=`: `{segments, next}` by id; `next` is the
/// `after` of the following page (absent on the last).
pub async fn list(
    State(api): State<SmsApi>,
    site: Result<SiteAuth, ApiError>,
    query: Result<Query<ListQuery>, ApiError>,
) -> Result<Json<Value>, AcError> {
    let SiteAuth(site) = site?;
    let Query(query) = query?;
    let limit = match query.limit.as_deref() {
        None => 50,
        Some(l) => l
            .parse::<usize>()
            .ok()
            .filter(|l| (1..=100).contains(l))
            .ok_or_else(|| AcError::invalid("limit", "must be a whole number from 1 to 100"))?,
    };
    let after = query
        .after
        .as_deref()
        .map(|a| {
            a.parse::<u64>()
                .map_err(|_| AcError::invalid("after", "must be a segment id"))
        })
        .transpose()?;
    let (segments, next) = api.hub.sms.segments(&site, limit, after).await?;
    let views: Vec<SegmentView> = segments.iter().map(SegmentView::of).collect();
    let mut answer = serde_json::json!({ "segments": views });
    if let Some(next) = next {
        answer["next"] = serde_json::json!(next);
    }
    Ok(Json(answer))
}

/// `GET /api/3.0/segment/{segmentId}/members.csv`: `phone,email` for upload to the
/// gateway (which has no segment API).
pub async fn export(
    State(api): State<SmsApi>,
    site: Result<SiteAuth, ApiError>,
    path: Result<Path<SegmentParam>, ApiError>,
) -> Result<Response, AcError> {
    let SiteAuth(site) = site?;
    let Path(SegmentParam { segment_id }) = path?;
    // The segment and the site's members are read together.
    let (segment, members) = tokio::try_join!(find(&api, &site, &segment_id), async {
        Ok::<_, AcError>(api.hub.sms.members(&site).await?)
    })?;
    let csv = shared::sms::segments::segment_csv(&segment, &members);
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!(
                    "attachment; filename=\"segment-{}.csv\"",
                    segment.segment_id
                ),
            ),
        ],
        csv,
    )
        .into_response())
}
