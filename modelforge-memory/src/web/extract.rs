//! Readable text from a web page: the main content's paragraphs, without navigation, scripts,
//! styles, headers, footers, forms and asides.
//!
//! The page is parsed by html5ever (through `scraper`), the HTML parser of Servo, which repairs
//! broken markup the way browsers do, so the text is what a reader sees, not what a regex
//! guesses. The main content is the first `<article>`, else `<main>` or `role="main"`, else
//! the body.

use ego_tree::iter::Edge;
use scraper::{ElementRef, Html, Node, Selector};

/// A page's title and readable paragraphs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Extracted {
    /// The `<title>`, or the first `<h1>`, trimmed; may be empty.
    pub title: String,
    /// Blocks of text in reading order, whitespace collapsed, none empty.
    pub paragraphs: Vec<String>,
}

/// Elements whose whole subtree is never text for a reader.
const SKIPPED: &[&str] = &[
    "script", "style", "noscript", "template", "nav", "footer", "header", "aside", "form", "button",
    "select", "svg", "iframe", "canvas", "object", "head", "menu", "dialog",
];

/// Roles of landmarks that are not the content.
const SKIPPED_ROLES: &[&str] =
    &["navigation", "banner", "contentinfo", "complementary", "search", "menu", "dialog"];

/// Elements that end a block of text.
const BLOCKS: &[&str] = &[
    "p",
    "div",
    "section",
    "article",
    "main",
    "li",
    "ul",
    "ol",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "pre",
    "blockquote",
    "br",
    "tr",
    "td",
    "th",
    "table",
    "dd",
    "dt",
    "dl",
    "figcaption",
    "hr",
];

/// The title and readable paragraphs of `html`.
pub fn extract(html: &str) -> Extracted {
    let document = Html::parse_document(html);
    let first = |css: &str| Selector::parse(css).ok().and_then(|s| document.select(&s).next());
    let title = first("title")
        .or_else(|| first("h1"))
        .map(|e| collapse(&e.text().collect::<String>()))
        .unwrap_or_default();
    let root = first("article")
        .or_else(|| first("main"))
        .or_else(|| first("[role=main]"))
        .or_else(|| first("body"))
        .unwrap_or_else(|| document.root_element());
    Extracted { title, paragraphs: paragraphs(root) }
}

fn paragraphs(root: ElementRef<'_>) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut skipping = None;
    let mut flush = |current: &mut String| {
        let text = collapse(current);
        if !text.is_empty() {
            out.push(text);
        }
        current.clear();
    };
    for edge in root.traverse() {
        match edge {
            Edge::Open(node) if skipping.is_none() => match node.value() {
                Node::Text(text) => current.push_str(text),
                Node::Element(element) => {
                    let name = element.name();
                    let role = element.attr("role").unwrap_or_default();
                    let hidden =
                        element.attr("hidden").is_some() || element.attr("aria-hidden") == Some("true");
                    if SKIPPED.contains(&name) || SKIPPED_ROLES.contains(&role) || hidden {
                        skipping = Some(node.id());
                    } else if BLOCKS.contains(&name) {
                        flush(&mut current);
                    } else {
                        // Inline elements (links, emphasis) run into their neighbours; a space
                        // keeps words apart where markup alone separated them.
                        current.push(' ');
                    }
                }
                _ => {}
            },
            Edge::Close(node) => {
                if skipping == Some(node.id()) {
                    skipping = None;
                } else if skipping.is_none()
                    && node.value().as_element().is_some_and(|e| BLOCKS.contains(&e.name()))
                {
                    flush(&mut current);
                }
            }
            Edge::Open(_) => {}
        }
    }
    flush(&mut current);
    out
}

/// `text` with runs of whitespace as one space, trimmed, and no space before punctuation left
/// by the spaces added around inline elements.
fn collapse(text: &str) -> String {
    let joined = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut out = String::with_capacity(joined.len());
    let mut chars = joined.chars().peekable();
    while let Some(c) = chars.next() {
        if c == ' ' && chars.peek().is_some_and(|n| matches!(n, '.' | ',' | ';' | ':' | '!' | '?' | ')')) {
            continue;
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_article_is_kept_and_the_chrome_dropped() {
        let html = r#"<html><head><title> Tides  explained </title><style>p{}</style></head><body>
            <header>Site name</header><nav><a href="/">Home</a> <a href="/a">About</a></nav>
            <article><h1>Tides</h1><p>Tides are caused by the <a href="/moon">Moon</a>.</p>
            <script>var tracking = 1;</script><div role="navigation">Next page</div>
            <p>Spring tides come with a new or full moon.</p></article>
            <footer>Copyright 2024</footer></body></html>"#;
        let page = extract(html);
        assert_eq!(page.title, "Tides explained");
        assert_eq!(
            page.paragraphs,
            ["Tides", "Tides are caused by the Moon.", "Spring tides come with a new or full moon."]
        );
    }

    #[test]
    fn without_an_article_the_body_is_read_and_broken_markup_repaired() {
        let page = extract("<body><p>One <b>bold</p><p>Two<div>Three</div><aside>ad</aside>");
        assert_eq!(page.paragraphs, ["One bold", "Two", "Three"]);
        assert_eq!(page.title, "");
    }
}
