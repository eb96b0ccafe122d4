//! Decode + apply per event: `es` against a hand-written `serde_json` loop, in one run.
//!
//! Both loops read the same stored (type name, payload) pairs, about 100 bytes of JSON
//! each over a 3-variant event enum, and fold them into the same state. The
//! hand-written loop matches on the type name and decodes each payload straight into
//! a struct, which is the fastest way serde offers. A third line adds what a real
//! rehydration does on top: the envelope and the strict version check.
//!
//! Run: `cargo bench --bench decode_apply` (add `-- --events N --rounds R` to change
//! the workload, or `-- --quick` for a smoke run).

use std::hint::black_box;
use std::time::{Duration, Instant};

use es::{Aggregate, Event, IdSource, Loaded, aggregate};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
enum CartEvent {
    ItemAdded { sku: String, name: String, quantity: u32, unit_price_cents: u64 },
    ItemRemoved { sku: String, quantity: u32, reason: String },
    CheckedOut { order_id: String, total_cents: u64, coupon: Option<String> },
}

#[aggregate]
#[derive(Debug, Default)]
struct Cart {
    lines: u64,
    quantity: u64,
    total_cents: u64,
    checked_out: u64,
}

#[aggregate]
impl Aggregate for Cart {
    type Event = CartEvent;
    fn apply(&mut self, event: &CartEvent) {
        match event {
            CartEvent::ItemAdded { quantity, unit_price_cents, .. } => {
                self.lines += 1;
                self.quantity += u64::from(*quantity);
                self.total_cents += u64::from(*quantity) * unit_price_cents;
            }
            CartEvent::ItemRemoved { quantity, .. } => self.quantity -= u64::from(*quantity),
            CartEvent::CheckedOut { total_cents, .. } => {
                self.checked_out += 1;
                self.total_cents = *total_cents;
            }
        }
    }
}

// The hand-written side: one payload struct per type, decoded by serde directly.
#[derive(Deserialize)]
struct ItemAdded {
    sku: String,
    name: String,
    quantity: u32,
    unit_price_cents: u64,
}
#[derive(Deserialize)]
struct ItemRemoved {
    sku: String,
    quantity: u32,
    reason: String,
}
#[derive(Deserialize)]
struct CheckedOut {
    order_id: String,
    total_cents: u64,
    coupon: Option<String>,
}

fn hand_written(data: &[(String, String)]) -> Cart {
    let mut cart = Cart::default();
    for (event_type, payload) in data {
        let event = match event_type.as_str() {
            "ItemAdded" => {
                let p: ItemAdded = serde_json::from_str(payload).expect("valid payload");
                CartEvent::ItemAdded {
                    sku: p.sku,
                    name: p.name,
                    quantity: p.quantity,
                    unit_price_cents: p.unit_price_cents,
                }
            }
            "ItemRemoved" => {
                let p: ItemRemoved = serde_json::from_str(payload).expect("valid payload");
                CartEvent::ItemRemoved { sku: p.sku, quantity: p.quantity, reason: p.reason }
            }
            "CheckedOut" => {
                let p: CheckedOut = serde_json::from_str(payload).expect("valid payload");
                CartEvent::CheckedOut { order_id: p.order_id, total_cents: p.total_cents, coupon: p.coupon }
            }
            other => panic!("unknown type {other}"),
        };
        cart.apply(&event);
    }
    cart
}

fn with_es(data: &[(String, String)]) -> Cart {
    let mut cart = Cart::default();
    for (event_type, payload) in data {
        let event = CartEvent::decode(event_type, 1, payload).expect("valid payload");
        cart.apply(&event);
    }
    cart
}

fn with_es_rehydrate(stored: &[es::StoredEvent]) -> Cart {
    let mut loaded = Loaded::<Cart>::new("cart-1");
    for event in stored {
        loaded.fold(event.clone()).expect("valid stream");
    }
    loaded.into_state()
}

/// `MemoryStore::load` of one stream holding the whole workload.
fn with_memory_store(runtime: &tokio::runtime::Runtime, store: &es::MemoryStore) -> Cart {
    runtime.block_on(es::EventStore::load::<Cart>(store, "cart-1")).expect("valid stream").into_state()
}

fn workload(events: usize) -> Vec<CartEvent> {
    (0..events)
        .map(|i| match i % 3 {
            0 => CartEvent::ItemAdded {
                sku: format!("SKU-{i:08}"),
                name: "Stainless steel water bottle".into(),
                quantity: 2,
                unit_price_cents: 1999,
            },
            1 => CartEvent::ItemRemoved {
                sku: format!("SKU-{:08}", i - 1),
                quantity: 1,
                reason: "customer changed mind".into(),
            },
            _ => CartEvent::CheckedOut {
                order_id: format!("0190f5b4-8c1e-7d2a-9b3f-{i:012}"),
                total_cents: 1999,
                coupon: Some("WINTER".into()),
            },
        })
        .collect()
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let events = arg("--events", if quick { 3_000 } else { 300_000 });
    let rounds = arg("--rounds", if quick { 3 } else { 15 });
    let values = workload(events);
    let data: Vec<(String, String)> =
        values.iter().map(|e| (e.event_type().name.to_owned(), e.encode().expect("encodes"))).collect();
    let stored = es::testing::stored_events::<Cart>(&values, 1);
    let stored: Vec<es::StoredEvent> = stored
        .into_iter()
        .map(|mut e| {
            e.stream_id = "cart-1".into();
            e
        })
        .collect();
    let average_payload = data.iter().map(|(_, p)| p.len()).sum::<usize>() / data.len();
    let runtime = tokio::runtime::Builder::new_current_thread().build().expect("a runtime");
    let memory = es::MemoryStore::new();
    for chunk in values.chunks(1_000) {
        let events = chunk
            .iter()
            .map(|event| {
                es::NewEvent::encode(event, es::RandomIds.next_id(), es::Timestamp::EPOCH, es::Metadata::default())
            })
            .collect::<Result<Vec<_>, _>>()
            .expect("encodes");
        runtime
            .block_on(es::EventStore::append(&memory, Cart::stream_type(), "cart-1", es::ExpectedVersion::Any, events))
            .expect("appends");
    }

    let (mut hand, mut ours, mut full, mut store) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..rounds {
        // Interleaved so that both loops see the same machine conditions.
        let start = Instant::now();
        black_box(hand_written(black_box(&data)));
        hand.push(start.elapsed());
        let start = Instant::now();
        black_box(with_es(black_box(&data)));
        ours.push(start.elapsed());
        let start = Instant::now();
        black_box(with_es_rehydrate(black_box(&stored)));
        full.push(start.elapsed());
        let start = Instant::now();
        black_box(with_memory_store(&runtime, black_box(&memory)));
        store.push(start.elapsed());
    }
    #[allow(clippy::cast_precision_loss, reason = "event counts are far below 2^52")]
    let rate = |d: Duration| events as f64 / d.as_secs_f64() / 1e6;
    let (hand, ours, full, store) = (median(hand), median(ours), median(full), median(store));
    println!("decode + apply, {events} events of ~{average_payload} bytes, median of {rounds} rounds");
    println!("  hand-written serde_json + match : {:6.2} M events/s", rate(hand));
    println!(
        "  es Event::decode + apply        : {:6.2} M events/s  ({:.2}x the hand-written time)",
        rate(ours),
        ours.as_secs_f64() / hand.as_secs_f64()
    );
    println!(
        "  es rehydrate (envelope + checks): {:6.2} M events/s  ({:.2}x the hand-written time)",
        rate(full),
        full.as_secs_f64() / hand.as_secs_f64()
    );
    println!(
        "  es MemoryStore::load            : {:6.2} M events/s  ({:.2}x the hand-written time)",
        rate(store),
        store.as_secs_f64() / hand.as_secs_f64()
    );
}
