//! Lead lists: the city table, the plate and VIN rules that turn one row into a typed lead or
//! a rejection, and the streaming reader of CSV (UTF-8, GBK) and workbooks (read within fixed bounds).
//!
//! The bottom layer: imports nothing else of the crate.

pub mod city;
pub mod input;
pub mod lead;
pub mod workbook;
