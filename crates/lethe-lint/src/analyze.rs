//! The analysis of one parsed statement: which reads of soft entities miss
//! their deleted filter, which statements bypass Lethe, and the statement
//! with the missing filters added.
//!
//! Scopes follow SQL: each SELECT (and the FROM/USING of an UPDATE or
//! DELETE) is one scope whose relations may be filtered by its WHERE clause,
//! by the ON clause of an inner join, or by the ON clause of the outer join
//! that brings the relation in. A derived table or CTE that passes the marker
//! column through (`SELECT *`, `p.*`, `p.deleted_at`) leaves the obligation
//! to the query that reads it, which may filter the exposed column instead.

use std::collections::HashMap;
use std::ops::ControlFlow;

use sqlparser::ast::{
    Assignment, AssignmentTarget, BinaryOperator, Expr, FromTable, Ident, JoinConstraint,
    JoinOperator, ObjectName, ObjectNamePart, OnConflictAction, OnInsert, Query, Select,
    SelectItem, SelectItemQualifiedWildcardKind, SetExpr, Statement, TableFactor, TableObject,
    TableWithJoins, UpdateTableFromKind, Visit, VisitMut, Visitor, VisitorMut,
};

use crate::rules::Rule;
use crate::targets::{Target, Targets};

/// A finding inside one statement, positioned in the parsed text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    pub rule: Rule,
    /// 1-based line and column in the parsed text; 0 when the parser gave
    /// no position.
    pub line: u64,
    pub column: u64,
    pub entity: String,
    pub message: String,
    /// What to do instead when the fix is not a query (a Lethe command).
    pub advice: Option<String>,
}

/// What one statement yields.
#[derive(Debug, Clone)]
pub struct Analysis {
    pub hits: Vec<Hit>,
    /// The statement with every missing filter added, when a read finding
    /// can be fixed in SQL.
    pub fixed: Option<String>,
}

pub fn analyze(stmt: &Statement, targets: &Targets) -> Analysis {
    let mut stmt = stmt.clone();
    let mut an = Analyzer {
        targets,
        hits: Vec::new(),
        ctes: Vec::new(),
        patched: false,
    };
    an.statement(&mut stmt);
    let mut hits = an.hits;
    hits.sort_by_key(|h| (h.line, h.column, h.rule));
    hits.dedup();
    let fixed = (an.patched
        && hits
            .iter()
            .any(|h| matches!(h.rule, Rule::UnfilteredRead | Rule::UniqueLookup)))
    .then(|| stmt.to_string());
    Analysis { hits, fixed }
}

/// A read finding that a query further out may still resolve, by
/// filtering `column` (the marker as the inner query exposes it).
#[derive(Debug, Clone)]
struct Pending {
    hit: Hit,
    column: String,
}

/// The CTEs visible in a query: name -> (what reading it leaves pending,
/// whether something read it).
type CteFrame = HashMap<String, (Vec<Pending>, bool)>;

struct Analyzer<'a> {
    targets: &'a Targets,
    hits: Vec<Hit>,
    ctes: Vec<CteFrame>,
    /// Whether a missing filter was added to the statement.
    patched: bool,
}

fn lower(i: &Ident) -> String {
    i.value.to_lowercase()
}

fn name_parts(name: &ObjectName) -> Vec<String> {
    name.0
        .iter()
        .map(|p| match p {
            ObjectNamePart::Identifier(i) => lower(i),
            other => other.to_string().to_lowercase(),
        })
        .collect()
}

fn last_ident(name: &ObjectName) -> Option<&Ident> {
    match name.0.last() {
        Some(ObjectNamePart::Identifier(i)) => Some(i),
        _ => None,
    }
}

/// `col` or `q.col` (the qualifier is the part just before the column).
type ColRef = (Option<String>, String);

fn column_ref(e: &Expr) -> Option<ColRef> {
    match e {
        Expr::Identifier(i) => Some((None, lower(i))),
        Expr::CompoundIdentifier(p) if p.len() >= 2 => {
            Some((Some(lower(&p[p.len() - 2])), lower(&p[p.len() - 1])))
        }
        Expr::Nested(inner) => column_ref(inner),
        _ => None,
    }
}

/// The column references of an expression, not looking into subqueries
/// (their columns belong to their own scope).
fn refs_of(e: &Expr) -> Vec<ColRef> {
    struct Refs {
        depth: usize,
        out: Vec<ColRef>,
    }
    impl Visitor for Refs {
        type Break = ();
        fn pre_visit_query(&mut self, _: &Query) -> ControlFlow<()> {
            self.depth += 1;
            ControlFlow::Continue(())
        }
        fn post_visit_query(&mut self, _: &Query) -> ControlFlow<()> {
            self.depth -= 1;
            ControlFlow::Continue(())
        }
        fn pre_visit_expr(&mut self, e: &Expr) -> ControlFlow<()> {
            if self.depth == 0
                && matches!(e, Expr::Identifier(_) | Expr::CompoundIdentifier(_))
                && let Some(r) = column_ref(e)
            {
                self.out.push(r);
            }
            ControlFlow::Continue(())
        }
    }
    let mut r = Refs {
        depth: 0,
        out: Vec::new(),
    };
    let _ = e.visit(&mut r);
    r.out
}

fn conjuncts<'e>(e: &'e Expr, out: &mut Vec<&'e Expr>) {
    match e {
        Expr::BinaryOp {
            left,
            op: BinaryOperator::And,
            right,
        } => {
            conjuncts(left, out);
            conjuncts(right, out);
        }
        Expr::Nested(inner)
            if matches!(
                **inner,
                Expr::BinaryOp {
                    op: BinaryOperator::And,
                    ..
                }
            ) =>
        {
            conjuncts(inner, out)
        }
        _ => out.push(e),
    }
}

/// What a WHERE or ON clause says, conjunct by conjunct.
#[derive(Debug, Default, Clone)]
struct Facts {
    /// The column references of each top-level conjunct.
    conds: Vec<Vec<ColRef>>,
    /// Columns compared for equality with a value (`u.email = $1`).
    eqs: Vec<ColRef>,
}

impl Facts {
    fn of(e: Option<&Expr>) -> Facts {
        let mut f = Facts::default();
        let Some(e) = e else { return f };
        let mut cs = Vec::new();
        conjuncts(e, &mut cs);
        for c in cs {
            f.conds.push(refs_of(c));
            if let Expr::BinaryOp {
                left,
                op: BinaryOperator::Eq,
                right,
            } = c
            {
                for (a, b) in [(left, right), (right, left)] {
                    if let Some(r) = column_ref(a)
                        && refs_of(b).is_empty()
                    {
                        f.eqs.push(r);
                    }
                }
            }
        }
        f
    }

    fn extend(&mut self, other: &Facts) {
        self.conds.extend(other.conds.iter().cloned());
        self.eqs.extend(other.eqs.iter().cloned());
    }

    /// Whether a conjunct deals with `binding`'s marker: it refers to
    /// marker columns of that relation and to nothing else
    /// (`p.deleted_at IS NULL`, also a deliberate `IS NOT NULL` or
    /// `deleted_at > now()`). An unqualified column counts when it is not
    /// ambiguous in the scope.
    fn handles(&self, binding: &str, columns: &[&str], unqualified_ok: bool) -> bool {
        self.conds.iter().any(|refs| {
            !refs.is_empty()
                && refs.iter().all(|(q, c)| {
                    columns.contains(&c.as_str())
                        && match q {
                            Some(q) => q == binding,
                            None => unqualified_ok,
                        }
                })
        })
    }

    fn pinned(&self, binding: &str) -> Vec<&str> {
        self.eqs
            .iter()
            .filter(|(q, _)| q.as_deref().is_none_or(|q| q == binding))
            .map(|(_, c)| c.as_str())
            .collect()
    }
}

fn is_null(binding: Option<&str>, column: &str) -> Expr {
    let col = Ident::new(column);
    Expr::IsNull(Box::new(match binding {
        Some(b) => Expr::CompoundIdentifier(vec![Ident::new(b), col]),
        None => Expr::Identifier(col),
    }))
}

/// `e AND extra...`, keeping `e` whole when it is an OR.
fn and_all(e: Option<Expr>, extra: Vec<Expr>) -> Option<Expr> {
    let mut acc = e.map(|e| match e {
        Expr::BinaryOp {
            op: BinaryOperator::Or,
            ..
        } => Expr::Nested(Box::new(e)),
        e => e,
    });
    for x in extra {
        acc = Some(match acc {
            None => x,
            Some(a) => Expr::BinaryOp {
                left: Box::new(a),
                op: BinaryOperator::And,
                right: Box::new(x),
            },
        });
    }
    acc
}

fn constraint_mut(op: &mut JoinOperator) -> Option<&mut JoinConstraint> {
    use JoinOperator::*;
    match op {
        Join(c) | Inner(c) | Left(c) | LeftOuter(c) | Right(c) | RightOuter(c) | FullOuter(c)
        | CrossJoin(c) | Semi(c) | LeftSemi(c) | RightSemi(c) | Anti(c) | LeftAnti(c)
        | RightAnti(c) | StraightJoin(c) => Some(c),
        AsOf { constraint, .. } => Some(constraint),
        _ => None,
    }
}

fn on_expr(op: &JoinOperator) -> Option<&Expr> {
    use JoinOperator::*;
    match op {
        Join(c) | Inner(c) | Left(c) | LeftOuter(c) | Right(c) | RightOuter(c) | FullOuter(c)
        | CrossJoin(c) | Semi(c) | LeftSemi(c) | RightSemi(c) | Anti(c) | LeftAnti(c)
        | RightAnti(c) | StraightJoin(c) => match c {
            JoinConstraint::On(e) => Some(e),
            _ => None,
        },
        AsOf {
            constraint: JoinConstraint::On(e),
            ..
        } => Some(e),
        _ => None,
    }
}

/// Whether the relation a join brings in may be missing (its rows are the
/// nullable side), so its filter belongs in the ON clause.
fn is_outer(op: &JoinOperator) -> bool {
    matches!(op, JoinOperator::Left(_) | JoinOperator::LeftOuter(_))
}

fn is_right(op: &JoinOperator) -> bool {
    matches!(op, JoinOperator::Right(_) | JoinOperator::RightOuter(_))
}

/// Whether the ON clause of this join acts like the WHERE clause for
/// every relation of the scope.
fn is_inner(op: &JoinOperator) -> bool {
    matches!(
        op,
        JoinOperator::Join(_)
            | JoinOperator::Inner(_)
            | JoinOperator::CrossJoin(_)
            | JoinOperator::StraightJoin(_)
    )
}

/// The name under which `projection` passes `columns` of `binding` on,
/// if it does.
fn exposed(
    projection: &[SelectItem],
    binding: Option<&str>,
    columns: &[&str],
    unqualified_ok: bool,
) -> Option<String> {
    let matches = |r: ColRef| {
        columns.contains(&r.1.as_str())
            && match (&r.0, binding) {
                (Some(q), Some(b)) => q == b,
                (Some(_), None) => false,
                (None, _) => unqualified_ok,
            }
    };
    for item in projection {
        match item {
            SelectItem::Wildcard(_) => return Some(columns[0].to_string()),
            SelectItem::QualifiedWildcard(SelectItemQualifiedWildcardKind::ObjectName(n), _)
                if binding.is_some_and(|b| last_ident(n).is_some_and(|i| lower(i) == b)) =>
            {
                return Some(columns[0].to_string());
            }
            SelectItem::UnnamedExpr(e) => {
                if let Some(r) = column_ref(e) {
                    let name = r.1.clone();
                    if matches(r) {
                        return Some(name);
                    }
                }
            }
            SelectItem::ExprWithAlias { expr, alias } if column_ref(expr).is_some_and(matches) => {
                return Some(lower(alias));
            }
            _ => {}
        }
    }
    None
}

/// Facts of a scope known before its relations are analyzed.
struct ScopeInfo {
    /// WHERE and the ON clauses of inner joins.
    common: Facts,
    /// How many relations of the scope carry each marker column name.
    markers: HashMap<String, usize>,
}

/// Walks the subqueries in an expression (EXISTS, IN, scalar), each
/// analyzed as a query of its own; nested ones are reached by that analysis.
struct Subqueries<'x, 'a> {
    an: &'x mut Analyzer<'a>,
    depth: usize,
}

impl VisitorMut for Subqueries<'_, '_> {
    type Break = ();
    fn pre_visit_query(&mut self, q: &mut Query) -> ControlFlow<()> {
        if self.depth == 0 {
            let p = self.an.query(q);
            self.an.emit(p);
        }
        self.depth += 1;
        ControlFlow::Continue(())
    }
    fn post_visit_query(&mut self, _: &mut Query) -> ControlFlow<()> {
        self.depth -= 1;
        ControlFlow::Continue(())
    }
}

impl Analyzer<'_> {
    fn emit(&mut self, pending: Vec<Pending>) {
        self.hits.extend(pending.into_iter().map(|p| p.hit));
    }

    fn subqueries<T: VisitMut>(&mut self, node: &mut T) {
        let _ = node.visit(&mut Subqueries { an: self, depth: 0 });
    }

    fn statement(&mut self, stmt: &mut Statement) {
        match stmt {
            Statement::Query(q) => {
                let p = self.query(q);
                self.emit(p);
            }
            Statement::Insert(ins) => {
                if let Some(src) = &mut ins.source {
                    let p = self.query(src);
                    self.emit(p);
                }
                // An upsert's update half writes the target like an UPDATE.
                let target = match &ins.table {
                    TableObject::TableName(n) => self.targets.resolve(&name_parts(n)).cloned(),
                    _ => None,
                };
                let assignments: &[Assignment] = match &ins.on {
                    Some(OnInsert::DuplicateKeyUpdate(a)) => a,
                    Some(OnInsert::OnConflict(c)) => match &c.action {
                        OnConflictAction::DoUpdate(u) => &u.assignments,
                        _ => &[],
                    },
                    _ => &[],
                };
                if let Some(t) = target {
                    self.marker_writes(&t, assignments);
                }
                if let Some(on) = &mut ins.on {
                    self.subqueries(on);
                }
                if let Some(r) = &mut ins.returning {
                    self.subqueries(r);
                }
            }
            Statement::Update(u) => {
                if let TableFactor::Table { name, .. } = &u.table.relation
                    && let Some(t) = self.targets.resolve(&name_parts(name)).cloned()
                {
                    self.marker_writes(&t, &u.assignments);
                }
                for a in u.assignments.iter_mut() {
                    self.subqueries(&mut a.value);
                }
                if let Some(r) = &mut u.returning {
                    self.subqueries(r);
                }
                let mut lists: Vec<(&mut TableWithJoins, bool)> = vec![(&mut u.table, true)];
                if let Some(UpdateTableFromKind::BeforeSet(v) | UpdateTableFromKind::AfterSet(v)) =
                    &mut u.from
                {
                    lists.extend(v.iter_mut().map(|t| (t, false)));
                }
                let p = self.scope(lists, &mut u.selection, None);
                self.emit(p);
            }
            Statement::Delete(d) => {
                let from = match &mut d.from {
                    FromTable::WithFromKeyword(v) | FromTable::WithoutKeyword(v) => v,
                };
                // `DELETE o FROM orders o JOIN ...` (MySQL) names the alias.
                let aliases: HashMap<String, ObjectName> = from
                    .iter()
                    .flat_map(|t| {
                        std::iter::once(&t.relation).chain(t.joins.iter().map(|j| &j.relation))
                    })
                    .filter_map(|f| match f {
                        TableFactor::Table {
                            name,
                            alias: Some(a),
                            ..
                        } => Some((lower(&a.name), name.clone())),
                        _ => None,
                    })
                    .collect();
                let mut names: Vec<ObjectName> = d
                    .tables
                    .iter()
                    .map(|n| match name_parts(n).as_slice() {
                        [single] => aliases.get(single).cloned().unwrap_or_else(|| n.clone()),
                        _ => n.clone(),
                    })
                    .collect();
                if names.is_empty()
                    && let Some(TableFactor::Table { name, .. }) = from.first().map(|t| &t.relation)
                {
                    names.push(name.clone());
                }
                for n in &names {
                    if let Some(t) = self.targets.resolve(&name_parts(n))
                        && let Some(i) = last_ident(n)
                    {
                        self.hits.push(raw_delete(t, i, "DELETE"));
                    }
                }
                let mut lists: Vec<(&mut TableWithJoins, bool)> = Vec::new();
                for (i, t) in from.iter_mut().enumerate() {
                    lists.push((t, i == 0));
                }
                if let Some(using) = &mut d.using {
                    lists.extend(using.iter_mut().map(|t| (t, false)));
                }
                let p = self.scope(lists, &mut d.selection, None);
                self.emit(p);
                if let Some(r) = &mut d.returning {
                    self.subqueries(r);
                }
            }
            Statement::Truncate(t) => {
                for target in &t.table_names {
                    if let Some(e) = self.targets.resolve(&name_parts(&target.name))
                        && let Some(i) = last_ident(&target.name)
                    {
                        self.hits.push(raw_delete(e, i, "TRUNCATE"));
                    }
                }
            }
            Statement::CreateView(v) => {
                let p = self.query(&mut v.query);
                self.emit(p);
            }
            Statement::CreateTable(c) => {
                if let Some(q) = &mut c.query {
                    let p = self.query(q);
                    self.emit(p);
                }
            }
            Statement::Explain { statement, .. } => self.statement(statement),
            _ => {}
        }
    }

    fn marker_writes(&mut self, t: &Target, assignments: &[Assignment]) {
        for a in assignments {
            let cols: Vec<&ObjectName> = match &a.target {
                AssignmentTarget::ColumnName(n) => vec![n],
                AssignmentTarget::Tuple(v) => v.iter().collect(),
            };
            for c in cols {
                if let Some(i) = last_ident(c)
                    && t.is_marker(&lower(i))
                {
                    self.hits.push(marker_write(t, i));
                }
            }
        }
    }

    fn query(&mut self, q: &mut Query) -> Vec<Pending> {
        let framed = q.with.is_some();
        if let Some(with) = &mut q.with {
            self.ctes.push(CteFrame::new());
            for cte in with.cte_tables.iter_mut() {
                let p = self.query(&mut cte.query);
                if let Some(frame) = self.ctes.last_mut() {
                    frame.insert(lower(&cte.alias.name), (p, false));
                }
            }
        }
        let out = self.set_expr(&mut q.body);
        if let Some(order) = &mut q.order_by {
            self.subqueries(order);
        }
        if framed && let Some(frame) = self.ctes.pop() {
            // A CTE nobody reads still runs (PostgreSQL runs data-modifying
            // ones, and a reader may be added later): report it.
            for (p, used) in frame.into_values() {
                if !used {
                    self.emit(p);
                }
            }
        }
        out
    }

    fn set_expr(&mut self, e: &mut SetExpr) -> Vec<Pending> {
        match e {
            SetExpr::Select(s) => self.select(s),
            SetExpr::Query(q) => self.query(q),
            SetExpr::SetOperation { left, right, .. } => {
                let mut p = self.set_expr(left);
                p.extend(self.set_expr(right));
                p
            }
            SetExpr::Values(v) => {
                self.subqueries(v);
                Vec::new()
            }
            SetExpr::Insert(s) | SetExpr::Update(s) | SetExpr::Delete(s) | SetExpr::Merge(s) => {
                self.statement(s);
                Vec::new()
            }
            SetExpr::Table(t) => {
                let parts: Vec<String> = t
                    .schema_name
                    .iter()
                    .chain(t.table_name.iter())
                    .map(|s| s.to_lowercase())
                    .collect();
                if let Some(target) = self.targets.resolve(&parts).filter(|t| t.soft) {
                    let msg = format!(
                        "TABLE {} reads every row of {}, deleted ones included",
                        target.table, target.entity
                    );
                    self.hits.push(Hit {
                        rule: Rule::UnfilteredRead,
                        line: 0,
                        column: 0,
                        entity: target.entity.clone(),
                        message: msg,
                        advice: Some(format!("SELECT * FROM {}", target.active_view)),
                    });
                }
                Vec::new()
            }
        }
    }

    fn select(&mut self, s: &mut Select) -> Vec<Pending> {
        for item in s.projection.iter_mut() {
            self.subqueries(item);
        }
        if let Some(h) = &mut s.having {
            self.subqueries(h);
        }
        let Select {
            from,
            selection,
            projection,
            ..
        } = s;
        let lists = from.iter_mut().map(|t| (t, false)).collect();
        self.scope(lists, selection, Some(projection))
    }

    /// One scope: its relations, filtered by `selection` and the join
    /// clauses. Missing filters are added to the statement as they are found.
    fn scope(
        &mut self,
        mut lists: Vec<(&mut TableWithJoins, bool)>,
        selection: &mut Option<Expr>,
        projection: Option<&[SelectItem]>,
    ) -> Vec<Pending> {
        if let Some(e) = selection.as_mut() {
            self.subqueries(e);
        }
        let mut info = ScopeInfo {
            common: Facts::of(selection.as_ref()),
            markers: HashMap::new(),
        };
        for (twj, _) in &lists {
            self.survey(twj, &mut info);
        }
        let mut where_add = Vec::new();
        let mut out = Vec::new();
        for (twj, skip) in lists.iter_mut() {
            self.twj(twj, *skip, &info, &mut where_add, projection, &mut out);
        }
        if !where_add.is_empty() {
            *selection = and_all(selection.take(), where_add);
        }
        out
    }

    /// Pre-pass: the facts of inner joins and the marker columns in scope.
    fn survey(&self, twj: &TableWithJoins, info: &mut ScopeInfo) {
        self.survey_factor(&twj.relation, info);
        for j in &twj.joins {
            if is_inner(&j.join_operator) {
                info.common.extend(&Facts::of(on_expr(&j.join_operator)));
            }
            self.survey_factor(&j.relation, info);
        }
    }

    fn survey_factor(&self, tf: &TableFactor, info: &mut ScopeInfo) {
        match tf {
            TableFactor::Table { name, .. } => {
                if let Some(t) = self.targets.resolve(&name_parts(name)).filter(|t| t.soft) {
                    *info.markers.entry(t.deleted_at.clone()).or_default() += 1;
                    if t.deletion_id != t.deleted_at {
                        *info.markers.entry(t.deletion_id.clone()).or_default() += 1;
                    }
                }
            }
            TableFactor::NestedJoin {
                table_with_joins, ..
            } => self.survey(table_with_joins, info),
            _ => {}
        }
    }

    fn twj(
        &mut self,
        twj: &mut TableWithJoins,
        skip_base: bool,
        info: &ScopeInfo,
        where_add: &mut Vec<Expr>,
        projection: Option<&[SelectItem]>,
        out: &mut Vec<Pending>,
    ) {
        // A RIGHT JOIN's ON filters the relations before it (they are its
        // nullable side), not the relation it brings in.
        let right_on: Vec<(usize, Facts)> = twj
            .joins
            .iter()
            .enumerate()
            .filter(|(_, j)| is_right(&j.join_operator))
            .map(|(i, j)| (i, Facts::of(on_expr(&j.join_operator))))
            .collect();
        let before = |pos: Option<usize>| {
            let mut f = Facts::default();
            for (i, facts) in &right_on {
                if pos.is_none_or(|p| *i > p) {
                    f.extend(facts);
                }
            }
            f
        };
        if !skip_base {
            let extra = before(None);
            self.factor(
                &mut twj.relation,
                Some(&extra),
                info,
                where_add,
                projection,
                out,
            );
        }
        for (pos, j) in twj.joins.iter_mut().enumerate() {
            let mut on = before(Some(pos));
            // A FULL JOIN keeps unmatched rows of both sides: its ON filters
            // neither. A RIGHT JOIN's ON does not filter its own relation.
            if !matches!(j.join_operator, JoinOperator::FullOuter(_)) && !is_right(&j.join_operator)
            {
                on.extend(&Facts::of(on_expr(&j.join_operator)));
            }
            if let Some(JoinConstraint::On(e)) = constraint_mut(&mut j.join_operator) {
                self.subqueries(e);
            }
            if is_outer(&j.join_operator) {
                let mut on_add = Vec::new();
                self.factor(
                    &mut j.relation,
                    Some(&on),
                    info,
                    &mut on_add,
                    projection,
                    out,
                );
                if !on_add.is_empty() {
                    match constraint_mut(&mut j.join_operator) {
                        Some(JoinConstraint::On(e)) => {
                            *e = and_all(Some(e.clone()), on_add).unwrap_or_else(|| e.clone())
                        }
                        _ => where_add.extend(on_add),
                    }
                }
            } else {
                self.factor(&mut j.relation, Some(&on), info, where_add, projection, out);
            }
        }
    }

    fn factor(
        &mut self,
        tf: &mut TableFactor,
        on: Option<&Facts>,
        info: &ScopeInfo,
        add: &mut Vec<Expr>,
        projection: Option<&[SelectItem]>,
        out: &mut Vec<Pending>,
    ) {
        match tf {
            TableFactor::Table {
                name, alias, args, ..
            } => {
                if args.is_some() {
                    return;
                }
                let parts = name_parts(name);
                let binding = alias.as_ref().map(|a| lower(&a.name));
                if let [single] = parts.as_slice()
                    && let Some(p) = self.cte(single)
                {
                    let b = binding.unwrap_or_else(|| single.clone());
                    self.derived(p, Some(&b), on, info, projection, out);
                    return;
                }
                let Some(t) = self.targets.resolve(&parts).filter(|t| t.soft).cloned() else {
                    return;
                };
                let b = binding.unwrap_or_else(|| parts.last().cloned().unwrap_or_default());
                let cols = [t.deleted_at.as_str(), t.deletion_id.as_str()];
                let unqualified_ok = info.markers.get(&t.deleted_at).copied().unwrap_or(0) <= 1;
                let filtered = info.common.handles(&b, &cols, unqualified_ok)
                    || on.is_some_and(|f| f.handles(&b, &cols, unqualified_ok));
                if filtered {
                    return;
                }
                let Some(ident) = last_ident(name) else {
                    return;
                };
                let mut facts = info.common.clone();
                if let Some(on) = on {
                    facts.extend(on);
                }
                let hit = read_hit(&t, &b, alias.is_some(), ident, &facts);
                add.push(is_null(Some(&b), &t.deleted_at));
                self.patched = true;
                match projection.and_then(|p| exposed(p, Some(&b), &cols, unqualified_ok)) {
                    Some(column) => out.push(Pending { hit, column }),
                    None => self.hits.push(hit),
                }
            }
            TableFactor::Derived {
                subquery, alias, ..
            } => {
                let p = self.query(subquery);
                let b = alias.as_ref().map(|a| lower(&a.name));
                self.derived(p, b.as_deref(), on, info, projection, out);
            }
            TableFactor::NestedJoin {
                table_with_joins, ..
            } => self.twj(table_with_joins, false, info, add, projection, out),
            _ => {}
        }
    }

    /// A relation read from a subquery or CTE: each read it leaves pending
    /// is resolved by a filter here, passed further out, or reported.
    fn derived(
        &mut self,
        pending: Vec<Pending>,
        binding: Option<&str>,
        on: Option<&Facts>,
        info: &ScopeInfo,
        projection: Option<&[SelectItem]>,
        out: &mut Vec<Pending>,
    ) {
        for p in pending {
            let cols = [p.column.as_str()];
            let unqualified_ok = !info.markers.contains_key(&p.column);
            let b = binding.unwrap_or("");
            let filtered = info.common.handles(b, &cols, unqualified_ok)
                || on.is_some_and(|f| f.handles(b, &cols, unqualified_ok));
            if filtered {
                continue;
            }
            match projection.and_then(|pr| exposed(pr, binding, &cols, unqualified_ok)) {
                Some(column) => out.push(Pending { hit: p.hit, column }),
                None => self.hits.push(p.hit),
            }
        }
    }

    fn cte(&mut self, name: &str) -> Option<Vec<Pending>> {
        for frame in self.ctes.iter_mut().rev() {
            if let Some((p, used)) = frame.get_mut(name) {
                *used = true;
                return Some(p.clone());
            }
        }
        None
    }
}

fn read_hit(t: &Target, binding: &str, aliased: bool, ident: &Ident, facts: &Facts) -> Hit {
    let pinned = facts.pinned(binding);
    let unique = t
        .unique
        .iter()
        .find(|set| !set.is_empty() && set.iter().all(|c| pinned.contains(&c.as_str())));
    let named = if aliased {
        format!("{} (as {binding})", t.table)
    } else {
        t.table.clone()
    };
    let filter = format!("{binding}.{} IS NULL", t.deleted_at);
    let (rule, message) = match unique {
        Some(set) => (
            Rule::UniqueLookup,
            format!(
                "looks up {named} by its unique {} without `{filter}`: a deleted {} row with the same {} can be found instead of the active one",
                set.join(", "),
                t.entity,
                set.join(", ")
            ),
        ),
        None => (
            Rule::UnfilteredRead,
            format!(
                "reads {named} without `{filter}`: rows of {} deleted through Lethe are returned too",
                t.entity
            ),
        ),
    };
    Hit {
        rule,
        line: ident.span.start.line,
        column: ident.span.start.column,
        entity: t.entity.clone(),
        message,
        advice: Some(format!(
            "or read the {} view, which holds active rows only",
            t.active_view
        )),
    }
}

fn raw_delete(t: &Target, ident: &Ident, verb: &str) -> Hit {
    Hit {
        rule: Rule::RawDelete,
        line: ident.span.start.line,
        column: ident.span.start.column,
        entity: t.entity.clone(),
        message: format!(
            "{verb} on {} bypasses Lethe: no cascade, no audit entry, no outbox event, no undo",
            t.table
        ),
        advice: Some(format!(
            "lethe delete {} <key>   (HTTP: DELETE /v1/entities/{}/{{key}}; `lethe purge` removes deleted rows for good after their retention)",
            t.entity, t.entity
        )),
    }
}

fn marker_write(t: &Target, ident: &Ident) -> Hit {
    Hit {
        rule: Rule::MarkerWrite,
        line: ident.span.start.line,
        column: ident.span.start.column,
        entity: t.entity.clone(),
        message: format!(
            "UPDATE writes {}.{} directly: a deletion (or restore) without a deletion record, audit entry or outbox event",
            t.table,
            lower(ident)
        ),
        advice: Some(format!(
            "lethe delete {} <key>   to delete; lethe restore <deletion-id>   to undo a deletion",
            t.entity
        )),
    }
}
