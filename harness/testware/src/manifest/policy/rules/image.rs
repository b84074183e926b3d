//! The `image` rule: every image pinned to a release tag or a digest.

use super::super::*;

/// `true` when `image` names a tag other than `latest`, or a digest.
pub fn is_pinned(image: &str) -> bool {
    if image.contains("@sha256:") {
        return true;
    }
    let last = image.rsplit('/').next().unwrap_or(image);
    match last.split_once(':') {
        Some((_, tag)) => !tag.is_empty() && !MOVING_TAGS.contains(&tag),
        None => false,
    }
}

/// Tags that name a branch or a channel, not a release: they move, so an image
/// with one is not pinned unless a digest is given.
pub const MOVING_TAGS: [&str; 6] = ["latest", "master", "main", "develop", "stable", "edge"];

/// Every container image is pinned.
pub fn image_pinned(m: &Manifests) -> Vec<Violation> {
    for_each_container(m, |pod, c, _| {
        match c.image.as_deref() {
        None | Some("") => vec![violation(
            Rule::ImagePinned,
            pod.owner,
            Some(&c.name),
            "no image",
        )],
        Some(image) if !is_pinned(image) => vec![violation(
            Rule::ImagePinned,
            pod.owner,
            Some(&c.name),
            format!(
                "image {image:?} is not pinned (use a version tag or a digest, not a moving tag such as latest or master, nor none)"
            ),
        )],
        _ => vec![],
    }
    })
}
