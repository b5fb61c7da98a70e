//! A page's bytes as text, in the page's own character encoding, as a browser finds it: a byte
//! order mark, else the `charset` of the `Content-Type` header, else a `<meta charset>` or
//! `<meta http-equiv="Content-Type">` in the first 1024 bytes (the WHATWG prescan), else UTF-8.
//! The decoding itself is `encoding_rs`, Firefox's implementation of the WHATWG Encoding
//! Standard (GBK, Big5, Shift_JIS, windows-1252, ...; labels such as `gb2312` or `latin1` map
//! to the encoding browsers use for them).

use encoding_rs::{Encoding, UTF_8, WINDOWS_1252};

/// How many bytes the prescan reads, as in the HTML standard.
const PRESCAN_BYTES: usize = 1024;

/// `bytes` decoded by the BOM, else the charset of `content_type` (the `Content-Type` header,
/// e.g. `text/html; charset=gbk`), else the page's meta declaration, else as UTF-8; malformed
/// sequences become U+FFFD. Also returns the encoding's name.
pub fn decode_page(bytes: &[u8], content_type: Option<&str>) -> (String, &'static str) {
    let declared = content_type
        .and_then(|value| charset_in_content(value.to_ascii_lowercase().as_bytes()))
        .and_then(|label| Encoding::for_label(&label))
        .or_else(|| prescan(bytes))
        .unwrap_or(UTF_8);
    // `decode` sniffs a BOM first, which overrides any declaration (as in browsers).
    let (text, used, _) = declared.decode(bytes);
    (text.into_owned(), used.name())
}

/// The encoding a `<meta>` in the first [`PRESCAN_BYTES`] of `bytes` declares: the HTML
/// standard's "prescan a byte stream to determine its encoding", comments and other tags
/// skipped, a UTF-16 declaration read as UTF-8 and `x-user-defined` as windows-1252.
pub fn prescan(bytes: &[u8]) -> Option<&'static Encoding> {
    let bytes = &bytes[..bytes.len().min(PRESCAN_BYTES)];
    let mut at = 0;
    while at < bytes.len() {
        let rest = &bytes[at..];
        if rest.starts_with(b"<!--") {
            at += 4 + find(&rest[4..], b"-->").map_or(rest.len(), |end| end + 3);
        } else if starts_with_ignore_case(rest, b"<meta")
            && rest.get(5).is_some_and(|b| is_space(*b) || *b == b'/')
        {
            let (found, end) = meta(bytes, at + 5);
            if found.is_some() {
                return found;
            }
            at = end;
        } else if let Some(name_at) = tag_name_start(rest) {
            // Another tag: skip its name and attributes.
            let mut i = at + name_at;
            while i < bytes.len() && !is_space(bytes[i]) && bytes[i] != b'>' {
                i += 1;
            }
            while let Some((_, _, next)) = attribute(bytes, i) {
                i = next;
            }
            at = i + 1;
        } else if rest.starts_with(b"<!") || rest.starts_with(b"</") || rest.starts_with(b"<?") {
            at += find(rest, b">").map_or(rest.len(), |end| end + 1);
        } else {
            at += 1;
        }
    }
    None
}

/// The attributes of a `<meta` tag from `at`: the encoding it declares, and where it ends.
fn meta(bytes: &[u8], mut at: usize) -> (Option<&'static Encoding>, usize) {
    let (mut http_equiv_content_type, mut content, mut charset) = (false, None, None);
    let mut seen: Vec<Vec<u8>> = Vec::new();
    while let Some((name, value, next)) = attribute(bytes, at) {
        at = next;
        if seen.contains(&name) {
            continue;
        }
        match name.as_slice() {
            b"http-equiv" => http_equiv_content_type = value.eq_ignore_ascii_case(b"content-type"),
            b"content" if content.is_none() => content = charset_in_content(&value),
            b"charset" if charset.is_none() => charset = Some(Encoding::for_label(&value)),
            _ => {}
        }
        seen.push(name);
    }
    let found = match (charset, content) {
        (Some(charset), _) => charset,
        (None, Some(content)) if http_equiv_content_type => Encoding::for_label(&content),
        _ => None,
    };
    let found = found.map(|e| {
        if e == encoding_rs::UTF_16BE || e == encoding_rs::UTF_16LE {
            UTF_8
        } else if e == encoding_rs::X_USER_DEFINED {
            WINDOWS_1252
        } else {
            e
        }
    });
    (found, at + 1)
}

/// One attribute from `at` (leading spaces and slashes skipped): its lower-cased name, its
/// value (lower-cased, as the prescan compares it) and where the next one starts; `None` at
/// the tag's end.
fn attribute(bytes: &[u8], mut at: usize) -> Option<(Vec<u8>, Vec<u8>, usize)> {
    while at < bytes.len() && (is_space(bytes[at]) || bytes[at] == b'/') {
        at += 1;
    }
    if at >= bytes.len() || bytes[at] == b'>' {
        return None;
    }
    let mut name = Vec::new();
    while at < bytes.len() && !is_space(bytes[at]) && !matches!(bytes[at], b'=' | b'>' | b'/') {
        name.push(bytes[at].to_ascii_lowercase());
        at += 1;
    }
    while at < bytes.len() && is_space(bytes[at]) {
        at += 1;
    }
    if bytes.get(at) != Some(&b'=') {
        return Some((name, Vec::new(), at));
    }
    at += 1;
    while at < bytes.len() && is_space(bytes[at]) {
        at += 1;
    }
    let mut value = Vec::new();
    match bytes.get(at) {
        Some(&quote @ (b'"' | b'\'')) => {
            at += 1;
            while at < bytes.len() && bytes[at] != quote {
                value.push(bytes[at].to_ascii_lowercase());
                at += 1;
            }
            at += 1;
        }
        _ => {
            while at < bytes.len() && !is_space(bytes[at]) && bytes[at] != b'>' {
                value.push(bytes[at].to_ascii_lowercase());
                at += 1;
            }
        }
    }
    Some((name, value, at))
}

/// The `charset=` label in a `content` attribute or a `Content-Type` header, lower-cased, such
/// as `text/html; charset=gbk`.
fn charset_in_content(content: &[u8]) -> Option<Vec<u8>> {
    let at = find(content, b"charset")? + 7;
    let rest = trim_start(&content[at..]).strip_prefix(b"=")?;
    let rest = trim_start(rest);
    let label: Vec<u8> = match rest.first() {
        Some(&quote @ (b'"' | b'\'')) => rest[1..].iter().take_while(|b| **b != quote).copied().collect(),
        _ => rest.iter().take_while(|b| !is_space(**b) && **b != b';').copied().collect(),
    };
    (!label.is_empty()).then_some(label)
}

/// Where the name of the tag `rest` starts with begins (`<a` or `</a`), if it is a tag.
fn tag_name_start(rest: &[u8]) -> Option<usize> {
    match rest {
        [b'<', b'/', c, ..] if c.is_ascii_alphabetic() => Some(2),
        [b'<', c, ..] if c.is_ascii_alphabetic() => Some(1),
        _ => None,
    }
}

fn trim_start(bytes: &[u8]) -> &[u8] {
    let spaces = bytes.iter().take_while(|b| is_space(**b)).count();
    &bytes[spaces..]
}

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\x0c' | b'\r')
}

fn starts_with_ignore_case(bytes: &[u8], prefix: &[u8]) -> bool {
    bytes.len() >= prefix.len() && bytes[..prefix.len()].eq_ignore_ascii_case(prefix)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(bytes: &[u8]) -> Option<&'static str> {
        prescan(bytes).map(Encoding::name)
    }

    #[test]
    fn the_prescan_reads_meta_charset_and_http_equiv() {
        assert_eq!(name(b"<html><head><meta charset=gb2312>"), Some("GBK"));
        assert_eq!(name(b"<META CHARSET='ISO-8859-1'/>"), Some("windows-1252"));
        assert_eq!(
            name(b"<meta http-equiv=\"Content-Type\" content=\"text/html; charset=Shift_JIS\">"),
            Some("Shift_JIS")
        );
        // The content without http-equiv declares nothing; attributes in any order.
        assert_eq!(name(b"<meta content=\"text/html; charset=gbk\">"), None);
        assert_eq!(
            name(b"<meta content='text/html;charset=\"big5\"' http-equiv=content-type>"),
            Some("Big5")
        );
        assert_eq!(name(b"<meta charset=utf-16le>"), Some("UTF-8"));
        assert_eq!(name(b"<meta name=description content=x><meta charset=koi8-r>"), Some("KOI8-R"));
    }

    #[test]
    fn the_prescan_skips_comments_other_tags_and_stops_at_1024_bytes() {
        assert_eq!(name(b"<!-- <meta charset=gbk> --><meta charset=big5>"), Some("Big5"));
        assert_eq!(name(b"<div title='<meta charset=gbk>'><meta charset=euc-kr>"), Some("EUC-KR"));
        assert_eq!(name(b"<p>no declaration</p>"), None);
        let mut late = vec![b' '; 1024];
        late.extend_from_slice(b"<meta charset=gbk>");
        assert_eq!(name(&late), None);
        assert_eq!(name(b"<meta charset=no-such-encoding>"), None);
    }

    #[test]
    fn bom_then_header_then_meta_then_utf8() {
        let (gbk, _, _) = encoding_rs::GBK.encode("潮汐");
        assert_eq!(decode_page(&gbk, Some("text/html; charset=gbk")), ("潮汐".to_owned(), "GBK"));
        assert_eq!(decode_page(&gbk, Some("text/html;Charset=\"GB2312\"")).0, "潮汐");
        assert_eq!(decode_page(&gbk, Some("text/html")).1, "UTF-8");
        let mut meta = b"<meta charset=gbk>".to_vec();
        meta.extend_from_slice(&gbk);
        assert_eq!(decode_page(&meta, None).0, "<meta charset=gbk>潮汐");
        // The header wins over the meta; an unknown header label falls back to the meta.
        assert_eq!(
            decode_page(b"<meta charset=gbk>caf\xe9", Some("text/html; charset=latin1")).0,
            "<meta charset=gbk>café"
        );
        assert_eq!(decode_page(&meta, Some("text/html; charset=bogus")).1, "GBK");
        // A BOM wins over everything.
        assert_eq!(
            decode_page("\u{feff}café".as_bytes(), Some("text/html; charset=windows-1252")),
            ("café".to_owned(), "UTF-8")
        );
        assert_eq!(decode_page("café".as_bytes(), None), ("café".to_owned(), "UTF-8"));
        assert_eq!(decode_page(b"caf\xe9", None).0, "caf\u{fffd}");
    }
}
