//! What each fault does and where it shows, for the people who switch them (the fault
//! page and `GET /api/v1/admin/faults`); the README's fault table says the same.

use serde::Serialize;

/// One fault as a person picks it.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Entry {
    pub name: &'static str,
    /// What its value is, when it takes one (`<ratio>`, `<ms>`, `<role>`...).
    pub value: Option<&'static str>,
    pub what: &'static str,
    pub shows: &'static str,
    /// Whether it can be switched while the shop runs (`bind-localhost` decides a bind).
    pub live: bool,
}

const fn entry(
    name: &'static str,
    value: Option<&'static str>,
    what: &'static str,
    shows: &'static str,
) -> Entry {
    Entry {
        name,
        value,
        what,
        shows,
        live: true,
    }
}

pub const CATALOG: [Entry; 12] = [
    entry(
        "payment-failure",
        Some("<ratio>"),
        "That share of payments is declined (402).",
        "Checkout failures and its burn-rate alert; payment's 402 spans; ecommerce_payments_total{outcome=\"declined\"}.",
    ),
    entry(
        "payment-latency",
        Some("<ms>"),
        "Payments take that much longer.",
        "Checkout p99 and the web-gateway latency alert; long payment spans.",
    ),
    entry(
        "cart-data-outage",
        None,
        "The cart behaves as if its Redis were unreachable (503).",
        "Cart 503s, web-gateway 5xx and its burn-rate alert; ecommerce_dependency_up{dependency=\"cart-data\"} 0.",
    ),
    entry(
        "basic-bug",
        None,
        "Product search does slow, CPU-heavy work, then fails with 500.",
        "Search 500s on product; slow error spans; web-gateway error ratio.",
    ),
    entry(
        "memory-leak",
        Some("<role>"),
        "That role keeps 64 KiB of every request it serves (up to 1 GiB).",
        "The runtime dashboard's resident memory; the memory alerts; ecommerce_fault_memory_leaked_bytes.",
    ),
    entry(
        "product-data-slow",
        Some("<ms>"),
        "Every product-data query takes that much longer.",
        "Slow PostgreSQL spans under product; store latency on the stores dashboard.",
    ),
    entry(
        "cart-data-latency",
        Some("<ms>"),
        "Every cart-data (Redis) operation takes that much longer.",
        "Slow Redis spans under cart; store latency; cart and checkout latency.",
    ),
    entry(
        "upstream-drop",
        Some("<upstream>:<ratio>"),
        "The api-gateway answers that share of requests to one upstream with 502.",
        "The api-gateway's 502s for that upstream; failed spans marked with the fault.",
    ),
    entry(
        "product-failure",
        Some("<product-id>"),
        "The product role fails with 500 for that one product only.",
        "500s on that product's page and spans; every other product is served.",
    ),
    entry(
        "cpu-hog",
        Some("<role>"),
        "That role burns a core of CPU while the fault is on.",
        "The runtime dashboard's CPU; slower requests of that role and its neighbours.",
    ),
    entry(
        "traffic-spike",
        Some("<level>"),
        "The synthetic traffic at that level (1 normal, 0 idle, up to 10): set it as the traffic level.",
        "Request rates everywhere; the synthetics dashboard.",
    ),
    Entry {
        live: false,
        ..entry(
            "bind-localhost",
            None,
            "The api-gateway binds 127.0.0.1 only (decided at start: needs a restart).",
            "Every call through the api-gateway fails (502 at the web-gateway).",
        )
    },
];
