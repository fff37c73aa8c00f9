//! `report --changes`: the changed vehicles as CSV, both outcomes side by side.

use std::io::{self, Write};

use super::compare::{Comparison, VehicleOutcome};
use crate::results::formula::FormulaGuard;

impl Comparison {
    /// Writes the changed vehicles as CSV, both outcomes side by side, after a UTF-8 BOM (as
    /// results files have by default) so that Excel reads the Chinese text as UTF-8. Cells that
    /// a spreadsheet would run as formulas get a `'` in front unless `guard` is off.
    pub fn write_changes_csv(&self, mut sink: impl Write, guard: FormulaGuard) -> io::Result<()> {
        sink.write_all("\u{feff}".as_bytes())?;
        let mut csv = csv::Writer::from_writer(sink);
        csv.write_record(CHANGES_COLUMNS)?;
        for changed in &self.changed {
            let side = |outcome: &Option<VehicleOutcome>| match outcome {
                Some(o) => [
                    o.row.to_string(),
                    o.status.as_str().to_string(),
                    o.message.clone(),
                    o.renewal_token.clone(),
                ],
                None => Default::default(),
            };
            let [p_row, p_status, p_message, p_token] = side(&changed.previous);
            let [row, status, message, token] = side(&changed.current);
            let file = changed.current.as_ref().map(|o| o.file.as_str()).unwrap_or("");
            // Messages and the vehicle come from the server and the lead list.
            let cells = [
                changed.change.as_str(),
                &changed.vehicle,
                &changed.city,
                &p_row,
                &p_status,
                &p_message,
                &p_token,
                file,
                &row,
                &status,
                &message,
                &token,
            ];
            csv.write_record(cells.iter().map(|cell| guard.cell(cell)))?;
        }
        csv.flush()
    }
}

/// The columns of `--changes`.
pub const CHANGES_COLUMNS: [&str; 12] = [
    "change",
    "vehicle",
    "city",
    "previous_row",
    "previous_status",
    "previous_message",
    "previous_renewal_token",
    "file",
    "row",
    "status",
    "message",
    "renewal_token",
];
