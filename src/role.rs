//! The shop's services and the one table of what each is: its spelling, its port, who
//! forwards to it, the store it keeps, whether it calls the api-gateway. The rest of the
//! code asks this table rather than naming roles one by one.

use std::fmt;
use std::str::FromStr;

/// One of the shop's services. `as_str` is the only spelling used anywhere (CLI, logs,
/// metrics, chart labels).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    WebGateway,
    ApiGateway,
    Cart,
    Checkout,
    Content,
    Payment,
    Product,
}

impl Role {
    /// Every role, in the order that assigns ports (web-gateway first).
    pub const ALL: [Role; 7] = [
        Role::WebGateway,
        Role::ApiGateway,
        Role::Cart,
        Role::Checkout,
        Role::Content,
        Role::Payment,
        Role::Product,
    ];

    /// The services the api-gateway forwards to.
    pub const UPSTREAMS: [Role; 5] = [
        Role::Cart,
        Role::Checkout,
        Role::Content,
        Role::Payment,
        Role::Product,
    ];

    /// The table: one row per role.
    #[rustfmt::skip]
    const fn spec(self) -> Spec {
        use Forwarded::{Internal, Not, Public};
        use Store::{CartData, ProductData, SessionData};
        let (name, route, forwarded, store, calls_api_gateway) = match self {
            // role            name           route label of forwarded calls  forwarded by store           calls the api-gateway
            Role::WebGateway => ("web-gateway", "/api/v1/{service}/{tail}", Not,      Some(SessionData), true),
            Role::ApiGateway => ("api-gateway", "/api/v1/{service}/{tail}", Not,      None,              false),
            Role::Cart       => ("cart",        "/api/v1/cart/{tail}",      Public,   Some(CartData),    false),
            Role::Checkout   => ("checkout",    "/api/v1/checkout/{tail}",  Public,   None,              true),
            Role::Content    => ("content",     "/api/v1/content/{tail}",   Public,   None,              false),
            Role::Payment    => ("payment",     "/api/v1/payment/{tail}",   Internal, None,              false),
            Role::Product    => ("product",     "/api/v1/product/{tail}",   Public,   Some(ProductData), false),
        };
        Spec { name, route, forwarded, store, calls_api_gateway }
    }

    pub fn as_str(self) -> &'static str {
        self.spec().name
    }

    /// The route label of the gateways' calls forwarded to this role (a bounded set, for
    /// metrics).
    pub fn forwarded_route(self) -> &'static str {
        self.spec().route
    }

    /// Whether the web-gateway forwards a browser's calls to it (the api-gateway forwards
    /// to every one of [`Role::UPSTREAMS`]).
    pub fn is_public(self) -> bool {
        matches!(self.spec().forwarded, Forwarded::Public)
    }

    /// The store it keeps its data in, if any.
    pub fn store(self) -> Option<Store> {
        self.spec().store
    }

    /// Whether it calls other services (through the api-gateway), which its `/readyz`
    /// then reports.
    pub fn calls_api_gateway(self) -> bool {
        self.spec().calls_api_gateway
    }

    /// Position in [`Role::ALL`]; a role's port is the base port plus this offset.
    pub fn offset(self) -> u16 {
        Role::ALL.iter().position(|r| *r == self).unwrap_or(0) as u16
    }

    pub fn default_port(self) -> u16 {
        8080 + self.offset()
    }

    /// A service name the api-gateway may forward to, parsed from a path segment.
    pub fn upstream(name: &str) -> Option<Role> {
        Role::UPSTREAMS.into_iter().find(|r| r.as_str() == name)
    }

    /// Parses `all` or a comma-separated list; the result is in [`Role::ALL`] order
    /// without duplicates.
    pub fn parse_list(text: &str) -> Result<Vec<Role>, UnknownRole> {
        if text.trim() == "all" {
            return Ok(Role::ALL.to_vec());
        }
        let mut roles = text
            .split(',')
            .map(|part| part.trim().parse())
            .collect::<Result<Vec<Role>, _>>()?;
        roles.sort();
        roles.dedup();
        Ok(roles)
    }
}

/// One row of the role table.
struct Spec {
    name: &'static str,
    route: &'static str,
    forwarded: Forwarded,
    store: Option<Store>,
    calls_api_gateway: bool,
}

/// Who forwards calls to a role.
enum Forwarded {
    /// Nobody: it is a gateway.
    Not,
    /// The api-gateway, for other services only.
    Internal,
    /// The api-gateway, and the web-gateway for browsers.
    Public,
}

/// The shop's stores.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Store {
    CartData,
    SessionData,
    ProductData,
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A role name that is not one of the shop's services.
#[derive(Debug, thiserror::Error)]
#[error("unknown role '{0}' (valid: all, {valid})", valid = valid_names())]
pub struct UnknownRole(pub String);

fn valid_names() -> String {
    Role::ALL.map(Role::as_str).join(", ")
}

impl FromStr for Role {
    type Err = UnknownRole;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| UnknownRole(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>().unwrap(), role);
        }
    }

    #[test]
    fn default_ports_follow_the_documented_order() {
        assert_eq!(Role::WebGateway.default_port(), 8080);
        assert_eq!(Role::ApiGateway.default_port(), 8081);
        assert_eq!(Role::Product.default_port(), 8086);
    }

    #[test]
    fn lists_are_sorted_and_deduplicated() {
        let roles = Role::parse_list("product, cart,cart").unwrap();
        assert_eq!(roles, vec![Role::Cart, Role::Product]);
        assert_eq!(Role::parse_list("all").unwrap().len(), 7);
    }

    #[test]
    fn unknown_role_names_the_valid_ones() {
        let err = Role::parse_list("cart,basket").unwrap_err().to_string();
        assert!(err.contains("'basket'"), "{err}");
        assert!(err.contains("web-gateway"), "{err}");
    }

    #[test]
    fn the_upstreams_are_the_roles_someone_forwards_to() {
        let forwarded: Vec<Role> = Role::ALL
            .into_iter()
            .filter(|r| !matches!(r.spec().forwarded, Forwarded::Not))
            .collect();
        assert_eq!(forwarded, Role::UPSTREAMS);
        assert!(!Role::Payment.is_public() && Role::Cart.is_public());
        for role in Role::UPSTREAMS {
            assert_eq!(
                role.forwarded_route(),
                format!("/api/v1/{role}/{{tail}}"),
                "{role}"
            );
        }
    }

    #[test]
    fn only_backend_services_are_upstreams() {
        assert_eq!(Role::upstream("cart"), Some(Role::Cart));
        assert_eq!(Role::upstream("api-gateway"), None);
        assert_eq!(Role::upstream("web-gateway"), None);
    }
}
