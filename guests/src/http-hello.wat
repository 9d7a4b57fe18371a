;; world: http-hello
;; The smallest wasi:http proxy: answers every request 200 `hello`.
(module
  ;; @include shared/imports-io.wat
  ;; @include shared/imports-http.wat
  ;; @include shared/prelude.wat
  ;; @include shared/http-helpers.wat
  (data (i32.const 0x1000) "hello")
  (func (export "cm32p2|wasi:http/incoming-handler@0.2|handle") (param $request i32) (param $out i32)
    (call $respond (local.get $out) (i32.const 200) (i32.const 0x1000) (i32.const 5))))
