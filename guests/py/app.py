"""A wasi:http proxy in Python, built with componentize-py: a real-world guest for the
benchmark (18 MB, CPython inside).

Answers every request 200 with `hello from METHOD PATH` and a content-type, reading the
request the way a Python service would. Built by ../build_py.py.
"""
from wit_world import exports
from wit_world.imports.types import (
    Fields,
    IncomingRequest,
    OutgoingBody,
    OutgoingResponse,
    ResponseOutparam,
)
from componentize_py_types import Ok


class IncomingHandler(exports.IncomingHandler):
    def handle(self, request: IncomingRequest, response_out: ResponseOutparam) -> None:
        method = type(request.method()).__name__.removeprefix("Method_").upper()
        path = request.path_with_query() or "/"
        body = f"hello from {method} {path}\n".encode()

        response = OutgoingResponse(Fields.from_list([("content-type", b"text/plain")]))
        response.set_status_code(200)
        outgoing = response.body()
        ResponseOutparam.set(response_out, Ok(response))
        with outgoing.write() as stream:
            stream.blocking_write_and_flush(body)
        OutgoingBody.finish(outgoing, None)
