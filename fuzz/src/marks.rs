//! Mark expressions (`--mark`, `HARNESS_MARK`): any text parses or is refused
//! with an error, and a parsed expression can be evaluated and printed.

use testware::marks::MarkExpr;

/// Panics where the input shows a bug.
pub fn check(data: &[u8]) {
    // libFuzzer's `&str` targets skip input that is not UTF-8.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(expr) = MarkExpr::parse(text) {
        let marks = ["chart_deploy", "no_deploy", "quarantine", "slow"];
        let _ = expr.matches(&marks);
        let _ = expr.matches::<&str>(&[]);
        // What it prints must mean the same.
        let printed = format!("{expr}");
        let again = MarkExpr::parse(&printed).expect("a printed expression parses");
        assert_eq!(
            again.matches(&marks),
            expr.matches(&marks),
            "{text:?} printed as {printed:?}"
        );
    }
}
