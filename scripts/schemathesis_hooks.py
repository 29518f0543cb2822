"""schemathesis hooks for scripts/schemathesis.sh (loaded through SCHEMATHESIS_HOOKS).

Discovery's `POST /admin/v1/numbers/import` takes a `text/csv` body, a media type
schemathesis cannot send by itself: the generated value goes out as UTF-8 text (a value of
another type, from the negative phase, as its Python text, which the API must refuse).
"""

import schemathesis


@schemathesis.serializer("text/csv")
def csv_body(ctx, value):
    if isinstance(value, bytes):
        return value
    return (value if isinstance(value, str) else str(value)).encode("utf-8")
