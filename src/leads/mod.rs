//! Lead lists: the city table (`city`), the plate and VIN rules that turn one row into a
//! typed lead or a rejection (`lead`), and the streaming reader (`input`) of CSV
//! (`encoding`: UTF-8, GBK, UTF-16) and workbooks (`workbook`: read within fixed bounds),
//! which finds the vehicle columns by header (`columns`) and stops only for what is wrong
//! with the file itself (`input_error`).
//!
//! The bottom layer: imports nothing else of the crate.

pub mod city;
pub mod columns;
pub mod encoding;
pub mod input;
pub mod input_error;
pub mod lead;
pub mod workbook;
