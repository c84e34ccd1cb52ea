//! Unit tests of the schema classification, on hand-built schema values.

use super::*;
use crate::provision::schema::Index;

fn col(name: &str, ty: &str) -> Column {
    Column {
        name: name.to_owned(),
        column_type: ty.to_owned(),
        nullable: true,
        ..Column::default()
    }
}

fn table(columns: Vec<Column>) -> Table {
    let mut t = Table {
        columns,
        ..Table::default()
    };
    t.indexes.insert(
        PRIMARY.to_owned(),
        Index {
            unique: true,
            columns: vec!["id".to_owned()],
        },
    );
    t
}

fn schema(t: Table) -> Schema {
    let mut s = Schema::default();
    s.tables.insert(("app".to_owned(), "t".to_owned()), t);
    s
}

fn base() -> Table {
    table(vec![col("id", "int(11)"), col("name", "varchar(32)")])
}

const ON: Conversions = Conversions {
    variable: "slave_type_conversions",
    value: String::new(),
    non_lossy: true,
};

fn diff(green: Table, conv: &Conversions) -> Vec<Difference> {
    classify(&schema(base()), &schema(green), conv)
}

fn verdicts(d: &[Difference]) -> Vec<(Option<&str>, Verdict)> {
    d.iter().map(|d| (d.column.as_deref(), d.verdict)).collect()
}

#[test]
fn identical_schemas_have_no_difference() {
    assert!(diff(base(), &ON).is_empty());
}

#[test]
fn compatible_changes() {
    let mut g = base();
    g.columns[1] = col("name", "varchar(64)");
    g.columns.push(col("added", "int"));
    g.indexes.insert(
        "by_name".to_owned(),
        Index {
            unique: false,
            columns: vec!["name".to_owned()],
        },
    );
    g.columns[0].default = Some("0".to_owned());
    let d = diff(g, &ON);
    assert_eq!(d.len(), 4, "{d:#?}");
    assert!(d.iter().all(|d| d.verdict == Verdict::Compatible), "{d:#?}");
}

#[test]
fn widening_needs_the_conversion_setting() {
    let mut g = base();
    g.columns[0] = col("id", "bigint(20)");
    let off = Conversions {
        non_lossy: false,
        ..ON
    };
    let d = diff(g, &off);
    assert_eq!(verdicts(&d), vec![(Some("id"), Verdict::Incompatible)]);
    assert!(d[0].why.contains("ALL_NON_LOSSY"), "{}", d[0].why);
}

#[test]
fn incompatible_changes_name_the_column() {
    let mut dropped = base();
    dropped.columns.pop();
    assert_eq!(
        verdicts(&diff(dropped, &ON)),
        vec![(Some("name"), Verdict::Incompatible)]
    );

    let mut narrowed = base();
    narrowed.columns[1] = col("name", "varchar(8)");
    assert_eq!(
        verdicts(&diff(narrowed, &ON)),
        vec![(Some("name"), Verdict::Incompatible)]
    );

    let mut renamed = base();
    renamed.columns[1] = col("title", "varchar(32)");
    let d = diff(renamed, &ON);
    assert!(
        d[0].change
            .contains("dropped or renamed on green (title in its place)"),
        "{d:#?}"
    );

    let mut reordered = base();
    reordered.columns.swap(0, 1);
    let d = diff(reordered, &ON);
    assert!(
        d.iter().all(|d| d.verdict == Verdict::Incompatible),
        "{d:#?}"
    );
    assert!(d[0].change.contains("moved"), "{d:#?}");
}

#[test]
fn missing_table_and_changed_primary_key() {
    let d = classify(&schema(base()), &Schema::default(), &ON);
    assert_eq!(verdicts(&d), vec![(None, Verdict::Incompatible)]);
    assert_eq!(d[0].change, "table missing on green");

    let mut g = base();
    g.indexes.remove(PRIMARY);
    let d = diff(g, &ON);
    assert_eq!(verdicts(&d), vec![(None, Verdict::Incompatible)]);
    assert!(d[0].change.contains("primary key"), "{d:#?}");
}

#[test]
fn added_not_null_column_without_default_is_incompatible() {
    let mut g = base();
    g.columns.push(Column {
        nullable: false,
        ..col("flag", "int")
    });
    assert_eq!(
        verdicts(&diff(g, &ON)),
        vec![(Some("flag"), Verdict::Incompatible)]
    );
}

proptest::proptest! {
    /// Appending nullable columns on green is always compatible, dropping any of
    /// blue's columns never is.
    #[test]
    fn appending_is_compatible_dropping_is_not(extra in 0usize..5, drop in 0usize..2) {
        let mut g = base();
        for i in 0..extra {
            g.columns.push(col(&format!("c{i}"), "int"));
        }
        let d = diff(g.clone(), &ON);
        proptest::prop_assert!(d.iter().all(|d| d.verdict == Verdict::Compatible));
        g.columns.remove(drop);
        let d = diff(g, &ON);
        proptest::prop_assert!(d.iter().any(|d| d.verdict == Verdict::Incompatible));
    }
}

#[test]
fn views_are_checked_for_presence_only() {
    let view = |ty: &str| Table {
        view: true,
        columns: vec![col("name", ty)],
        ..Table::default()
    };
    assert!(classify(&schema(view("varchar(32)")), &schema(view("int")), &ON).is_empty());
    let d = classify(&schema(view("int")), &Schema::default(), &ON);
    assert_eq!(d[0].change, "view missing on green");
    assert_eq!(d[0].verdict, Verdict::Incompatible);
}

#[test]
fn charset_breaks_collation_does_not() {
    let with = |charset: &str, collation: &str| {
        let mut t = base();
        t.columns[1].charset = Some(charset.to_owned());
        t.columns[1].collation = Some(collation.to_owned());
        t
    };
    let blue = schema(with("utf8mb4", "utf8mb4_general_ci"));
    let d = classify(&blue, &schema(with("utf8mb4", "utf8mb4_bin")), &ON);
    assert_eq!(verdicts(&d), vec![(Some("name"), Verdict::Compatible)]);
    let d = classify(&blue, &schema(with("latin1", "latin1_swedish_ci")), &ON);
    assert_eq!(verdicts(&d), vec![(Some("name"), Verdict::Incompatible)]);
}
