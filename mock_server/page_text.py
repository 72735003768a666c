"""A page's HTML as readable text or Markdown, for the `content` action and the one-shot
`content` endpoint.

Plain functions over an HTML string (BeautifulSoup and markdownify); CPU-bound, so callers run
them in a thread. A thread cannot be abandoned, so the input is capped instead
(`MAX_CONVERTED_HTML_CHARS`, checked by `require_convertible`): a conversion always ends within
a few seconds and a few hundred MB, even after its action's 504. Imports neither Playwright nor
aiohttp.
"""

from __future__ import annotations

import re

from bs4 import BeautifulSoup
from markdownify import markdownify

from mock_server.errors import PayloadTooLargeError

# The most HTML (in characters) converted to text or Markdown: about 4 s and 250 MB of peak
# memory on one core. A bigger page is answered 413 (its HTML can still be read as is).
MAX_CONVERTED_HTML_CHARS = 2 * 1024 * 1024

_BLOCK_TAGS = (
    "address", "article", "aside", "blockquote", "br", "dd", "details", "dialog", "div", "dl",
    "dt", "fieldset", "figcaption", "figure", "footer", "form", "h1", "h2", "h3", "h4", "h5",
    "h6", "header", "hr", "li", "main", "nav", "ol", "p", "pre", "section", "summary", "table",
    "td", "th", "tr", "ul",
)  # fmt: skip
_UNREADABLE_TAGS = ("script", "style", "noscript", "template", "head", "svg", "iframe")


def require_convertible(html: str, what: str) -> None:
    """413 when `html` is over the conversion cap; `what` names the conversion asked for."""
    if len(html) > MAX_CONVERTED_HTML_CHARS:
        raise PayloadTooLargeError(
            f"The page's HTML is {len(html):,} characters; {what} converts at most "
            f'{MAX_CONVERTED_HTML_CHARS:,} (read it with format "html" instead)'
        )


def _readable_soup(html: str) -> BeautifulSoup:
    soup = BeautifulSoup(html, "html.parser")
    for tag in soup.find_all(_UNREADABLE_TAGS):
        tag.decompose()
    return soup


def collapse_lines(text: str) -> str:
    """Whitespace collapsed within each line; empty lines dropped."""
    lines = (" ".join(line.split()) for line in text.splitlines())
    return "\n".join(line for line in lines if line)


def html_to_text(html: str) -> str:
    """The readable text: no markup, scripts or styles, one block element per line."""
    soup = _readable_soup(html)
    # Block elements start and end a line; inline ones flow within it.
    for tag in soup.find_all(_BLOCK_TAGS):
        # Inside the element rather than around it: inserting beside an element costs a scan of
        # its parent's children (quadratic on a long list); the text comes out the same.
        tag.insert(0, "\n")
        tag.append("\n")
    return collapse_lines(soup.get_text())


def html_to_markdown(html: str) -> str:
    """markdownify of the body, without scripts and styles."""
    soup = _readable_soup(html)
    body = soup.body or soup
    markdown = markdownify(str(body), heading_style="ATX")
    return re.sub(r"\n{3,}", "\n\n", markdown).strip()
