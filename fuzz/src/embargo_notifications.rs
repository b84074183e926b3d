//! Object-store notifications as the embargo webhook receives them: any body
//! parses or is refused, and an object key survives the store's encoding and
//! the webhook's decoding unchanged.

use embargo_components::{decode_key, Notification};
use testware_systems::embargo::encode_key;

/// Panics where the input shows a bug.
pub fn check(body: &[u8]) {
    if let Ok(notification) = serde_json::from_slice::<Notification>(body) {
        for record in &notification.records {
            let _ = decode_key(&record.s3.object.key);
        }
    }
    if let Ok(key) = std::str::from_utf8(body) {
        assert_eq!(
            decode_key(&encode_key(key)),
            key,
            "encoded as {:?}",
            encode_key(key)
        );
    }
}
