// The smallest wasi:http proxy in C: answers every request 200 `hello`, like
// ../src/http-hello.wat, but through wasi-libc and wit-bindgen's bindings, as a C or C++
// service would be built. Built by ../build_c.py.
#include "http_hello.h"

void exports_wasi_http_incoming_handler_handle(
    exports_wasi_http_incoming_handler_own_incoming_request_t request,
    exports_wasi_http_incoming_handler_own_response_outparam_t response_out) {
  wasi_http_types_incoming_request_drop_own(request);

  wasi_http_types_own_outgoing_response_t response =
      wasi_http_types_constructor_outgoing_response(wasi_http_types_constructor_fields());
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
  static uint8_t hello[] = "hello";
  http_hello_list_u8_t contents = {.ptr = hello, .len = sizeof hello - 1};
  wasi_io_0_2_12_streams_stream_error_t error;
  wasi_io_0_2_12_streams_method_output_stream_blocking_write_and_flush(
      wasi_io_0_2_12_streams_borrow_output_stream(stream), &contents, &error);
  wasi_io_0_2_12_streams_output_stream_drop_own(stream);

  wasi_http_types_error_code_t finish_error;
  wasi_http_types_static_outgoing_body_finish(body, NULL, &finish_error);
}
