//! `lethe.toml` -> [`Policy`], with the file, line and key in every error.

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;
use toml::Spanned;

use crate::erasure;
use crate::error::PolicyError;
use crate::graph;
use crate::ident;
use crate::policy::{DatabaseConfig, Entity, OnDelete, PiiRule, Policy, Relation, Strategy};
use crate::retention::{RawErasure, RawExport, RawJob, parse_export, parse_jobs, parse_retention};
use crate::sinks_parse::{
    RawDelivery, RawRelay, RawSearches, RawSink, parse_delivery, parse_relay, parse_sinks,
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    #[serde(default)]
    database: Option<RawDatabase>,
    #[serde(default)]
    defaults: Option<RawDefaults>,
    #[serde(default)]
    entities: BTreeMap<Spanned<String>, Spanned<RawEntity>>,
    #[serde(default)]
    relations: Vec<Spanned<RawRelation>>,
    #[serde(default)]
    sinks: BTreeMap<Spanned<String>, Spanned<RawSink>>,
    #[serde(default)]
    relay: Option<RawRelay>,
    #[serde(default)]
    erasure: Option<RawErasure>,
    #[serde(default)]
    export: Option<RawExport>,
    #[serde(default)]
    jobs: BTreeMap<Spanned<String>, Spanned<RawJob>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDatabase {
    url: Option<String>,
    #[serde(default)]
    row_security: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDefaults {
    strategy: Option<Spanned<String>>,
    deleted_at: Option<Spanned<String>>,
    deletion_id: Option<Spanned<String>>,
    retention: Option<Spanned<String>>,
    then: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEntity {
    table: Option<Spanned<String>>,
    key: Spanned<Vec<String>>,
    strategy: Option<Spanned<String>>,
    #[serde(default)]
    unique: Vec<Spanned<Vec<String>>>,
    #[serde(default)]
    pii: BTreeMap<Spanned<String>, Spanned<String>>,
    deleted_at: Option<Spanned<String>>,
    deletion_id: Option<Spanned<String>>,
    cache_keys: Option<Spanned<Vec<String>>>,
    cache: Option<Spanned<Vec<String>>>,
    search: Option<Spanned<RawSearches>>,
    publish: Option<Spanned<Vec<String>>>,
    retention: Option<Spanned<String>>,
    then: Option<Spanned<String>>,
    subject_columns: Option<Spanned<Vec<String>>>,
    erase: Option<Spanned<String>>,
    legal_basis: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRelation {
    child: Spanned<String>,
    columns: Spanned<Vec<String>>,
    parent: Spanned<String>,
    on_delete: Spanned<String>,
    /// Whether erasure follows the relation (see `erasure_plan`).
    #[serde(default)]
    erasure: Option<bool>,
}

/// Maps byte offsets in the source to 1-based line numbers.
pub(crate) struct Lines<'a> {
    source: &'a str,
    pub(crate) file: &'a str,
}

impl Lines<'_> {
    pub(crate) fn line(&self, offset: usize) -> usize {
        let end = offset.min(self.source.len());
        self.source.as_bytes()[..end]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1
    }

    pub(crate) fn err<T>(
        &self,
        spanned: &Spanned<T>,
        key: impl Into<String>,
        msg: impl Into<String>,
    ) -> PolicyError {
        PolicyError::at(self.file, Some(self.line(spanned.span().start)), key, msg)
    }
}

/// Parses and statically validates a policy. `file` is only used in messages.
pub fn parse_policy(source: &str, file: &str) -> Result<Policy, PolicyError> {
    let lines = Lines { source, file };
    let raw: RawPolicy = toml::from_str(source).map_err(|e| {
        let line = e.span().map(|s| lines.line(s.start));
        let key = line
            .and_then(|l| source.lines().nth(l - 1))
            .map(|text| text.trim().chars().take(60).collect::<String>())
            .unwrap_or_default();
        PolicyError::at(file, line, key, e.message().trim().to_string())
    })?;

    let defaults = raw.defaults.unwrap_or(RawDefaults {
        strategy: None,
        deleted_at: None,
        deletion_id: None,
        retention: None,
        then: None,
    });
    let default_strategy = match &defaults.strategy {
        Some(s) => parse_strategy(&lines, s, "defaults.strategy")?,
        None => Strategy::Soft,
    };
    let default_deleted_at = match &defaults.deleted_at {
        Some(s) => column_name(&lines, s, "defaults.deleted_at")?,
        None => "deleted_at".to_string(),
    };
    let default_deletion_id = match &defaults.deletion_id {
        Some(s) => column_name(&lines, s, "defaults.deletion_id")?,
        None => "deletion_id".to_string(),
    };

    // Checked here, whether or not an entity takes them.
    parse_retention(
        &lines,
        "defaults",
        Strategy::Soft,
        defaults.retention.as_ref(),
        defaults.then.as_ref(),
    )?;

    let sinks = parse_sinks(&lines, raw.sinks)?;
    let relay = parse_relay(raw.relay);

    let mut entities = BTreeMap::new();
    for (name, raw_entity) in raw.entities {
        let key_path = format!("entities.{}", name.get_ref());
        if !ident::is_valid(name.get_ref()) {
            return Err(lines.err(&name, key_path, ident::invalid_message(name.get_ref())));
        }
        let line = lines.line(raw_entity.span().start);
        let e = raw_entity.into_inner();
        let table = match &e.table {
            Some(t) => {
                if !ident::is_valid_table(t.get_ref()) {
                    return Err(lines.err(
                        t,
                        format!("{key_path}.table"),
                        ident::invalid_message(t.get_ref()),
                    ));
                }
                t.get_ref().clone()
            }
            None => name.get_ref().clone(),
        };
        let key = column_list(&lines, &e.key, &format!("{key_path}.key"))?;
        let strategy = match &e.strategy {
            Some(s) => parse_strategy(&lines, s, &format!("{key_path}.strategy"))?,
            None => default_strategy,
        };
        let mut unique = Vec::new();
        for (i, u) in e.unique.iter().enumerate() {
            unique.push(column_list(&lines, u, &format!("{key_path}.unique[{i}]"))?);
        }
        let mut pii = BTreeMap::new();
        for (col, rule) in &e.pii {
            let k = format!("{key_path}.pii.{}", col.get_ref());
            if !ident::is_valid(col.get_ref()) {
                return Err(lines.err(col, k, ident::invalid_message(col.get_ref())));
            }
            let r = match rule.get_ref().as_str() {
                "null" => PiiRule::Null,
                "redact" => PiiRule::Redact,
                "hash" => PiiRule::Hash,
                "fake" => PiiRule::Fake,
                other => {
                    return Err(lines.err(
                        rule,
                        k,
                        format!(
                            "unknown PII rule \"{other}\" (expected null, redact, hash or fake)"
                        ),
                    ));
                }
            };
            pii.insert(col.get_ref().clone(), r);
        }
        let deleted_at = match &e.deleted_at {
            Some(s) => column_name(&lines, s, &format!("{key_path}.deleted_at"))?,
            None => default_deleted_at.clone(),
        };
        let deletion_id = match &e.deletion_id {
            Some(s) => column_name(&lines, s, &format!("{key_path}.deletion_id"))?,
            None => default_deletion_id.clone(),
        };
        if deleted_at == deletion_id {
            return Err(PolicyError::at(
                file,
                Some(line),
                key_path,
                format!(
                    "deleted_at and deletion_id must be different columns (both are \"{deleted_at}\")"
                ),
            ));
        }
        for c in &key {
            if *c == deleted_at || *c == deletion_id {
                return Err(lines.err(
                    &e.key,
                    format!("{key_path}.key"),
                    format!("the key cannot contain the marker column \"{c}\""),
                ));
            }
        }
        // An entity's own retention replaces the default one whole (a `then`
        // of its own without a retention of its own inherits the default
        // duration).
        let (ret, then, ret_path) = if e.retention.is_some() || e.then.is_some() {
            (
                e.retention.as_ref().or(defaults.retention.as_ref()),
                e.then.as_ref(),
                key_path.clone(),
            )
        } else {
            (
                defaults.retention.as_ref(),
                // Archived rows can only be purged: a default `then =
                // "archive"` means purge for them.
                defaults
                    .then
                    .as_ref()
                    .filter(|_| strategy != Strategy::Archive),
                "defaults".to_string(),
            )
        };
        let retention = parse_retention(&lines, &ret_path, strategy, ret, then)?;
        let subject_columns = match &e.subject_columns {
            Some(cols) => column_list(&lines, cols, &format!("{key_path}.subject_columns"))?,
            None => Vec::new(),
        };
        let erase = erasure::parse_entity(
            &lines,
            &key_path,
            e.erase.as_ref(),
            e.legal_basis.as_ref(),
            !pii.is_empty(),
        )?;
        let delivery = parse_delivery(
            &lines,
            &key_path,
            &key,
            RawDelivery {
                cache_keys: &e.cache_keys,
                cache: &e.cache,
                search: &e.search,
                publish: &e.publish,
            },
            &sinks,
        )?;
        entities.insert(
            name.get_ref().clone(),
            Entity {
                delivery,
                name: name.get_ref().clone(),
                table,
                key,
                strategy,
                unique,
                pii,
                deleted_at,
                deletion_id,
                retention,
                subject_columns,
                erase,
                marked: strategy == Strategy::Soft,
                line,
            },
        );
    }

    let mut tables = BTreeMap::new();
    for e in entities.values() {
        if let Some(other) = tables.insert(e.table.clone(), e.name.clone()) {
            return Err(PolicyError::at(
                file,
                Some(e.line),
                format!("entities.{}.table", e.name),
                format!(
                    "table \"{}\" is already managed by entity \"{other}\"",
                    e.table
                ),
            ));
        }
    }

    let mut relations = Vec::new();
    let mut seen = BTreeSet::new();
    for (i, raw_rel) in raw.relations.into_iter().enumerate() {
        let line = lines.line(raw_rel.span().start);
        let r = raw_rel.into_inner();
        let key_path = format!("relations[{i}]");
        let on_delete = match r.on_delete.get_ref().as_str() {
            "cascade" => OnDelete::Cascade,
            "restrict" => OnDelete::Restrict,
            "set_null" => OnDelete::SetNull,
            "keep" => OnDelete::Keep,
            other => {
                return Err(lines.err(
                    &r.on_delete,
                    format!("{key_path}.on_delete"),
                    format!("unknown on_delete \"{other}\" (expected cascade, restrict, set_null or keep)"),
                ));
            }
        };
        let columns = column_list(&lines, &r.columns, &format!("{key_path}.columns"))?;
        let child = entities.get(r.child.get_ref()).ok_or_else(|| {
            lines.err(
                &r.child,
                format!("{key_path}.child"),
                format!(
                    "\"{}\" is not a managed entity; add [entities.{}] or fix the name",
                    r.child.get_ref(),
                    r.child.get_ref()
                ),
            )
        })?;
        let parent = entities.get(r.parent.get_ref()).ok_or_else(|| {
            lines.err(
                &r.parent,
                format!("{key_path}.parent"),
                format!(
                    "relation to an unmanaged table: \"{}\" is not a managed entity; add [entities.{}] so Lethe knows its key",
                    r.parent.get_ref(),
                    r.parent.get_ref()
                ),
            )
        })?;
        if columns.len() != parent.key.len() {
            return Err(lines.err(
                &r.columns,
                format!("{key_path}.columns"),
                format!(
                    "key length mismatch: {} column(s) ({}) reference the key of \"{}\", which has {} ({})",
                    columns.len(),
                    columns.join(", "),
                    parent.name,
                    parent.key.len(),
                    parent.key.join(", ")
                ),
            ));
        }
        if on_delete == OnDelete::SetNull
            && let Some(c) = columns.iter().find(|c| child.key.contains(c))
        {
            return Err(lines.err(
                &r.columns,
                format!("{key_path}.columns"),
                format!(
                    "set_null cannot clear \"{c}\": it is part of the key of \"{}\"",
                    child.name
                ),
            ));
        }
        if !seen.insert((child.name.clone(), columns.clone(), parent.name.clone())) {
            return Err(lines.err(
                &r.columns,
                key_path,
                format!(
                    "duplicate relation {}.{} -> {}",
                    child.name,
                    columns.join(","),
                    parent.name
                ),
            ));
        }
        relations.push(Relation {
            child: child.name.clone(),
            columns,
            parent: parent.name.clone(),
            on_delete,
            erasure: r.erasure,
            line,
        });
    }

    let subject = match raw.erasure.and_then(|e| e.subject) {
        Some(s) if !entities.contains_key(s.get_ref()) => {
            return Err(lines.err(
                &s,
                "erasure.subject",
                format!(
                    "\"{}\" is not a managed entity; the subject must be the entity whose rows are people (e.g. users)",
                    s.get_ref()
                ),
            ));
        }
        Some(s) => Some(s.into_inner()),
        None => None,
    };
    if let Some(subject) = subject.as_ref().map(|s| &entities[s]) {
        for e in entities.values().filter(|e| !e.subject_columns.is_empty()) {
            if e.subject_columns.len() != subject.key.len() {
                return Err(PolicyError::at(
                    file,
                    Some(e.line),
                    format!("entities.{}.subject_columns", e.name),
                    format!(
                        "{} column(s) cannot hold the key of the subject \"{}\", which has {} ({})",
                        e.subject_columns.len(),
                        subject.name,
                        subject.key.len(),
                        subject.key.join(", ")
                    ),
                ));
            }
        }
    } else if let Some(e) = entities.values().find(|e| !e.subject_columns.is_empty()) {
        return Err(PolicyError::at(
            file,
            Some(e.line),
            format!("entities.{}.subject_columns", e.name),
            "subject_columns needs the subject entity: add [erasure] subject = \"users\" (the entity whose rows are people)",
        ));
    }
    let export = parse_export(&lines, raw.export)?;
    let jobs = parse_jobs(&lines, raw.jobs, &entities, export.is_some())?;
    let policy = Policy {
        subject,
        export,
        jobs,
        source: file.to_string(),
        database: raw
            .database
            .map(|d| DatabaseConfig {
                url: d.url,
                row_security: d.row_security,
            })
            .unwrap_or_default(),
        entities,
        relations,
        sinks,
        relay,
    };
    if let Some(cycle) = graph::cascade_cycle(&policy) {
        let first = policy.relations.iter().find(|r| {
            r.on_delete == OnDelete::Cascade && r.child == cycle[1] && r.parent == cycle[0]
        });
        return Err(PolicyError::at(
            file,
            first.map(|r| r.line),
            "relations",
            format!(
                "cascade cycle {} cannot be planned: a cascade may loop back only through a self-referencing relation (like categories.parent_id); make one relation in the cycle restrict, set_null or keep",
                cycle.join(" -> ")
            ),
        ));
    }
    erasure::check(&policy)?;
    Ok(policy)
}

fn parse_strategy(
    lines: &Lines<'_>,
    s: &Spanned<String>,
    key: &str,
) -> Result<Strategy, PolicyError> {
    match s.get_ref().as_str() {
        "soft" => Ok(Strategy::Soft),
        "archive" => Ok(Strategy::Archive),
        "hard" => Ok(Strategy::Hard),
        other => Err(lines.err(
            s,
            key,
            format!("unknown strategy \"{other}\" (expected soft, archive or hard)"),
        )),
    }
}

fn column_name(lines: &Lines<'_>, s: &Spanned<String>, key: &str) -> Result<String, PolicyError> {
    if ident::is_valid(s.get_ref()) {
        Ok(s.get_ref().clone())
    } else {
        Err(lines.err(s, key, ident::invalid_message(s.get_ref())))
    }
}

fn column_list(
    lines: &Lines<'_>,
    s: &Spanned<Vec<String>>,
    key: &str,
) -> Result<Vec<String>, PolicyError> {
    if s.get_ref().is_empty() {
        return Err(lines.err(s, key, "must name at least one column"));
    }
    let mut seen = BTreeSet::new();
    for c in s.get_ref() {
        if !ident::is_valid(c) {
            return Err(lines.err(s, key, ident::invalid_message(c)));
        }
        if !seen.insert(c) {
            return Err(lines.err(s, key, format!("column \"{c}\" is listed twice")));
        }
    }
    Ok(s.get_ref().clone())
}
