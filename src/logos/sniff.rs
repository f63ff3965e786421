//! What kind of image a logo body is, from its first bytes: PNG, JPEG, GIF and WebP by their
//! magic numbers, SVG by an `<svg` tag near the start of a text body. The answer picks the
//! file's extension; a body that is none of these (an HTML error page, a captive portal, JSON)
//! is rejected, because a player shown such a "logo" shows nothing or a broken image.

/// How many leading bytes [`sniff`] looks at: enough for any magic number and for the XML
/// prolog, comments and doctype that may come before `<svg`.
pub const SNIFF_LEN: usize = 1024;

/// An image format lineup accepts as a logo.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageKind {
    Png,
    Jpeg,
    Gif,
    Webp,
    Svg,
}

impl ImageKind {
    /// The file extension the cached copy gets (so web servers send the right type).
    pub fn extension(self) -> &'static str {
        match self {
            ImageKind::Png => "png",
            ImageKind::Jpeg => "jpg",
            ImageKind::Gif => "gif",
            ImageKind::Webp => "webp",
            ImageKind::Svg => "svg",
        }
    }
}

/// The image kind of a body whose first bytes (up to [`SNIFF_LEN`]) are `head`, or `None` when
/// it is not an image lineup accepts.
pub fn sniff(head: &[u8]) -> Option<ImageKind> {
    let head = &head[..head.len().min(SNIFF_LEN)];
    if head.starts_with(b"\x89PNG\r\n\x1a\n") {
        return Some(ImageKind::Png);
    }
    if head.starts_with(b"\xff\xd8\xff") {
        return Some(ImageKind::Jpeg);
    }
    if head.starts_with(b"GIF87a") || head.starts_with(b"GIF89a") {
        return Some(ImageKind::Gif);
    }
    if head.len() >= 12 && &head[..4] == b"RIFF" && &head[8..12] == b"WEBP" {
        return Some(ImageKind::Webp);
    }
    is_svg(head).then_some(ImageKind::Svg)
}

/// A text body that starts like markup and has an `<svg` tag in its first KB, and is not an
/// HTML page (which may well hold an inline `<svg>` icon near its top).
fn is_svg(head: &[u8]) -> bool {
    let text = head.strip_prefix(b"\xef\xbb\xbf").unwrap_or(head);
    let Some(first) = text.iter().position(|b| !b.is_ascii_whitespace()) else {
        return false;
    };
    if text[first] != b'<' {
        return false;
    }
    let lower = text.to_ascii_lowercase();
    let has = |needle: &[u8]| lower.windows(needle.len()).any(|w| w == needle);
    has(b"<svg") && !has(b"<html") && !has(b"<!doctype html")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn magic_numbers() {
        assert_eq!(
            sniff(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"),
            Some(ImageKind::Png)
        );
        assert_eq!(sniff(b"\xff\xd8\xff\xe0\0\x10JFIF"), Some(ImageKind::Jpeg));
        assert_eq!(sniff(b"GIF89a\x01\0\x01\0"), Some(ImageKind::Gif));
        assert_eq!(sniff(b"GIF87a"), Some(ImageKind::Gif));
        assert_eq!(sniff(b"RIFF\x24\0\0\0WEBPVP8 "), Some(ImageKind::Webp));
        assert_eq!(ImageKind::Jpeg.extension(), "jpg");
    }

    #[test]
    fn svg_with_prolog_bom_and_comments() {
        assert_eq!(
            sniff(b"<svg xmlns=\"http://www.w3.org/2000/svg\"/>"),
            Some(ImageKind::Svg)
        );
        let prolog = b"\xef\xbb\xbf\n  <?xml version=\"1.0\"?>\n<!-- made by hand -->\n\
            <!DOCTYPE svg PUBLIC \"-//W3C//DTD SVG 1.1//EN\" \"x\">\n<SVG width=\"10\"></SVG>";
        assert_eq!(sniff(prolog), Some(ImageKind::Svg));
    }

    #[test]
    fn svg_tag_must_be_in_the_first_kilobyte() {
        let mut late = b"<?xml version=\"1.0\"?>".to_vec();
        late.extend(std::iter::repeat_n(b' ', SNIFF_LEN));
        late.extend_from_slice(b"<svg/>");
        assert_eq!(sniff(&late), None);
    }

    #[test]
    fn rejects_what_is_not_an_image() {
        assert_eq!(sniff(b""), None);
        assert_eq!(sniff(b"<html><body>Not found</body></html>"), None);
        // An HTML page with an inline icon is still a page.
        assert_eq!(
            sniff(b"<!DOCTYPE html><head></head><body><svg></svg></body>"),
            None
        );
        assert_eq!(sniff(b"{\"error\": \"<svg\"}"), None);
        assert_eq!(sniff(b"\x89PN"), None);
        assert_eq!(sniff(b"RIFF\x24\0\0\0WAVEfmt "), None);
        assert_eq!(sniff(b"\0\0\0\x18ftypmp42"), None);
    }
}
