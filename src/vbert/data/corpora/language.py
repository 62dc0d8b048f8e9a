"""Language codes, and detection of untranslated pages in translated documentation.

Debian's translated documentation falls back to the English original for strings nobody has
translated yet, so a page in the ``ko`` folder may be mostly English. A page is judged by its
prose paragraphs (long lines that end like a sentence): a paragraph counts as English when it
appears verbatim in the English version of the same page or reads as English (a high share of
English function words). Languages with their own script must also be written mostly in it.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

from vbert.errors import DataError

# Regions kept in a language code because they change the written language.
_KEEP_REGION = {"pt-BR", "zh-CN", "zh-TW", "zh-HK"}
_LANG_CODE = re.compile(r"^([A-Za-z]{2,3})(?:[-_]([A-Za-z]{2}|[0-9]{3}))?(?:[@.].*)?$")

# Words frequent in English prose and rare in the other languages of the corpus ("is", "of",
# "for", "to", "in", "a", "an", "also", "will" are left out: common words of Dutch, Norwegian,
# Polish, German or Spanish).
_ENGLISH_WORDS = frozenset(
    {
        "the", "and", "with", "this", "that", "these", "those", "you", "your", "which", "have", "has",
        "are", "be", "been", "can", "it", "its", "not", "from", "would", "should", "when", "what",
        "there", "their", "they", "we", "our", "into", "than", "then", "only", "other", "such",
    }
)  # fmt: skip
_WORD = re.compile(r"[^\W\d_]+")
_SENTENCE_END = tuple(".!?:;)\"'»”。！？：；）")
PROSE_MIN_CHARS = 60


def normalize_lang(code: str) -> str:
    """``de-DE`` -> ``de``, ``pt_BR`` -> ``pt-BR``, ``zh-cn`` -> ``zh-CN``, ``en-US`` -> ``en``.

    The region is kept only where it changes the written language (pt-BR, zh-CN, zh-TW, zh-HK).
    """
    match = _LANG_CODE.match(code.strip())
    if not match:
        raise DataError(f"{code!r} is not a language code; use e.g. 'en', 'de', 'pt-BR', 'zh-CN'")
    lang, region = match.group(1).lower(), (match.group(2) or "").upper()
    full = f"{lang}-{region}"
    return full if full in _KEEP_REGION else lang


# Unicode script tests for languages not written in the Latin alphabet.
def _is_han(ch: str) -> bool:
    return "\u3400" <= ch <= "\u9fff" or "\uf900" <= ch <= "\ufaff" or "\U00020000" <= ch <= "\U0002fa1f"


def _is_kana(ch: str) -> bool:
    return "\u3040" <= ch <= "\u30ff" or "\u31f0" <= ch <= "\u31ff" or "\uff66" <= ch <= "\uff9f"


def _is_hangul(ch: str) -> bool:
    return "\uac00" <= ch <= "\ud7af" or "\u1100" <= ch <= "\u11ff" or "\u3130" <= ch <= "\u318f"


def _is_cyrillic(ch: str) -> bool:
    return "\u0400" <= ch <= "\u04ff"


def _is_greek(ch: str) -> bool:
    return "\u0370" <= ch <= "\u03ff"


def _is_arabic(ch: str) -> bool:
    return "\u0600" <= ch <= "\u06ff" or "\u0750" <= ch <= "\u077f"


def _is_hebrew(ch: str) -> bool:
    return "\u0590" <= ch <= "\u05ff"


_NATIVE_SCRIPT = {
    "ja": lambda ch: _is_kana(ch) or _is_han(ch),
    "zh": _is_han,
    "ko": _is_hangul,
    "ru": _is_cyrillic,
    "uk": _is_cyrillic,
    "be": _is_cyrillic,
    "bg": _is_cyrillic,
    "mk": _is_cyrillic,
    "sr": _is_cyrillic,
    "el": _is_greek,
    "ar": _is_arabic,
    "fa": _is_arabic,
    "he": _is_hebrew,
}


def native_script_share(text: str, lang: str) -> float | None:
    """Share of the letters of ``text`` written in ``lang``'s own script; None for Latin-script languages."""
    is_native = _NATIVE_SCRIPT.get(lang.split("-")[0])
    if is_native is None:
        return None
    letters = [ch for ch in text if ch.isalpha() or unicodedata.category(ch) == "Lo"]
    if not letters:
        return 0.0
    return sum(1 for ch in letters if is_native(ch)) / len(letters)


def prose_paragraphs(text: str) -> list[str]:
    """Lines long enough and ending like a sentence: the paragraphs translation is judged on."""
    return [
        line.strip()
        for line in text.splitlines()
        if len(line.strip()) >= PROSE_MIN_CHARS and line.rstrip().endswith(_SENTENCE_END)
    ]


def looks_english(text: str) -> bool:
    """True when at least 10% of the words of ``text`` (8 or more words) are English function words."""
    words = [w.lower() for w in _WORD.findall(text)]
    if len(words) < 8:
        return False
    return sum(1 for w in words if w in _ENGLISH_WORDS) / len(words) >= 0.10


@dataclass(frozen=True)
class TranslationCheck:
    """The verdict on one page: ``translated`` is False for pages mostly left in English."""

    translated: bool
    english_share: float
    native_share: float | None


def check_translation(
    text: str,
    lang: str,
    english_paragraphs: Iterable[str] = (),
    max_english_share: float = 0.3,
    min_native_share: float = 0.25,
) -> TranslationCheck:
    """Judge whether ``text`` (claimed to be in ``lang``) is really translated.

    ``english_paragraphs`` are the prose paragraphs of the English version of the same page
    (empty when there is none). A page whose share of English prose paragraphs is at least
    ``max_english_share``, or (for non-Latin scripts) whose native-script letter share is
    below ``min_native_share``, is not translated.
    """
    native = native_script_share(text, lang)
    if normalize_lang(lang) == "en":
        return TranslationCheck(True, 1.0, None)
    reference = set(english_paragraphs)
    paragraphs = prose_paragraphs(text) or [line for line in text.splitlines() if len(line) >= 20]
    if paragraphs:
        english = sum(1 for p in paragraphs if p in reference or looks_english(p))
        share = english / len(paragraphs)
    else:
        share = 1.0 if looks_english(text) else 0.0
    translated = share < max_english_share and (native is None or native >= min_native_share)
    return TranslationCheck(translated, share, native)
