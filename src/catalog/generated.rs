//! Synthetic products for `ecommerce migrate --generate N`: a large, realistic catalog.
//!
//! Product `i` (1-based) is a pure function of `i` (a hash of the index seeds its draws), so
//! it is the same whatever N is: changing N only adds or removes products at the end. Its id
//! is `g` and seven digits (`g0000001`): the originals' ids are hexadecimal, so none can
//! collide, and ids of one width sort as their numbers do (`id > 'g0001000'` is a range).
//!
//! Every description is built from word lists whose shares are known, so that benchmark
//! searches match a realistic part of the catalog: [`COMMON_TERMS`] match more than a tenth
//! of the generated products each, [`RARE_TERMS`] a handful (one product in
//! [`RARE_STRIDE`]).

use super::Product;
use crate::domain::Money;

/// The most products `--generate` makes: ids keep their seven digits.
pub const MAX: u32 = 9_999_999;

/// Search terms that each match 15-35% of the generated products (name or description,
/// case-insensitive substring, as search matches), for benchmarks of broad searches:
/// - `coffee`: about 20% (coffee is 30% of the catalog; lattes and mochas do not say it);
/// - `tea`: about 24% (tea is 30%; chais do not say it);
/// - `smooth`: about 24% (a fifth of descriptions open with "Smooth"; smoothies);
/// - `organic`: about 20% (one product in five is certified organic).
pub const COMMON_TERMS: &[&str] = &["coffee", "tea", "smooth", "organic"];

/// Search terms that match a handful of generated products each: exactly one in
/// [`RARE_STRIDE`] (at 1,000,000 products, 20 each; at 100,000, 2 each; none below
/// [`RARE_STRIDE`] / 2). No other word of the generator contains them.
pub const RARE_TERMS: &[&str] = &["saffron", "yuzu", "elderflower", "tamarind"];

/// One generated product in this many carries each rare term.
pub const RARE_STRIDE: u32 = 50_000;

/// The id of generated product `i` (1-based).
pub fn id(i: u32) -> String {
    format!("g{i:07}")
}

/// Whether `id` is in the generated products' namespace (`g` and seven digits), which a
/// catalog CSV may not use.
pub fn is_generated_id(id: &str) -> bool {
    id.len() == 8 && id.starts_with('g') && id[1..].bytes().all(|b| b.is_ascii_digit())
}

/// Why a catalog and a number of generated products cannot be loaded together.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Conflict {
    #[error("at most {MAX}, not {0}")]
    TooMany(u32),
    #[error("id {0} is of the generated products' form (g and seven digits)")]
    GeneratedId(String),
}

/// Whether `catalog` and `n` generated products can be loaded together: `n` within
/// [`MAX`], no id of the catalog in the generated products' namespace.
pub fn check(catalog: &[Product], n: u32) -> Result<(), Conflict> {
    if n > MAX {
        return Err(Conflict::TooMany(n));
    }
    match catalog.iter().find(|p| is_generated_id(&p.id)) {
        Some(p) => Err(Conflict::GeneratedId(p.id.clone())),
        None => Ok(()),
    }
}

/// Generated products 1 to `n`, one at a time (nothing is kept).
pub fn products(n: u32) -> impl Iterator<Item = Product> {
    (1..=n).map(product)
}

/// Generated product `i` (1-based, at most [`MAX`]).
pub fn product(i: u32) -> Product {
    let mut draw = Draws::for_product(i);
    let kind = pick_kind(&mut draw);
    let style = draw.pick(kind.styles);
    let filename = draw.pick(style.images);

    let prefix = draw.pick(NAME_WORDS);
    let origin = draw.pick(if kind.hot { HOT_ORIGINS } else { COLD_ORIGINS });
    let name = match draw.below(3) {
        0 => format!("{prefix} {}", style.noun),
        1 => format!("{prefix} {} {}", origin.adjective, style.noun),
        _ => format!("{prefix} {} {}", title(draw.pick(FLAVORS)), style.noun),
    };

    let opening = if draw.chance(20) {
        "Smooth"
    } else {
        draw.pick(OPENINGS)
    };
    let first = draw.pick(FLAVORS);
    let second = loop {
        let f = draw.pick(FLAVORS);
        if f != first {
            break f;
        }
    };
    let mut description = format!(
        "{opening} {} with notes of {first} and {second}.",
        style.noun.to_lowercase()
    );
    if draw.chance(50) {
        description.push_str(" Sourced from ");
        description.push_str(origin.place);
        description.push('.');
    }
    if draw.chance(20) {
        description.push_str(" Certified organic.");
    }
    description.push(' ');
    description.push_str(draw.pick(SERVING));
    for (k, rare) in RARE_TERMS.iter().enumerate() {
        // Spread over the ids, one product per stride each, never two on one product.
        let offset = RARE_STRIDE / 2 + k as u32 * (RARE_STRIDE / 8);
        if i % RARE_STRIDE == offset % RARE_STRIDE {
            description.push_str(&format!(" Finished with a hint of {rare}."));
        }
    }

    let (low, high) = style.price;
    let steps = (high - low) / 25;
    let price = Money::from_cents(low + 25 * draw.below(steps as u64 + 1) as i64);
    // Skewed to the top, as shop ratings are: 3.0 to 5.0, mostly above 4.
    let tenths = 50 - draw.below(21).min(draw.below(21));
    let spread = draw.below(46);
    let reviews = (spread * spread) as i64;

    Product {
        id: id(i),
        name,
        category: Some(draw.pick(CATEGORIES).to_string()),
        price,
        rating: tenths as f64 / 10.0,
        reviews,
        filename: filename.to_string(),
        description: Some(description),
        alcoholic: Some(
            if kind.alcoholic {
                "alcoholic"
            } else {
                "non-alcoholic"
            }
            .into(),
        ),
        temperature: style.temperature.map(str::to_string),
        kind: Some(kind.kind.to_string()),
    }
}

/// A product's stream of pseudo-random draws, seeded by its index alone (SplitMix64:
/// integer arithmetic only, so the same on every machine).
struct Draws(u64);

impl Draws {
    const SEED: u64 = 0x6563_6f6d_6d65_7263;

    fn for_product(i: u32) -> Draws {
        Draws(Self::SEED ^ u64::from(i).wrapping_mul(0xA076_1D64_78BD_642F))
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// 0 to n - 1 (the modulo's bias is below 1e-17 for these n).
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }
}

/// A drink type (the `type` column) with its share of the catalog, in percent.
struct Kind {
    kind: &'static str,
    percent: u64,
    alcoholic: bool,
    /// Which origins suit it.
    hot: bool,
    styles: &'static [Style],
}

/// A drink of a type: the name's last words, the built-in images that show it, its
/// temperature (none for beans and loose tea, as in the originals) and its price range.
#[derive(Clone, Copy)]
struct Style {
    noun: &'static str,
    images: &'static [&'static str],
    temperature: Option<&'static str>,
    /// In cents, inclusive, in steps of 25.
    price: (i64, i64),
}

const fn style(
    noun: &'static str,
    images: &'static [&'static str],
    temperature: Option<&'static str>,
    price: (i64, i64),
) -> Style {
    Style {
        noun,
        images,
        temperature,
        price,
    }
}

const HOT: Option<&str> = Some("hot");
const COLD: Option<&str> = Some("cold");

/// The originals' types, with the originals' images of each type.
const KINDS: &[Kind] = &[
    Kind {
        kind: "coffee",
        percent: 30,
        alcoholic: false,
        hot: true,
        styles: &[
            style(
                "Coffee",
                &["coffee.jpeg", "cascadian-coffee.jpeg", "coffee-cloud.jpeg"],
                HOT,
                (300, 600),
            ),
            style(
                "Latte",
                &["latte.jpeg", "cocoa-latte.jpeg"],
                HOT,
                (350, 650),
            ),
            style(
                "Mocha",
                &["mocha.jpeg", "mocha-latte.jpeg"],
                HOT,
                (400, 650),
            ),
            style("Spiced Coffee", &["spiced-coffee.jpeg"], HOT, (400, 600)),
            style(
                "Coffee Beans",
                &["coffee-beans.jpeg", "coffee-beans-2.jpeg"],
                None,
                (1000, 2400),
            ),
            style(
                "Coffee Grounds",
                &["coffee-grounds.jpeg"],
                None,
                (900, 2000),
            ),
        ],
    },
    Kind {
        kind: "tea",
        percent: 30,
        alcoholic: false,
        hot: true,
        styles: &[
            style(
                "Tea",
                &[
                    "tea.jpeg",
                    "spring-tea.jpeg",
                    "orchid-tea.jpeg",
                    "honey-daisy-tea.jpeg",
                    "cinnamon-tea.jpeg",
                ],
                HOT,
                (300, 550),
            ),
            style(
                "Chai",
                &["citrus-spice-chai.jpeg", "spiced-tea.jpeg"],
                HOT,
                (350, 550),
            ),
            style("Green Tea", &["green-tea.jpeg"], HOT, (300, 500)),
            style("Iced Tea", &["sweet-tea.jpeg"], COLD, (300, 450)),
            style("Tea Blend", &["tea-blend.jpeg"], None, (450, 900)),
        ],
    },
    Kind {
        kind: "cocoa",
        percent: 5,
        alcoholic: false,
        hot: true,
        styles: &[style(
            "Hot Chocolate",
            &["hot-chocolate.jpeg"],
            HOT,
            (350, 550),
        )],
    },
    Kind {
        kind: "juice",
        percent: 9,
        alcoholic: false,
        hot: false,
        styles: &[
            style(
                "Juice",
                &["juice.jpeg", "watermelon-juice.jpeg"],
                COLD,
                (300, 500),
            ),
            style("Orange Juice", &["oj.jpeg"], COLD, (300, 450)),
        ],
    },
    Kind {
        kind: "smoothie",
        percent: 5,
        alcoholic: false,
        hot: false,
        styles: &[style("Smoothie", &["unsmoothie.jpeg"], COLD, (500, 750))],
    },
    Kind {
        kind: "water",
        percent: 6,
        alcoholic: false,
        hot: false,
        styles: &[
            style("Spring Water", &["water.jpeg"], COLD, (200, 350)),
            style("Sparkling Water", &["water.jpeg"], COLD, (250, 400)),
        ],
    },
    Kind {
        kind: "wine",
        percent: 7,
        alcoholic: true,
        hot: false,
        styles: &[
            style("Wine", &["citrus-wine.jpeg"], COLD, (700, 2400)),
            style("Mimosa", &["mimosa.jpeg"], COLD, (650, 1000)),
        ],
    },
    Kind {
        kind: "spirits",
        percent: 8,
        alcoholic: true,
        hot: false,
        styles: &[
            style("Cocktail", &["cocktail.jpeg"], COLD, (700, 1400)),
            style("Champagne", &["champagne.jpeg"], COLD, (1800, 4500)),
            style("Punch", &["summer.jpeg"], COLD, (500, 900)),
        ],
    },
];

fn pick_kind(draw: &mut Draws) -> &'static Kind {
    let mut at = draw.below(100);
    for kind in KINDS {
        if at < kind.percent {
            return kind;
        }
        at -= kind.percent;
    }
    unreachable!("KINDS' percents add up to 100")
}

/// A place a drink comes from, and how a name says it.
#[derive(Clone, Copy)]
struct Origin {
    place: &'static str,
    adjective: &'static str,
}

const fn origin(place: &'static str, adjective: &'static str) -> Origin {
    Origin { place, adjective }
}

const HOT_ORIGINS: &[Origin] = &[
    origin("Kenya", "Kenyan"),
    origin("Ethiopia", "Ethiopian"),
    origin("Colombia", "Colombian"),
    origin("Guatemala", "Guatemalan"),
    origin("Honduras", "Honduran"),
    origin("Brazil", "Brazilian"),
    origin("Sumatra", "Sumatran"),
    origin("Costa Rica", "Costa Rican"),
    origin("Darjeeling", "Darjeeling"),
    origin("Assam", "Assam"),
    origin("Yunnan", "Yunnan"),
    origin("Ceylon", "Ceylon"),
    origin("Japan", "Japanese"),
    origin("Ghana", "Ghanaian"),
];

const COLD_ORIGINS: &[Origin] = &[
    origin("Sicily", "Sicilian"),
    origin("Provence", "Provencal"),
    origin("California", "Californian"),
    origin("Florida", "Floridian"),
    origin("Valencia", "Valencian"),
    origin("Oregon", "Oregon"),
    origin("Tuscany", "Tuscan"),
    origin("Norway", "Norwegian"),
    origin("Iceland", "Icelandic"),
    origin("Patagonia", "Patagonian"),
    origin("the Alps", "Alpine"),
    origin("Mendoza", "Mendoza"),
];

/// First words of names. None contains a common or rare term.
const NAME_WORDS: &[&str] = &[
    "Golden", "Velvet", "Midnight", "Morning", "Harbor", "Summit", "Meadow", "Ember", "Copper",
    "Silver", "Northern", "Island", "Garden", "Orchard", "Canyon", "River", "Forest", "Prairie",
    "Lantern", "Willow", "Aurora", "Sunrise", "Twilight", "Harvest", "Coastal", "Highland", "Wild",
    "Old Town", "Market", "Cedar",
];

/// Notes of a description (two distinct ones each).
const FLAVORS: &[&str] = &[
    "vanilla",
    "caramel",
    "cinnamon",
    "honey",
    "citrus",
    "lemon",
    "orange blossom",
    "cherry",
    "blackberry",
    "raspberry",
    "peach",
    "apricot",
    "hazelnut",
    "almond",
    "toffee",
    "ginger",
    "mint",
    "jasmine",
    "lavender",
    "dark chocolate",
    "maple",
    "coconut",
    "plum",
    "brown sugar",
];

/// First words of descriptions, besides "Smooth" (a fifth of them).
const OPENINGS: &[&str] = &[
    "Bright",
    "Bold",
    "Silky",
    "Crisp",
    "Rich",
    "Mellow",
    "Lively",
    "Delicate",
    "Robust",
    "Refreshing",
];

/// Last sentences of descriptions.
const SERVING: &[&str] = &[
    "Best enjoyed slowly.",
    "Perfect for a quiet morning.",
    "Made in small batches.",
    "A favorite of our baristas.",
    "Great with dessert.",
    "Prepared fresh every day.",
    "Naturally sweet and balanced.",
    "A customer favorite since day one.",
    "Pairs well with good company.",
    "Limited seasonal release.",
];

/// Shown as a tag on the product page (the originals have none).
const CATEGORIES: &[&str] = &[
    "house favorite",
    "seasonal",
    "limited edition",
    "classic",
    "reserve",
    "new arrival",
];

/// "orange blossom" as "Orange Blossom".
fn title(words: &str) -> String {
    words
        .split(' ')
        .map(|w| {
            let mut chars = w.chars();
            chars.next().map_or(String::new(), |c| {
                c.to_ascii_uppercase().to_string() + chars.as_str()
            })
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ProductId;

    fn share(n: u32, term: &str) -> f64 {
        products(n).filter(|p| p.matches(term)).count() as f64 / f64::from(n)
    }

    #[test]
    fn a_product_depends_on_its_index_alone() {
        let first: Vec<Product> = products(300).collect();
        let again: Vec<Product> = products(1000).take(300).collect();
        assert_eq!(first, again);
        assert_eq!(product(777), product(777));
        assert_ne!(product(1).name, product(2).name);
    }

    #[test]
    fn ids_are_valid_outside_the_originals_and_sort_as_numbers() {
        assert_eq!(id(1), "g0000001");
        assert_eq!(id(MAX), "g9999999");
        assert!(id(9) < id(10));
        assert!(id(99_999) < id(100_000));
        assert!(ProductId::parse(&id(MAX)).is_ok());
        assert!(is_generated_id("g0001234"));
        for other in ["f95e2475", "g000123", "g00012345", "g000123a", "G0001234"] {
            assert!(!is_generated_id(other), "{other}");
        }
        let originals = super::super::parse_csv(super::super::BUILTIN_CSV).unwrap();
        assert!(originals.iter().all(|p| !is_generated_id(&p.id)));
    }

    #[test]
    fn values_are_like_the_originals() {
        let images = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/images");
        for p in products(5000) {
            assert!((3.0..=5.0).contains(&p.rating), "{p:?}");
            assert!(p.reviews >= 0 && p.price.cents() > 0, "{p:?}");
            assert!(images.join(&p.filename).is_file(), "{p:?}");
            let alcoholic = p.alcoholic.as_deref().unwrap();
            assert!(["alcoholic", "non-alcoholic"].contains(&alcoholic));
            assert!([None, Some("hot"), Some("cold")].contains(&p.temperature.as_deref()));
            let kind = p.kind.as_deref().unwrap();
            assert!(KINDS.iter().any(|k| k.kind == kind), "{kind}");
        }
    }

    #[test]
    fn common_terms_match_a_realistic_share_and_rare_ones_a_handful() {
        let n = 20_000;
        for term in COMMON_TERMS {
            let share = share(n, term);
            assert!((0.15..=0.35).contains(&share), "{term}: {share}");
        }
        let n = 2 * RARE_STRIDE;
        for term in RARE_TERMS {
            let matches = products(n).filter(|p| p.matches(term)).count();
            assert_eq!(matches, 2, "{term}");
        }
    }

    #[test]
    fn the_kinds_shares_add_up() {
        assert_eq!(KINDS.iter().map(|k| k.percent).sum::<u64>(), 100);
        for kind in KINDS {
            for style in kind.styles {
                assert_eq!((style.price.1 - style.price.0) % 25, 0, "{}", style.noun);
            }
        }
    }
}
