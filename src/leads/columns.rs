//! Column detection: the header names accepted for each vehicle column (plate, VIN, engine
//! number, city), finding them in a header with case and spacing ignored, and a header
//! listed within bounds for a message.

use csv::StringRecord;

/// Header names accepted for each vehicle column, compared with case and spacing ignored.
pub const PLATE_HEADERS: [&str; 5] = ["LicenseNo", "plate", "车牌号", "车牌", "车牌号码"];
pub const VIN_HEADERS: [&str; 5] = ["CarVin", "vin", "车架号", "车辆识别代号", "车辆识别代码"];
pub const ENGINE_HEADERS: [&str; 4] = ["EngineNo", "engine_no", "发动机号", "发动机号码"];
pub const CITY_HEADERS: [&str; 4] = ["CityCode", "city", "城市", "投保城市"];

/// Where the vehicle columns are in a header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Columns {
    pub plate: Option<usize>,
    pub vin: Option<usize>,
    pub engine: Option<usize>,
    pub city: Option<usize>,
}

fn header_key(name: &str) -> String {
    name.trim_start_matches('\u{feff}')
        .chars()
        .filter(|c| !c.is_whitespace())
        .flat_map(char::to_lowercase)
        .collect()
}

impl Columns {
    /// Finds the columns; `None` when there is no vehicle column at all.
    pub fn find(headers: &StringRecord) -> Option<Columns> {
        let header_keys: Vec<String> = headers.iter().map(header_key).collect();
        let position = |aliases: &[&str]| {
            let keys: Vec<String> = aliases.iter().map(|alias| header_key(alias)).collect();
            header_keys.iter().position(|header| keys.contains(header))
        };
        let columns = Columns {
            plate: position(&PLATE_HEADERS),
            vin: position(&VIN_HEADERS),
            engine: position(&ENGINE_HEADERS),
            city: position(&CITY_HEADERS),
        };
        (columns.plate.is_some() || columns.vin.is_some() || columns.engine.is_some()).then_some(columns)
    }
}

/// The most header columns a message lists, and the most characters of each.
const LISTED_COLUMNS: usize = 40;
const LISTED_CHARS: usize = 40;

/// A header for a message: at most [`LISTED_COLUMNS`] names of at most [`LISTED_CHARS`]
/// characters, and how many columns there are in all when that is more.
pub fn header_listing(headers: &StringRecord) -> String {
    let mut listing: Vec<String> = headers
        .iter()
        .take(LISTED_COLUMNS)
        .map(|name| match name.char_indices().nth(LISTED_CHARS) {
            Some((end, _)) => format!("{}…", &name[..end]),
            None => name.to_string(),
        })
        .collect();
    if headers.len() > LISTED_COLUMNS {
        listing.push(format!("… ({} columns in all)", headers.len()));
    }
    listing.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(names: &[&str]) -> StringRecord {
        StringRecord::from(names.to_vec())
    }

    #[test]
    fn any_one_vehicle_column_is_enough_and_a_city_alone_is_not() {
        let plate = Columns::find(&header(&["x", " 车牌号 "])).unwrap();
        assert_eq!(plate.plate, Some(1));
        assert_eq!((plate.vin, plate.engine, plate.city), (None, None, None));
        let vin = Columns::find(&header(&["\u{feff}CARVIN"])).unwrap();
        assert_eq!((vin.plate, vin.vin), (None, Some(0)));
        let engine = Columns::find(&header(&["engine_no", "投保城市"])).unwrap();
        assert_eq!(
            (engine.plate, engine.vin, engine.engine, engine.city),
            (None, None, Some(0), Some(1))
        );
        assert_eq!(Columns::find(&header(&["city", "name"])), None);
        assert_eq!(Columns::find(&header(&[])), None);
    }

    #[test]
    fn a_header_is_listed_in_full_up_to_forty_columns() {
        let forty: Vec<String> = (0..40).map(|i| format!("c{i}")).collect();
        let forty = StringRecord::from(forty);
        let listing = header_listing(&forty);
        assert!(listing.ends_with("c39"), "{listing}");
        assert!(!listing.contains("in all"), "{listing}");
        let mut more = forty.clone();
        more.push_field("c40");
        let listing = header_listing(&more);
        assert!(listing.ends_with("… (41 columns in all)"), "{listing}");
        assert!(!listing.contains("c40"), "{listing}");
    }

    #[test]
    fn a_long_name_is_cut_at_forty_characters() {
        let name = "车".repeat(41);
        assert_eq!(header_listing(&header(&[&name])), format!("{}…", "车".repeat(40)));
        let name = "车".repeat(40);
        assert_eq!(header_listing(&header(&[&name, "b"])), format!("{name}, b"));
    }
}
