"""Formatted text as Telegram parses it: HTML, MarkdownV2 and Markdown into UTF-16 entities."""

from __future__ import annotations

import re
from typing import Any

from tests.support.botapi.api import ApiError


def utf16_len(text: str) -> int:
    """Telegram measures lengths and entity offsets in UTF-16 code units."""
    return len(text.encode("utf-16-le")) // 2


def _entities_error(detail: str) -> ApiError:
    return ApiError(f"Bad Request: can't parse entities: {detail}")


_HTML_TAGS = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "tg-spoiler": "spoiler",
    "span": "spoiler",
    "a": "text_link",
    "code": "code",
    "pre": "pre",
    "blockquote": "blockquote",
    "tg-emoji": "custom_emoji",
}
_HTML_NAMED = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
_HTML_TAG = re.compile(r"<(/?)([A-Za-z0-9-]*)([^<>]*)>")
_HTML_CHAR_REF = re.compile(r"&(#[0-9]{1,7}|#x[0-9A-Fa-f]{1,6}|[A-Za-z]+);")
_MD2_RESERVED = frozenset("_*[]()~`>#+-=|{}.!")
_MD2_MARKERS = {
    "*": "bold",
    "_": "italic",
    "__": "underline",
    "~": "strikethrough",
    "||": "spoiler",
}


def _html_attr(attrs: str, name: str) -> str | None:
    match = re.search(rf"""{name}\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+))""", attrs)
    if match is None:
        return None
    return _html_unescape(next(g for g in match.groups() if g is not None))


def _html_unescape(text: str) -> str:
    def replace(match: re.Match[str]) -> str:
        ref = match.group(1)
        if ref.startswith("#x"):
            return chr(int(ref[2:], 16))
        if ref.startswith("#"):
            return chr(int(ref[1:]))
        return _HTML_NAMED.get(ref, match.group(0))

    return _HTML_CHAR_REF.sub(replace, text)


def _parse_html(src: str) -> tuple[str, list[dict[str, Any]]]:
    """Telegram's HTML subset: only its tags, ``&lt; &gt; &amp; &quot;`` and numeric refs."""
    out: list[str] = []
    pos = 0
    entities: list[dict[str, Any]] = []
    stack: list[tuple[str, dict[str, Any] | None]] = []
    i = 0
    while i < len(src):
        char = src[i]
        if char == "<":
            byte_offset = len(src[:i].encode())
            match = _HTML_TAG.match(src, i)
            if match is None:
                raise _entities_error(f"Unclosed start tag at byte offset {byte_offset}")
            closing, name, attrs = match.group(1), match.group(2).lower(), match.group(3)
            i = match.end()
            if closing:
                if not stack:
                    raise _entities_error(f"Unexpected end tag at byte offset {byte_offset}")
                open_name, entity = stack.pop()
                if name != open_name:
                    raise _entities_error(
                        f"Unmatched end tag at byte offset {byte_offset}, expected "
                        f'"</{open_name}>", found "</{name}>"'
                    )
                if entity is not None and pos > entity["offset"]:
                    entity["length"] = pos - entity["offset"]
                    entities.append(entity)
                continue
            kind = _HTML_TAGS.get(name)
            if kind is None or (name == "span" and _html_attr(attrs, "class") != "tg-spoiler"):
                raise _entities_error(
                    f'Unsupported start tag "{name}" at byte offset {byte_offset}'
                )
            entity: dict[str, Any] | None = {"type": kind, "offset": pos}
            if name == "a":
                entity["url"] = _html_attr(attrs, "href") or ""
            elif name == "tg-emoji":
                entity["custom_emoji_id"] = _html_attr(attrs, "emoji-id") or ""
            elif name == "blockquote" and re.search(r"\bexpandable\b", attrs):
                entity["type"] = "expandable_blockquote"
            elif name == "code" and stack and stack[-1][0] == "pre":
                # <pre><code class="language-x"> is one pre entity with a language.
                language = (_html_attr(attrs, "class") or "").removeprefix("language-")
                pre_entity = stack[-1][1]
                if language and pre_entity is not None:
                    pre_entity["language"] = language
                entity = None
            stack.append((name, entity))
            continue
        if char == "&" and (ref := _HTML_CHAR_REF.match(src, i)):
            text = _html_unescape(ref.group(0))
            i = ref.end()
        else:
            text = char
            i += 1
        out.append(text)
        pos += utf16_len(text)
    if stack:
        raise _entities_error(f'Can\'t find end tag corresponding to start tag "{stack[-1][0]}"')
    return "".join(out), entities


def _scan_until(src: str, start: int, end_marker: str) -> tuple[str, int] | None:
    """Text up to an unescaped ``end_marker`` (backslash escapes removed) and its index."""
    out: list[str] = []
    i = start
    while i < len(src):
        if src[i] == "\\" and i + 1 < len(src):
            out.append(src[i + 1])
            i += 2
        elif src.startswith(end_marker, i):
            return "".join(out), i
        else:
            out.append(src[i])
            i += 1
    return None


def _parse_markdown_v2(src: str) -> tuple[str, list[dict[str, Any]]]:
    """MarkdownV2, including its rule that reserved characters must be escaped."""
    out: list[str] = []
    pos = 0
    entities: list[dict[str, Any]] = []
    open_markers: dict[str, tuple[int, int]] = {}
    links: list[int] = []
    quote_start: int | None = None
    i = 0

    def emit(text: str) -> None:
        nonlocal pos
        out.append(text)
        pos += utf16_len(text)

    def add(entity_type: str, start: int, **extra: Any) -> None:
        if pos > start:
            entities.append({"type": entity_type, "offset": start, "length": pos - start, **extra})

    def byte_offset(index: int) -> int:
        return len(src[:index].encode())

    while i < len(src):
        char = src[i]
        if char == "\\":
            if i + 1 < len(src) and 0 < ord(src[i + 1]) <= 126:
                emit(src[i + 1])
                i += 2
                continue
            raise _entities_error(
                "Character '\\' is reserved and must be escaped with the preceding '\\'"
            )
        if char == "`":
            fence = "```" if src.startswith("```", i) else "`"
            scanned = _scan_until(src, i + len(fence), fence)
            if scanned is None:
                name = "Pre" if fence == "```" else "Code"
                raise _entities_error(
                    f"Can't find end of {name} entity at byte offset {byte_offset(i)}"
                )
            body, end = scanned
            start = pos
            if fence == "```":
                language, newline, rest = body.partition("\n")
                if newline and language and " " not in language:
                    body = rest
                    emit(body)
                    add("pre", start, language=language)
                else:
                    emit(body)
                    add("pre", start)
            else:
                emit(body)
                add("code", start)
            i = end + len(fence)
            continue
        marker = next((m for m in ("__", "||") if src.startswith(m, i)), None)
        if marker is None and char in "*_~":
            marker = char
        if marker is not None:
            if marker in open_markers:
                add(_MD2_MARKERS[marker], open_markers.pop(marker)[0])
            else:
                open_markers[marker] = (pos, i)
            i += len(marker)
            continue
        if char == "[":
            links.append(pos)
            i += 1
            continue
        if char == "]" and links:
            scanned = _scan_until(src, i + 2, ")") if src.startswith("(", i + 1) else None
            if scanned is None:
                raise _entities_error(f"Can't find end of a URL at byte offset {byte_offset(i)}")
            url, end = scanned
            add("text_link", links.pop(), url=url)
            i = end + 1
            continue
        if char == ">" and (i == 0 or src[i - 1] == "\n"):
            if quote_start is None:
                quote_start = pos
            i += 1
            continue
        if char in _MD2_RESERVED:
            raise _entities_error(
                f"Character '{char}' is reserved and must be escaped with the preceding '\\'"
            )
        if char == "\n" and quote_start is not None and not src.startswith(">", i + 1):
            add("blockquote", quote_start)
            quote_start = None
        emit(char)
        i += 1
    if quote_start is not None:
        add("blockquote", quote_start)
    if open_markers:
        marker, (_, index) = next(iter(open_markers.items()))
        name = _MD2_MARKERS[marker].capitalize()
        raise _entities_error(
            f"Can't find end of {name} entity at byte offset {byte_offset(index)}"
        )
    if links:
        raise _entities_error("Can't find end of TextUrl entity")
    return "".join(out), entities


def _parse_markdown(src: str) -> tuple[str, list[dict[str, Any]]]:
    """Legacy Markdown: ``*bold* _italic_ `code` ```pre``` [text](url)``, no nesting."""
    out: list[str] = []
    pos = 0
    entities: list[dict[str, Any]] = []
    i = 0
    while i < len(src):
        char = src[i]
        if char == "\\" and i + 1 < len(src) and src[i + 1] in "_*`[":
            text = src[i + 1]
            i += 2
        elif char in "*_`[":
            marker = "```" if src.startswith("```", i) else char
            closing = "]" if marker == "[" else marker
            end = src.find(closing, i + len(marker))
            if end < 0:
                raise _entities_error(
                    f"Can't find end of the entity starting at byte offset {len(src[:i].encode())}"
                )
            text = src[i + len(marker) : end]
            entity: dict[str, Any] = {
                "type": {"*": "bold", "_": "italic", "`": "code", "```": "pre", "[": "text_link"}[
                    marker
                ],
                "offset": pos,
            }
            i = end + len(closing)
            if marker == "[":
                if not src.startswith("(", i) or (url_end := src.find(")", i)) < 0:
                    raise _entities_error("Can't find end of the URL")
                entity["url"] = src[i + 1 : url_end]
                i = url_end + 1
            if text:
                entity["length"] = utf16_len(text)
                entities.append(entity)
        else:
            text = char
            i += 1
        out.append(text)
        pos += utf16_len(text)
    return "".join(out), entities


_PARSERS = {"html": _parse_html, "markdownv2": _parse_markdown_v2, "markdown": _parse_markdown}


def format_text(
    text: Any, parse_mode: Any, entities: Any, *, limit: int, too_long: str
) -> tuple[str, list[dict[str, Any]]]:
    """Apply ``parse_mode`` (or explicit entities) and the length limit, like Telegram."""
    text = "" if text is None else str(text)
    if entities is not None:
        if not isinstance(entities, list) or not all(
            isinstance(e, dict)
            and isinstance(e.get("offset"), int)
            and isinstance(e.get("length"), int)
            and isinstance(e.get("type"), str)
            for e in entities
        ):
            raise ApiError("Bad Request: can't parse entities JSON object")
        parsed = (text, entities)
    elif parse_mode:
        parser = _PARSERS.get(str(parse_mode).lower())
        if parser is None:
            raise ApiError(f'Bad Request: unsupported parse_mode "{parse_mode}"')
        parsed = parser(text)
    else:
        parsed = (text, [])
    if utf16_len(parsed[0]) > limit:
        raise ApiError(too_long)
    return parsed[0], sorted(parsed[1], key=lambda e: (e["offset"], -e.get("length", 0)))


def command_entities(text: str) -> list[dict[str, Any]]:
    """Telegram marks a leading ``/command`` (with optional ``@bot``) as ``bot_command``."""
    match = re.match(r"/[A-Za-z0-9_]{1,32}(@[A-Za-z0-9_]+)?", text)
    return [{"type": "bot_command", "offset": 0, "length": len(match.group(0))}] if match else []


# Telegram usernames are 5-32 characters, but short bot names such as @gif are linked too;
# an ``@`` inside a word (e-mail addresses, ``/cmd@bot``) is not a mention.
_MENTION = re.compile(r"(?<![\w@])@[A-Za-z0-9_]{3,32}(?![\w@])")


def mention_entities(text: str) -> list[dict[str, Any]]:
    """``mention`` entities for the ``@username``s in a user's text, offsets in UTF-16."""
    return [
        {"type": "mention", "offset": utf16_len(text[: m.start()]), "length": utf16_len(m[0])}
        for m in _MENTION.finditer(text)
    ]


def user_text_entities(text: str) -> list[dict[str, Any]]:
    """The entities a Telegram client attaches to plain typed text or a caption."""
    return command_entities(text) + mention_entities(text)
