//! How a CSV's bytes become UTF-8 text: UTF-8 (with or without BOM), GBK/GB18030 or UTF-16
//! transcoded on the fly; a file that mixes encodings line by line, or is not text, refused
//! with the lines that say so; and the separator, sniffed from the first line.

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::Path;

use crate::leads::input_error::InputError;

/// How the input's bytes are to be read as text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum InputEncoding {
    /// UTF-8 (with or without BOM) when the whole file is valid UTF-8, else GB18030.
    #[default]
    Auto,
    Utf8,
    /// GB18030, the superset of GBK (code page 936) that Excel on Chinese Windows writes.
    Gb18030,
}

impl InputEncoding {
    /// `auto`, `utf-8`/`utf8`, `gbk`/`gb2312`/`gb18030`/`cp936`.
    pub fn parse(text: &str) -> Option<InputEncoding> {
        match text.trim().to_ascii_lowercase().replace('_', "-").as_str() {
            "auto" => Some(InputEncoding::Auto),
            "utf-8" | "utf8" => Some(InputEncoding::Utf8),
            "gbk" | "gb2312" | "gb18030" | "cp936" | "936" => Some(InputEncoding::Gb18030),
            _ => None,
        }
    }
}

/// The separator of a CSV, from its first line: a comma, unless the line has none and has
/// tabs (Excel's "Unicode text") or semicolons (a comma-decimal locale's CSV).
pub(super) fn sniff_delimiter(first_block: &[u8]) -> u8 {
    let line = first_block.split(|&b| b == b'\n').next().unwrap_or(&[]);
    let count = |wanted: u8| line.iter().filter(|&&b| b == wanted).count();
    match (count(b','), count(b'\t'), count(b';')) {
        (0, tabs, _) if tabs > 0 => b'\t',
        (0, 0, semicolons) if semicolons > 0 => b';',
        _ => b',',
    }
}

/// How the lines of a file that is not UTF-8 throughout read.
#[derive(Debug, PartialEq, Eq)]
enum LineEncodings {
    /// Every line is ASCII or GBK/GB18030.
    Gb18030,
    Mixed {
        utf8_line: u64,
        other_line: u64,
    },
    NotText {
        line: u64,
    },
}

/// The longest piece of a line looked at when telling encodings apart.
const SCANNED_LINE_BYTES: usize = 1 << 20;

/// Whether a valid UTF-8 line reads as Chinese text rather than as GBK bytes that happen to
/// be valid UTF-8: every non-ASCII character is CJK, CJK punctuation or full-width.
fn reads_as_chinese(text: &str) -> bool {
    text.chars().filter(|c| !c.is_ascii()).all(|c| {
        matches!(c as u32,
            0x3000..=0x303F | 0x3400..=0x4DBF | 0x4E00..=0x9FFF | 0xFF00..=0xFFEF
            | 0x2000..=0x206F | 0xB7 | 0xD7 | 0xFEFF)
    })
}

/// Reads a file that is not UTF-8 throughout line by line: GBK throughout, or which line is
/// UTF-8 and which is not, or which line is neither.
fn scan_line_encodings(path: &Path) -> io::Result<LineEncodings> {
    use std::io::BufRead;
    let mut file = BufReader::with_capacity(1 << 16, File::open(path)?);
    let mut line = Vec::new();
    let (mut utf8_line, mut other_line) = (None, None);
    let mut n_line = 0;
    loop {
        line.clear();
        let n_read = (&mut file)
            .take(SCANNED_LINE_BYTES as u64)
            .read_until(b'\n', &mut line)?;
        if n_read == 0 {
            break;
        }
        n_line += 1;
        let cut = line.last() != Some(&b'\n') && n_read == SCANNED_LINE_BYTES;
        if cut {
            // Skip the rest of a very long line: its first megabyte says enough.
            loop {
                let buffer = file.fill_buf()?;
                if buffer.is_empty() {
                    break;
                }
                match buffer.iter().position(|&b| b == b'\n') {
                    Some(end) => {
                        file.consume(end + 1);
                        break;
                    }
                    None => {
                        let n = buffer.len();
                        file.consume(n);
                    }
                }
            }
        }
        if line.is_ascii() {
            continue;
        }
        let utf8 = match std::str::from_utf8(&line) {
            Ok(text) => Some(text),
            // A character cut where the scan stopped.
            Err(error) if cut && error.error_len().is_none() => {
                std::str::from_utf8(&line[..error.valid_up_to()]).ok()
            }
            Err(_) => None,
        };
        match utf8 {
            Some(text) => {
                if reads_as_chinese(text) {
                    utf8_line.get_or_insert(n_line);
                }
            }
            None => {
                let mut decoder = encoding_rs::GB18030.new_decoder_without_bom_handling();
                let mut out = String::with_capacity(
                    decoder
                        .max_utf8_buffer_length_without_replacement(line.len())
                        .unwrap_or(line.len() * 3),
                );
                let (result, _) = decoder.decode_to_string_without_replacement(&line, &mut out, !cut);
                if matches!(result, encoding_rs::DecoderResult::Malformed(..)) {
                    return Ok(LineEncodings::NotText { line: n_line });
                }
                other_line.get_or_insert(n_line);
            }
        }
        if let (Some(utf8_line), Some(other_line)) = (utf8_line, other_line) {
            return Ok(LineEncodings::Mixed {
                utf8_line,
                other_line,
            });
        }
    }
    Ok(LineEncodings::Gb18030)
}

/// Whether the whole file is valid UTF-8 (a BOM is UTF-8 too). Streams in blocks.
pub(super) fn is_utf8_file(path: &Path) -> io::Result<bool> {
    let mut file = BufReader::with_capacity(1 << 16, File::open(path)?);
    let mut buffer = vec![0u8; 1 << 16];
    let mut carried = 0;
    loop {
        let n_read = file.read(&mut buffer[carried..])?;
        let filled = carried + n_read;
        // encoding_rs finds the valid prefix several times faster than std on text that mixes
        // ASCII and CJK (the ASCII fast path of std stops at every character); std then says
        // what the few bytes after it are.
        let valid_prefix = encoding_rs::Encoding::utf8_valid_up_to(&buffer[..filled]);
        match std::str::from_utf8(&buffer[valid_prefix..filled]) {
            Ok(_) => carried = 0,
            // A character cut at the block's end: carry its first bytes over.
            Err(error) if error.error_len().is_none() && n_read > 0 => {
                let valid = valid_prefix + error.valid_up_to();
                buffer.copy_within(valid..filled, 0);
                carried = filled - valid;
            }
            Err(_) => return Ok(false),
        }
        if n_read == 0 {
            return Ok(carried == 0);
        }
    }
}

/// Opens a CSV as a UTF-8 byte stream, transcoding GBK or UTF-16 on the fly. UTF-16 (Excel's
/// "Unicode text") is known by its byte-order mark, whatever `encoding` says.
pub(super) fn open_text(path: &Path, encoding: InputEncoding) -> Result<Box<dyn Read + Send>, InputError> {
    let io_error = |source| InputError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut start = [0u8; 2];
    let n_start = File::open(path)
        .and_then(|mut file| file.read(&mut start))
        .map_err(io_error)?;
    let utf16 = match &start[..n_start] {
        [0xFF, 0xFE] => Some(encoding_rs::UTF_16LE),
        [0xFE, 0xFF] => Some(encoding_rs::UTF_16BE),
        _ => None,
    };
    let decoded = match (utf16, encoding) {
        (Some(utf16), _) => Some(utf16),
        (None, InputEncoding::Utf8) => None,
        (None, InputEncoding::Gb18030) => Some(encoding_rs::GB18030),
        (None, InputEncoding::Auto) if is_utf8_file(path).map_err(io_error)? => None,
        (None, InputEncoding::Auto) => match scan_line_encodings(path).map_err(io_error)? {
            LineEncodings::Gb18030 => Some(encoding_rs::GB18030),
            LineEncodings::Mixed {
                utf8_line,
                other_line,
            } => {
                return Err(InputError::MixedEncoding {
                    path: path.to_path_buf(),
                    utf8_line,
                    other_line,
                });
            }
            LineEncodings::NotText { line } => {
                return Err(InputError::NotText {
                    path: path.to_path_buf(),
                    line,
                });
            }
        },
    };
    let file = File::open(path).map_err(io_error)?;
    match decoded {
        Some(encoding) => {
            tracing::info!(path = %path.display(), encoding = encoding.name(), "transcoding the input to UTF-8");
            // The byte-order mark is sniffed and dropped.
            let decoder = encoding_rs_io::DecodeReaderBytesBuilder::new()
                .encoding(Some(encoding))
                .build(file);
            Ok(Box::new(decoder))
        }
        None => Ok(Box::new(file)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gbk(text: &str) -> Vec<u8> {
        encoding_rs::GBK.encode(text).0.into_owned()
    }

    fn file_of(bytes: &[u8]) -> tempfile::NamedTempFile {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), bytes).unwrap();
        file
    }

    fn scan(bytes: &[u8]) -> LineEncodings {
        scan_line_encodings(file_of(bytes).path()).unwrap()
    }

    fn is_utf8(bytes: &[u8]) -> bool {
        is_utf8_file(file_of(bytes).path()).unwrap()
    }

    #[test]
    fn every_name_of_an_encoding_is_read_and_others_are_not() {
        for (text, wanted) in [
            ("auto", InputEncoding::Auto),
            (" Auto ", InputEncoding::Auto),
            ("utf-8", InputEncoding::Utf8),
            ("UTF_8", InputEncoding::Utf8),
            ("utf8", InputEncoding::Utf8),
            ("GBK", InputEncoding::Gb18030),
            ("gb2312", InputEncoding::Gb18030),
            ("gb18030", InputEncoding::Gb18030),
            ("cp936", InputEncoding::Gb18030),
            ("936", InputEncoding::Gb18030),
        ] {
            assert_eq!(InputEncoding::parse(text), Some(wanted), "{text}");
        }
        for text in ["", "latin1", "utf-16", "gb"] {
            assert_eq!(InputEncoding::parse(text), None, "{text}");
        }
    }

    #[test]
    fn the_separator_comes_from_the_first_line() {
        for (first_block, wanted) in [
            (&b"plate,vin\tx;y"[..], b','),
            (b"plate\tvin", b'\t'),
            (b"plate;vin", b';'),
            (b"plate\tvin;city", b'\t'),
            (b"plate", b','),
            (b"", b','),
            (b"plate\nvin\tx;y", b','),
            (b"plate;vin\na,b", b';'),
        ] {
            assert_eq!(
                sniff_delimiter(first_block),
                wanted,
                "{:?}",
                String::from_utf8_lossy(first_block)
            );
        }
    }

    #[test]
    fn chinese_reads_as_chinese_and_other_scripts_do_not() {
        for text in [
            "京A12345",
            "plate",
            "",
            "车牌号，城市",
            "张·三",
            "2×3",
            "\u{feff}车",
            "京\u{3400}",
        ] {
            assert!(reads_as_chinese(text), "{text}");
        }
        for text in ["é", "京é", "Ωmega", "車\u{0100}"] {
            assert!(!reads_as_chinese(text), "{text}");
        }
    }

    #[test]
    fn a_file_is_utf8_only_if_every_byte_is() {
        assert!(is_utf8(b""));
        assert!(is_utf8(b"plate\nA12345\n"));
        assert!(is_utf8("\u{feff}车牌号\n京A12345\n".as_bytes()));
        assert!(!is_utf8(&gbk("车牌号\n京A12345\n")));
        // A character across the boundary of the 64 KiB blocks is whole.
        let mut across = vec![b'a'; (1 << 16) - 1];
        across.extend_from_slice("京A12345\n".as_bytes());
        assert!(is_utf8(&across));
        // A bad byte in a later block, and a character cut at the end of the file.
        let mut late = vec![b'a'; (1 << 16) * 2 + 7];
        late.push(0xFF);
        assert!(!is_utf8(&late));
        let mut cut = b"plate\n".to_vec();
        cut.extend_from_slice(&"京".as_bytes()[..2]);
        assert!(!is_utf8(&cut));
    }

    #[test]
    fn gbk_throughout_is_gbk_whatever_ascii_or_foreign_utf8_lines_say() {
        let mut bytes = b"plate,city\n".to_vec();
        bytes.extend(gbk("京A12345,北京\n沪B54321,上海\n"));
        assert_eq!(scan(&bytes), LineEncodings::Gb18030);
        // "é" is valid UTF-8 and valid GBK: as GBK it is a Chinese character, not an accent.
        bytes.extend("é\n".as_bytes());
        assert_eq!(scan(&bytes), LineEncodings::Gb18030);
        assert_eq!(scan(b"plate\nA12345"), LineEncodings::Gb18030);
    }

    #[test]
    fn a_mixed_file_names_its_first_line_of_each_encoding() {
        let mut bytes = b"plate\n".to_vec();
        bytes.extend(gbk("京A12345\n"));
        bytes.extend("沪B54321\n".as_bytes());
        bytes.extend(gbk("粤C11111\n"));
        assert_eq!(
            scan(&bytes),
            LineEncodings::Mixed {
                utf8_line: 3,
                other_line: 2
            }
        );
        let mut bytes = "车牌号\n京A12345\n".as_bytes().to_vec();
        bytes.extend(b"A1\n");
        bytes.extend(gbk("沪B54321\n"));
        assert_eq!(
            scan(&bytes),
            LineEncodings::Mixed {
                utf8_line: 1,
                other_line: 4
            }
        );
    }

    #[test]
    fn bytes_that_are_no_text_are_named_by_line() {
        let mut bytes = b"plate\nA1\n".to_vec();
        bytes.extend([0x81, 0xFF, 0xFF, b'\n']);
        bytes.extend(gbk("京A12345\n"));
        assert_eq!(scan(&bytes), LineEncodings::NotText { line: 3 });
    }

    #[test]
    fn a_line_longer_than_the_scan_is_judged_by_its_start_and_counted_once() {
        // A GBK line of more than a megabyte (1 + 2k bytes), cut by the scan inside a character, then a
        // UTF-8 line: the long line counts as one, and its cut character is no error.
        let mut bytes = b"plate\n".to_vec();
        let mut long = b"a".to_vec();
        long.extend(gbk("京").repeat(SCANNED_LINE_BYTES / 2 + 10));
        long.push(b'\n');
        bytes.extend(&long);
        bytes.extend("沪B54321\n".as_bytes());
        assert_eq!(
            scan(&bytes),
            LineEncodings::Mixed {
                utf8_line: 3,
                other_line: 2
            }
        );
        // The same with UTF-8 first, cut inside a three-byte character (the line is 2 + 3k bytes).
        let mut bytes = b"plate\n".to_vec();
        let mut long = b"ab".to_vec();
        long.extend("京".repeat(SCANNED_LINE_BYTES / 3 + 10).as_bytes());
        long.push(b'\n');
        bytes.extend(&long);
        bytes.extend(b"A1\n");
        bytes.extend(gbk("沪B54321\n"));
        assert_eq!(
            scan(&bytes),
            LineEncodings::Mixed {
                utf8_line: 2,
                other_line: 4
            }
        );
        // A long last line with no newline ends the scan.
        let mut bytes = gbk("京A12345\n");
        bytes.extend(vec![b'a'; SCANNED_LINE_BYTES * 2]);
        assert_eq!(scan(&bytes), LineEncodings::Gb18030);
    }

    /// Excel's "Unicode text" is UTF-16 with a byte-order mark, little or big endian: read as
    /// such whatever encoding was asked for (cargo-mutants: deleting either arm went unseen by
    /// the unit tests).
    #[test]
    fn utf16_with_its_mark_is_read_in_either_byte_order_whatever_was_asked() {
        let text = "plate\t城市\n京A12345\t北京\n";
        let utf16 = |big_endian: bool| {
            let mut bytes = if big_endian {
                vec![0xFE, 0xFF]
            } else {
                vec![0xFF, 0xFE]
            };
            for unit in text.encode_utf16() {
                let pair = if big_endian {
                    unit.to_be_bytes()
                } else {
                    unit.to_le_bytes()
                };
                bytes.extend(pair);
            }
            bytes
        };
        for big_endian in [false, true] {
            for asked in [InputEncoding::Auto, InputEncoding::Utf8, InputEncoding::Gb18030] {
                let file = file_of(&utf16(big_endian));
                let mut read = String::new();
                open_text(file.path(), asked)
                    .unwrap()
                    .read_to_string(&mut read)
                    .unwrap();
                assert_eq!(read, text, "big endian {big_endian}, asked {asked:?}");
            }
        }
    }

    #[test]
    fn a_line_exactly_as_long_as_the_scan_is_whole_and_the_next_line_is_read() {
        // The newline is the scan's last byte: nothing is cut, so nothing of the next line is
        // skipped (cargo-mutants: `&&` made `||` skipped it).
        let mut bytes = vec![b'a'; SCANNED_LINE_BYTES - 1];
        bytes.push(b'\n');
        bytes.extend("京A12345\n".as_bytes());
        bytes.extend(gbk("沪B54321\n"));
        assert_eq!(
            scan(&bytes),
            LineEncodings::Mixed {
                utf8_line: 2,
                other_line: 3
            }
        );
    }
}
