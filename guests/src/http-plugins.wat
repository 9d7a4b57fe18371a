;; world: http-plugins
;; A wasi:http proxy that drives the plugin interfaces by path. The query is ignored; the
;; first path segment that is an action word picks the action, and the segments after it
;; are its arguments (a missing one is empty), so it works under any route prefix:
;; `/api/count` as `/count`. Every answer is a text body ending in a newline.
;;   /count [/STORE]         increments `count` by 1 in STORE (default "") with
;;                           wasi:keyvalue/atomics; 200 with the new value, `3`
;;   /kv/get/KEY             200 the value of KEY in the default store, 404 `none`
;;   /kv/set/KEY=VALUE       200 `set`
;;   /kv/delete/KEY          200 `deleted`
;;   /kv/exists/KEY          200 `true` or `false`
;;   /kv/keys                200 the store's keys (the first page), one a line
;;   /kv/batch               set-many a=1 b=2, get-many a b zz, delete-many a b; 200 with
;;                           what get-many returned: `a=1`, `b=2`, `zz=none`
;;   /kv/open/STORE          opens STORE (and drops it); 200 `opened`
;;   /config/KEY             200 the wasi:config value of KEY, 404 `none`
;;   /config-all             200 every wasi:config pair in the order given, `key=value`
;;   /log                    logs `LEVEL message` with context `levels` at each
;;                           wasi:logging level, trace to critical; 200 `logged`
;; Any other path answers 200 `ok`. An error from wasi:keyvalue answers 500
;; `error: no-such-store`, `error: access-denied` or `error: other: MESSAGE`; one from
;; wasi:config `error: upstream: MESSAGE` or `error: io: MESSAGE`.
(module
  ;; @include shared/imports-io.wat
  ;; @include shared/imports-http.wat
  (import "cm32p2|wasi:http/types@0.2" "[method]incoming-request.path-with-query"
    (func $path_with_query (param i32 i32)))
  (import "cm32p2|wasi:keyvalue/store@0.2.0-draft" "open" (func $open (param i32 i32 i32)))
  (import "cm32p2|wasi:keyvalue/store@0.2.0-draft" "[method]bucket.get"
    (func $kv_get (param i32 i32 i32 i32)))
  (import "cm32p2|wasi:keyvalue/store@0.2.0-draft" "[method]bucket.set"
    (func $kv_set (param i32 i32 i32 i32 i32 i32)))
  (import "cm32p2|wasi:keyvalue/store@0.2.0-draft" "[method]bucket.delete"
    (func $kv_delete (param i32 i32 i32 i32)))
  (import "cm32p2|wasi:keyvalue/store@0.2.0-draft" "[method]bucket.exists"
    (func $kv_exists (param i32 i32 i32 i32)))
  (import "cm32p2|wasi:keyvalue/store@0.2.0-draft" "[method]bucket.list-keys"
    (func $kv_list_keys (param i32 i32 i64 i32)))
  (import "cm32p2|wasi:keyvalue/store@0.2.0-draft" "bucket_drop" (func $bucket_drop (param i32)))
  (import "cm32p2|wasi:keyvalue/atomics@0.2.0-draft" "increment"
    (func $increment (param i32 i32 i32 i64 i32)))
  (import "cm32p2|wasi:keyvalue/batch@0.2.0-draft" "get-many" (func $get_many (param i32 i32 i32 i32)))
  (import "cm32p2|wasi:keyvalue/batch@0.2.0-draft" "set-many" (func $set_many (param i32 i32 i32 i32)))
  (import "cm32p2|wasi:keyvalue/batch@0.2.0-draft" "delete-many"
    (func $delete_many (param i32 i32 i32 i32)))
  (import "cm32p2|wasi:config/store@0.2.0-rc.1" "get" (func $config_get (param i32 i32 i32)))
  (import "cm32p2|wasi:config/store@0.2.0-rc.1" "get-all" (func $config_get_all (param i32)))
  (import "cm32p2|wasi:logging/logging@0.1.0-draft" "log" (func $log (param i32 i32 i32 i32 i32)))
  ;; @include shared/prelude.wat
  ;; @include shared/http-helpers.wat
  ;; Return areas: 0x120 the path (option<string>), 0x140 what `open` returns
  ;; (result<bucket, error>: tag, then the handle or the error at +4), 0x160 what the other
  ;; calls return (8-aligned, up to 32 bytes).
  (data (i32.const 0x1000) "ok\n")
  ;; action words and /kv operations
  (data (i32.const 0x1010) "count")
  (data (i32.const 0x1018) "kv")
  (data (i32.const 0x1020) "config")
  (data (i32.const 0x1030) "config-all")
  (data (i32.const 0x1040) "log")
  (data (i32.const 0x1048) "get")
  (data (i32.const 0x1050) "set")
  (data (i32.const 0x1058) "delete")
  (data (i32.const 0x1060) "exists")
  (data (i32.const 0x1068) "keys")
  (data (i32.const 0x1070) "batch")
  (data (i32.const 0x1078) "open")
  ;; answers
  (data (i32.const 0x1080) "set\n")
  (data (i32.const 0x1088) "deleted\n")
  (data (i32.const 0x1090) "true\n")
  (data (i32.const 0x1098) "false\n")
  (data (i32.const 0x10a0) "none\n")
  (data (i32.const 0x10a8) "opened\n")
  (data (i32.const 0x10b0) "logged\n")
  (data (i32.const 0x10b8) "error: ")
  (data (i32.const 0x10c0) "no-such-store")
  (data (i32.const 0x10d0) "access-denied")
  (data (i32.const 0x10e0) "other: ")
  (data (i32.const 0x10e8) "upstream: ")
  (data (i32.const 0x10f8) "io: ")
  ;; /log: the context, one message a level at 0x1110 + 16 * level, their lengths
  (data (i32.const 0x1100) "levels")
  (data (i32.const 0x1110) "trace message")
  (data (i32.const 0x1120) "debug message")
  (data (i32.const 0x1130) "info message")
  (data (i32.const 0x1140) "warn message")
  (data (i32.const 0x1150) "error message")
  (data (i32.const 0x1160) "critical message")
  (data (i32.const 0x1170) "\0d\0d\0c\0c\0d\10")
  ;; /kv/batch: a 1 b 2 zz; the lists built from them go at 0x1200 (set-many's pairs,
  ;; 2 x 16 bytes) and 0x1220 (get-many's keys, 3 x 8 bytes; delete-many takes the first 2)
  (data (i32.const 0x1180) "a1b2zz")
  ;; 0x1300..0x1315: a u64 in decimal and a newline

  ;; The path is cut into segments at `/`; $pos is where the next one starts, $end where
  ;; the path ends, and $seg, $seg_len the segment $next_seg found.
  (global $pos (mut i32) (i32.const 0))
  (global $end (mut i32) (i32.const 0))
  (global $seg (mut i32) (i32.const 0))
  (global $seg_len (mut i32) (i32.const 0))

  ;; Moves to the next segment: 1 if there is one, else 0 and an empty segment.
  (func $next_seg (result i32)
    (local $at i32)
    (if (i32.gt_u (global.get $pos) (global.get $end))
      (then
        (global.set $seg (global.get $end))
        (global.set $seg_len (i32.const 0))
        (return (i32.const 0))))
    (local.set $at (global.get $pos))
    (block $found
      (loop $next
        (br_if $found (i32.ge_u (local.get $at) (global.get $end)))
        (br_if $found (i32.eq (i32.load8_u (local.get $at)) (i32.const 0x2f)))
        (local.set $at (i32.add (local.get $at) (i32.const 1)))
        (br $next)))
    (global.set $seg (global.get $pos))
    (global.set $seg_len (i32.sub (local.get $at) (global.get $pos)))
    (global.set $pos (i32.add (local.get $at) (i32.const 1)))
    (i32.const 1))

  ;; Whether the current segment is the string at $ptr.
  (func $is (param $ptr i32) (param $len i32) (result i32)
    (call $streq (global.get $seg) (global.get $seg_len) (local.get $ptr) (local.get $len)))

  ;; Answers 500 with the wasi:keyvalue/store error at $err (tag, then a string at +4).
  (func $kv_error (param $out i32) (param $err i32)
    (local $stream i32) (local $tag i32)
    (local.set $stream (call $start_response (local.get $out) (i32.const 500)))
    (call $write (local.get $stream) (i32.const 0x10b8) (i32.const 7))
    (local.set $tag (i32.load8_u (local.get $err)))
    (if (i32.eqz (local.get $tag))
      (then (call $write (local.get $stream) (i32.const 0x10c0) (i32.const 13))))
    (if (i32.eq (local.get $tag) (i32.const 1))
      (then (call $write (local.get $stream) (i32.const 0x10d0) (i32.const 13))))
    (if (i32.eq (local.get $tag) (i32.const 2))
      (then
        (call $write (local.get $stream) (i32.const 0x10e0) (i32.const 7))
        (call $write (local.get $stream) (i32.load offset=4 (local.get $err))
                                         (i32.load offset=8 (local.get $err)))))
    (call $write (local.get $stream) (i32.const 0x40d) (i32.const 1))
    (call $finish_response (local.get $stream)))

  ;; Answers 500 with the wasi:config error at $err (tag, then a string at +4).
  (func $config_error (param $out i32) (param $err i32)
    (local $stream i32)
    (local.set $stream (call $start_response (local.get $out) (i32.const 500)))
    (call $write (local.get $stream) (i32.const 0x10b8) (i32.const 7))
    (if (i32.load8_u (local.get $err))
      (then (call $write (local.get $stream) (i32.const 0x10f8) (i32.const 4)))
      (else (call $write (local.get $stream) (i32.const 0x10e8) (i32.const 10))))
    (call $write (local.get $stream) (i32.load offset=4 (local.get $err))
                                     (i32.load offset=8 (local.get $err)))
    (call $write (local.get $stream) (i32.const 0x40d) (i32.const 1))
    (call $finish_response (local.get $stream)))

  ;; Opens the store named by the string at $ptr: its bucket, or -1 once it has answered
  ;; the error.
  (func $open_store (param $out i32) (param $ptr i32) (param $len i32) (result i32)
    (call $open (local.get $ptr) (local.get $len) (i32.const 0x140))
    (if (i32.load8_u (i32.const 0x140))
      (then
        (call $kv_error (local.get $out) (i32.const 0x144))
        (return (i32.const -1))))
    (i32.load (i32.const 0x144)))

  ;; Answers with the result<_, error> at 0x160: 200 and the string at $ptr if ok.
  (func $kv_done (param $out i32) (param $ptr i32) (param $len i32)
    (if (i32.load8_u (i32.const 0x160))
      (then (call $kv_error (local.get $out) (i32.const 0x164)))
      (else (call $respond (local.get $out) (i32.const 200) (local.get $ptr) (local.get $len)))))

  ;; /count[/STORE]
  (func $count (param $out i32)
    (local $bucket i32) (local $value i64) (local $at i32)
    (drop (call $next_seg))
    (local.set $bucket (call $open_store (local.get $out) (global.get $seg) (global.get $seg_len)))
    (if (i32.eq (local.get $bucket) (i32.const -1)) (then (return)))
    ;; result<u64, error> at 0x160: tag, then the value or the error at +8
    (call $increment (local.get $bucket) (i32.const 0x1010) (i32.const 5) (i64.const 1) (i32.const 0x160))
    (call $bucket_drop (local.get $bucket))
    (if (i32.load8_u (i32.const 0x160))
      (then (call $kv_error (local.get $out) (i32.const 0x168)) (return)))
    ;; the value in decimal, backwards from the newline at 0x1314
    (local.set $value (i64.load (i32.const 0x168)))
    (i32.store8 (i32.const 0x1314) (i32.const 0x0a))
    (local.set $at (i32.const 0x1314))
    (loop $digit
      (local.set $at (i32.sub (local.get $at) (i32.const 1)))
      (i32.store8 (local.get $at)
        (i32.add (i32.const 0x30) (i32.wrap_i64 (i64.rem_u (local.get $value) (i64.const 10)))))
      (local.set $value (i64.div_u (local.get $value) (i64.const 10)))
      (br_if $digit (i64.ne (local.get $value) (i64.const 0))))
    (call $respond (local.get $out) (i32.const 200) (local.get $at)
                   (i32.sub (i32.const 0x1315) (local.get $at))))

  ;; /kv/get/KEY
  (func $get (param $out i32) (param $bucket i32) (param $key i32) (param $key_len i32)
    (local $stream i32)
    ;; result<option<list<u8>>, error> at 0x160: tag; option tag at +4, list at +8
    (call $kv_get (local.get $bucket) (local.get $key) (local.get $key_len) (i32.const 0x160))
    (call $bucket_drop (local.get $bucket))
    (if (i32.load8_u (i32.const 0x160))
      (then (call $kv_error (local.get $out) (i32.const 0x164)) (return)))
    (if (i32.eqz (i32.load8_u (i32.const 0x164)))
      (then (call $respond (local.get $out) (i32.const 404) (i32.const 0x10a0) (i32.const 5)) (return)))
    (local.set $stream (call $start_response (local.get $out) (i32.const 200)))
    (call $write (local.get $stream) (i32.load (i32.const 0x168)) (i32.load (i32.const 0x16c)))
    (call $write (local.get $stream) (i32.const 0x40d) (i32.const 1))
    (call $finish_response (local.get $stream)))

  ;; /kv/set/KEY=VALUE (no `=`: KEY is all of it, VALUE empty)
  (func $set (param $out i32) (param $bucket i32) (param $key i32) (param $len i32)
    (local $eq i32)
    (local.set $eq (local.get $key))
    (block $found
      (loop $next
        (br_if $found (i32.ge_u (local.get $eq) (i32.add (local.get $key) (local.get $len))))
        (br_if $found (i32.eq (i32.load8_u (local.get $eq)) (i32.const 0x3d)))
        (local.set $eq (i32.add (local.get $eq) (i32.const 1)))
        (br $next)))
    ;; result<_, error> at 0x160: tag, the error at +4
    (call $kv_set (local.get $bucket)
      (local.get $key) (i32.sub (local.get $eq) (local.get $key))
      (select (i32.add (local.get $eq) (i32.const 1)) (local.get $eq)
              (i32.lt_u (local.get $eq) (i32.add (local.get $key) (local.get $len))))
      (select (i32.sub (i32.add (local.get $key) (local.get $len)) (i32.add (local.get $eq) (i32.const 1)))
              (i32.const 0)
              (i32.lt_u (local.get $eq) (i32.add (local.get $key) (local.get $len))))
      (i32.const 0x160))
    (call $bucket_drop (local.get $bucket))
    (call $kv_done (local.get $out) (i32.const 0x1080) (i32.const 4)))

  ;; /kv/keys: the first page, one key a line; the cursor is ignored
  (func $keys (param $out i32) (param $bucket i32)
    (local $stream i32) (local $at i32) (local $end i32)
    ;; result<key-response, error> at 0x160: tag; at +8 the keys list (pointer, length)
    ;; then the cursor option<u64>, or the error
    (call $kv_list_keys (local.get $bucket) (i32.const 0) (i64.const 0) (i32.const 0x160))
    (call $bucket_drop (local.get $bucket))
    (if (i32.load8_u (i32.const 0x160))
      (then (call $kv_error (local.get $out) (i32.const 0x168)) (return)))
    (local.set $at (i32.load (i32.const 0x168)))
    (local.set $end (i32.add (local.get $at) (i32.shl (i32.load (i32.const 0x16c)) (i32.const 3))))
    (local.set $stream (call $start_response (local.get $out) (i32.const 200)))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $at) (local.get $end)))
        (call $write (local.get $stream) (i32.load (local.get $at)) (i32.load offset=4 (local.get $at)))
        (call $write (local.get $stream) (i32.const 0x40d) (i32.const 1))
        (local.set $at (i32.add (local.get $at) (i32.const 8)))
        (br $next)))
    (call $finish_response (local.get $stream)))

  ;; /kv/batch
  (func $batch (param $out i32) (param $bucket i32)
    (local $stream i32) (local $at i32) (local $i i32) (local $n i32)
    ;; set-many's list<tuple<string, list<u8>>> at 0x1200: ("a", "1"), ("b", "2")
    (i32.store (i32.const 0x1200) (i32.const 0x1180)) (i32.store (i32.const 0x1204) (i32.const 1))
    (i32.store (i32.const 0x1208) (i32.const 0x1181)) (i32.store (i32.const 0x120c) (i32.const 1))
    (i32.store (i32.const 0x1210) (i32.const 0x1182)) (i32.store (i32.const 0x1214) (i32.const 1))
    (i32.store (i32.const 0x1218) (i32.const 0x1183)) (i32.store (i32.const 0x121c) (i32.const 1))
    ;; get-many's list<string> at 0x1220: "a", "b", "zz"
    (i32.store (i32.const 0x1220) (i32.const 0x1180)) (i32.store (i32.const 0x1224) (i32.const 1))
    (i32.store (i32.const 0x1228) (i32.const 0x1182)) (i32.store (i32.const 0x122c) (i32.const 1))
    (i32.store (i32.const 0x1230) (i32.const 0x1184)) (i32.store (i32.const 0x1234) (i32.const 2))
    (block $failed
      (call $set_many (local.get $bucket) (i32.const 0x1200) (i32.const 2) (i32.const 0x160))
      (br_if $failed (i32.load8_u (i32.const 0x160)))
      ;; result<list<option<tuple<string, list<u8>>>>, error> at 0x160: tag, the list at +4
      (call $get_many (local.get $bucket) (i32.const 0x1220) (i32.const 3) (i32.const 0x160))
      (br_if $failed (i32.load8_u (i32.const 0x160)))
      (local.set $at (i32.load (i32.const 0x164)))
      (local.set $n (i32.load (i32.const 0x168)))
      (call $delete_many (local.get $bucket) (i32.const 0x1220) (i32.const 2) (i32.const 0x160))
      (br_if $failed (i32.load8_u (i32.const 0x160)))
      (call $bucket_drop (local.get $bucket))
      ;; each entry, 20 bytes: tag; at +4 the key, at +12 the value
      (local.set $stream (call $start_response (local.get $out) (i32.const 200)))
      (block $done
        (loop $next
          (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
          (if (i32.load8_u (local.get $at))
            (then
              (call $write (local.get $stream) (i32.load offset=4 (local.get $at))
                                               (i32.load offset=8 (local.get $at)))
              (call $write (local.get $stream) (i32.const 0x40c) (i32.const 1))
              (call $write (local.get $stream) (i32.load offset=12 (local.get $at))
                                               (i32.load offset=16 (local.get $at)))
              (call $write (local.get $stream) (i32.const 0x40d) (i32.const 1)))
            (else
              ;; the key asked for (none past the third, were there more)
              (if (i32.lt_u (local.get $i) (i32.const 3))
                (then
                  (call $write (local.get $stream)
                    (i32.load (i32.add (i32.const 0x1220) (i32.shl (local.get $i) (i32.const 3))))
                    (i32.load (i32.add (i32.const 0x1224) (i32.shl (local.get $i) (i32.const 3)))))))
              (call $write (local.get $stream) (i32.const 0x40c) (i32.const 1))
              (call $write (local.get $stream) (i32.const 0x10a0) (i32.const 5))))
          (local.set $at (i32.add (local.get $at) (i32.const 20)))
          (local.set $i (i32.add (local.get $i) (i32.const 1)))
          (br $next)))
      (call $finish_response (local.get $stream))
      (return))
    (call $bucket_drop (local.get $bucket))
    (call $kv_error (local.get $out) (i32.const 0x164)))

  ;; /kv/OP/ARG
  (func $kv (param $out i32)
    (local $op i32) (local $op_len i32) (local $arg i32) (local $arg_len i32) (local $bucket i32)
    (drop (call $next_seg))
    (local.set $op (global.get $seg))
    (local.set $op_len (global.get $seg_len))
    (drop (call $next_seg))
    (local.set $arg (global.get $seg))
    (local.set $arg_len (global.get $seg_len))
    (if (call $streq (local.get $op) (local.get $op_len) (i32.const 0x1078) (i32.const 4))
      (then
        (local.set $bucket (call $open_store (local.get $out) (local.get $arg) (local.get $arg_len)))
        (if (i32.eq (local.get $bucket) (i32.const -1)) (then (return)))
        (call $bucket_drop (local.get $bucket))
        (call $respond (local.get $out) (i32.const 200) (i32.const 0x10a8) (i32.const 7))
        (return)))
    ;; the other operations: on the default store, or answer `ok` if unknown
    (block $known
      (br_if $known (call $streq (local.get $op) (local.get $op_len) (i32.const 0x1048) (i32.const 3)))
      (br_if $known (call $streq (local.get $op) (local.get $op_len) (i32.const 0x1050) (i32.const 3)))
      (br_if $known (call $streq (local.get $op) (local.get $op_len) (i32.const 0x1058) (i32.const 6)))
      (br_if $known (call $streq (local.get $op) (local.get $op_len) (i32.const 0x1060) (i32.const 6)))
      (br_if $known (call $streq (local.get $op) (local.get $op_len) (i32.const 0x1068) (i32.const 4)))
      (br_if $known (call $streq (local.get $op) (local.get $op_len) (i32.const 0x1070) (i32.const 5)))
      (call $respond (local.get $out) (i32.const 200) (i32.const 0x1000) (i32.const 3))
      (return))
    (local.set $bucket (call $open_store (local.get $out) (i32.const 0x1000) (i32.const 0)))
    (if (i32.eq (local.get $bucket) (i32.const -1)) (then (return)))
    (if (call $streq (local.get $op) (local.get $op_len) (i32.const 0x1048) (i32.const 3))
      (then (call $get (local.get $out) (local.get $bucket) (local.get $arg) (local.get $arg_len)) (return)))
    (if (call $streq (local.get $op) (local.get $op_len) (i32.const 0x1050) (i32.const 3))
      (then (call $set (local.get $out) (local.get $bucket) (local.get $arg) (local.get $arg_len)) (return)))
    (if (call $streq (local.get $op) (local.get $op_len) (i32.const 0x1058) (i32.const 6))
      (then
        (call $kv_delete (local.get $bucket) (local.get $arg) (local.get $arg_len) (i32.const 0x160))
        (call $bucket_drop (local.get $bucket))
        (call $kv_done (local.get $out) (i32.const 0x1088) (i32.const 8))
        (return)))
    (if (call $streq (local.get $op) (local.get $op_len) (i32.const 0x1060) (i32.const 6))
      (then
        ;; result<bool, error> at 0x160: tag, the bool or the error at +4
        (call $kv_exists (local.get $bucket) (local.get $arg) (local.get $arg_len) (i32.const 0x160))
        (call $bucket_drop (local.get $bucket))
        (if (i32.load8_u (i32.const 0x164))
          (then (call $kv_done (local.get $out) (i32.const 0x1090) (i32.const 5)))
          (else (call $kv_done (local.get $out) (i32.const 0x1098) (i32.const 6))))
        (return)))
    (if (call $streq (local.get $op) (local.get $op_len) (i32.const 0x1068) (i32.const 4))
      (then (call $keys (local.get $out) (local.get $bucket)) (return)))
    (call $batch (local.get $out) (local.get $bucket)))

  ;; /config/KEY
  (func $config (param $out i32)
    (local $stream i32)
    (drop (call $next_seg))
    ;; result<option<string>, error> at 0x160: tag; option tag at +4, string at +8
    (call $config_get (global.get $seg) (global.get $seg_len) (i32.const 0x160))
    (if (i32.load8_u (i32.const 0x160))
      (then (call $config_error (local.get $out) (i32.const 0x164)) (return)))
    (if (i32.eqz (i32.load8_u (i32.const 0x164)))
      (then (call $respond (local.get $out) (i32.const 404) (i32.const 0x10a0) (i32.const 5)) (return)))
    (local.set $stream (call $start_response (local.get $out) (i32.const 200)))
    (call $write (local.get $stream) (i32.load (i32.const 0x168)) (i32.load (i32.const 0x16c)))
    (call $write (local.get $stream) (i32.const 0x40d) (i32.const 1))
    (call $finish_response (local.get $stream)))

  ;; /config-all
  (func $config_all (param $out i32)
    (local $stream i32) (local $at i32) (local $end i32)
    ;; result<list<tuple<string, string>>, error> at 0x160: tag, the list or error at +4
    (call $config_get_all (i32.const 0x160))
    (if (i32.load8_u (i32.const 0x160))
      (then (call $config_error (local.get $out) (i32.const 0x164)) (return)))
    (local.set $at (i32.load (i32.const 0x164)))
    (local.set $end (i32.add (local.get $at) (i32.shl (i32.load (i32.const 0x168)) (i32.const 4))))
    (local.set $stream (call $start_response (local.get $out) (i32.const 200)))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $at) (local.get $end)))
        (call $write (local.get $stream) (i32.load (local.get $at)) (i32.load offset=4 (local.get $at)))
        (call $write (local.get $stream) (i32.const 0x40c) (i32.const 1))
        (call $write (local.get $stream) (i32.load offset=8 (local.get $at)) (i32.load offset=12 (local.get $at)))
        (call $write (local.get $stream) (i32.const 0x40d) (i32.const 1))
        (local.set $at (i32.add (local.get $at) (i32.const 16)))
        (br $next)))
    (call $finish_response (local.get $stream)))

  ;; /log: levels trace (0) to critical (5)
  (func $log_levels (param $out i32)
    (local $level i32)
    (loop $next
      (call $log (local.get $level) (i32.const 0x1100) (i32.const 6)
        (i32.add (i32.const 0x1110) (i32.shl (local.get $level) (i32.const 4)))
        (i32.load8_u (i32.add (i32.const 0x1170) (local.get $level))))
      (local.set $level (i32.add (local.get $level) (i32.const 1)))
      (br_if $next (i32.lt_u (local.get $level) (i32.const 6))))
    (call $respond (local.get $out) (i32.const 200) (i32.const 0x10b0) (i32.const 7)))

  (func (export "cm32p2|wasi:http/incoming-handler@0.2|handle") (param $request i32) (param $out i32)
    (local $at i32)
    ;; option<string> at 0x120: tag, pointer, length; cut at `?`
    (call $path_with_query (local.get $request) (i32.const 0x120))
    (if (i32.load8_u (i32.const 0x120))
      (then
        (global.set $pos (i32.load (i32.const 0x124)))
        (global.set $end (i32.add (global.get $pos) (i32.load (i32.const 0x128))))
        (local.set $at (global.get $pos))
        (block $cut
          (loop $next
            (br_if $cut (i32.ge_u (local.get $at) (global.get $end)))
            (if (i32.eq (i32.load8_u (local.get $at)) (i32.const 0x3f))
              (then (global.set $end (local.get $at)) (br $cut)))
            (local.set $at (i32.add (local.get $at) (i32.const 1)))
            (br $next)))
        (block $none
          (loop $next
            (br_if $none (i32.eqz (call $next_seg)))
            (if (call $is (i32.const 0x1010) (i32.const 5))
              (then (call $count (local.get $out)) (return)))
            (if (call $is (i32.const 0x1018) (i32.const 2))
              (then (call $kv (local.get $out)) (return)))
            (if (call $is (i32.const 0x1020) (i32.const 6))
              (then (call $config (local.get $out)) (return)))
            (if (call $is (i32.const 0x1030) (i32.const 10))
              (then (call $config_all (local.get $out)) (return)))
            (if (call $is (i32.const 0x1040) (i32.const 3))
              (then (call $log_levels (local.get $out)) (return)))
            (br $next)))))
    (call $respond (local.get $out) (i32.const 200) (i32.const 0x1000) (i32.const 3))))
