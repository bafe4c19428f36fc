"""Plain English prose out of documentation files: HTML pages, Perl POD and plain text.

Documentation mixes prose with code, option tables, navigation and translations. Rather than a parser per
format that knows every construct, each format is reduced to paragraphs (block elements, blank-line
separated text), and one test keeps the paragraphs that read as English sentences (``is_prose``): mostly
letters, few code characters, enough of the commonest English function words, ending like a sentence.
The thresholds were set by reading kept and dropped paragraphs of the packages in ``english.COMPONENTS``.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

# The most frequent English function words. In English prose they are ~40% of the words; in code,
# tables and identifiers lists almost none; in other languages few of them occur.
FUNCTION_WORDS = frozenset(
    "the of and to a in is that it for as with be on by this are or an not from at which can if you "
    "will but have has was were they their there these its when all more one may than other into only "
    "such so we he his been would also must should what who each used use".split()
)
CODE_CHARS = frozenset("{}[]<>;=|\\$#@_~^`*")
SENTENCE_END = re.compile(r"""[.!?:;]["')\]]*$""")
_SPACES = re.compile(r"\s+")

# Block-level HTML elements: text on either side of one belongs to different paragraphs.
_BLOCK_TAGS = frozenset(
    "p div li ul ol dl dt dd h1 h2 h3 h4 h5 h6 br hr tr td th table blockquote section article title "
    "caption figcaption header footer aside".split()
)
# Elements whose text is never prose: code listings, scripts, page furniture.
_SKIP_TAGS = frozenset("pre script style head nav select textarea math svg".split())
_VOID_TAGS = frozenset("area base br col embed hr img input link meta source track wbr".split())
# Sphinx and DocBook navigation blocks, by class (the page body is kept, the chrome around it is not).
_SKIP_CLASSES = frozenset(
    "sphinxsidebar related footer navheader navfooter toc highlight headerlink sig sig-object "
    "literal-block doctest".split()
)


def is_prose(paragraph: str, *, min_words: int = 8) -> bool:
    """Whether ``paragraph`` (whitespace already collapsed) reads as English sentences.

    Kept: at least ``min_words`` words, letters and spaces at least 85% of the characters, code
    characters at most 2%, function words at least 22% of the words, a sentence-like ending.
    """
    words = paragraph.split()
    if len(words) < min_words or not SENTENCE_END.search(paragraph):
        return False
    letters = sum(ch.isalpha() or ch == " " for ch in paragraph)
    code = sum(ch in CODE_CHARS for ch in paragraph)
    if letters < 0.85 * len(paragraph) or code > 0.02 * len(paragraph):
        return False
    function = sum(word.strip(".,;:()\"'").lower() in FUNCTION_WORDS for word in words)
    return function >= 0.22 * len(words)


def prose_paragraphs(paragraphs: list[str]) -> list[str]:
    """The paragraphs that pass ``is_prose``, whitespace collapsed, in their order."""
    cleaned = (_SPACES.sub(" ", p).strip() for p in paragraphs)
    return [p for p in cleaned if is_prose(p)]


class _HTMLParagraphs(HTMLParser):
    """Collects the text of an HTML page as paragraphs, skipping code, scripts and navigation."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.paragraphs: list[str] = []
        self._current: list[str] = []
        self._skip_stack: list[str] = []  # open elements being skipped (their tag names)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self._skip_stack:
            if tag == self._skip_stack[-1]:
                self._skip_stack.append(tag)  # a nested element of the skipped kind: count it
            return
        classes = set((dict(attrs).get("class") or "").split())
        if tag not in _VOID_TAGS and (tag in _SKIP_TAGS or classes & _SKIP_CLASSES):
            self._break()
            self._skip_stack.append(tag)
        elif tag in _BLOCK_TAGS:
            self._break()

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if not self._skip_stack and tag in _BLOCK_TAGS:
            self._break()

    def handle_endtag(self, tag: str) -> None:
        if self._skip_stack:
            if tag == self._skip_stack[-1]:
                self._skip_stack.pop()
            return
        if tag in _BLOCK_TAGS:
            self._break()

    def handle_data(self, data: str) -> None:
        if not self._skip_stack:
            self._current.append(data)

    def _break(self) -> None:
        text = "".join(self._current).strip()
        if text:
            self.paragraphs.append(text.replace("\u00b6", ""))  # Sphinx's permalink sign
        self._current = []

    def close(self) -> None:
        super().close()
        self._break()


def html_paragraphs(html: str) -> list[str]:
    """The paragraphs of an HTML page (before the prose test)."""
    parser = _HTMLParagraphs()
    parser.feed(html)
    parser.close()
    return parser.paragraphs


# POD formatting codes (perlpod): B<bold>, C<code>, I<italic>, F<file>, S<no break>, L<link>, E<escape>,
# X<index>, Z<>; also the B<< ... >> forms. Links keep their text (before "|") or their target.
_POD_INDEX = re.compile(r"[XZ]<+[^<>]*>+")
_POD_LINK = re.compile(r"L<+\s*([^<>|]*?)(?:\|[^<>]*)?\s*>+")
_POD_ESCAPES = {"lt": "<", "gt": ">", "verbar": "|", "sol": "/", "quot": '"', "amp": "&"}
_POD_ESCAPE = re.compile(r"E<([a-z]+|\d+)>")
_POD_CODE = re.compile(r"[BCIFS]<+\s*([^<>]*?)\s*>+")


def pod_paragraphs(pod: str) -> list[str]:
    """The text paragraphs of a POD document: commands (``=head1``) and verbatim (indented) blocks dropped."""
    paragraphs = []
    for block in re.split(r"\n\s*\n", pod):
        if not block.strip() or block.startswith("=") or block[:1].isspace():
            continue
        text = _POD_INDEX.sub("", block)
        text = _POD_LINK.sub(lambda m: m.group(1).split("/")[-1].strip('"'), text)
        for _ in range(3):  # codes nest (B<C<x>>): peel from the inside out
            text = _POD_CODE.sub(r"\1", text)
        paragraphs.append(_POD_ESCAPE.sub(lambda m: _pod_escape(m.group(1)), text))
    return paragraphs


def _pod_escape(name: str) -> str:
    return chr(int(name)) if name.isdigit() else _POD_ESCAPES.get(name, "")


_SENTENCE_BREAK = re.compile(r"(?<=[.!?])\s+(?=[A-Z\"'(])")


def sentence_paragraphs(text: str, target_chars: int = 1500) -> list[str]:
    """Text without paragraph breaks (one speech per line) cut into paragraphs of about ``target_chars``
    at sentence ends, so that the prose test and the document cutting have units to work on."""
    paragraphs, current, size = [], [], 0
    for sentence in _SENTENCE_BREAK.split(_SPACES.sub(" ", text).strip()):
        current.append(sentence)
        size += len(sentence) + 1
        if size >= target_chars:
            paragraphs.append(" ".join(current))
            current, size = [], 0
    if current:
        paragraphs.append(" ".join(current))
    return paragraphs


def cut_document(paragraphs: list[str], max_chars: int) -> list[str]:
    """Paragraphs joined into documents of at most ``max_chars`` (a longer paragraph stays whole), cut
    only between paragraphs, so that no document is a fragment of a sentence."""
    documents, current, size = [], [], 0
    for paragraph in paragraphs:
        if current and size + len(paragraph) > max_chars:
            documents.append("\n\n".join(current))
            current, size = [], 0
        current.append(paragraph)
        size += len(paragraph) + 2
    if current:
        documents.append("\n\n".join(current))
    return documents
