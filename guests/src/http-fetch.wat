;; world: http-fetch
;; A wasi:http proxy that fetches the URL in its FETCH_URL variable (http:// or https://)
;; with a GET and answers with the upstream's status and body. When the outgoing request
;; fails it answers 502 `fetch failed: error-code NNN`, NNN being the index of the
;; wasi:http error-code case (015 is HTTP-request-denied). Without FETCH_URL it answers 500.
(module
  ;; @include shared/imports-io.wat
  ;; @include shared/imports-http.wat
  (import "cm32p2|wasi:io/streams@0.2" "[method]input-stream.blocking-read"
    (func $blocking_read (param i32 i64 i32)))
  (import "cm32p2|wasi:io/poll@0.2" "[method]pollable.block" (func $block (param i32)))
  (import "cm32p2|wasi:cli/environment@0.2" "get-environment" (func $get_environment (param i32)))
  (import "cm32p2|wasi:http/types@0.2" "[constructor]outgoing-request"
    (func $new_outgoing_request (param i32) (result i32)))
  (import "cm32p2|wasi:http/types@0.2" "[method]outgoing-request.set-scheme"
    (func $set_scheme (param i32 i32 i32 i32 i32) (result i32)))
  (import "cm32p2|wasi:http/types@0.2" "[method]outgoing-request.set-authority"
    (func $set_authority (param i32 i32 i32 i32) (result i32)))
  (import "cm32p2|wasi:http/types@0.2" "[method]outgoing-request.set-path-with-query"
    (func $set_path_with_query (param i32 i32 i32 i32) (result i32)))
  (import "cm32p2|wasi:http/outgoing-handler@0.2" "handle"
    (func $outgoing_handle (param i32 i32 i32 i32)))
  (import "cm32p2|wasi:http/types@0.2" "[method]future-incoming-response.subscribe"
    (func $subscribe_response (param i32) (result i32)))
  (import "cm32p2|wasi:http/types@0.2" "[method]future-incoming-response.get"
    (func $get_response (param i32 i32)))
  (import "cm32p2|wasi:http/types@0.2" "[method]incoming-response.status"
    (func $response_status (param i32) (result i32)))
  (import "cm32p2|wasi:http/types@0.2" "[method]incoming-response.consume"
    (func $consume_response (param i32 i32)))
  (import "cm32p2|wasi:http/types@0.2" "[method]incoming-body.stream"
    (func $body_stream (param i32 i32)))
  ;; @include shared/prelude.wat
  ;; @include shared/http-helpers.wat
  (data (i32.const 0x1000) "FETCH_URL")
  (data (i32.const 0x1010) "http://https://")
  (data (i32.const 0x1020) "FETCH_URL is not set\n")
  (data (i32.const 0x1040) "FETCH_URL must start with http:// or https://\n")
  (data (i32.const 0x1080) "fetch failed: error-code 000\n")
  (data (i32.const 0x10a0) "/")

  (func $fail (param $out i32) (param $code i32)
    (i32.store8 (i32.const 0x1099) (i32.add (i32.const 48) (i32.div_u (local.get $code) (i32.const 100))))
    (i32.store8 (i32.const 0x109a)
      (i32.add (i32.const 48) (i32.rem_u (i32.div_u (local.get $code) (i32.const 10)) (i32.const 10))))
    (i32.store8 (i32.const 0x109b) (i32.add (i32.const 48) (i32.rem_u (local.get $code) (i32.const 10))))
    (call $respond (local.get $out) (i32.const 502) (i32.const 0x1080) (i32.const 29)))

  (func (export "cm32p2|wasi:http/incoming-handler@0.2|handle") (param $request i32) (param $out i32)
    (local $at i32) (local $end i32) (local $url i32) (local $len i32) (local $scheme i32)
    (local $slash i32) (local $outgoing i32) (local $future i32) (local $response i32)
    (local $in i32) (local $stream i32) (local $mark i32)
    ;; find FETCH_URL in the environment, a list of (key, value) strings at 0x110
    (call $get_environment (i32.const 0x110))
    (local.set $at (i32.load (i32.const 0x110)))
    (local.set $end (i32.add (local.get $at) (i32.shl (i32.load (i32.const 0x114)) (i32.const 4))))
    (local.set $url (i32.const -1))
    (block $found
      (loop $next
        (br_if $found (i32.ge_u (local.get $at) (local.get $end)))
        (if (call $streq (i32.load (local.get $at)) (i32.load offset=4 (local.get $at))
                         (i32.const 0x1000) (i32.const 9))
          (then
            (local.set $url (i32.load offset=8 (local.get $at)))
            (local.set $len (i32.load offset=12 (local.get $at)))
            (br $found)))
        (local.set $at (i32.add (local.get $at) (i32.const 16)))
        (br $next)))
    (if (i32.eq (local.get $url) (i32.const -1))
      (then (call $respond (local.get $out) (i32.const 500) (i32.const 0x1020) (i32.const 21)) (return)))
    ;; scheme: 0 http, 1 https
    (block $parsed
      (if (i32.ge_u (local.get $len) (i32.const 7))
        (then (if (call $streq (local.get $url) (i32.const 7) (i32.const 0x1010) (i32.const 7))
          (then (local.set $scheme (i32.const 0))
                (local.set $url (i32.add (local.get $url) (i32.const 7)))
                (local.set $len (i32.sub (local.get $len) (i32.const 7)))
                (br $parsed)))))
      (if (i32.ge_u (local.get $len) (i32.const 8))
        (then (if (call $streq (local.get $url) (i32.const 8) (i32.const 0x1017) (i32.const 8))
          (then (local.set $scheme (i32.const 1))
                (local.set $url (i32.add (local.get $url) (i32.const 8)))
                (local.set $len (i32.sub (local.get $len) (i32.const 8)))
                (br $parsed)))))
      (call $respond (local.get $out) (i32.const 500) (i32.const 0x1040) (i32.const 46))
      (return))
    ;; the authority runs to the first `/`; the rest, or `/`, is the path with its query
    (local.set $slash (i32.const 0))
    (block $end_of_authority
      (loop $scan
        (br_if $end_of_authority (i32.ge_u (local.get $slash) (local.get $len)))
        (br_if $end_of_authority
          (i32.eq (i32.load8_u (i32.add (local.get $url) (local.get $slash))) (i32.const 47)))
        (local.set $slash (i32.add (local.get $slash) (i32.const 1)))
        (br $scan)))
    (local.set $outgoing (call $new_outgoing_request (call $new_fields)))
    (drop (call $set_scheme (local.get $outgoing) (i32.const 1) (local.get $scheme) (i32.const 0) (i32.const 0)))
    (drop (call $set_authority (local.get $outgoing) (i32.const 1) (local.get $url) (local.get $slash)))
    (if (i32.lt_u (local.get $slash) (local.get $len))
      (then (drop (call $set_path_with_query (local.get $outgoing) (i32.const 1)
                    (i32.add (local.get $url) (local.get $slash))
                    (i32.sub (local.get $len) (local.get $slash)))))
      (else (drop (call $set_path_with_query (local.get $outgoing) (i32.const 1) (i32.const 0x10a0) (i32.const 1)))))
    ;; result<future-incoming-response, error-code> at 0x140 (payload at +8)
    (call $outgoing_handle (local.get $outgoing) (i32.const 0) (i32.const 0) (i32.const 0x140))
    (if (i32.load8_u (i32.const 0x140))
      (then (call $fail (local.get $out) (i32.load8_u (i32.const 0x148))) (return)))
    (local.set $future (i32.load (i32.const 0x148)))
    (call $block (call $subscribe_response (local.get $future)))
    ;; option<result<result<incoming-response, error-code>>> at 0x160: tags at +0, +8, +16,
    ;; the response or the error-code at +24
    (call $get_response (local.get $future) (i32.const 0x160))
    (if (i32.load8_u (i32.const 0x170))
      (then (call $fail (local.get $out) (i32.load8_u (i32.const 0x178))) (return)))
    (local.set $response (i32.load (i32.const 0x178)))
    (call $consume_response (local.get $response) (i32.const 0x140))
    (call $body_stream (i32.load (i32.const 0x144)) (i32.const 0x140))
    (local.set $in (i32.load (i32.const 0x144)))
    (local.set $stream (call $start_response (local.get $out) (call $response_status (local.get $response))))
    (local.set $mark (global.get $heap))
    (block $closed
      (loop $more
        (call $blocking_read (local.get $in) (i64.const 4096) (i32.const 0x100))
        (br_if $closed (i32.load8_u (i32.const 0x100)))
        (call $write (local.get $stream) (i32.load (i32.const 0x104)) (i32.load (i32.const 0x108)))
        (global.set $heap (local.get $mark))
        (br $more)))
    (call $finish_response (local.get $stream))))
