import json
import secrets

from rest_framework import renderers


class RawJSON(str):
    """A JSON text made elsewhere (by the database: core.outputs), written into a response as it is."""


class JSONRenderer(renderers.JSONRenderer):
    """
    DRF's JSON renderer, which also writes a `RawJSON` body, or lists of `RawJSON` texts as
    top-level values (a page's `results`), without parsing and encoding them again. Indented
    output (the browsable API) parses them and renders as usual.
    """

    def render(self, data, accepted_media_type=None, renderer_context=None):
        if isinstance(data, RawJSON):
            if self.get_indent(accepted_media_type, renderer_context or {}):
                return super().render(json.loads(data), accepted_media_type, renderer_context)
            return data.encode()
        raw = {key: value for key, value in data.items() if _raw_list(value)} if isinstance(data, dict) else {}
        if not raw:
            return super().render(data, accepted_media_type, renderer_context)
        if self.get_indent(accepted_media_type, renderer_context or {}):
            parsed = {key: [json.loads(item) for item in value] for key, value in raw.items()}
            return super().render({**data, **parsed}, accepted_media_type, renderer_context)
        marks = {key: f"raw-{secrets.token_hex(16)}" for key in raw}
        text = super().render({**data, **marks}, accepted_media_type, renderer_context)
        for key, mark in marks.items():
            text = text.replace(f'"{mark}"'.encode(), b"[" + ",".join(raw[key]).encode() + b"]", 1)
        return text


def _raw_list(value) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(item, RawJSON) for item in value)
