//! `KeyValue::parse` (user input -> key values) and `KeyValue::validate`
//! (values against the column types), data-driven.

mod common;

use common::{shop, shop_schema};
use lethe_core::{ColumnKind, CoreError, KeyValue};

fn parse(entity: &str, input: &str) -> Result<KeyValue, CoreError> {
    let p = shop();
    KeyValue::parse(&p.entities[entity], input)
}

fn pairs(k: &KeyValue) -> Vec<(String, String)> {
    k.columns
        .iter()
        .cloned()
        .zip(k.values.iter().cloned())
        .collect()
}

/// (entity, input, expected (column, value) pairs in key order)
type Accepted<'a> = (&'a str, &'a str, &'a [(&'a str, &'a str)]);

#[test]
fn parse_accepts() {
    let cases: &[Accepted<'_>] = &[
        ("users", "42", &[("id", "42")]),
        ("users", "id=42", &[("id", "42")]),
        // A bare single key is taken whole, even with `=` or `,` inside.
        ("users", "a=b,c", &[("id", "a=b,c")]),
        (
            "order_items",
            "order_id=1,product_id=2",
            &[("order_id", "1"), ("product_id", "2")],
        ),
        (
            "order_items",
            "product_id=2,order_id=1",
            &[("order_id", "1"), ("product_id", "2")],
        ),
        (
            "order_items",
            "order_id=1, product_id=x=y",
            &[("order_id", "1"), ("product_id", "x=y")],
        ),
    ];
    for (entity, input, want) in cases {
        let k = parse(entity, input).unwrap_or_else(|e| panic!("{entity} {input:?}: {e}"));
        let want: Vec<(String, String)> = want
            .iter()
            .map(|(c, v)| (c.to_string(), v.to_string()))
            .collect();
        assert_eq!(pairs(&k), want, "{entity} {input:?}");
    }
}

#[test]
fn parse_refuses() {
    // (entity, input, expected message substring)
    let cases: &[(&str, &str, &str)] = &[
        ("users", "", "the key is empty"),
        ("order_items", "1,2", "expected col=value pairs"),
        ("order_items", "1", "expected col=value pairs"),
        (
            "order_items",
            "order_id=1",
            "missing key column \"product_id\"",
        ),
        (
            "order_items",
            "product_id=2",
            "missing key column \"order_id\"",
        ),
        (
            "order_items",
            "order_id=1,sku=2",
            "\"sku\" is not a key column (the key is order_id, product_id)",
        ),
        (
            "order_items",
            "order_id=1,order_id=2",
            "\"order_id\" is given twice",
        ),
        (
            "order_items",
            "order_id=1,product_id=2,order_id=1",
            "\"order_id\" is given twice",
        ),
    ];
    for (entity, input, want) in cases {
        match parse(entity, input) {
            Err(CoreError::BadKey { entity: e, message }) => {
                assert_eq!(&e, entity);
                assert!(
                    message.contains(want),
                    "{entity} {input:?}: {message:?} lacks {want:?}"
                );
            }
            other => panic!("{entity} {input:?}: expected BadKey, got {other:?}"),
        }
    }
}

#[test]
fn display_round_trips() {
    for (entity, input) in [
        ("users", "42"),
        ("order_items", "order_id=1,product_id=2"),
        ("order_items", "product_id=2,order_id=1"),
    ] {
        let k = parse(entity, input).unwrap();
        let again = parse(entity, &k.to_string()).unwrap();
        assert_eq!(k, again);
    }
    assert_eq!(
        parse("order_items", "product_id=2,order_id=1")
            .unwrap()
            .to_string(),
        "order_id=1,product_id=2"
    );
}

#[test]
fn validate_against_column_types() {
    let s = shop_schema();
    // (entity, input, None = valid, Some(substring) = refused)
    let cases: &[(&str, &str, Option<&str>)] = &[
        ("users", "42", None),
        ("users", " 42 ", None),
        ("users", "-7", None),
        (
            "users",
            "abc",
            Some("wrong key type for users.id (bigint): \"abc\" is not an integer"),
        ),
        ("users", "4.5", Some("is not an integer")),
        ("users", "99999999999999999999", Some("is not an integer")),
        ("order_items", "order_id=1,product_id=2", None),
        (
            "order_items",
            "order_id=1,product_id=two",
            Some("order_items.product_id (bigint): \"two\" is not an integer"),
        ),
        ("invoices", "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b", None),
        ("invoices", "0190A1B2C3D47E5F8A9B0C1D2E3F4A5B", None),
        (
            "invoices",
            "42",
            Some("wrong key type for invoices.id (uuid): \"42\" is not a UUID"),
        ),
        (
            "invoices",
            "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5g",
            Some("is not a UUID"),
        ),
        (
            "invoices",
            "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5",
            Some("is not a UUID"),
        ),
    ];
    for (entity, input, want) in cases {
        let k = parse(entity, input).unwrap();
        let table = s.table(entity).unwrap();
        let got = k.validate(entity, table);
        match (want, got) {
            (None, Ok(())) => {}
            (Some(w), Err(CoreError::BadKey { entity: e, message })) => {
                assert_eq!(&e, entity);
                assert!(
                    message.contains(w),
                    "{entity} {input:?}: {message:?} lacks {w:?}"
                );
            }
            (want, got) => panic!("{entity} {input:?}: want {want:?}, got {got:?}"),
        }
    }
}

#[test]
fn validate_skips_columns_the_table_does_not_have() {
    // `lethe check` reports unknown columns; validate does not guess.
    let mut s = shop_schema();
    s.tables
        .get_mut("users")
        .unwrap()
        .columns
        .retain(|c| c.name != "id");
    let k = parse("users", "abc").unwrap();
    assert!(k.validate("users", s.table("users").unwrap()).is_ok());
}

#[test]
fn column_kinds() {
    let cases = [
        ("bigint", ColumnKind::Integer),
        ("INTEGER", ColumnKind::Integer),
        ("smallint", ColumnKind::Integer),
        ("int4", ColumnKind::Integer),
        ("bigserial", ColumnKind::Integer),
        ("numeric(10,2)", ColumnKind::Float),
        ("double precision", ColumnKind::Float),
        ("REAL", ColumnKind::Float),
        ("boolean", ColumnKind::Bool),
        ("uuid", ColumnKind::Uuid),
        ("text", ColumnKind::Text),
        ("character varying(20)", ColumnKind::Text),
        ("VARCHAR(255)", ColumnKind::Text),
        // SQLite columns may have no declared type.
        ("", ColumnKind::Text),
        ("bytea", ColumnKind::Other),
        ("timestamptz", ColumnKind::Other),
    ];
    for (ty, kind) in cases {
        assert_eq!(ColumnKind::from_type(ty), kind, "{ty:?}");
    }
    assert!(ColumnKind::Bool.validate("TRUE").is_ok());
    assert!(ColumnKind::Bool.validate("yes").is_err());
    assert!(ColumnKind::Float.validate("1.5").is_ok());
    assert!(ColumnKind::Float.validate("one").is_err());
    assert!(ColumnKind::Text.validate("anything at all").is_ok());
}

#[test]
fn column_kinds_containing_int_that_are_not_integers() {
    assert_ne!(ColumnKind::from_type("interval"), ColumnKind::Integer);
    assert_ne!(ColumnKind::from_type("point"), ColumnKind::Integer);
    assert!(ColumnKind::from_type("interval").validate("1 day").is_ok());
}
