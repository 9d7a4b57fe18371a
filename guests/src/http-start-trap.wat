;; world: http-hello
;; A wasi:http proxy that can never be instantiated: its start function traps, so every
;; request to it fails in instantiation (the host's `InstantiationFailure`).
(module
  ;; @include shared/imports-io.wat
  ;; @include shared/imports-http.wat
  ;; @include shared/prelude.wat
  ;; @include shared/http-helpers.wat
  (func $refuse unreachable)
  (start $refuse)
  (func (export "cm32p2|wasi:http/incoming-handler@0.2|handle") (param $request i32) (param $out i32)))
