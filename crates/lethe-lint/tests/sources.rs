//! SQL found in the string literals of each language, with findings at the
//! file's own line and column, and the things that must not be taken for
//! SQL (comments, char literals, prose).

use lethe_lint::{Lang, Linter, Report, Rule, SqlDialect};

const POLICY: &str = r#"
[defaults]
strategy = "soft"
[entities.users]
key = ["id"]
unique = [["email"]]
[entities.orders]
key = ["id"]
[entities.sessions]
key = ["id"]
strategy = "hard"
"#;

fn lint(src: &str, lang: Lang) -> Report {
    let policy = lethe_core::parse_policy(POLICY, "lethe.toml").unwrap();
    Linter::new(&policy, SqlDialect::Postgres).lint_source("f", src, lang)
}

/// `(rule, line, column)` of each finding.
fn at(r: &Report) -> Vec<(Rule, u32, u32)> {
    r.findings
        .iter()
        .map(|f| (f.rule, f.line, f.column))
        .collect()
}

#[test]
fn rust_normal_raw_and_continued_strings() {
    let src = r##"fn f<'a>(x: &'a str) -> char {
    // "SELECT * FROM orders" in a comment is not code
    let q = sqlx::query("SELECT id FROM orders WHERE user_id = $1");
    let r = sqlx::query(r#"SELECT * FROM users u
        WHERE u.email = $1"#);
    let s = "SELECT id FROM orders o \
             WHERE o.deleted_at IS NULL";
    let c = '"';
    let t = "DELETE FROM sessions WHERE id = $1";
    'x'
}"##;
    let r = lint(src, Lang::Rust);
    assert_eq!(
        at(&r),
        vec![
            (Rule::UnfilteredRead, 3, 41),
            (Rule::UniqueLookup, 4, 42),
            (Rule::RawDelete, 9, 26),
        ],
        "{r:#?}"
    );
    assert_eq!(r.statements, 4);
    let fixed = r.findings[1].fixed_query.as_deref().unwrap();
    assert!(fixed.contains("u.deleted_at IS NULL"), "{fixed}");
}

#[test]
fn python_concatenation_fstrings_and_placeholders() {
    let src = r#"
def history(cur, uid, email):
    cur.execute("SELECT o.id, o.total FROM orders o "
                "WHERE o.user_id = %s "
                "ORDER BY o.created_at DESC", (uid,))
    cur.execute(f"SELECT * FROM users WHERE email = {email!r}")
    cur.execute("""
        SELECT id FROM users
        WHERE id = %(uid)s AND deleted_at IS NULL
    """, {"uid": uid})
    # lethe: include-deleted the admin export lists deleted orders too
    cur.execute('SELECT * FROM orders')
    print("Select an order from the list")
    return '#not a comment'
"#;
    let r = lint(src, Lang::Python);
    assert_eq!(
        at(&r),
        vec![(Rule::UnfilteredRead, 3, 44), (Rule::UniqueLookup, 6, 33)],
        "{r:#?}"
    );
    assert_eq!(r.suppressed.len(), 1);
    assert_eq!(
        r.suppressed[0].reason,
        "the admin export lists deleted orders too"
    );
    assert!(r.skipped.is_empty(), "{:?}", r.skipped);
}

#[test]
fn ruby_heredocs_and_interpolation() {
    let src = r#"class SeatJob
  def expired
    # the background job of the ticketing incident
    SeatClaim.find_by_sql(<<~SQL)
      SELECT * FROM orders
      WHERE expires_at < now()
    SQL
  end
  def user(email)
    User.find_by_sql("SELECT * FROM users WHERE email = '#{email}' AND deleted_at IS NULL")
  end
end
"#;
    let r = lint(src, Lang::Ruby);
    assert_eq!(at(&r), vec![(Rule::UnfilteredRead, 5, 21)], "{r:#?}");
    assert_eq!(r.statements, 2);
}

#[test]
fn javascript_templates_go_raw_strings_and_java_text_blocks() {
    let js = "const q = `SELECT * FROM orders WHERE user_id = ${user.id}`;\nconst ok = 'SELECT * FROM orders_active';\n";
    assert_eq!(
        at(&lint(js, Lang::JavaScript)),
        vec![(Rule::UnfilteredRead, 1, 26)]
    );

    let go = "package x\nconst q = `UPDATE orders\n  SET deleted_at = now()\n  WHERE id = $1`\nvar r = 'x'\nvar s = \"SELECT * FROM users WHERE id = $1 AND deleted_at IS NULL\"\n";
    assert_eq!(at(&lint(go, Lang::Go)), vec![(Rule::MarkerWrite, 3, 7)]);

    let java = "class A {\n  String q = \"\"\"\n      SELECT u.id FROM users u\n      JOIN orders o ON o.user_id = u.id\n      WHERE u.deleted_at IS NULL\n      \"\"\";\n  String p = \"SELECT id FROM orders \" +\n      \"WHERE deleted_at IS NULL\";\n  char c = '\"';\n}\n";
    assert_eq!(
        at(&lint(java, Lang::Java)),
        vec![(Rule::UnfilteredRead, 4, 12)]
    );
}

#[test]
fn sql_files_report_unparseable_statements_and_keep_going() {
    let src = "SELECT * FROM orders WHERE deleted_at IS NULL;\nSELEC * FROM orders;\n\\set x 1\nSELECT * FROM users;\n";
    let r = lint(src, Lang::Sql);
    assert_eq!(at(&r), vec![(Rule::UnfilteredRead, 4, 15)]);
    assert_eq!(r.skipped.len(), 1);
    assert_eq!(r.skipped[0].line, 2);
    assert!(r.skipped[0].reason.contains("SELEC"), "{:?}", r.skipped[0]);
    assert_eq!(r.statements, 2);
}

#[test]
fn literal_that_looks_like_sql_but_does_not_parse_is_skipped_not_dropped() {
    let r = lint(
        "let q = \"SELECT * FROM orders WHERE\";\nlet m = \"Delete this order?\";\n",
        Lang::Rust,
    );
    assert!(r.findings.is_empty());
    assert_eq!(r.skipped.len(), 1, "{r:#?}");
    assert_eq!((r.skipped[0].line, r.skipped[0].column), (1, 10));
}

#[test]
fn review_findings_stay_fixed() {
    // sqlc puts a `-- name:` comment before the query in the literal.
    let go = "const getUser = `-- name: GetUserByEmail :one\nSELECT id, email FROM users WHERE email = $1`\n";
    assert_eq!(at(&lint(go, Lang::Go)), vec![(Rule::UniqueLookup, 2, 23)]);

    // An apostrophe in an SQL comment opens no string for the placeholders.
    let py = "q = \"\"\"\n-- don't include drafts\nSELECT * FROM orders o WHERE o.user_id = %s\n\"\"\"\n";
    let r = lint(py, Lang::Python);
    assert_eq!(at(&r), vec![(Rule::UnfilteredRead, 3, 15)], "{r:#?}");

    // A suppression above a call whose literal starts on the next line.
    let black = "# lethe: include-deleted the export keeps deleted orders\ncur.execute(\n    \"SELECT * FROM orders\"\n)\n";
    let r = lint(black, Lang::Python);
    assert!(r.findings.is_empty(), "{r:#?}");
    assert_eq!(r.suppressed.len(), 1);

    // A byte-order mark before the first statement of a .sql file.
    let r = lint("\u{FEFF}SELECT * FROM orders;\n", Lang::Sql);
    assert_eq!(at(&r), vec![(Rule::UnfilteredRead, 1, 15)], "{r:#?}");
    assert!(r.skipped.is_empty());

    // MySQL's multi-table DELETE names the alias.
    let policy = lethe_core::parse_policy(POLICY, "lethe.toml").unwrap();
    let r = Linter::new(&policy, SqlDialect::Mysql).lint_source(
        "f",
        "DELETE o FROM orders o JOIN users u ON u.id = o.user_id WHERE u.deleted_at IS NULL;",
        Lang::Sql,
    );
    assert_eq!(
        r.findings
            .iter()
            .map(|f| (f.rule, f.entity.as_str()))
            .collect::<Vec<_>>(),
        vec![(Rule::RawDelete, "orders")]
    );

    // A generated statement too long to analyse is skipped, not a crash.
    let mut long = String::from("SELECT * FROM orders WHERE deleted_at IS NULL");
    for i in 0..12_000 {
        long.push_str(&format!(" AND a{i} = 1"));
    }
    let r = lint(&long, Lang::Sql);
    assert_eq!(r.skipped.len(), 1);
    assert!(r.skipped[0].reason.contains("tokens"), "{:?}", r.skipped[0]);
}

#[test]
fn a_stray_quote_costs_one_line_not_the_file() {
    let jsx =
        "const A = () => <p>You don't have any orders</p>;\nconst q = \"SELECT * FROM orders\";\n";
    assert_eq!(
        at(&lint(jsx, Lang::JavaScript)),
        vec![(Rule::UnfilteredRead, 2, 26)]
    );
    let regex = "const esc = s.replace(/'/g, \"''\");\nconst q = \"SELECT * FROM orders\";\n";
    assert_eq!(
        at(&lint(regex, Lang::JavaScript)),
        vec![(Rule::UnfilteredRead, 2, 26)]
    );
    let rust = "let quote = b'\"';\nlet q = \"SELECT * FROM orders\";\n";
    assert_eq!(
        at(&lint(rust, Lang::Rust)),
        vec![(Rule::UnfilteredRead, 2, 24)]
    );
}
