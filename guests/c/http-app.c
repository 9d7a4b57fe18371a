// A wasi:http proxy in C written the way a service usually is, for the benchmark's
// "realistic" C guest: it reads the request's method, path and headers (the bindings
// allocate them with malloc), formats its answer with snprintf into a heap buffer, sets a
// content-type, and frees what it took. Built with zig's default memory layout, a 16 MiB
// stack first (257 initial pages), so its heap begins at the end of the initial memory
// and the first malloc of every instance grows the memory: what a fresh instance per
// request costs for guests from real toolchains. Built by ../build_c.py.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http_hello.h"

static const char *const METHODS[] = {"GET",     "HEAD",    "POST",  "PUT",   "DELETE",
                                      "CONNECT", "OPTIONS", "TRACE", "PATCH"};

void exports_wasi_http_incoming_handler_handle(
    exports_wasi_http_incoming_handler_own_incoming_request_t request,
    exports_wasi_http_incoming_handler_own_response_outparam_t response_out) {
  wasi_http_types_borrow_incoming_request_t incoming =
      wasi_http_types_borrow_incoming_request(request);

  wasi_http_types_method_t method;
  wasi_http_types_method_incoming_request_method(incoming, &method);
  http_hello_string_t path = {0};
  if (!wasi_http_types_method_incoming_request_path_with_query(incoming, &path)) {
    http_hello_string_dup(&path, "/");
  }
  wasi_http_types_own_headers_t headers = wasi_http_types_method_incoming_request_headers(incoming);
  wasi_http_types_list_tuple2_field_name_field_value_t entries;
  wasi_http_types_method_fields_entries(wasi_http_types_borrow_fields(headers), &entries);

  size_t capacity = 64 + path.len;
  char *text = malloc(capacity);
  const char *name = method.tag < sizeof METHODS / sizeof *METHODS ? METHODS[method.tag] : "OTHER";
  int length = snprintf(text, capacity, "hello from %s %.*s (%zu headers)\n", name,
                        (int)path.len, (const char *)path.ptr, entries.len);

  wasi_http_types_list_tuple2_field_name_field_value_free(&entries);
  wasi_http_types_fields_drop_own(headers);
  http_hello_string_free(&path);
  wasi_http_types_method_free(&method);
  wasi_http_types_incoming_request_drop_own(request);

  wasi_http_types_own_fields_t fields = wasi_http_types_constructor_fields();
  wasi_http_types_field_name_t content_type;
  http_hello_string_dup(&content_type, "content-type");
  wasi_http_types_field_value_t plain = {.ptr = (uint8_t *)"text/plain", .len = 10};
  wasi_http_types_header_error_t header_error;
  wasi_http_types_method_fields_append(wasi_http_types_borrow_fields(fields), &content_type,
                                       &plain, &header_error);
  http_hello_string_free(&content_type);

  wasi_http_types_own_outgoing_response_t response =
      wasi_http_types_constructor_outgoing_response(fields);
  wasi_http_types_borrow_outgoing_response_t borrowed =
      wasi_http_types_borrow_outgoing_response(response);
  wasi_http_types_method_outgoing_response_set_status_code(borrowed, 200);
  wasi_http_types_own_outgoing_body_t body;
  wasi_http_types_method_outgoing_response_body(borrowed, &body);

  wasi_http_types_result_own_outgoing_response_error_code_t result = {.is_err = false};
  result.val.ok = response;
  wasi_http_types_static_response_outparam_set(response_out, &result);

  wasi_http_types_own_output_stream_t stream;
  wasi_http_types_method_outgoing_body_write(wasi_http_types_borrow_outgoing_body(body), &stream);
  http_hello_list_u8_t contents = {.ptr = (uint8_t *)text, .len = (size_t)length};
  wasi_io_0_2_12_streams_stream_error_t error;
  wasi_io_0_2_12_streams_method_output_stream_blocking_write_and_flush(
      wasi_io_0_2_12_streams_borrow_output_stream(stream), &contents, &error);
  wasi_io_0_2_12_streams_output_stream_drop_own(stream);
  free(text);

  wasi_http_types_error_code_t finish_error;
  wasi_http_types_static_outgoing_body_finish(body, NULL, &finish_error);
}
