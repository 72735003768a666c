"""A page's HTML as readable text or Markdown, for the `content` action and the one-shot
`content` endpoint.

Plain functions over an HTML string (BeautifulSoup and markdownify); CPU-bound, so callers run
them in a thread. Imports neither Playwright nor aiohttp.
"""

from __future__ import annotations

import re

from bs4 import BeautifulSoup
from markdownify import markdownify

_BLOCK_TAGS = (
    "address", "article", "aside", "blockquote", "br", "dd", "details", "dialog", "div", "dl",
    "dt", "fieldset", "figcaption", "figure", "footer", "form", "h1", "h2", "h3", "h4", "h5",
    "h6", "header", "hr", "li", "main", "nav", "ol", "p", "pre", "section", "summary", "table",
    "td", "th", "tr", "ul",
)  # fmt: skip
_UNREADABLE_TAGS = ("script", "style", "noscript", "template", "head", "svg", "iframe")


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
        tag.insert_before("\n")
        tag.insert_after("\n")
    return collapse_lines(soup.get_text())


def html_to_markdown(html: str) -> str:
    """markdownify of the body, without scripts and styles."""
    soup = _readable_soup(html)
    body = soup.body or soup
    markdown = markdownify(str(body), heading_style="ATX")
    return re.sub(r"\n{3,}", "\n\n", markdown).strip()
