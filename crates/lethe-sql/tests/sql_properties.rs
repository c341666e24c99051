//! Properties every generated statement must have, checked over everything the
//! shop policy renders on both dialects: identifiers from the policy are
//! double-quoted, values are bound (never spliced), and placeholders are the
//! dialect's own, numbered 1..=params.len().

mod common;

use std::collections::BTreeSet;

use common::{fresh_schema, shop, shop_schema, shop_with_row_security, strip_literals, table};
use lethe_core::{Entity, KeyValue, Policy, Schema, parse_policy, plan_delete};
use lethe_sql::migrate::object_name;
use lethe_sql::{
    Binder, Dialect, Mode, Param, RestoreEntity, Stmt, plan_migration, queries, render_delete,
    render_restore,
};

const DIALECTS: [Dialect; 2] = [Dialect::Postgres, Dialect::Sqlite];

/// Every statement with params that the policy renders on `d`, labelled.
fn all_statements(d: Dialect, p: &Policy, s: &Schema) -> Vec<(String, Stmt)> {
    let mut out = Vec::new();
    for root in p.entities.keys() {
        let plan = plan_delete(p, root).unwrap();
        for mode in [Mode::Execute, Mode::Preview] {
            for (i, st) in render_delete(d, &plan, s, mode)
                .statements
                .into_iter()
                .enumerate()
            {
                out.push((format!("delete {root} {mode:?} [{i}]"), st.stmt));
            }
        }
        let entities: Vec<RestoreEntity<'_>> = plan
            .nodes
            .iter()
            .map(|n| RestoreEntity::as_deleted(&n.entity, s))
            .collect();
        let nullified: Vec<&Entity> = plan.set_nulls.iter().map(|s| &s.child).collect();
        let r = render_restore(d, p, s, &entities, &nullified);
        for (i, st) in r.checks.into_iter().chain(r.apply).enumerate() {
            out.push((format!("restore {root} [{i}]"), st));
        }
        out.push((
            format!("row_status {root}"),
            queries::row_status(d, &p.entities[root], s),
        ));
    }
    out
}

/// The DDL of a migration from a fresh schema, without Lethe's own tables.
fn migration_statements(d: Dialect, p: &Policy, s: &Schema) -> Vec<(String, String)> {
    plan_migration(d, p, s, &installed())
        .into_iter()
        .flat_map(|step| {
            step.statements
                .into_iter()
                .map(move |st| (step.id.clone(), st))
        })
        .collect()
}

fn is_word(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '$'
}

/// Byte offsets of whole-word occurrences of `word` in `text`.
fn word_hits(text: &str, word: &str) -> Vec<usize> {
    text.match_indices(word)
        .map(|(i, _)| i)
        .filter(|&i| {
            let before = text[..i].chars().next_back();
            let after = text[i + word.len()..].chars().next();
            !before.is_some_and(is_word) && !after.is_some_and(is_word)
        })
        .collect()
}

/// How many whole-word occurrences of `idents` the SQL tokens of `sql` have,
/// and those not wrapped in double quotes.
fn unquoted(sql: &str, idents: &BTreeSet<String>) -> (usize, Vec<String>) {
    let bare = strip_literals(sql);
    let mut seen = 0;
    let mut bad = Vec::new();
    for id in idents {
        for i in word_hits(&bare, id) {
            seen += 1;
            if !(bare[..i].ends_with('"') && bare[i + id.len()..].starts_with('"')) {
                bad.push(format!("{id}@{i}"));
            }
        }
    }
    (seen, bad)
}

#[test]
fn the_checkers_catch_violations() {
    let ids: BTreeSet<String> = ["users", "id"].iter().map(|s| s.to_string()).collect();
    assert_eq!(
        unquoted("SELECT c.\"id\" FROM \"users\" c", &ids),
        (2, vec![])
    );
    assert_eq!(unquoted("SELECT c.id FROM \"users\" c", &ids).1, ["id@9"]);
    assert_eq!(unquoted("DELETE FROM users", &ids).1, ["users@12"]);
    // Literals and longer words do not count.
    assert_eq!(
        unquoted(
            "SELECT 'users', json_extract(x, '$.\"id\"') FROM \"lethe_k_users\"",
            &ids
        ),
        (0, vec![])
    );
    assert_eq!(
        placeholders("a = $1 AND b = $3 AND '$2'"),
        ([1, 3].into(), [].into(), 0)
    );
    assert_eq!(
        placeholders("a = ?1 AND b = ? AND '?7'"),
        ([].into(), [1].into(), 1)
    );
    assert_eq!(placeholders("x ? 'k'"), ([].into(), [].into(), 1));
}

/// The shop with marker columns renamed so they cannot be confused with the
/// `deletion_id` column of Lethe's own tables.
fn renamed_markers() -> (Policy, Schema) {
    let text = common::SHOP.replace(
        "[entities.users]",
        "[defaults]\ndeleted_at = \"gone_at\"\ndeletion_id = \"gone_in\"\n\n[entities.users]",
    );
    let p = parse_policy(&text, "shop.toml").unwrap();
    assert_eq!(p.entities["orders"].deletion_id, "gone_in");
    let mut s = shop_schema();
    for t in s.tables.values_mut() {
        for c in &mut t.columns {
            match c.name.as_str() {
                "deleted_at" => c.name = "gone_at".into(),
                "deletion_id" => c.name = "gone_in".into(),
                _ => {}
            }
        }
    }
    (p, s)
}

#[test]
fn every_user_identifier_is_double_quoted() {
    let (p, s) = renamed_markers();
    let mut idents: BTreeSet<String> = BTreeSet::new();
    for t in s.tables.values() {
        idents.insert(t.name.clone());
        idents.extend(t.columns.iter().map(|c| c.name.clone()));
    }
    // `name` is also the report column alias (`AS name`), Lethe's own word.
    idents.remove("name");
    let mut fresh = fresh_schema();
    for t in fresh.tables.values_mut() {
        t.columns.retain(|c| c.name != "deleted_at");
    }
    let mut checked = 0;
    for d in DIALECTS {
        let mut sqls: Vec<(String, String)> = all_statements(d, &p, &s)
            .into_iter()
            .map(|(l, st)| (l, st.sql))
            .collect();
        sqls.extend(migration_statements(d, &p, &fresh));
        for (label, sql) in &sqls {
            let (seen, bad) = unquoted(sql, &idents);
            assert!(
                bad.is_empty(),
                "{} {label}: identifiers not quoted: {bad:?}\n{sql}",
                d.name()
            );
            checked += seen;
        }
    }
    assert!(checked > 1000, "only {checked} identifier occurrences seen");
}

#[test]
fn quoting_escapes_embedded_quotes() {
    for d in DIALECTS {
        assert_eq!(d.ident("users"), "\"users\"");
        assert_eq!(d.ident("a\"b"), "\"a\"\"b\"");
        assert_eq!(d.table("public.users"), "\"public\".\"users\"");
        assert_eq!(d.lit("it's"), "'it''s'");
    }
}

/// Placeholders outside string literals: (`$N` numbers, `?N` numbers, bare `?`).
fn placeholders(sql: &str) -> (BTreeSet<usize>, BTreeSet<usize>, usize) {
    let bare = strip_literals(sql);
    let b = bare.as_bytes();
    let (mut dollar, mut question, mut plain) = (BTreeSet::new(), BTreeSet::new(), 0);
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'$' || b[i] == b'?' {
            let mut j = i + 1;
            while j < b.len() && b[j].is_ascii_digit() {
                j += 1;
            }
            if j > i + 1 {
                let n: usize = bare[i + 1..j].parse().unwrap();
                if b[i] == b'$' {
                    dollar.insert(n);
                } else {
                    question.insert(n);
                }
            } else if b[i] == b'?' {
                plain += 1;
            }
            i = j;
        } else {
            i += 1;
        }
    }
    (dollar, question, plain)
}

#[test]
fn placeholders_are_numbered_per_dialect() {
    let p = shop();
    let s = shop_schema();
    for d in DIALECTS {
        let stmts = all_statements(d, &p, &s);
        assert!(stmts.len() > 100);
        for (label, st) in &stmts {
            let (dollar, question, plain) = placeholders(&st.sql);
            let want: BTreeSet<usize> = (1..=st.params.len()).collect();
            let distinct: BTreeSet<String> = st.params.iter().map(|p| format!("{p:?}")).collect();
            assert_eq!(
                distinct.len(),
                st.params.len(),
                "{label}: a param bound twice: {:?}",
                st.params
            );
            match d {
                Dialect::Postgres => {
                    assert_eq!(dollar, want, "{label}: $N placeholders\n{}", st.sql);
                    assert!(question.is_empty(), "{label}: ?N on PostgreSQL\n{}", st.sql);
                    // A bare `?` is the jsonb key-exists operator, which is fine.
                }
                Dialect::Sqlite => {
                    // `$N` is a named parameter in SQLite, so a batch of
                    // statements binds each one without gaps; the two parts
                    // of a gated delete share one list of values.
                    assert!(
                        dollar.is_subset(&want),
                        "{label}: $N placeholders\n{}",
                        st.sql
                    );
                    assert!(question.is_empty(), "{label}: ?N on SQLite\n{}", st.sql);
                    assert_eq!(plain, 0, "{label}: bare ? on SQLite\n{}", st.sql);
                }
            }
        }
    }
}

#[test]
fn fixed_queries_use_the_dialect_placeholders() {
    for d in DIALECTS {
        let sqls = [
            queries::audit_append(d, "SELECT 1", 0),
            queries::audit_entries(d),
            queries::insert_deletion(d),
            queries::deletion_by_id(d, true),
            queries::list_deletions(d),
            queries::mark_restored(d),
            queries::outbox_for(d),
            lethe_sql::migrate::record_step_sql(d),
        ];
        for sql in &sqls {
            let (dollar, question, plain) = placeholders(sql);
            let (used, other) = (dollar, question);
            assert!(other.is_empty(), "{}: {sql}", d.name());
            assert!(!used.is_empty(), "{}: {sql}", d.name());
            let max = *used.iter().max().unwrap();
            assert_eq!(used, (1..=max).collect(), "{}: gaps in {sql}", d.name());
            if d == Dialect::Sqlite {
                assert_eq!(plain, 0, "{sql}");
            }
        }
    }
}

#[test]
fn migration_ddl_has_no_placeholders() {
    let p = shop_with_row_security();
    for d in DIALECTS {
        for (id, sql) in migration_statements(d, &p, &fresh_schema()) {
            let (dollar, question, plain) = placeholders(&sql);
            assert!(
                dollar.is_empty() && question.is_empty() && plain == 0,
                "{id}: {sql}"
            );
        }
    }
}

/// Binds `kv` the way a store does: `Param::Key(i)` -> `kv.values[i]`.
fn bind<'a>(st: &Stmt, kv: &'a KeyValue) -> Vec<Option<&'a str>> {
    st.params
        .iter()
        .map(|p| match p {
            Param::Key(i) => Some(kv.values[*i].as_str()),
            _ => None,
        })
        .collect()
}

#[test]
fn key_values_are_bound_never_spliced() {
    let p = shop();
    let s = shop_schema();
    let inputs = [
        ("users", "987654321"),
        ("order_items", "product_id=555444333,order_id=111222333"),
        ("invoices", "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"),
        ("categories", "x'); DROP TABLE users; --"),
    ];
    for d in DIALECTS {
        for (root, input) in inputs {
            let e = &p.entities[root];
            let kv = KeyValue::parse(e, input).unwrap();
            let plan = plan_delete(&p, root).unwrap();
            let mut stmts: Vec<Stmt> = Vec::new();
            for mode in [Mode::Execute, Mode::Preview] {
                stmts.extend(
                    render_delete(d, &plan, &s, mode)
                        .statements
                        .into_iter()
                        .map(|st| st.stmt),
                );
            }
            stmts.push(queries::row_status(d, e, &s));
            let mut seeds = 0;
            for st in &stmts {
                for v in &kv.values {
                    assert!(!st.sql.contains(v.as_str()), "{root}: value {v:?} in SQL");
                }
                let keys: Vec<usize> = st
                    .params
                    .iter()
                    .filter_map(|p| match p {
                        Param::Key(i) => Some(*i),
                        _ => None,
                    })
                    .collect();
                if keys.is_empty()
                    || !kv.values.iter().enumerate().any(|(i, _)| {
                        st.sql.contains(&format!(
                            "${}",
                            1 + st
                                .params
                                .iter()
                                .position(|p| *p == Param::Key(i))
                                .unwrap_or(usize::MAX - 1)
                        ))
                    })
                {
                    continue;
                }
                seeds += 1;
                let mut sorted = keys.clone();
                sorted.sort();
                assert_eq!(sorted, (0..e.key.len()).collect::<Vec<_>>(), "{root}");
                // Each key column is compared with the placeholder bound to
                // its own value.
                let bound = bind(st, &kv);
                for (ci, col) in e.key.iter().enumerate() {
                    let n = bound
                        .iter()
                        .position(|b| *b == Some(kv.values[ci].as_str()))
                        .unwrap()
                        + 1;
                    let ph = match d {
                        Dialect::Postgres => format!("${n}"),
                        Dialect::Sqlite => format!("${n}"),
                    };
                    let ty = &s.table(&e.table).unwrap().column(col).unwrap().data_type;
                    let want = format!(".\"{col}\" = {}", d.cast(&ph, ty));
                    assert!(st.sql.contains(&want), "{root}: {want} not in\n{}", st.sql);
                }
            }
            // Execute, Preview and row_status each seed from the key once;
            // PostgreSQL's execute also locks the root first, and checks its
            // restrict relations in a separate statement before changing
            // anything.
            let plan = plan_delete(&p, root).unwrap();
            let want = match d {
                Dialect::Postgres => 4 + usize::from(!plan.restricts.is_empty()),
                Dialect::Sqlite => 3,
            };
            assert_eq!(seeds, want, "{} {root}", d.name());
        }
    }
}

#[test]
fn postgres_casts_keys_and_sqlite_does_not() {
    let p = shop();
    let plan = plan_delete(&p, "invoices").unwrap();
    let pg = render_delete(Dialect::Postgres, &plan, &shop_schema(), Mode::Preview);
    assert!(
        pg.statements[0]
            .stmt
            .sql
            .contains("c.\"id\" = CAST($1 AS uuid)")
    );
    let lite = render_delete(Dialect::Sqlite, &plan, &shop_schema(), Mode::Preview);
    assert!(
        lite.statements
            .iter()
            .any(|s| s.stmt.sql.contains("c.\"id\" = $1"))
    );
}

#[test]
fn binder_reuses_a_placeholder_for_the_same_param() {
    let mut b = Binder::new(Dialect::Postgres);
    assert_eq!(b.bind(Param::DeletionId), "$1");
    assert_eq!(b.bind(Param::Key(0)), "$2");
    assert_eq!(b.bind(Param::DeletionId), "$1");
    assert_eq!(b.bind(Param::Key(1)), "$3");
    let st = b.finish("x".into());
    assert_eq!(st.params, [Param::DeletionId, Param::Key(0), Param::Key(1)]);
    let mut b = Binder::new(Dialect::Sqlite);
    assert_eq!(b.bind(Param::Now), "$1");
    assert_eq!(b.bind(Param::Now), "$1");
}

#[test]
fn postgres_delete_is_one_statement_sqlite_is_one_staged_batch() {
    let p = shop();
    let plan = plan_delete(&p, "users").unwrap();
    let s = shop_schema();
    assert!(!plan.restricts.is_empty());
    for mode in [Mode::Execute, Mode::Preview] {
        // PostgreSQL: one statement does the whole cascade; executing also
        // locks the root and checks restrict relations first (gates).
        let pg = render_delete(Dialect::Postgres, &plan, &s, mode);
        let main: Vec<_> = pg.statements.iter().filter(|s| !s.gate).collect();
        assert_eq!(
            main.len(),
            1,
            "one round trip for the cascade whatever its depth"
        );
        assert!(main[0].reports);
        let gates = pg.statements.len() - 1;
        assert_eq!(gates, if mode == Mode::Execute { 2 } else { 0 });
        // SQLite: one batch (one call), staged in several statements, split
        // after the restrict checks when executing.
        let lite = render_delete(Dialect::Sqlite, &plan, &s, mode);
        assert_eq!(
            lite.statements.len(),
            if mode == Mode::Execute { 2 } else { 1 }
        );
        let total: usize = lite
            .statements
            .iter()
            .map(|s| s.stmt.sql.matches(";\n").count() + 1)
            .sum();
        assert!(total > plan.nodes.len());
    }
    // Preview changes nothing.
    for d in DIALECTS {
        for st in render_delete(d, &plan, &s, Mode::Preview).statements {
            let sql = st.stmt.sql.to_ascii_uppercase();
            for user_table in ["USERS", "ORDERS", "REVIEWS", "CART_ITEMS"] {
                assert!(
                    !sql.contains(&format!("UPDATE \"{user_table}\""))
                        && !sql.contains(&format!("DELETE FROM \"{user_table}\""))
                        && !sql.contains("INSERT INTO LETHE"),
                    "{}: preview writes: {}",
                    d.name(),
                    st.stmt.sql
                );
            }
        }
    }
}

#[test]
fn sqlite_inline_unique_is_blocked_with_advice() {
    let p = shop();
    let mut s = fresh_schema();
    let u = &mut s.tables.get_mut("users").unwrap().uniques[0];
    u.inline = true;
    u.is_constraint = false;
    u.name = "sqlite_autoindex_users_1".into();
    let steps = plan_migration(Dialect::Sqlite, &p, &s, &installed());
    let step = steps.iter().find(|s| s.id == "users:unique:email").unwrap();
    let why = step.blocked.as_deref().expect("blocked");
    assert!(why.contains("rebuilding the table"), "{why}");
    assert!(
        !step.statements.iter().any(|s| s.contains("DROP")),
        "{:?}",
        step.statements
    );
    let others_blocked = steps.iter().filter(|s| s.blocked.is_some()).count();
    assert_eq!(others_blocked, 1);
}

#[test]
fn hard_entities_get_only_the_guard_and_sqlite_no_row_security() {
    let p = shop_with_row_security();
    for d in DIALECTS {
        let steps = plan_migration(d, &p, &fresh_schema(), &installed());
        let hard: Vec<&str> = steps
            .iter()
            .filter(|s| s.id.starts_with("cart_items:"))
            .map(|s| s.id.as_str())
            .collect();
        assert_eq!(hard, ["cart_items:guard"], "no markers, views or indexes");
        let rls = steps
            .iter()
            .filter(|s| s.id.ends_with(":row_security"))
            .count();
        match d {
            Dialect::Postgres => assert_eq!(rls, 7, "every soft entity"),
            Dialect::Sqlite => assert_eq!(rls, 0),
        }
    }
    // Without row_security in the policy, PostgreSQL gets none either.
    let steps = plan_migration(Dialect::Postgres, &shop(), &fresh_schema(), &installed());
    assert!(steps.iter().all(|s| !s.id.ends_with(":row_security")));
}

#[test]
fn schema_qualified_tables_are_quoted_part_by_part() {
    let p = parse_policy(
        "[entities.users]\ntable = \"app.users\"\nkey = [\"id\"]\nunique = [[\"email\"]]\n",
        "lethe.toml",
    )
    .unwrap();
    let mut s = Schema::default();
    s.tables.insert(
        "app.users".into(),
        table("app.users", &["id bigint!", "email text!"], &["id"]),
    );
    let steps = plan_migration(Dialect::Postgres, &p, &s, &installed());
    let all: Vec<&String> = steps.iter().flat_map(|s| &s.statements).collect();
    assert!(
        all.iter()
            .any(|s| s.starts_with("ALTER TABLE \"app\".\"users\" ADD COLUMN \"deleted_at\""))
    );
    assert!(all.iter().any(|s| {
        s.contains("CREATE VIEW \"app\".\"users_active\" AS SELECT * FROM \"app\".\"users\"")
    }));
    assert!(
        all.iter()
            .any(|s| s.contains("\"lethe_users_uq_email\" ON \"app\".\"users\""))
    );
    let plan = plan_delete(&p, "users").unwrap();
    let sql = &render_delete(Dialect::Postgres, &plan, &s, Mode::Execute).statements[0]
        .stmt
        .sql;
    assert!(sql.contains("FROM \"app\".\"users\" c"), "{sql}");
    assert!(!sql.contains("\"app.users\""), "{sql}");
}

#[test]
fn long_object_names_are_shortened_stably() {
    let short = "lethe_users_deletion_id";
    assert_eq!(object_name(short), short);
    let long = format!("lethe_{}_uq_email_and_handle", "a".repeat(60));
    let a = object_name(&long);
    assert!(a.len() <= 63, "{a} is {} bytes", a.len());
    assert_eq!(a, object_name(&long), "stable");
    let other = format!("lethe_{}_uq_email_and_handlf", "a".repeat(60));
    assert_ne!(a, object_name(&other), "distinct names stay distinct");
    assert!(a.starts_with(&long[..54]));
}

#[test]
fn dialect_from_url() {
    assert_eq!(
        Dialect::from_url("postgres://u@h/db"),
        Some(Dialect::Postgres)
    );
    assert_eq!(
        Dialect::from_url("postgresql://u@h/db"),
        Some(Dialect::Postgres)
    );
    assert_eq!(Dialect::from_url("sqlite:shop.db"), Some(Dialect::Sqlite));
    assert_eq!(Dialect::from_url("sqlite::memory:"), Some(Dialect::Sqlite));
    assert_eq!(Dialect::from_url("mysql://u@h/db"), None);
}

/// Every version of Lethe's own tables, as in a migrated database.
fn installed() -> Vec<String> {
    lethe_sql::INTERNAL_VERSIONS
        .iter()
        .map(|v| v.to_string())
        .collect()
}
