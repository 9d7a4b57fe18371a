;; world: http-hello
;; memory-pages: 257
;; A wasi:http proxy laid out as toolchains lay out C and Python guests: 257 initial pages
;; (a 16 MiB stack below the data), and a heap that begins at the end of the initial
;; memory, so that every request grows the memory by a page, as a first `malloc` does.
;; `/scribble` answers `clean` if its memory is as a new instance's should be (257 pages,
;; its data intact, zeros at the top of the stack, at the end of the initial memory and
;; in the page it grows), else `dirty`; then it scribbles over all of them for the next
;; instance to find if the host reused the memory without resetting it. `/beyond` reads
;; the byte after the end of its initial memory, which must trap: the instance before it
;; in the slot grew the memory there, but that memory is not this instance's. Other paths
;; answer `ok`.
(module
  ;; @include shared/imports-io.wat
  ;; @include shared/imports-http.wat
  (import "cm32p2|wasi:http/types@0.2" "[method]incoming-request.path-with-query"
    (func $path_with_query (param i32 i32)))
  ;; @include shared/prelude.wat
  ;; @include shared/http-helpers.wat
  (data (i32.const 0x1000) "ok\n")
  (data (i32.const 0x1008) "scribble")
  (data (i32.const 0x1010) "beyond")
  (data (i32.const 0x1018) "clean\n")
  (data (i32.const 0x1020) "dirty\n")

  ;; The top of a 16 MiB stack, and the last word of the initial memory.
  (global $stack_top i32 (i32.const 0xfffff0))
  (global $initial_end i32 (i32.const 0x100fffc))

  ;; Grows by a page, as malloc does for a heap that starts at the end of the initial
  ;; memory; returns the new page's address.
  (func $grow (result i32)
    (local $old i32)
    (local.set $old (memory.grow (i32.const 1)))
    (if (i32.eq (local.get $old) (i32.const -1)) (then unreachable))
    (i32.shl (local.get $old) (i32.const 16)))

  (func $scribble (result i32)
    (local $clean i32) (local $page i32)
    (local.set $clean
      (i32.and
        (i32.and (i32.eq (memory.size) (i32.const 257))
                 (i32.eq (i32.load8_u (i32.const 0x1000)) (i32.const 0x6f)))
        (i32.and (i32.eqz (i32.load (global.get $stack_top)))
                 (i32.eqz (i32.load (global.get $initial_end))))))
    (local.set $page (call $grow))
    (local.set $clean
      (i32.and (local.get $clean)
        (i32.and (i32.eqz (i32.load (local.get $page)))
                 (i32.eqz (i32.load offset=0xfffc (local.get $page))))))
    (i32.store8 (i32.const 0x1000) (i32.const 0x58))
    (i32.store (global.get $stack_top) (i32.const -1))
    (i32.store (global.get $initial_end) (i32.const -1))
    (i32.store (local.get $page) (i32.const -1))
    (i32.store offset=0xfffc (local.get $page) (i32.const -1))
    (local.get $clean))

  (func (export "cm32p2|wasi:http/incoming-handler@0.2|handle") (param $request i32) (param $out i32)
    (local $path i32) (local $len i32)
    ;; option<string> at 0x120: tag, pointer, length. Skip the leading `/`.
    (call $path_with_query (local.get $request) (i32.const 0x120))
    (if (i32.and (i32.load8_u (i32.const 0x120)) (i32.ge_u (i32.load (i32.const 0x128)) (i32.const 1)))
      (then
        (local.set $path (i32.add (i32.load (i32.const 0x124)) (i32.const 1)))
        (local.set $len (i32.sub (i32.load (i32.const 0x128)) (i32.const 1)))))
    (if (call $streq (local.get $path) (local.get $len) (i32.const 0x1008) (i32.const 8))
      (then
        (if (call $scribble)
          (then (call $respond (local.get $out) (i32.const 200) (i32.const 0x1018) (i32.const 6)))
          (else (call $respond (local.get $out) (i32.const 200) (i32.const 0x1020) (i32.const 6))))
        (return)))
    (if (call $streq (local.get $path) (local.get $len) (i32.const 0x1010) (i32.const 6))
      (then (drop (i32.load8_u (i32.shl (memory.size) (i32.const 16))))))
    (drop (call $grow))
    (call $respond (local.get $out) (i32.const 200) (i32.const 0x1000) (i32.const 3))))
