//! Neutralising spreadsheet formulas in the CSV files the tool writes.
//!
//! Clerks open results in Excel, which runs a cell that starts with `=`, `+`, `-` or `@` as a
//! formula (`=HYPERLINK(...)`, `=cmd|' /C calc'!A0`), and also one that starts with a tab or
//! a carriage return followed by one. A lead list or an answer can carry such a cell, so every
//! CSV writer of the tool passes its cells through [`guard`]: a `'` in front, as OWASP
//! recommends, which Excel shows as text and hides. Guarding twice changes nothing (a guarded
//! cell starts with `'`), so a row copied from an earlier results file stays as it was.

use std::borrow::Cow;

/// Whether a cell would be read as a formula by a spreadsheet.
pub fn is_formula_like(cell: &str) -> bool {
    matches!(
        cell.as_bytes().first(),
        Some(b'=' | b'+' | b'-' | b'@' | b'\t' | b'\r')
    )
}

/// The cell as written: with a `'` in front when it would be read as a formula.
pub fn guard(cell: &str) -> Cow<'_, str> {
    if is_formula_like(cell) {
        Cow::Owned(format!("'{cell}"))
    } else {
        Cow::Borrowed(cell)
    }
}

/// The cell as it was before [`guard`] (for comparing a written cell with its source).
pub fn unguard(cell: &str) -> &str {
    match cell.strip_prefix('\'') {
        Some(rest) if is_formula_like(rest) => rest,
        _ => cell,
    }
}

/// Whether to guard cells; `--raw-cells` turns it off for pipelines that need raw values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FormulaGuard(pub bool);

impl Default for FormulaGuard {
    fn default() -> Self {
        FormulaGuard(true)
    }
}

impl FormulaGuard {
    pub fn apply<'a>(&self, cell: &'a str) -> Cow<'a, str> {
        if self.0 { guard(cell) } else { Cow::Borrowed(cell) }
    }

    /// [`FormulaGuard::apply`] as bytes, the form the `csv` writer takes.
    pub fn cell<'a>(&self, cell: &'a str) -> Cow<'a, [u8]> {
        match self.apply(cell) {
            Cow::Borrowed(text) => Cow::Borrowed(text.as_bytes()),
            Cow::Owned(text) => Cow::Owned(text.into_bytes()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formula_leading_cells_get_a_quote_and_nothing_else_does() {
        for cell in [
            "=HYPERLINK(\"http://x\",\"click\")",
            "=cmd|' /C calc'!A0",
            "+1",
            "-1+2",
            "@SUM(A1)",
            "\t=1",
            "\r=1",
        ] {
            assert_eq!(guard(cell), format!("'{cell}"), "{cell:?}");
            assert_eq!(unguard(&guard(cell)), cell);
            assert_eq!(guard(&guard(cell)), guard(cell), "idempotent");
        }
        for cell in [
            "",
            "京J97896",
            "a=1",
            " =1",
            "'quoted",
            "http://h/q?a=1",
            "续保成功",
        ] {
            assert_eq!(guard(cell), cell, "{cell:?}");
            assert_eq!(unguard(cell), cell);
        }
        assert_eq!(FormulaGuard(false).apply("=1"), "=1");
    }
}
