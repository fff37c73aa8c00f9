//! The Bihu city table (`CityCode` ids 1-23), with each city's main plate prefix.
//!
//! Used to read a row's city (id or name), to infer a city from a plate, and to flag a city
//! that contradicts the plate. The prefixes are the project's addition to the official table
//! and are not complete (see `RENEWAL_API.md`, "Cities"), so a contradiction is only a warning.

/// One Bihu city.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct City {
    pub id: u8,
    pub name: &'static str,
    pub english: &'static str,
    /// Main plate prefix: a province character, or a province character and a letter.
    pub plate_prefix: &'static str,
}

pub const CITIES: [City; 23] = [
    City {
        id: 1,
        name: "北京",
        english: "Beijing",
        plate_prefix: "京",
    },
    City {
        id: 2,
        name: "重庆",
        english: "Chongqing",
        plate_prefix: "渝",
    },
    City {
        id: 3,
        name: "天津",
        english: "Tianjin",
        plate_prefix: "津",
    },
    City {
        id: 4,
        name: "成都",
        english: "Chengdu",
        plate_prefix: "川A",
    },
    City {
        id: 5,
        name: "昆明",
        english: "Kunming",
        plate_prefix: "云A",
    },
    City {
        id: 6,
        name: "上海",
        english: "Shanghai",
        plate_prefix: "沪",
    },
    City {
        id: 7,
        name: "银川",
        english: "Yinchuan",
        plate_prefix: "宁A",
    },
    City {
        id: 8,
        name: "南京",
        english: "Nanjing",
        plate_prefix: "苏A",
    },
    City {
        id: 9,
        name: "杭州",
        english: "Hangzhou",
        plate_prefix: "浙A",
    },
    City {
        id: 10,
        name: "福州",
        english: "Fuzhou",
        plate_prefix: "闽A",
    },
    City {
        id: 11,
        name: "深圳",
        english: "Shenzhen",
        plate_prefix: "粤B",
    },
    City {
        id: 12,
        name: "石家庄",
        english: "Shijiazhuang",
        plate_prefix: "冀A",
    },
    City {
        id: 13,
        name: "芜湖",
        english: "Wuhu",
        plate_prefix: "皖B",
    },
    City {
        id: 14,
        name: "广州",
        english: "Guangzhou",
        plate_prefix: "粤A",
    },
    City {
        id: 15,
        name: "厦门",
        english: "Xiamen",
        plate_prefix: "闽D",
    },
    City {
        id: 16,
        name: "苏州",
        english: "Suzhou",
        plate_prefix: "苏E",
    },
    City {
        id: 17,
        name: "东莞",
        english: "Dongguan",
        plate_prefix: "粤S",
    },
    City {
        id: 18,
        name: "济南",
        english: "Jinan",
        plate_prefix: "鲁A",
    },
    City {
        id: 19,
        name: "武汉",
        english: "Wuhan",
        plate_prefix: "鄂A",
    },
    City {
        id: 20,
        name: "佛山",
        english: "Foshan",
        plate_prefix: "粤E",
    },
    City {
        id: 21,
        name: "无锡",
        english: "Wuxi",
        plate_prefix: "苏B",
    },
    City {
        id: 22,
        name: "烟台",
        english: "Yantai",
        plate_prefix: "鲁F",
    },
    City {
        id: 23,
        name: "泰州",
        english: "Taizhou",
        plate_prefix: "苏M",
    },
];

impl City {
    pub fn by_id(id: u8) -> Option<City> {
        // The table is in id order from 1 (a test pins it).
        CITIES.get(usize::from(id).checked_sub(1)?).copied()
    }

    /// Reads a city as a clerk writes it: an id (`1`, `01`), a Chinese name with or without
    /// `市` (`北京`, `北京市`), or an English name in any case (`beijing`).
    pub fn parse(text: &str) -> Option<City> {
        let text = text.trim();
        if text.is_empty() {
            return None;
        }
        if text.bytes().all(|b| b.is_ascii_digit()) {
            return text.parse::<u8>().ok().and_then(City::by_id);
        }
        let name = text.strip_suffix('市').unwrap_or(text);
        // Chinese names are not ASCII and English ones are: a name can only be one of the two.
        if name.is_ascii() {
            CITIES
                .iter()
                .copied()
                .find(|city| city.english.eq_ignore_ascii_case(name))
        } else {
            CITIES.iter().copied().find(|city| city.name == name)
        }
    }

    /// The city whose main prefix the plate carries: a two-character prefix (`粤A`) is
    /// matched before a province-wide one (`京`).
    ///
    /// Runs for every row without a city, so it is a `match` on the first two characters
    /// rather than a scan of the table; a test checks it against the table.
    pub fn from_plate(plate: &str) -> Option<City> {
        let mut chars = plate.chars();
        let province = chars.next()?;
        let id = match province {
            '京' => 1,
            '渝' => 2,
            '津' => 3,
            '沪' => 6,
            _ => match (province, chars.next()?) {
                ('川', 'A') => 4,
                ('云', 'A') => 5,
                ('宁', 'A') => 7,
                ('苏', 'A') => 8,
                ('浙', 'A') => 9,
                ('闽', 'A') => 10,
                ('粤', 'B') => 11,
                ('冀', 'A') => 12,
                ('皖', 'B') => 13,
                ('粤', 'A') => 14,
                ('闽', 'D') => 15,
                ('苏', 'E') => 16,
                ('粤', 'S') => 17,
                ('鲁', 'A') => 18,
                ('鄂', 'A') => 19,
                ('粤', 'E') => 20,
                ('苏', 'B') => 21,
                ('鲁', 'F') => 22,
                ('苏', 'M') => 23,
                _ => return None,
            },
        };
        City::by_id(id)
    }

    /// Whether a plate carries this city's main prefix.
    pub fn matches_plate(&self, plate: &str) -> bool {
        plate.starts_with(self.plate_prefix)
    }

    /// `北京 (1)`, as messages show a city.
    pub fn label(&self) -> String {
        format!("{} ({})", self.name, self.id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_one_to_twenty_three_in_order() {
        for (i, city) in CITIES.iter().enumerate() {
            assert_eq!(city.id as usize, i + 1);
        }
    }

    #[test]
    fn parse_accepts_ids_and_names() {
        assert_eq!(City::parse("1").unwrap().name, "北京");
        assert_eq!(City::parse(" 014 ").unwrap().name, "广州");
        assert_eq!(City::parse("广州").unwrap().id, 14);
        assert_eq!(City::parse("广州市").unwrap().id, 14);
        assert_eq!(City::parse("shenzhen").unwrap().id, 11);
        assert_eq!(City::parse("0"), None);
        assert_eq!(City::parse("24"), None);
        assert_eq!(City::parse("拉萨"), None);
        assert_eq!(City::parse(""), None);
    }

    #[test]
    fn plate_prefix_inference_prefers_the_longer_prefix() {
        assert_eq!(City::from_plate("京J97896").unwrap().id, 1);
        assert_eq!(City::from_plate("粤B12345").unwrap().id, 11);
        assert_eq!(City::from_plate("粤E12345").unwrap().id, 20);
        assert_eq!(City::from_plate("粤X12345"), None);
        assert_eq!(City::from_plate("藏A12345"), None);
    }

    /// The table's rule, as `from_plate` once computed it: the longest prefix that matches.
    fn from_plate_by_scan(plate: &str) -> Option<City> {
        CITIES
            .iter()
            .copied()
            .filter(|city| plate.starts_with(city.plate_prefix))
            .max_by_key(|city| city.plate_prefix.chars().count())
    }

    #[test]
    fn plate_prefix_match_agrees_with_the_table() {
        let mut firsts: Vec<char> = "京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼使A1京"
            .chars()
            .collect();
        firsts.extend(CITIES.iter().flat_map(|city| city.plate_prefix.chars()));
        let seconds = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefgh0123456789京Ａ ".chars();
        let mut plates = vec![String::new()];
        for first in &firsts {
            plates.push(first.to_string());
            for second in seconds.clone() {
                plates.push(format!("{first}{second}"));
                plates.push(format!("{first}{second}12345"));
            }
        }
        for plate in &plates {
            assert_eq!(City::from_plate(plate), from_plate_by_scan(plate), "{plate:?}");
        }
        for city in CITIES {
            assert_eq!(City::from_plate(city.plate_prefix), Some(city));
        }
    }

    #[test]
    fn names_are_read_as_the_table_has_them() {
        // The table's rule, as `parse` once applied it to a name: either spelling matches.
        let by_scan = |text: &str| {
            let name = text.trim();
            let name = name.strip_suffix('市').unwrap_or(name);
            CITIES
                .iter()
                .copied()
                .find(|city| city.name == name || city.english.eq_ignore_ascii_case(name))
        };
        let mut texts = vec![
            "拉萨".to_string(),
            "市".to_string(),
            "beijing市".to_string(),
            "Xi'an".to_string(),
        ];
        for city in CITIES {
            texts.push(city.name.to_string());
            texts.push(format!(" {}市 ", city.name));
            texts.push(city.english.to_string());
            texts.push(city.english.to_ascii_uppercase());
            texts.push(format!("{}市", city.english.to_ascii_lowercase()));
        }
        for text in &texts {
            assert_eq!(City::parse(text), by_scan(text), "{text:?}");
        }
        assert_eq!(City::parse("SHIJIAZHUANG").unwrap().id, 12);
    }

    #[test]
    fn by_id_covers_the_table_and_nothing_else() {
        for id in 0..=u8::MAX {
            assert_eq!(City::by_id(id), CITIES.iter().copied().find(|city| city.id == id));
        }
    }
}
