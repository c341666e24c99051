//! Retention, cold storage and scheduled jobs as the policy states them:
//! `retention`/`then` per entity, `[export]`, `[erasure] subject` and
//! `[jobs.NAME]`. Types and parsing; the store runs them.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use crate::duration::parse_duration;
use crate::error::PolicyError;
use crate::policy::Strategy;
use crate::policy_parse::Lines;

/// What happens to a deleted row once its retention has passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AfterRetention {
    /// Removed for good (soft rows from their table, hard snapshots and
    /// archived rows from Lethe's stores).
    Purge,
    /// Moved to the archive store (soft rows, hard snapshots): restorable
    /// still, but out of the table and its indexes.
    Archive,
}

impl AfterRetention {
    pub fn as_str(self) -> &'static str {
        match self {
            AfterRetention::Purge => "purge",
            AfterRetention::Archive => "archive",
        }
    }
}

impl fmt::Display for AfterRetention {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `retention = "90d"`, `then = "purge"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retention {
    /// How long a deleted row stays where its strategy put it.
    pub after: Duration,
    /// As written, for messages (`90d`).
    pub text: String,
    pub then: AfterRetention,
}

/// A cron schedule (UTC): five fields, or six with seconds first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    pub text: String,
    cron: croner::Cron,
}

impl Schedule {
    pub fn parse(text: &str) -> Result<Schedule, String> {
        let cron = croner::Cron::from_str(text.trim()).map_err(|e| {
            format!("\"{text}\" is not a cron schedule ({e}); write five fields like \"0 3 * * *\" (03:00 UTC every day), six with seconds first, or an alias such as @daily")
        })?;
        Ok(Schedule {
            text: text.trim().to_string(),
            cron,
        })
    }

    /// The latest time the schedule fired at or before `at` (Unix seconds,
    /// UTC); `None` when it never did.
    pub fn latest_at_or_before(&self, at: i64) -> Option<i64> {
        use chrono::TimeZone;
        let t = chrono::Utc.timestamp_opt(at, 0).single()?;
        self.cron
            .find_previous_occurrence(&t, true)
            .ok()
            .map(|n| n.timestamp())
    }

    /// The first time the schedule fires strictly after `after` (Unix
    /// seconds, UTC); `None` when it never fires again.
    pub fn next_after(&self, after: i64) -> Option<i64> {
        use chrono::TimeZone;
        let t = chrono::Utc.timestamp_opt(after, 0).single()?;
        self.cron
            .find_next_occurrence(&t, false)
            .ok()
            .map(|n| n.timestamp())
    }
}

/// What a job does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobKind {
    /// `lethe purge`.
    Purge {
        batch_size: Option<u32>,
        max_rows_per_second: Option<u32>,
    },
    /// `lethe archive export`.
    Export,
}

impl JobKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            JobKind::Purge { .. } => "purge",
            JobKind::Export => "export",
        }
    }
}

/// `[jobs.NAME]`: a purge or an export on a schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    pub name: String,
    pub kind: JobKind,
    pub schedule: Schedule,
    /// Only this entity (all entities when `None`).
    pub entity: Option<String>,
    pub line: usize,
}

/// `[export]`: where cold storage goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportConfig {
    /// A directory (`./cold`, `file:///var/lib/lethe`) or an S3-compatible
    /// location (`s3://bucket/prefix`).
    pub to: String,
    /// S3: the endpoint of an S3-compatible server (default: AWS).
    pub endpoint: Option<String>,
    /// S3: the region (default `us-east-1`).
    pub region: Option<String>,
    /// The variable holding the key-encryption key (64 hex digits) that wraps
    /// the per-subject data keys. Unset: a key kept in Lethe's settings table.
    pub key_env: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawJob {
    run: Spanned<String>,
    schedule: Spanned<String>,
    entity: Option<Spanned<String>>,
    batch_size: Option<Spanned<u32>>,
    max_rows_per_second: Option<Spanned<u32>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawExport {
    to: Spanned<String>,
    endpoint: Option<String>,
    region: Option<String>,
    key_env: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawErasure {
    pub(crate) subject: Option<Spanned<String>>,
}

/// `retention` and `then` of one entity (or of `[defaults]`).
pub(crate) fn parse_retention(
    lines: &Lines<'_>,
    key_path: &str,
    strategy: Strategy,
    retention: Option<&Spanned<String>>,
    then: Option<&Spanned<String>>,
) -> Result<Option<Retention>, PolicyError> {
    let then_value = match then {
        None => AfterRetention::Purge,
        Some(t) => match t.get_ref().as_str() {
            "purge" => AfterRetention::Purge,
            "archive" => AfterRetention::Archive,
            other => {
                return Err(lines.err(
                    t,
                    format!("{key_path}.then"),
                    format!("unknown \"then\" value \"{other}\" (expected purge or archive)"),
                ));
            }
        },
    };
    let Some(r) = retention else {
        if let Some(t) = then {
            return Err(lines.err(
                t,
                format!("{key_path}.then"),
                "\"then\" needs a retention: add retention = \"90d\" (how long deleted rows stay restorable)",
            ));
        }
        return Ok(None);
    };
    let after = parse_duration(r.get_ref())
        .map_err(|m| lines.err(r, format!("{key_path}.retention"), m))?;
    if after.is_zero() {
        return Err(lines.err(
            r,
            format!("{key_path}.retention"),
            "a retention of zero leaves no time to restore a deletion; write how long deleted rows stay restorable, e.g. \"1d\"",
        ));
    }
    if strategy == Strategy::Archive
        && then_value == AfterRetention::Archive
        && let Some(t) = then
    {
        return Err(lines.err(
            t,
            format!("{key_path}.then"),
            "rows of an archive entity are in the archive already; after their retention they can only be purged (then = \"purge\")",
        ));
    }
    Ok(Some(Retention {
        after,
        text: r.get_ref().trim().to_string(),
        then: then_value,
    }))
}

pub(crate) fn parse_jobs(
    lines: &Lines<'_>,
    raw: BTreeMap<Spanned<String>, Spanned<RawJob>>,
    entities: &BTreeMap<String, crate::policy::Entity>,
    has_export: bool,
) -> Result<BTreeMap<String, Job>, PolicyError> {
    let mut jobs = BTreeMap::new();
    for (name, raw_job) in raw {
        let key_path = format!("jobs.{}", name.get_ref());
        if !crate::ident::is_valid(name.get_ref()) {
            return Err(lines.err(
                &name,
                key_path,
                crate::ident::invalid_message(name.get_ref()),
            ));
        }
        let line = lines.line(raw_job.span().start);
        let j = raw_job.into_inner();
        let schedule = Schedule::parse(j.schedule.get_ref())
            .map_err(|m| lines.err(&j.schedule, format!("{key_path}.schedule"), m))?;
        let kind = match j.run.get_ref().as_str() {
            "purge" => JobKind::Purge {
                batch_size: positive(lines, &j.batch_size, &key_path, "batch_size")?,
                max_rows_per_second: positive(
                    lines,
                    &j.max_rows_per_second,
                    &key_path,
                    "max_rows_per_second",
                )?,
            },
            "export" => {
                for (v, k) in [
                    (&j.batch_size, "batch_size"),
                    (&j.max_rows_per_second, "max_rows_per_second"),
                ] {
                    if let Some(v) = v {
                        return Err(lines.err(
                            v,
                            format!("{key_path}.{k}"),
                            format!("{k} applies to purge jobs only"),
                        ));
                    }
                }
                if !has_export {
                    return Err(lines.err(
                        &j.run,
                        format!("{key_path}.run"),
                        "an export job needs [export] to = \"DIR or s3://bucket/prefix\"",
                    ));
                }
                JobKind::Export
            }
            other => {
                return Err(lines.err(
                    &j.run,
                    format!("{key_path}.run"),
                    format!("unknown job \"{other}\" (expected purge or export)"),
                ));
            }
        };
        let entity = match &j.entity {
            Some(e) if !entities.contains_key(e.get_ref()) => {
                return Err(lines.err(
                    e,
                    format!("{key_path}.entity"),
                    format!(
                        "\"{}\" is not a managed entity (managed: {})",
                        e.get_ref(),
                        entities.keys().cloned().collect::<Vec<_>>().join(", ")
                    ),
                ));
            }
            Some(e) => Some(e.get_ref().clone()),
            None => None,
        };
        jobs.insert(
            name.get_ref().clone(),
            Job {
                name: name.get_ref().clone(),
                kind,
                schedule,
                entity,
                line,
            },
        );
    }
    Ok(jobs)
}

fn positive(
    lines: &Lines<'_>,
    v: &Option<Spanned<u32>>,
    key_path: &str,
    key: &str,
) -> Result<Option<u32>, PolicyError> {
    match v {
        Some(n) if *n.get_ref() == 0 => {
            Err(lines.err(n, format!("{key_path}.{key}"), "must be at least 1"))
        }
        Some(n) => Ok(Some(*n.get_ref())),
        None => Ok(None),
    }
}

pub(crate) fn parse_export(
    lines: &Lines<'_>,
    raw: Option<RawExport>,
) -> Result<Option<ExportConfig>, PolicyError> {
    let Some(r) = raw else { return Ok(None) };
    let to = r.to.get_ref().trim();
    if to.is_empty() {
        return Err(lines.err(
            &r.to,
            "export.to",
            "must name a directory or s3://bucket/prefix",
        ));
    }
    if let Some(rest) = to.strip_prefix("s3://")
        && rest.split('/').next().unwrap_or("").is_empty()
    {
        return Err(lines.err(
            &r.to,
            "export.to",
            "s3:// needs a bucket: s3://bucket/prefix",
        ));
    }
    if to.contains("://") && !to.starts_with("s3://") && !to.starts_with("file://") {
        return Err(lines.err(
            &r.to,
            "export.to",
            format!("\"{to}\" is not a directory, file:// or s3:// location"),
        ));
    }
    if let Some(k) = &r.key_env
        && !crate::ident::is_env_name(k.get_ref())
    {
        return Err(lines.err(
            k,
            "export.key_env",
            "must be the name of an environment variable (letters, digits and _)",
        ));
    }
    Ok(Some(ExportConfig {
        to: to.to_string(),
        endpoint: r.endpoint,
        region: r.region,
        key_env: r.key_env.map(|k| k.into_inner()),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules_fire_at_the_next_match() {
        let s = Schedule::parse("0 3 * * *").unwrap();
        // 2026-01-01T00:00:00Z -> 03:00 the same day.
        assert_eq!(s.next_after(1_767_225_600), Some(1_767_225_600 + 3 * 3600));
        let every2s = Schedule::parse("*/2 * * * * *").unwrap();
        assert_eq!(every2s.next_after(1_767_225_600), Some(1_767_225_602));
        assert_eq!(
            every2s.latest_at_or_before(1_767_225_601),
            Some(1_767_225_600)
        );
        assert_eq!(
            every2s.latest_at_or_before(1_767_225_600),
            Some(1_767_225_600)
        );
        assert_eq!(
            s.latest_at_or_before(1_767_225_600 + 3 * 3600 + 59),
            Some(1_767_225_600 + 3 * 3600)
        );
        assert!(Schedule::parse("61 * * * *").is_err());
        assert!(Schedule::parse("tomorrow").is_err());
    }
}
