//! The harness's own tests that belong to no one crate: the README's Rust
//! examples compiled as doc tests (so they cannot drift from the API), and the
//! README's "use it in your repository" section held against the example
//! repository's files.

/// The README's Rust examples, compiled as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeExamples;

#[cfg(test)]
mod readme {
    /// The README's "use it in your repository" section shows the example
    /// repository's files as they are.
    #[test]
    fn shows_the_example_repository_verbatim() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let readme = std::fs::read_to_string(root.join("README.md")).unwrap_or_default();
        for file in ["Cargo.toml", "tests/no_deploy.rs", "tests/chart_deploy.rs"] {
            let path = root.join("examples/charts-repo").join(file);
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            assert!(!text.is_empty(), "{} is missing", path.display());
            assert!(
                readme.contains(&text),
                "README.md does not show {} as it is",
                path.display()
            );
        }
    }
}
