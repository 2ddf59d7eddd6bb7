//! The product model and the catalog CSV that ships in `assets/`.

pub mod generated;

use std::cmp::Ordering;

use serde::{Deserialize, Serialize};

use crate::domain::{Money, ProductId};

/// The catalog built into the binary (a copy of the reference `products.csv`).
pub const BUILTIN_CSV: &str = include_str!("../assets/products.csv");

/// A product as the API shows it: numbers as JSON numbers, absent values as null.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Product {
    pub id: String,
    pub name: String,
    pub category: Option<String>,
    pub price: Money,
    pub rating: f64,
    pub reviews: i64,
    pub filename: String,
    pub description: Option<String>,
    pub alcoholic: Option<String>,
    pub temperature: Option<String>,
    #[serde(rename = "type")]
    pub kind: Option<String>,
}

impl Product {
    /// Best rated first; more reviews break a tie, then the id, so every store agrees.
    pub fn display_order(a: &Product, b: &Product) -> Ordering {
        b.rating
            .total_cmp(&a.rating)
            .then(b.reviews.cmp(&a.reviews))
            .then_with(|| a.id.cmp(&b.id))
    }

    /// Case-insensitive substring match on name or description; `needle` is lowercase.
    pub fn matches(&self, needle: &str) -> bool {
        self.name.to_lowercase().contains(needle)
            || self
                .description
                .as_deref()
                .is_some_and(|d| d.to_lowercase().contains(needle))
    }
}

/// One CSV row as written; empty cells are absent values.
#[derive(Debug, Deserialize)]
struct Row {
    id: String,
    name: String,
    #[serde(default)]
    category: String,
    filename: String,
    description: String,
    price: String,
    rating: String,
    reviews: String,
    alcoholic: String,
    temperature: String,
    #[serde(rename = "type")]
    kind: String,
}

#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("catalog line {line}: {reason}")]
    Row { line: u64, reason: String },
    #[error("catalog: {0}")]
    Csv(#[from] csv::Error),
}

fn non_empty(s: String) -> Option<String> {
    let s = s.trim().to_string();
    (!s.is_empty()).then_some(s)
}

impl Row {
    fn into_product(self) -> Result<Product, String> {
        ProductId::parse(&self.id).map_err(|e| e.to_string())?;
        let price = Money::from_decimal_str(&self.price).map_err(|e| e.to_string())?;
        let rating: f64 = self.rating.trim().parse().map_err(|_| "invalid rating")?;
        let reviews: i64 = self.reviews.trim().parse().map_err(|_| "invalid reviews")?;
        if !(0.0..=5.0).contains(&rating) || reviews < 0 {
            return Err("rating must be 0-5 and reviews at least 0".into());
        }
        Ok(Product {
            id: self.id,
            name: self.name,
            category: non_empty(self.category),
            price,
            rating,
            reviews,
            filename: self.filename,
            description: non_empty(self.description),
            alcoholic: non_empty(self.alcoholic),
            temperature: non_empty(self.temperature),
            kind: non_empty(self.kind),
        })
    }
}

/// Parses the catalog CSV (header row first), sorted in display order.
pub fn parse_csv(text: &str) -> Result<Vec<Product>, CatalogError> {
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let mut products = Vec::new();
    for record in reader.deserialize::<Row>() {
        let row = record?;
        let line = products.len() as u64 + 2;
        let product = row
            .into_product()
            .map_err(|reason| CatalogError::Row { line, reason })?;
        products.push(product);
    }
    products.sort_by(Product::display_order);
    Ok(products)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_catalog_has_32_drinks_best_rated_first() {
        let products = parse_csv(BUILTIN_CSV).unwrap();
        assert_eq!(products.len(), 32);
        assert!(products.windows(2).all(|w| w[0].rating >= w[1].rating));
        let sweet_tea = products.iter().find(|p| p.id == "f95e2475").unwrap();
        assert_eq!(sweet_tea.name, "Sweet Tea");
        assert_eq!(sweet_tea.price.cents(), 350);
    }

    #[test]
    fn empty_cells_become_null() {
        let products = parse_csv(BUILTIN_CSV).unwrap();
        let orchid = products.iter().find(|p| p.id == "b99f11f0").unwrap();
        assert_eq!(orchid.description, None);
        let json = serde_json::to_value(orchid).unwrap();
        assert!(json["description"].is_null());
        assert!(json["category"].is_null());
        assert_eq!(json["price"], 5.0);
        assert_eq!(json["type"], "tea");
    }

    #[test]
    fn quoted_descriptions_keep_their_commas() {
        let products = parse_csv(BUILTIN_CSV).unwrap();
        let blend = products.iter().find(|p| p.id == "ccd26245").unwrap();
        assert_eq!(
            blend.description.as_deref(),
            Some("Green, white, jasmine, oolong, and earl grey.")
        );
    }

    #[test]
    fn bad_rows_name_their_line() {
        let csv = "id,name,filename,description,price,rating,reviews,alcoholic,temperature,type\n\
                   a,A,a.jpeg,,1,4,1,,,\nb/../c,B,b.jpeg,,1,4,1,,,\n";
        let err = parse_csv(csv).unwrap_err().to_string();
        assert!(err.contains("line 3"), "{err}");
    }
}
