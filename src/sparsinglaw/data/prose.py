"""Plain English prose out of documentation files: HTML pages, Perl POD and plain text.

Each format is reduced to paragraphs, and one test (``is_prose``) keeps those that read as English
sentences: mostly letters, few code characters, enough common function words, a sentence-like ending."""

from __future__ import annotations

import functools
import re

# The most frequent English function words. In English prose they are ~40% of the words; in code,
# tables and identifiers lists almost none; in other languages few of them occur.
FUNCTION_WORDS = frozenset(
    "the of and to a in is that it for as with be on by this are or an not from at which can if you "
    "will but have has was were they their there these its when all more one may than other into only "
    "such so we he his been would also must should what who each used use".split()
)
CODE_CHARS = "{}[]<>;=|\\$#@_~^`*"
_CODE_CHAR = re.compile("[" + re.escape(CODE_CHARS) + "]")
_LETTER_OR_SPACE = re.compile(r"[^\W\d_]| ")
SENTENCE_END = re.compile(r"""[.!?:;]["')\]]*$""")
_SPACES = re.compile(r"\s+")

# Block-level HTML elements: text on either side of one belongs to different paragraphs.
_BLOCK_TAGS = frozenset(
    "p div li ul ol dl dt dd h1 h2 h3 h4 h5 h6 br hr tr td th table blockquote section article title "
    "caption figcaption header footer aside".split()
)
# Elements whose text is never prose: code listings, scripts, page furniture.
_SKIP_TAGS = frozenset("pre script style head nav select textarea math svg".split())
# Sphinx and DocBook navigation blocks, by class (the page body is kept, the chrome around it is not).
_SKIP_CLASSES = frozenset(
    "sphinxsidebar related footer navheader navfooter toc highlight headerlink sig sig-object "
    "literal-block doctest".split()
)


def is_prose(paragraph: str, *, min_words: int = 8) -> bool:
    """Whether ``paragraph`` (whitespace collapsed) reads as English sentences: enough words, mostly letters,
    few code characters, enough function words, a sentence-like ending."""
    words = paragraph.split()
    if len(words) < min_words or not SENTENCE_END.search(paragraph):
        return False
    letters = len(_LETTER_OR_SPACE.findall(paragraph))
    code = len(_CODE_CHAR.findall(paragraph))
    if letters < 0.85 * len(paragraph) or code > 0.02 * len(paragraph):
        return False
    function = sum(word.strip(".,;:()\"'").lower() in FUNCTION_WORDS for word in words)
    return function >= 0.22 * len(words)


def prose_paragraphs(paragraphs: list[str]) -> list[str]:
    """The paragraphs that pass ``is_prose``, whitespace collapsed, in their order."""
    cleaned = (_SPACES.sub(" ", p).strip() for p in paragraphs)
    return [p for p in cleaned if is_prose(p)]


def html_paragraphs(html: str) -> list[str]:
    """The paragraphs of an HTML page (before the prose test): text split at block elements, with code,
    scripts and navigation (``_SKIP_TAGS``, ``_SKIP_CLASSES``) left out; one walk over lxml's tree."""
    from lxml import etree
    from lxml import html as lxml_html

    try:
        root = lxml_html.document_fromstring(html.encode("utf-8"), parser=_html_parser())
    except (etree.ParserError, ValueError):  # an empty or unreadable page holds no prose
        return []
    paragraphs: list[str] = []
    current: list[str] = []
    walker = etree.iterwalk(root, events=("start", "end"))
    for event, element in walker:
        tag = element.tag if isinstance(element.tag, str) else ""  # comments and processing instructions
        skipped = not tag or tag in _SKIP_TAGS or bool(set((element.get("class") or "").split()) & _SKIP_CLASSES)
        if tag in _BLOCK_TAGS or tag in _SKIP_TAGS:  # a skipped inline element (a permalink) joins its sides
            _close_paragraph(current, paragraphs)
        if event == "start":
            if skipped:
                walker.skip_subtree()
            elif element.text:
                current.append(element.text)
        elif element.tail:
            current.append(element.tail)
    _close_paragraph(current, paragraphs)
    return paragraphs


@functools.lru_cache(maxsize=1)
def _html_parser():
    from lxml import html as lxml_html

    return lxml_html.HTMLParser(encoding="utf-8", remove_comments=True, remove_pis=True)


def _close_paragraph(current: list[str], paragraphs: list[str]) -> None:
    text = "".join(current).strip()
    if text:
        paragraphs.append(text.replace("\u00b6", ""))  # Sphinx's permalink sign
    current.clear()


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
