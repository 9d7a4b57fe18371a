;; world: http-kv
;; The key-value benchmark guest: every request opens the default store (""), reads the key
;; `greeting` once, and answers its value, or `none` when it is not set. It imports only
;; wasi:keyvalue/store beside wasi:http, so `wasmtime serve -S keyvalue` runs it too.
(module
  ;; @include shared/imports-io.wat
  ;; @include shared/imports-http.wat
  (import "cm32p2|wasi:keyvalue/store@0.2.0-draft" "open" (func $open (param i32 i32 i32)))
  (import "cm32p2|wasi:keyvalue/store@0.2.0-draft" "[method]bucket.get"
    (func $kv_get (param i32 i32 i32 i32)))
  (import "cm32p2|wasi:keyvalue/store@0.2.0-draft" "bucket_drop" (func $bucket_drop (param i32)))
  ;; @include shared/prelude.wat
  ;; @include shared/http-helpers.wat
  (data (i32.const 0x1000) "greeting")
  (data (i32.const 0x1010) "none\n")
  (data (i32.const 0x1018) "error\n")
  (func (export "cm32p2|wasi:http/incoming-handler@0.2|handle") (param $request i32) (param $out i32)
    (local $bucket i32) (local $stream i32)
    ;; result<bucket, error> at 0x140: tag, then the handle at +4
    (call $open (i32.const 0) (i32.const 0) (i32.const 0x140))
    (if (i32.load8_u (i32.const 0x140))
      (then (call $respond (local.get $out) (i32.const 500) (i32.const 0x1018) (i32.const 6)) (return)))
    (local.set $bucket (i32.load (i32.const 0x144)))
    ;; result<option<list<u8>>, error> at 0x160: tag; option tag at +4, list at +8
    (call $kv_get (local.get $bucket) (i32.const 0x1000) (i32.const 8) (i32.const 0x160))
    (call $bucket_drop (local.get $bucket))
    (if (i32.load8_u (i32.const 0x160))
      (then (call $respond (local.get $out) (i32.const 500) (i32.const 0x1018) (i32.const 6)) (return)))
    (if (i32.eqz (i32.load8_u (i32.const 0x164)))
      (then (call $respond (local.get $out) (i32.const 200) (i32.const 0x1010) (i32.const 5)) (return)))
    (call $respond (local.get $out) (i32.const 200) (i32.load (i32.const 0x168)) (i32.load (i32.const 0x16c)))))
