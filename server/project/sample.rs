//! The sample project an empty instance offers on its first run: the tables `authors`, `books`
//! (a reference to authors) and `reviews` (a reference to books), a few rows, the five
//! generated CRUD endpoints of each (published, for signed-in users) and flows drawn by hand:
//! `GET /authors/{id}/books` (public, with request capture on, sorted as the caller asks) and
//! `GET /books/{id}/page` (public: a book with its author and best reviews) and `GET /ratings`
//! (public: reviews counted and averaged per book). Built from the files under `flows/examples/library/`,
//! all in the caller's transaction, and only on an instance with no table and no flow.
//! Knows sqlx and the catalog, not axum.

use crate::base::AuthLevel;
use crate::catalog::{CatalogError, flows};
use crate::flow::generate;
use crate::tables::def::TableDef;
use crate::tables::store::{self, TableError};
use crate::tables::types::IdType;
use serde_json::{Value, json};
use sqlx::{Postgres, Transaction};

const AUTHORS: &str = include_str!("../../flows/examples/library/authors.table.json");
const BOOKS: &str = include_str!("../../flows/examples/library/books.table.json");
const REVIEWS: &str = include_str!("../../flows/examples/library/reviews.table.json");
const AUTHOR_BOOKS: &str = include_str!("../../flows/examples/library/author_books.flow.json");
const BOOK_PAGE: &str = include_str!("../../flows/examples/library/book_page.flow.json");
const BOOK_RATINGS: &str = include_str!("../../flows/examples/library/book_ratings.flow.json");

/// Reviews: the book's title, the reviewer, the rating and a few words.
const REVIEW_ROWS: [(&str, &str, i32, &str); 6] = [
    (
        "A Wizard of Earthsea",
        "ann",
        5,
        "A school of magic before it was a genre.",
    ),
    ("A Wizard of Earthsea", "bo", 4, "Quiet and deep."),
    ("The Dispossessed", "ann", 5, "Two worlds, both honest."),
    ("Invisible Cities", "cy", 5, "Every city is Venice."),
    (
        "Invisible Cities",
        "bo",
        3,
        "Beautiful, but I wanted a story.",
    ),
    ("Beloved", "cy", 5, "Hard and necessary."),
];

/// A book: title and pages.
type Book = (&'static str, i32);

/// Authors and, for each, their books: `(name, born, books)`.
const ROWS: [(&str, i32, &[Book]); 3] = [
    (
        "Ursula K. Le Guin",
        1929,
        &[("A Wizard of Earthsea", 183), ("The Dispossessed", 387)],
    ),
    (
        "Italo Calvino",
        1923,
        &[
            ("Invisible Cities", 165),
            ("If on a winter's night a traveler", 260),
        ],
    ),
    ("Toni Morrison", 1931, &[("Beloved", 324)]),
];

/// Why the sample project was not created.
#[derive(Debug, thiserror::Error)]
pub enum SampleError {
    #[error(
        "the instance already has tables or flows; the sample project is only for an empty one"
    )]
    NotEmpty,
    #[error(transparent)]
    Table(#[from] TableError),
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    /// A shipped file does not parse or compile: a bug of this build, not of the caller.
    #[error("the sample project does not build: {0}")]
    Broken(String),
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

/// What was created: table names, row count, and each flow as `{id, name, method, path,
/// published_version}`.
#[derive(Debug, serde::Serialize)]
pub struct Created {
    pub tables: Vec<String>,
    pub rows: usize,
    pub flows: Vec<Value>,
}

/// Creates the sample project inside `tx` (which then holds the schema-change lock); the
/// caller commits and reloads what is served.
pub async fn create(
    tx: &mut Transaction<'_, Postgres>,
    user_id: i64,
) -> Result<Created, SampleError> {
    store::lock(tx).await?;
    let used: i64 = sqlx::query_scalar(
        "SELECT (SELECT count(*) FROM sluice.tables) + (SELECT count(*) FROM sluice.flows)",
    )
    .fetch_one(&mut **tx)
    .await?;
    if used > 0 {
        return Err(SampleError::NotEmpty);
    }
    let mut names = Vec::new();
    for text in [AUTHORS, BOOKS, REVIEWS] {
        let def: TableDef = parse(text)?;
        let (table, _) = store::create_in(tx, def, user_id).await?;
        names.push(table.def.name.to_string());
    }
    let mut rows = 0;
    for (name, born, books) in ROWS {
        let author: i64 =
            sqlx::query_scalar("INSERT INTO app.authors (name, born) VALUES ($1, $2) RETURNING id")
                .bind(name)
                .bind(born)
                .fetch_one(&mut **tx)
                .await?;
        rows += 1;
        for (title, pages) in books {
            sqlx::query("INSERT INTO app.books (title, pages, author) VALUES ($1, $2, $3)")
                .bind(title)
                .bind(pages)
                .bind(author)
                .execute(&mut **tx)
                .await?;
            rows += 1;
        }
    }
    for (title, reviewer, rating, body) in REVIEW_ROWS {
        sqlx::query(
            "INSERT INTO app.reviews (book, reviewer, rating, body) \
             SELECT id, $2, $3, $4 FROM app.books WHERE title = $1",
        )
        .bind(title)
        .bind(reviewer)
        .bind(rating)
        .bind(body)
        .execute(&mut **tx)
        .await?;
        rows += 1;
    }

    let tables = store::all_in(tx).await?;
    let target = |t: &str| tables.get(t).map(|d| d.id_type).unwrap_or(IdType::Bigint);
    let mut docs = Vec::new();
    for name in &names {
        let def = tables
            .get(name.as_str())
            .ok_or_else(|| SampleError::Broken(format!("table {name} is missing")))?;
        docs.extend(
            generate::crud(def, &format!("/{name}"), AuthLevel::User, target)
                .map_err(|e| SampleError::Broken(e.to_string()))?,
        );
    }
    docs.push(parse(AUTHOR_BOOKS)?);
    docs.push(parse(BOOK_PAGE)?);
    docs.push(parse(BOOK_RATINGS)?);
    let mut flows_out = Vec::new();
    for doc in &docs {
        let plan = crate::nodes::compile(doc, Some(&tables)).map_err(|problems| {
            let text: Vec<String> = problems.iter().map(ToString::to_string).collect();
            SampleError::Broken(text.join("; "))
        })?;
        let record = flows::insert_in(tx, &plan.name, doc, &plan.rev).await?;
        let (published, _, _) = crate::serving::publish_in(
            tx,
            record.id,
            &plan.rev,
            &plan,
            user_id,
            Some("Sample project"),
        )
        .await?;
        let endpoint = plan.endpoint.as_ref();
        flows_out.push(json!({
            "id": record.id, "name": record.name, "published_version": published.version,
            "method": endpoint.map(|e| e.method.as_str()), "path": endpoint.map(|e| e.path.clone()),
        }));
    }
    Ok(Created {
        tables: names,
        rows,
        flows: flows_out,
    })
}

fn parse<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, SampleError> {
    serde_json::from_str(text).map_err(|e| SampleError::Broken(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_files_parse_and_the_hand_drawn_flow_compiles() {
        let _: TableDef = parse(AUTHORS).expect("authors");
        let _: TableDef = parse(BOOKS).expect("books");
        let _: TableDef = parse(REVIEWS).expect("reviews");
        let doc: Value = parse(AUTHOR_BOOKS).expect("flow");
        let plan = crate::nodes::compile(&doc, None).expect("compiles");
        assert!(plan.capture);
        for text in [BOOK_PAGE, BOOK_RATINGS] {
            let doc: Value = parse(text).expect("flow");
            crate::nodes::compile(&doc, None).expect("compiles");
        }
    }
}
