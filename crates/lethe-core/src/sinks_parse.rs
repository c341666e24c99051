//! `[sinks.NAME]`, `[relay]` and the delivery keys of `[entities.NAME]`
//! (`cache_keys`, `cache`, `search`, `publish`) -> typed, validated form.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use crate::duration::parse_duration;
use crate::error::PolicyError;
use crate::ident;
use crate::policy_parse::Lines;
use crate::sinks::{Delivery, Retry, SearchTarget, Sink, SinkKind, SinkRole};
use crate::template::Template;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSink {
    kind: Spanned<String>,
    url: Option<Spanned<String>>,
    address: Option<Spanned<String>>,
    path: Option<Spanned<String>>,
    subject: Option<Spanned<String>>,
    stream: Option<Spanned<String>>,
    exchange: Option<Spanned<String>>,
    routing_key: Option<Spanned<String>>,
    secret_env: Option<Spanned<String>>,
    api_key_env: Option<Spanned<String>>,
    timeout: Option<Spanned<String>>,
    max_attempts: Option<Spanned<u32>>,
    backoff: Option<Spanned<String>>,
    max_backoff: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRelay {
    source: Option<String>,
}

/// Plain strings: spans do not survive serde's untagged enums, so errors
/// point at the `search` key itself.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSearch {
    sink: String,
    index: String,
    #[serde(default)]
    fields: Vec<String>,
    id: Option<String>,
}

/// `search = { ... }` or `search = [{ ... }, ...]`, read as a plain TOML value
/// first so an error inside says what is wrong (an untagged enum would only
/// say that nothing matched).
pub(crate) type RawSearches = toml::Value;

fn searches(v: &toml::Value) -> Result<Vec<RawSearch>, String> {
    let one = |v: &toml::Value| -> Result<RawSearch, String> {
        v.clone()
            .try_into::<RawSearch>()
            .map_err(|e| e.message().trim().to_string())
    };
    match v {
        toml::Value::Table(_) => Ok(vec![one(v)?]),
        toml::Value::Array(items) => items.iter().map(one).collect(),
        _ => Err("expected a table like { sink = \"search\", index = \"products\", fields = [\"name\"] } or an array of them".into()),
    }
}

/// The delivery keys of one `[entities.NAME]`.
pub(crate) struct RawDelivery<'a> {
    pub cache_keys: &'a Option<Spanned<Vec<String>>>,
    pub cache: &'a Option<Spanned<Vec<String>>>,
    pub search: &'a Option<Spanned<RawSearches>>,
    pub publish: &'a Option<Spanned<Vec<String>>>,
}

pub(crate) fn parse_relay(raw: Option<RawRelay>) -> crate::sinks::RelayConfig {
    let mut c = crate::sinks::RelayConfig::default();
    if let Some(s) = raw.and_then(|r| r.source) {
        c.source = s;
    }
    c
}

fn duration(lines: &Lines<'_>, s: &Spanned<String>, key: String) -> Result<Duration, PolicyError> {
    parse_duration(s.get_ref()).map_err(|m| lines.err(s, key, m))
}

fn template(lines: &Lines<'_>, s: &Spanned<String>, key: String) -> Result<Template, PolicyError> {
    Template::parse(s.get_ref()).map_err(|m| lines.err(s, key, m))
}

pub(crate) fn parse_sinks(
    lines: &Lines<'_>,
    raw: BTreeMap<Spanned<String>, Spanned<RawSink>>,
) -> Result<BTreeMap<String, Sink>, PolicyError> {
    let mut out = BTreeMap::new();
    for (name, raw) in raw {
        let key_path = format!("sinks.{}", name.get_ref());
        if !ident::is_valid(name.get_ref()) {
            return Err(lines.err(&name, key_path, ident::invalid_message(name.get_ref())));
        }
        let line = lines.line(raw.span().start);
        let r = raw.into_inner();
        let kind_name = r.kind.get_ref().as_str();
        // Which optional keys each kind reads; any other key is an error,
        // so a typo or a key of another kind is not silently ignored.
        let allowed: &[&str] = match kind_name {
            "redis" => &["url"],
            "memcached" => &["address", "url"],
            "nats" => &["url", "subject", "stream"],
            "rabbitmq" => &["url", "exchange", "routing_key"],
            "webhook" => &["url", "secret_env", "timeout"],
            "file" | "tantivy" => &["path"],
            "elasticsearch" | "opensearch" | "meilisearch" => &["url", "api_key_env"],
            other => {
                return Err(lines.err(
                    &r.kind,
                    format!("{key_path}.kind"),
                    format!(
                        "unknown sink kind \"{other}\" (expected redis, memcached, nats, rabbitmq, webhook, file, tantivy, elasticsearch, opensearch or meilisearch)"
                    ),
                ));
            }
        };
        let given: [(&str, Option<usize>); 10] = [
            ("url", r.url.as_ref().map(|s| s.span().start)),
            ("address", r.address.as_ref().map(|s| s.span().start)),
            ("path", r.path.as_ref().map(|s| s.span().start)),
            ("subject", r.subject.as_ref().map(|s| s.span().start)),
            ("stream", r.stream.as_ref().map(|s| s.span().start)),
            ("exchange", r.exchange.as_ref().map(|s| s.span().start)),
            (
                "routing_key",
                r.routing_key.as_ref().map(|s| s.span().start),
            ),
            ("secret_env", r.secret_env.as_ref().map(|s| s.span().start)),
            (
                "api_key_env",
                r.api_key_env.as_ref().map(|s| s.span().start),
            ),
            ("timeout", r.timeout.as_ref().map(|s| s.span().start)),
        ];
        for (k, at) in given {
            if let Some(at) = at
                && !allowed.contains(&k)
            {
                return Err(PolicyError::at(
                    lines.file,
                    Some(lines.line(at)),
                    format!("{key_path}.{k}"),
                    format!(
                        "a {kind_name} sink has no \"{k}\" setting (it takes: {})",
                        allowed.join(", ")
                    ),
                ));
            }
        }
        let required = |v: &Option<Spanned<String>>, k: &str| -> Result<String, PolicyError> {
            match v {
                Some(s) if !s.get_ref().trim().is_empty() => Ok(s.get_ref().clone()),
                Some(s) => Err(lines.err(s, format!("{key_path}.{k}"), "must not be empty")),
                None => Err(PolicyError::at(
                    lines.file,
                    Some(line),
                    key_path.clone(),
                    format!("a {kind_name} sink needs \"{k}\""),
                )),
            }
        };
        let env_name = |v: &Option<Spanned<String>>,
                        k: &str|
         -> Result<Option<String>, PolicyError> {
            match v {
                Some(s) if !ident::is_env_name(s.get_ref()) => Err(lines.err(
                    s,
                    format!("{key_path}.{k}"),
                    format!(
                        "\"{}\" is not an environment variable name (the value itself never goes in the policy)",
                        s.get_ref()
                    ),
                )),
                Some(s) => Ok(Some(s.get_ref().clone())),
                None => Ok(None),
            }
        };
        let kind = match kind_name {
            "redis" => SinkKind::Redis {
                url: required(&r.url, "url")?,
            },
            "memcached" => {
                let a = match (&r.address, &r.url) {
                    (Some(_), _) => required(&r.address, "address")?,
                    (None, Some(_)) => required(&r.url, "url")?,
                    (None, None) => required(&r.address, "address")?,
                };
                let a = a
                    .trim_start_matches("memcached://")
                    .trim_start_matches("tcp://")
                    .trim_end_matches('/')
                    .to_string();
                SinkKind::Memcached { address: a }
            }
            "nats" => SinkKind::Nats {
                url: required(&r.url, "url")?,
                subject: match &r.subject {
                    Some(s) => event_template(lines, s, format!("{key_path}.subject"))?,
                    None => Template::parse("lethe.{entity}.{event}").expect("valid"),
                },
                stream: r.stream.as_ref().map(|s| s.get_ref().clone()),
            },
            "rabbitmq" => SinkKind::RabbitMq {
                url: required(&r.url, "url")?,
                exchange: r
                    .exchange
                    .as_ref()
                    .map(|s| s.get_ref().clone())
                    .unwrap_or_default(),
                routing_key: match &r.routing_key {
                    Some(s) => event_template(lines, s, format!("{key_path}.routing_key"))?,
                    None => Template::parse("lethe.{entity}.{event}").expect("valid"),
                },
            },
            "webhook" => {
                let url = required(&r.url, "url")?;
                if !(url.starts_with("http://") || url.starts_with("https://")) {
                    return Err(lines.err(
                        r.url.as_ref().expect("required"),
                        format!("{key_path}.url"),
                        "a webhook url starts with http:// or https://",
                    ));
                }
                SinkKind::Webhook {
                    url,
                    secret_env: match env_name(&r.secret_env, "secret_env")? {
                        Some(s) => s,
                        None => {
                            return Err(PolicyError::at(
                                lines.file,
                                Some(line),
                                key_path,
                                "a webhook sink needs \"secret_env\": the environment variable holding the HMAC-SHA256 signing secret",
                            ));
                        }
                    },
                    timeout: match &r.timeout {
                        Some(s) => duration(lines, s, format!("{key_path}.timeout"))?,
                        None => Duration::from_secs(10),
                    },
                }
            }
            "file" => SinkKind::File {
                path: required(&r.path, "path")?,
            },
            "tantivy" => SinkKind::Tantivy {
                path: required(&r.path, "path")?,
            },
            "elasticsearch" | "opensearch" => SinkKind::Elasticsearch {
                url: required(&r.url, "url")?,
                api_key_env: env_name(&r.api_key_env, "api_key_env")?,
                opensearch: kind_name == "opensearch",
            },
            "meilisearch" => SinkKind::Meilisearch {
                url: required(&r.url, "url")?,
                api_key_env: env_name(&r.api_key_env, "api_key_env")?,
            },
            _ => unreachable!("kinds are matched above"),
        };
        let mut retry = Retry::default();
        if let Some(m) = &r.max_attempts {
            if *m.get_ref() == 0 {
                return Err(lines.err(m, format!("{key_path}.max_attempts"), "must be at least 1"));
            }
            retry.max_attempts = *m.get_ref();
        }
        if let Some(b) = &r.backoff {
            retry.initial = duration(lines, b, format!("{key_path}.backoff"))?;
        }
        if let Some(b) = &r.max_backoff {
            retry.max = duration(lines, b, format!("{key_path}.max_backoff"))?;
        }
        if retry.max < retry.initial {
            retry.max = retry.initial;
        }
        out.insert(
            name.get_ref().clone(),
            Sink {
                name: name.get_ref().clone(),
                kind,
                retry,
                line,
            },
        );
    }
    Ok(out)
}

/// A subject or routing key: may use `{entity}` and `{event}`.
fn event_template(
    lines: &Lines<'_>,
    s: &Spanned<String>,
    key: String,
) -> Result<Template, PolicyError> {
    let t = template(lines, s, key.clone())?;
    if let Some(f) = t
        .fields()
        .into_iter()
        .find(|f| *f != "entity" && *f != "event")
    {
        return Err(lines.err(
            s,
            key,
            format!("\"{{{f}}}\" is not available here (use {{entity}} and {{event}})"),
        ));
    }
    Ok(t)
}

fn sink_ref<'a>(
    lines: &Lines<'_>,
    sinks: &'a BTreeMap<String, Sink>,
    at: &Spanned<impl Sized>,
    key: &str,
    name: &str,
    role: SinkRole,
) -> Result<&'a Sink, PolicyError> {
    let s = sinks.get(name).ok_or_else(|| {
        lines.err(
            at,
            key,
            format!(
                "no sink named \"{name}\" (declared: {})",
                if sinks.is_empty() {
                    "none; add [sinks.NAME]".to_string()
                } else {
                    sinks.keys().cloned().collect::<Vec<_>>().join(", ")
                }
            ),
        )
    })?;
    if s.role() != role {
        return Err(lines.err(
            at,
            key,
            format!(
                "sink \"{name}\" is {} sink ({}); {key} needs {} sink",
                s.role().with_article(),
                s.kind.name(),
                role.with_article()
            ),
        ));
    }
    Ok(s)
}

pub(crate) fn parse_delivery(
    lines: &Lines<'_>,
    key_path: &str,
    key: &[String],
    raw: RawDelivery<'_>,
    sinks: &BTreeMap<String, Sink>,
) -> Result<Delivery, PolicyError> {
    let mut d = Delivery::default();
    if let Some(keys) = raw.cache_keys {
        let k = format!("{key_path}.cache_keys");
        for s in keys.get_ref() {
            let t = Template::parse(s).map_err(|m| lines.err(keys, k.clone(), m))?;
            if t.fields().is_empty() {
                return Err(lines.err(
                    keys,
                    k,
                    format!("cache key \"{s}\" uses no column, so it would name the same key for every row"),
                ));
            }
            d.cache_keys.push(t);
        }
        let caches: Vec<&Sink> = sinks
            .values()
            .filter(|s| s.role() == SinkRole::Cache)
            .collect();
        match raw.cache {
            Some(names) => {
                for n in names.get_ref() {
                    sink_ref(
                        lines,
                        sinks,
                        names,
                        &format!("{key_path}.cache"),
                        n,
                        SinkRole::Cache,
                    )?;
                    d.cache.push(n.clone());
                }
            }
            None if caches.is_empty() && !d.cache_keys.is_empty() => {
                return Err(lines.err(
                    keys,
                    k,
                    "cache keys need a cache sink: add [sinks.NAME] with kind = \"redis\" or \"memcached\"",
                ));
            }
            None => d.cache = caches.iter().map(|s| s.name.clone()).collect(),
        }
    } else if let Some(names) = raw.cache {
        return Err(lines.err(
            names,
            format!("{key_path}.cache"),
            "\"cache\" names where cache_keys live, but this entity has no cache_keys",
        ));
    }
    if let Some(search) = raw.search {
        let list = searches(search.get_ref())
            .map_err(|m| lines.err(search, format!("{key_path}.search"), m))?;
        for (i, s) in list.iter().enumerate() {
            let k = format!("{key_path}.search");
            sink_ref(
                lines,
                sinks,
                search,
                &format!("{k}.sink"),
                &s.sink,
                SinkRole::Search,
            )?;
            if s.index.trim().is_empty() {
                return Err(lines.err(search, format!("{k}.index"), "must not be empty"));
            }
            for f in &s.fields {
                if !ident::is_valid(f) {
                    return Err(lines.err(
                        search,
                        format!("{k}.fields"),
                        ident::invalid_message(f),
                    ));
                }
            }
            let id = match &s.id {
                Some(t) => {
                    Template::parse(t).map_err(|m| lines.err(search, format!("{k}.id"), m))?
                }
                None => Template::parse(
                    &key.iter()
                        .map(|c| format!("{{{c}}}"))
                        .collect::<Vec<_>>()
                        .join("-"),
                )
                .expect("key columns are identifiers"),
            };
            if id.fields().is_empty() {
                return Err(lines.err(
                    search,
                    format!("{k}[{i}].id"),
                    "the document id must use at least one column",
                ));
            }
            d.search.push(SearchTarget {
                sink: s.sink.clone(),
                index: s.index.clone(),
                fields: s.fields.clone(),
                id,
            });
        }
    }
    if let Some(names) = raw.publish {
        for n in names.get_ref() {
            sink_ref(
                lines,
                sinks,
                names,
                &format!("{key_path}.publish"),
                n,
                SinkRole::Events,
            )?;
            if !d.publish.contains(n) {
                d.publish.push(n.clone());
            }
        }
    }
    Ok(d)
}
