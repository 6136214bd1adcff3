//! Segments (the loyalty contract's `POST /api/3.0/segment`): a named list of members'
//! emails over a date range. The gateway has no segment API (the contract says so), so
//! the hub keeps them and exports a segment's members as CSV for upload. Ids are
//! integers from an atomic counter; a site's `externalId` names one segment (the same
//! again with the same fields answers that segment, with other fields it is refused).

use serde::{Deserialize, Serialize};
use time::{Date, macros::format_description};

use super::{SmsError, SmsMember, SmsSite};
use crate::{
    clock,
    domain::{Email, ParseError},
    store::{Keys, Query, Record, Tx, keys},
};

/// The most emails one segment lists.
pub const MAX_MEMBERS: usize = 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SegmentType {
    #[serde(rename = "Current Data")]
    CurrentData,
    #[serde(rename = "Past Data")]
    PastData,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum SegmentStatus {
    Active,
    Inactive,
}

/// A segment as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Segment {
    pub account_id: crate::domain::AccountId,
    pub site_id: u64,
    pub segment_id: u64,
    pub name: String,
    pub segment_type: SegmentType,
    /// `yyyy-mm-dd`.
    pub from_date: String,
    pub to_date: String,
    pub members: Vec<String>,
    pub status: SegmentStatus,
    pub external_id: String,
    pub external_name: String,
    pub created_at: String,
}

impl Record for Segment {
    fn keys(&self) -> Keys {
        keys::sms_segment(self.account_id, self.segment_id)
    }
}

/// The pointer that keeps a site's `externalId` to one segment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct SegmentExternalId {
    account_id: crate::domain::AccountId,
    external_id: String,
    segment_id: u64,
}

impl Record for SegmentExternalId {
    fn keys(&self) -> Keys {
        keys::sms_segment_external(self.account_id, &self.external_id)
    }
}

/// A segment request, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSegment {
    pub name: String,
    pub segment_type: SegmentType,
    pub from_date: String,
    pub to_date: String,
    pub members: Vec<String>,
    pub status: SegmentStatus,
    pub external_id: String,
    pub external_name: String,
}

/// `yyyy-mm-dd`.
pub fn parse_day(value: &str) -> Result<Date, ParseError> {
    Date::parse(value.trim(), format_description!("[year]-[month]-[day]"))
        .map_err(|_| ParseError::new("must be a date as yyyy-mm-dd"))
}

/// Comma-separated emails, each valid, at most [`MAX_MEMBERS`].
pub fn parse_members(value: &str) -> Result<Vec<String>, ParseError> {
    let members: Vec<String> = value
        .split(',')
        .map(str::trim)
        .filter(|m| !m.is_empty())
        .map(|m| Email::parse(m).map(|e| e.as_str().to_owned()))
        .collect::<Result<_, _>>()
        .map_err(|e| ParseError::new(format!("every member must be an email: {e}")))?;
    if members.is_empty() {
        return Err(ParseError::new("must list at least one email"));
    }
    if members.len() > MAX_MEMBERS {
        return Err(ParseError::new(format!("at most {MAX_MEMBERS} emails")));
    }
    Ok(members)
}

/// What `create` came to.
pub enum Created {
    New(Segment),
    /// The same `externalId` with the same fields: that segment.
    Existing(Segment),
    /// The same `externalId` with other fields.
    Conflict(u64),
}

impl NewSegment {
    fn same_as(&self, s: &Segment) -> bool {
        self.name == s.name
            && self.segment_type == s.segment_type
            && self.from_date == s.from_date
            && self.to_date == s.to_date
            && self.members == s.members
            && self.status == s.status
            && self.external_name == s.external_name
    }
}

impl super::Sms {
    pub async fn create_segment(
        &self,
        site: &SmsSite,
        request: &NewSegment,
    ) -> Result<Created, SmsError> {
        let table = self.uow().table();
        // Without an externalId every request makes a segment.
        let keyed = !request.external_id.is_empty();
        let pointer_keys = keys::sms_segment_external(site.account_id, &request.external_id);
        // No read first: the pointer's condition tells an external id already taken (a
        // repeat costs an id, which may have gaps).
        let segment_id = table.next_id("SMS_SEGMENT").await?;
        let segment = Segment {
            account_id: site.account_id,
            site_id: site.site_id,
            segment_id,
            name: request.name.clone(),
            segment_type: request.segment_type,
            from_date: request.from_date.clone(),
            to_date: request.to_date.clone(),
            members: request.members.clone(),
            status: request.status,
            external_id: request.external_id.clone(),
            external_name: request.external_name.clone(),
            created_at: clock::sortable(clock::now()),
        };
        let pointer = SegmentExternalId {
            account_id: site.account_id,
            external_id: request.external_id.clone(),
            segment_id,
        };
        let mut tx = Tx::new();
        tx.put_new(&segment)?;
        if keyed {
            tx.put_new(&pointer)?;
        }
        if self.uow().commit_once(tx).await? {
            return Ok(Created::New(segment));
        }
        // Another request took the external id first.
        let pointer = table
            .get::<SegmentExternalId>(&pointer_keys)
            .await?
            .ok_or(SmsError::Tx(crate::store::TxError::Conflict))?;
        self.existing(site, request, pointer.segment_id).await
    }

    async fn existing(
        &self,
        site: &SmsSite,
        request: &NewSegment,
        segment_id: u64,
    ) -> Result<Created, SmsError> {
        let existing = self.segment(site, segment_id).await?;
        Ok(match existing {
            Some(segment) if request.same_as(&segment) => Created::Existing(segment),
            _ => Created::Conflict(segment_id),
        })
    }

    pub async fn segment(&self, site: &SmsSite, id: u64) -> Result<Option<Segment>, SmsError> {
        Ok(self
            .uow()
            .table()
            .get(&keys::sms_segment(site.account_id, id))
            .await?)
    }

    /// One page of the site's segments by id, after `after` (a segment id).
    pub async fn segments(
        &self,
        site: &SmsSite,
        limit: usize,
        after: Option<u64>,
    ) -> Result<(Vec<Segment>, Option<u64>), SmsError> {
        let start = after.map(|id| keys::sms_segment(site.account_id, id));
        let query = Query::partition(keys::account_partition(site.account_id))
            .sort_begins_with(keys::SMS_SEGMENT_PREFIX);
        let (segments, more) = self
            .uow()
            .table()
            .query_page::<Segment>(&query, limit, start)
            .await?;
        let next = if more {
            segments.last().map(|s| s.segment_id)
        } else {
            None
        };
        Ok((segments, next))
    }

    /// The site's members (for [`segment_csv`]).
    pub async fn members(&self, site: &SmsSite) -> Result<Vec<SmsMember>, SmsError> {
        Ok(self
            .uow()
            .table()
            .query_all(
                &Query::partition(keys::account_partition(site.account_id))
                    .sort_begins_with(keys::SMS_MEMBER_PREFIX),
            )
            .await?)
    }
}

/// The segment's members as CSV for upload to the gateway: `phone,email` (the phone of
/// the site's member with that email, empty when the hub knows none).
pub fn segment_csv(segment: &Segment, members: &[SmsMember]) -> String {
    let mut csv = String::from("phone,email\n");
    for email in &segment.members {
        let phone = members
            .iter()
            .find(|m| {
                m.email
                    .as_deref()
                    .is_some_and(|e| e.eq_ignore_ascii_case(email))
            })
            .map(|m| m.phone.as_str().to_owned())
            .unwrap_or_default();
        csv.push_str(&format!("{phone},{email}\n"));
    }
    csv
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_and_days_parse_as_the_contract_writes_them() {
        assert_eq!(
            parse_members("jacobsmith@gmail.com,brianpaul@gmail.com, markburger@gmail.com")
                .unwrap(),
            [
                "jacobsmith@gmail.com",
                "brianpaul@gmail.com",
                "markburger@gmail.com"
            ]
        );
        assert!(parse_members("").is_err());
        assert!(parse_members("a@b.com,not-an-email").is_err());
        assert_eq!(parse_day("2020-01-17").unwrap().to_string(), "2020-01-17");
        for bad in ["2020-1-17", "17-01-2020", "2020-02-30", ""] {
            assert!(parse_day(bad).is_err(), "{bad}");
        }
    }
}
