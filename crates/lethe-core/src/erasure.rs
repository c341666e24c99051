//! What erasure (GDPR Art. 17) does to a data subject's rows of each
//! entity: the `erase` and `legal_basis` settings, parsed per entity and
//! checked against `[erasure] subject` and the relation graph.
//!
//! An entity whose rows belong to the subject (the subject itself, a table
//! with `subject_columns`, or one that reaches the subject through
//! relations) is erased with `delete` unless the policy says otherwise:
//! missing a table is the failure erasure must not have, so keeping data is
//! what has to be written down, with its reason.

use toml::Spanned;

use crate::error::PolicyError;
use crate::graph;
use crate::policy::Policy;
use crate::policy_parse::Lines;

/// What erasure does to a subject's rows of one entity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Erase {
    /// Remove the rows for good, with their soft-deleted and archived copies.
    Delete,
    /// Keep the rows, their PII columns replaced by the entity's `pii` rules.
    Anonymize,
    /// Keep the rows as they are, for a legal reason (e.g. invoices kept
    /// for tax law).
    Keep { legal_basis: String },
}

impl Erase {
    pub fn as_str(&self) -> &'static str {
        match self {
            Erase::Delete => "delete",
            Erase::Anonymize => "anonymize",
            Erase::Keep { .. } => "keep",
        }
    }
}

/// `erase` and `legal_basis` of one entity, as written (`None`: not said).
pub(crate) fn parse_entity(
    lines: &Lines<'_>,
    key_path: &str,
    erase: Option<&Spanned<String>>,
    legal_basis: Option<&Spanned<String>>,
    has_pii: bool,
) -> Result<Option<Erase>, PolicyError> {
    let Some(erase) = erase else {
        if let Some(b) = legal_basis {
            return Err(lines.err(
                b,
                format!("{key_path}.legal_basis"),
                "legal_basis goes with erase = \"keep\": add erase = \"keep\", or remove it",
            ));
        }
        return Ok(None);
    };
    let key = format!("{key_path}.erase");
    let action = match erase.get_ref().as_str() {
        "delete" => Erase::Delete,
        "anonymize" => Erase::Anonymize,
        "keep" => {
            let basis = legal_basis
                .map(|b| b.get_ref().trim())
                .filter(|b| !b.is_empty());
            let Some(basis) = basis else {
                return Err(lines.err(
                    legal_basis.unwrap_or(erase),
                    format!("{key_path}.legal_basis"),
                    "erase = \"keep\" needs legal_basis: why the rows must be kept (e.g. \"invoices: 10 years, German tax code §147 AO\"); it goes into every erasure's record and certificate",
                ));
            };
            Erase::Keep {
                legal_basis: basis.to_string(),
            }
        }
        other => {
            return Err(lines.err(
                erase,
                key,
                format!("unknown erase action \"{other}\" (expected delete, anonymize or keep)"),
            ));
        }
    };
    if let (Some(b), false) = (legal_basis, matches!(action, Erase::Keep { .. })) {
        return Err(lines.err(
            b,
            format!("{key_path}.legal_basis"),
            format!(
                "legal_basis goes with erase = \"keep\"; erase = \"{}\" does not keep the rows",
                action.as_str()
            ),
        ));
    }
    if action == Erase::Anonymize && !has_pii {
        return Err(lines.err(
            erase,
            key,
            "erase = \"anonymize\" needs pii rules naming the columns to anonymize (e.g. pii = { email = \"fake\", name = \"redact\" })",
        ));
    }
    Ok(Some(action))
}

/// Checks that every entity with an `erase` setting can be erased: a
/// subject is named, the entity's rows lead to it, and an anonymized
/// entity's rules leave its key alone.
pub(crate) fn check(policy: &Policy) -> Result<(), PolicyError> {
    for e in policy.entities.values() {
        let Some(action) = &e.erase else { continue };
        let key = format!("entities.{}.erase", e.name);
        let at = |msg: String| PolicyError::at(&policy.source, Some(e.line), key.clone(), msg);
        let Some(subject) = policy.subject.as_deref() else {
            return Err(at("erase needs the subject entity: add [erasure] subject = \"users\" (the entity whose rows are people)".to_string()));
        };
        if graph::subject_path(policy, &e.name).is_none() {
            return Err(at(format!(
                "rows of \"{}\" do not belong to the subject \"{subject}\": no relation that carries ownership leads there (relations with `erasure = false` do not) and no subject_columns name it; add a [[relations]] entry (or set `erasure = true` on one) or subject_columns, or remove erase",
                e.name
            )));
        }
        if *action == Erase::Anonymize
            && let Some(k) = e.key.iter().find(|k| e.pii.contains_key(*k))
        {
            return Err(at(format!(
                "erase = \"anonymize\" keeps the rows, so it cannot change their key column \"{k}\" (rows that reference them would lose their parent); remove the pii rule on \"{k}\" or use erase = \"delete\""
            )));
        }
    }
    Ok(())
}

impl Policy {
    /// What erasure does to the subject's rows of `entity`; `None` when its
    /// rows belong to no subject (or there is no subject).
    pub fn erase_of(&self, entity: &str) -> Option<Erase> {
        let e = self.entity(entity)?;
        graph::subject_path(self, entity)?;
        Some(e.erase.clone().unwrap_or(Erase::Delete))
    }
}
