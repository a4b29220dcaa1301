from rest_framework.exceptions import NotAcceptable
from rest_framework.negotiation import DefaultContentNegotiation


class JsonUnlessAskedOtherwise(DefaultContentNegotiation):
    """
    The API speaks JSON. A client whose Accept header names only something else (XML, say) still
    gets JSON, as most APIs answer, rather than a 406 no client expects.
    """

    def select_renderer(self, request, renderers, format_suffix=None):
        try:
            return super().select_renderer(request, renderers, format_suffix)
        except NotAcceptable:
            return renderers[0], renderers[0].media_type
