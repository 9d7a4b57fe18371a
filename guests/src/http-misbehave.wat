;; world: http-misbehave
;; A wasi:http proxy that misbehaves by the last segment of its path (so it does under any
;; route: `/api/trap` as `/trap`): `/trap` traps, `/loop` never returns, `/grow`
;; grows its memory until the host refuses. `/env` answers with its environment, one
;; KEY=VALUE a line; `/headers` with the request's headers, one `name: value` a line.
;; `/scribble` answers `clean` if its memory is as a new instance's should be (one page,
;; its data intact, zeros where nothing was written), else `dirty`; then it scribbles over
;; its data, the end of its page and a page it grows, for the next instance to find if the
;; host reused the memory without resetting it. Any other path answers 200 `ok`. Every
;; request writes one line to stdout and one to stderr first.
(module
  ;; @include shared/imports-io.wat
  ;; @include shared/imports-http.wat
  (import "cm32p2|wasi:http/types@0.2" "[method]incoming-request.path-with-query"
    (func $path_with_query (param i32 i32)))
  (import "cm32p2|wasi:cli/stdout@0.2" "get-stdout" (func $get_stdout (result i32)))
  (import "cm32p2|wasi:cli/stderr@0.2" "get-stderr" (func $get_stderr (result i32)))
  (import "cm32p2|wasi:cli/environment@0.2" "get-environment" (func $get_environment (param i32)))
  (import "cm32p2|wasi:http/types@0.2" "[method]incoming-request.headers"
    (func $request_headers (param i32) (result i32)))
  (import "cm32p2|wasi:http/types@0.2" "[method]fields.entries" (func $entries (param i32 i32)))
  ;; @include shared/prelude.wat
  ;; @include shared/http-helpers.wat
  ;; @include shared/env.wat
  (data (i32.const 0x1000) "ok\n")
  (data (i32.const 0x1010) "handling request\n")
  (data (i32.const 0x1030) "guest warning on stderr\n")
  (data (i32.const 0x1050) "env")
  (data (i32.const 0x1058) "headers: ")
  (data (i32.const 0x1068) "scribble")
  (data (i32.const 0x1070) "clean\n")
  (data (i32.const 0x1078) "dirty\n")

  ;; Whether memory is pristine (see `/scribble`); then scribbles over it.
  (func $scribble (result i32)
    (local $clean i32)
    (local.set $clean
      (i32.and
        (i32.and (i32.eq (memory.size) (i32.const 1))
                 (i32.eq (i32.load8_u (i32.const 0x1000)) (i32.const 0x6f)))
        (i32.eqz (i32.load (i32.const 0xfff0)))))
    (i32.store8 (i32.const 0x1000) (i32.const 0x58))
    (i32.store (i32.const 0xfff0) (i32.const -1))
    (if (i32.ne (memory.grow (i32.const 1)) (i32.const -1))
      (then (i32.store (i32.const 0x10008) (i32.const -1))))
    (local.get $clean))

  ;; Writes the request's headers, one `name: value` a line.
  (func $print_headers (param $request i32) (param $out i32)
    (local $at i32) (local $end i32)
    ;; list<tuple<string, list<u8>>> at 0x150
    (call $entries (call $request_headers (local.get $request)) (i32.const 0x150))
    (local.set $at (i32.load (i32.const 0x150)))
    (local.set $end (i32.add (local.get $at) (i32.shl (i32.load (i32.const 0x154)) (i32.const 4))))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $at) (local.get $end)))
        (call $write (local.get $out) (i32.load (local.get $at)) (i32.load offset=4 (local.get $at)))
        (call $write (local.get $out) (i32.const 0x105f) (i32.const 2))
        (call $write (local.get $out) (i32.load offset=8 (local.get $at)) (i32.load offset=12 (local.get $at)))
        (call $write (local.get $out) (i32.const 0x40d) (i32.const 1))
        (local.set $at (i32.add (local.get $at) (i32.const 16)))
        (br $next))))
  ;; Where the last segment of the path at $ptr starts: after its last `/`.
  (func $last_segment (param $ptr i32) (param $len i32) (result i32)
    (local $i i32) (local $start i32)
    (local.set $start (local.get $ptr))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $len)))
        (if (i32.eq (i32.load8_u (i32.add (local.get $ptr) (local.get $i))) (i32.const 0x2f))
          (then (local.set $start (i32.add (i32.add (local.get $ptr) (local.get $i)) (i32.const 1)))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (local.get $start))
  (func (export "cm32p2|wasi:http/incoming-handler@0.2|handle") (param $request i32) (param $out i32)
    (local $stream i32) (local $name i32) (local $len i32)
    (call $write (call $get_stdout) (i32.const 0x1010) (i32.const 17))
    (call $write (call $get_stderr) (i32.const 0x1030) (i32.const 24))
    ;; option<string> at 0x120: tag, pointer, length. Skip the leading `/`.
    (call $path_with_query (local.get $request) (i32.const 0x120))
    (if (i32.and (i32.load8_u (i32.const 0x120)) (i32.ge_u (i32.load (i32.const 0x128)) (i32.const 1)))
      (then
        (local.set $name (call $last_segment (i32.load (i32.const 0x124)) (i32.load (i32.const 0x128))))
        (local.set $len (i32.sub (i32.add (i32.load (i32.const 0x124)) (i32.load (i32.const 0x128)))
                                 (local.get $name)))
        (call $misbehave (local.get $name) (local.get $len))
        (if (call $streq (local.get $name) (local.get $len) (i32.const 0x1068) (i32.const 8))
          (then
            (if (call $scribble)
              (then (call $respond (local.get $out) (i32.const 200) (i32.const 0x1070) (i32.const 6)))
              (else (call $respond (local.get $out) (i32.const 200) (i32.const 0x1078) (i32.const 6))))
            (return)))
        (if (call $streq (local.get $name) (local.get $len) (i32.const 0x1050) (i32.const 3))
          (then
            (local.set $stream (call $start_response (local.get $out) (i32.const 200)))
            (call $print_env (local.get $stream))
            (call $finish_response (local.get $stream))
            (return)))
        (if (call $streq (local.get $name) (local.get $len) (i32.const 0x1058) (i32.const 7))
          (then
            (local.set $stream (call $start_response (local.get $out) (i32.const 200)))
            (call $print_headers (local.get $request) (local.get $stream))
            (call $finish_response (local.get $stream))
            (return)))))
    (call $respond (local.get $out) (i32.const 200) (i32.const 0x1000) (i32.const 3))))
