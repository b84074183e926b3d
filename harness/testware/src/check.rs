//! Assertions for case bodies, which return `anyhow::Result`: a failed check is an
//! error that ends the case with its message, never a panic. `anyhow::ensure!`
//! serves for plain conditions; these add what it lacks.

/// Fails the case with `message` unless `condition` holds (`anyhow::ensure!`
/// under the name the suites read best with).
///
/// ```
/// fn replicas_ok(n: i32) -> anyhow::Result<()> {
///     testware::check!(n > 0, "replicas {n} should be positive");
///     Ok(())
/// }
/// assert!(replicas_ok(0).is_err());
/// ```
#[macro_export]
macro_rules! check {
    ($cond:expr, $($msg:tt)+) => {
        if !$cond {
            return ::core::result::Result::Err($crate::anyhow::anyhow!($($msg)+).into());
        }
    };
}

/// Fails the case unless both sides are equal, showing both (and the message).
///
/// ```
/// fn same(a: &str) -> anyhow::Result<()> {
///     testware::check_eq!(a, "web", "the release name");
///     Ok(())
/// }
/// let err = same("api").unwrap_err().to_string();
/// assert_eq!(err, r#"the release name: "api" != "web""#);
/// ```
#[macro_export]
macro_rules! check_eq {
    ($left:expr, $right:expr $(,)?) => {
        match (&$left, &$right) {
            (left, right) => {
                if left != right {
                    return ::core::result::Result::Err($crate::anyhow::anyhow!(
                        "{} != {}: {:?} != {:?}",
                        stringify!($left),
                        stringify!($right),
                        left,
                        right
                    )
                    .into());
                }
            }
        }
    };
    ($left:expr, $right:expr, $($msg:tt)+) => {
        match (&$left, &$right) {
            (left, right) => {
                if left != right {
                    return ::core::result::Result::Err($crate::anyhow::anyhow!(
                        "{}: {:?} != {:?}",
                        format!($($msg)+),
                        left,
                        right
                    )
                    .into());
                }
            }
        }
    };
}

/// The error of `result`, or a case failure saying that `what` should have failed.
///
/// ```
/// let err = testware::expect_err("x".parse::<u8>(), "parsing x").unwrap();
/// assert!(err.to_string().contains("invalid digit"));
/// assert!(testware::expect_err("7".parse::<u8>(), "parsing 7").is_err());
/// ```
///
/// # Errors
/// `result` is `Ok`.
pub fn expect_err<T, E>(result: Result<T, E>, what: &str) -> anyhow::Result<E> {
    match result {
        Ok(_) => anyhow::bail!("{what} should have failed"),
        Err(e) => Ok(e),
    }
}
