//! The embargo ingest path as a test drives it: object-store notifications
//! built and signed like the store sends them, posted to the enqueue webhook
//! (concurrently, resent while it answers 5xx), and the Redis state the
//! workers leave behind read back: which keys were ingested, how many times,
//! and — when some are missing — where each one is stuck.
//!
//! See `../shared/design/data-paths.md`, section 2, for the key layout.
//!
//! - `notify`: notifications built and signed as the store sends them, and
//!   the [`Notifier`] that posts them;
//! - `path`: the two ends of the path ([`EmbargoPath`]) and where a missing key
//!   is ([`Location`]);
//! - `stack`: a deployed release reached from the test ([`EmbargoStack`]),
//!   its components' counters, killed workers.

mod notify;
mod path;
mod stack;

pub use notify::{encode_key, image_keys, Answer, Notification, Notifier, Record};
pub use path::{locate, summarize, EmbargoPath, Location};
pub use stack::{get_metrics, EmbargoStack, KilledWorker};

/// Why the path could not be driven or read.
pub type EmbargoError = anyhow::Error;
