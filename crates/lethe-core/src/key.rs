//! Entity keys as given by a user: `42` or `order_id=1,product_id=2`.

use std::fmt;

use crate::error::CoreError;
use crate::policy::Entity;
use crate::schema::TableInfo;

/// A key value for an entity: one text value per key column, in key order. Values
/// stay text until bound (the SQL casts them to the column's type).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyValue {
    pub columns: Vec<String>,
    pub values: Vec<String>,
}

impl KeyValue {
    /// Parses user input for `entity`'s key. A single-column key may be given bare.
    pub fn parse(entity: &Entity, input: &str) -> Result<KeyValue, CoreError> {
        let bad = |message: String| CoreError::BadKey {
            entity: entity.name.clone(),
            message,
        };
        let looks_named = entity
            .key
            .iter()
            .any(|c| input.starts_with(&format!("{c}=")));
        if entity.key.len() == 1 && !looks_named {
            if input.is_empty() {
                return Err(bad("the key is empty".into()));
            }
            return Ok(KeyValue {
                columns: entity.key.clone(),
                values: vec![input.to_string()],
            });
        }
        let mut values: Vec<Option<String>> = vec![None; entity.key.len()];
        for part in input.split(',') {
            let (col, val) = part.split_once('=').ok_or_else(|| {
                bad(format!(
                    "expected col=value pairs for the key ({}), got \"{part}\"",
                    entity.key.join(", ")
                ))
            })?;
            let col = col.trim();
            let i = entity.key.iter().position(|k| k == col).ok_or_else(|| {
                bad(format!(
                    "\"{col}\" is not a key column (the key is {})",
                    entity.key.join(", ")
                ))
            })?;
            if val.is_empty() {
                return Err(bad(format!("the value of \"{col}\" is empty")));
            }
            if values[i].replace(val.to_string()).is_some() {
                return Err(bad(format!("\"{col}\" is given twice")));
            }
        }
        let mut out = Vec::new();
        for (i, v) in values.into_iter().enumerate() {
            out.push(v.ok_or_else(|| bad(format!("missing key column \"{}\"", entity.key[i])))?);
        }
        Ok(KeyValue {
            columns: entity.key.clone(),
            values: out,
        })
    }

    /// Checks each value against the column's type, so `lethe delete users abc`
    /// fails with a clear message instead of a driver error.
    pub fn validate(&self, entity: &str, table: &TableInfo) -> Result<(), CoreError> {
        for (c, v) in self.columns.iter().zip(&self.values) {
            if let Some(col) = table.column(c) {
                col.kind().validate(v).map_err(|m| CoreError::BadKey {
                    entity: entity.to_string(),
                    message: format!(
                        "wrong key type for {}.{} ({}): {m}",
                        table.name, c, col.data_type
                    ),
                })?;
            }
        }
        Ok(())
    }
}

impl fmt::Display for KeyValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.columns.len() == 1 {
            return f.write_str(&self.values[0]);
        }
        let parts: Vec<String> = self
            .columns
            .iter()
            .zip(&self.values)
            .map(|(c, v)| format!("{c}={v}"))
            .collect();
        f.write_str(&parts.join(","))
    }
}
