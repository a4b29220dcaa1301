import json
import secrets

from rest_framework import renderers


class RawJSON(str):
    """A JSON text made elsewhere (by the database: core.outputs), written into a response as it is."""


class JSONRenderer(renderers.JSONRenderer):
    """
    DRF's JSON renderer, which also writes a `RawJSON` body, or `RawJSON` top-level values (a
    page's `results` array), without parsing and encoding them again. Indented output (the
    browsable API) parses them and renders as usual.
    """

    def render(self, data, accepted_media_type=None, renderer_context=None):
        if isinstance(data, RawJSON):
            if self.get_indent(accepted_media_type, renderer_context or {}):
                return super().render(json.loads(data), accepted_media_type, renderer_context)
            return data.encode()
        raw = (
            {key: value for key, value in data.items() if isinstance(value, RawJSON)} if isinstance(data, dict) else {}
        )
        if not raw:
            return super().render(data, accepted_media_type, renderer_context)
        if self.get_indent(accepted_media_type, renderer_context or {}):
            parsed = {key: json.loads(value) for key, value in raw.items()}
            return super().render({**data, **parsed}, accepted_media_type, renderer_context)
        marks = {key: f"raw-{secrets.token_hex(16)}" for key in raw}
        text = super().render({**data, **marks}, accepted_media_type, renderer_context)
        for key, mark in marks.items():
            text = text.replace(f'"{mark}"'.encode(), raw[key].encode(), 1)
        return text
