;; world: http-otel
;; A wasi:http proxy that reports telemetry through wasi:otel@0.2.0-rc.2. On every request,
;; in this order, it
;;   a. reads the outer span context (`outer-span-context`),
;;   b. starts its own span (`on-start`): the outer trace-id and flags, span-id
;;      00f067aa0ba902b7, not remote, no trace-state,
;;   c. emits a log record (`logs.on-emit`): WARN (13), body `"guest says hi"`, attribute
;;      guest.attr=7, event guest.event, in the span,
;;   d. exports metrics (`metrics.export`): a u64 delta sum guest.requests = 1 with
;;      path="/", an f64 gauge guest.temperature = 21.5, and an f64 cumulative
;;      histogram guest.latency (ms, bounds 1, 5, 10; bucket counts 1, 2, 0, 1; count 4,
;;      sum 17.5, min 0.5, max 12); an error is ignored,
;;   e. ends the span (`on-end`): guest-work, internal, ok, parent the outer span-id, two
;;      attributes and an event,
;; and answers 200 `traced`. The last path segment (before any query) changes that:
;;   .../many     b and e 2000 times each (same ids), c 2000 times, d once: over the
;;                host's per-invocation caps; answers 200 `many`
;;   .../context  only a: answers 200 with the outer context, `TRACE-ID-SPAN-ID`
;; Every instrumentation scope is guest-scope 1.2.3, and every time is fixed, near
;; 1700000000 s after the epoch. The records are laid out at fixed addresses per the
;; canonical ABI; the offsets are in the comments.
(module
  ;; @include shared/imports-io.wat
  ;; @include shared/imports-http.wat
  (import "cm32p2|wasi:http/types@0.2" "[method]incoming-request.path-with-query"
    (func $path_with_query (param i32 i32)))
  ;; outer-span-context: the span-context at the return pointer; on-start: the
  ;; span-context flattened (trace-id, span-id, trace-flags, is-remote, trace-state);
  ;; on-end and on-emit: a pointer to the record; export: the resource-metrics flattened
  ;; (resource's attributes, its schema-url option<string>, scope-metrics), then the
  ;; return pointer for result<_, string>.
  (import "cm32p2|wasi:otel/tracing@0.2.0-rc.2" "outer-span-context"
    (func $outer_span_context (param i32)))
  (import "cm32p2|wasi:otel/tracing@0.2.0-rc.2" "on-start"
    (func $on_start (param i32 i32 i32 i32 i32 i32 i32 i32)))
  (import "cm32p2|wasi:otel/tracing@0.2.0-rc.2" "on-end" (func $on_end (param i32)))
  (import "cm32p2|wasi:otel/logs@0.2.0-rc.2" "on-emit" (func $on_emit (param i32)))
  (import "cm32p2|wasi:otel/metrics@0.2.0-rc.2" "export"
    (func $export (param i32 i32 i32 i32 i32 i32 i32 i32)))
  ;; @include shared/prelude.wat
  ;; @include shared/http-helpers.wat
  ;; Return areas: 0x120 the path (option<string>), 0x140 the outer span-context (28
  ;; bytes: trace-id +0, span-id +8, trace-flags +16, is-remote +17, trace-state +20),
  ;; 0x160 what export returns (result<_, string>: tag, the string at +4).
  ;; Records: 0x2000 span-data, 0x2100 log-record, 0x2200.. the lists they point to,
  ;; 0x2300.. the metrics; empty strings and lists are (0, 0).
  (data (i32.const 0x1000) "traced\n")
  (data (i32.const 0x1008) "many\n")
  (data (i32.const 0x1010) "context")
  (data (i32.const 0x1018) "-")
  (data (i32.const 0x1020) "00f067aa0ba902b7")
  ;; the log record
  (data (i32.const 0x1030) "WARN")
  (data (i32.const 0x1038) "\"guest says hi\"")
  (data (i32.const 0x1048) "guest.attr")
  (data (i32.const 0x1058) "7")
  (data (i32.const 0x1060) "guest.event")
  ;; the scope
  (data (i32.const 0x1070) "guest-scope")
  (data (i32.const 0x1080) "1.2.3")
  ;; the metrics
  (data (i32.const 0x1088) "guest.requests")
  (data (i32.const 0x1098) "requests the guest saw")
  (data (i32.const 0x10b0) "{request}")
  (data (i32.const 0x10c0) "path")
  (data (i32.const 0x10c8) "\"/\"")
  (data (i32.const 0x10d0) "guest.temperature")
  (data (i32.const 0x10e8) "Cel")
  ;; the span
  (data (i32.const 0x10f0) "guest-work")
  (data (i32.const 0x1100) "guest.answer")
  (data (i32.const 0x1110) "42")
  (data (i32.const 0x1118) "guest.word")
  (data (i32.const 0x1128) "\"hello\"")
  (data (i32.const 0x1130) "guest-event")
  (data (i32.const 0x1140) "n")
  (data (i32.const 0x1148) "1")
  ;; the histogram
  (data (i32.const 0x1150) "guest.latency")
  (data (i32.const 0x1160) "ms")

  ;; Stores a string or list, (pointer, length), at $at.
  (func $pair (param $at i32) (param $ptr i32) (param $len i32)
    (i32.store (local.get $at) (local.get $ptr))
    (i32.store offset=4 (local.get $at) (local.get $len)))

  ;; Stores a wall-clock datetime at $at (16 bytes, align 8): seconds (u64) +0,
  ;; nanoseconds (u32) +8.
  (func $datetime (param $at i32) (param $seconds i64) (param $nanoseconds i32)
    (i64.store (local.get $at) (local.get $seconds))
    (i32.store offset=8 (local.get $at) (local.get $nanoseconds)))

  ;; Stores the instrumentation-scope at $at (40 bytes, align 4): name +0, version
  ;; option<string> +8 (tag, the string at +12), schema-url option<string> +20 (tag, the
  ;; string at +24), attributes +32. It is guest-scope, some(1.2.3), none, [].
  (func $scope (param $at i32)
    (call $pair (local.get $at) (i32.const 0x1070) (i32.const 11))
    (i32.store8 offset=8 (local.get $at) (i32.const 1))
    (call $pair (i32.add (local.get $at) (i32.const 12)) (i32.const 0x1080) (i32.const 5))
    (i32.store8 offset=20 (local.get $at) (i32.const 0))
    (call $pair (i32.add (local.get $at) (i32.const 32)) (i32.const 0) (i32.const 0)))

  ;; The span-data at 0x2000 (168 bytes, align 8), with the lists it points to.
  (func $span_data
    (local $r i32)
    (local.set $r (i32.const 0x2000))
    ;; +0 span-context: the guest's own (as on-start gets it)
    (call $pair (local.get $r) (i32.load (i32.const 0x140)) (i32.load (i32.const 0x144)))
    (call $pair (i32.add (local.get $r) (i32.const 8)) (i32.const 0x1020) (i32.const 16))
    (i32.store8 offset=16 (local.get $r) (i32.load8_u (i32.const 0x150)))
    (i32.store8 offset=17 (local.get $r) (i32.const 0))
    (call $pair (i32.add (local.get $r) (i32.const 20)) (i32.const 0) (i32.const 0))
    ;; +28 parent-span-id: the outer span-id
    (call $pair (i32.add (local.get $r) (i32.const 28))
                (i32.load (i32.const 0x148)) (i32.load (i32.const 0x14c)))
    ;; +36 span-kind: internal
    (i32.store8 offset=36 (local.get $r) (i32.const 4))
    ;; +40 name
    (call $pair (i32.add (local.get $r) (i32.const 40)) (i32.const 0x10f0) (i32.const 10))
    ;; +48 start-time, +64 end-time
    (call $datetime (i32.add (local.get $r) (i32.const 48)) (i64.const 1700000000) (i32.const 0))
    (call $datetime (i32.add (local.get $r) (i32.const 64)) (i64.const 1700000000) (i32.const 250000000))
    ;; +80 attributes, +88 events, +96 links
    (call $pair (i32.add (local.get $r) (i32.const 80)) (i32.const 0x2200) (i32.const 2))
    (call $pair (i32.add (local.get $r) (i32.const 88)) (i32.const 0x2220) (i32.const 1))
    (call $pair (i32.add (local.get $r) (i32.const 96)) (i32.const 0) (i32.const 0))
    ;; +104 status (12 bytes: tag, error's string at +108): ok
    (i32.store8 offset=104 (local.get $r) (i32.const 1))
    ;; +116 instrumentation-scope
    (call $scope (i32.add (local.get $r) (i32.const 116)))
    ;; +156 dropped-attributes, +160 dropped-events, +164 dropped-links
    (i32.store offset=156 (local.get $r) (i32.const 0))
    (i32.store offset=160 (local.get $r) (i32.const 0))
    (i32.store offset=164 (local.get $r) (i32.const 0))
    ;; 0x2200 attributes, list<key-value> (16 bytes each: key +0, value +8):
    ;; guest.answer=42, guest.word="hello"
    (call $pair (i32.const 0x2200) (i32.const 0x1100) (i32.const 12))
    (call $pair (i32.const 0x2208) (i32.const 0x1110) (i32.const 2))
    (call $pair (i32.const 0x2210) (i32.const 0x1118) (i32.const 10))
    (call $pair (i32.const 0x2218) (i32.const 0x1128) (i32.const 7))
    ;; 0x2220 events, list<event> (32 bytes each, align 8: name +0, time +8,
    ;; attributes +24): guest-event at 1700000000.1 with n=1 (0x2240)
    (call $pair (i32.const 0x2220) (i32.const 0x1130) (i32.const 11))
    (call $datetime (i32.const 0x2228) (i64.const 1700000000) (i32.const 100000000))
    (call $pair (i32.const 0x2238) (i32.const 0x2240) (i32.const 1))
    (call $pair (i32.const 0x2240) (i32.const 0x1140) (i32.const 1))
    (call $pair (i32.const 0x2248) (i32.const 0x1148) (i32.const 1)))

  ;; The log-record at 0x2100 (200 bytes, align 8), with its attributes at 0x2250.
  ;; Each field is an option: its tag, then the value at the value's alignment.
  (func $log_record
    (local $r i32)
    (local.set $r (i32.const 0x2100))
    ;; +0 timestamp option<datetime> (24 bytes): some(1700000000 s, 5 ns) at +8
    (i32.store8 offset=0 (local.get $r) (i32.const 1))
    (call $datetime (i32.add (local.get $r) (i32.const 8)) (i64.const 1700000000) (i32.const 5))
    ;; +24 observed-timestamp: none
    (i32.store8 offset=24 (local.get $r) (i32.const 0))
    ;; +48 severity-text option<string> (12 bytes): some(WARN) at +52
    (i32.store8 offset=48 (local.get $r) (i32.const 1))
    (call $pair (i32.add (local.get $r) (i32.const 52)) (i32.const 0x1030) (i32.const 4))
    ;; +60 severity-number option<u8> (2 bytes): some(13) at +61
    (i32.store8 offset=60 (local.get $r) (i32.const 1))
    (i32.store8 offset=61 (local.get $r) (i32.const 13))
    ;; +64 body option<string>: some("guest says hi" with its quotes) at +68
    (i32.store8 offset=64 (local.get $r) (i32.const 1))
    (call $pair (i32.add (local.get $r) (i32.const 68)) (i32.const 0x1038) (i32.const 15))
    ;; +76 attributes option<list<key-value>>: some([guest.attr=7]) at +80
    (i32.store8 offset=76 (local.get $r) (i32.const 1))
    (call $pair (i32.add (local.get $r) (i32.const 80)) (i32.const 0x2250) (i32.const 1))
    (call $pair (i32.const 0x2250) (i32.const 0x1048) (i32.const 10))
    (call $pair (i32.const 0x2258) (i32.const 0x1058) (i32.const 1))
    ;; +88 event-name option<string>: some(guest.event) at +92
    (i32.store8 offset=88 (local.get $r) (i32.const 1))
    (call $pair (i32.add (local.get $r) (i32.const 92)) (i32.const 0x1060) (i32.const 11))
    ;; +100 resource option<resource> (24 bytes): none
    (i32.store8 offset=100 (local.get $r) (i32.const 0))
    ;; +124 instrumentation-scope option<instrumentation-scope> (44 bytes): some at +128
    (i32.store8 offset=124 (local.get $r) (i32.const 1))
    (call $scope (i32.add (local.get $r) (i32.const 128)))
    ;; +168 trace-id option<string>: some(the outer trace-id) at +172
    (i32.store8 offset=168 (local.get $r) (i32.const 1))
    (call $pair (i32.add (local.get $r) (i32.const 172))
                (i32.load (i32.const 0x140)) (i32.load (i32.const 0x144)))
    ;; +180 span-id option<string>: some(the guest's span-id) at +184
    (i32.store8 offset=180 (local.get $r) (i32.const 1))
    (call $pair (i32.add (local.get $r) (i32.const 184)) (i32.const 0x1020) (i32.const 16))
    ;; +192 trace-flags option<trace-flags> (2 bytes): some(the outer flags) at +193
    (i32.store8 offset=192 (local.get $r) (i32.const 1))
    (i32.store8 offset=193 (local.get $r) (i32.load8_u (i32.const 0x150))))

  ;; The resource-metrics' list<scope-metrics> at 0x2300 and all it points to. The
  ;; resource (no attributes, no schema-url) goes flat in export's parameters.
  (func $scope_metrics
    (local $m i32)
    ;; 0x2300 scope-metrics (48 bytes, align 4): scope +0, metrics +40
    (call $scope (i32.const 0x2300))
    (call $pair (i32.const 0x2328) (i32.const 0x2500) (i32.const 3))
    ;; 0x2500 metrics, list<metric> (80 bytes each, align 8): name +0, description +8,
    ;; unit +16, data metric-data +24 (56 bytes: tag u8, the case's record at +32)
    (local.set $m (i32.const 0x2500))
    (call $pair (local.get $m) (i32.const 0x1088) (i32.const 14))
    (call $pair (i32.add (local.get $m) (i32.const 8)) (i32.const 0x1098) (i32.const 22))
    (call $pair (i32.add (local.get $m) (i32.const 16)) (i32.const 0x10b0) (i32.const 9))
    ;; u64-sum (5); sum (48 bytes): data-points +32, start-time +40, time +56,
    ;; temporality +72 (delta, 1), is-monotonic +73
    (i32.store8 offset=24 (local.get $m) (i32.const 5))
    (call $pair (i32.add (local.get $m) (i32.const 32)) (i32.const 0x2400) (i32.const 1))
    (call $datetime (i32.add (local.get $m) (i32.const 40)) (i64.const 1700000000) (i32.const 0))
    (call $datetime (i32.add (local.get $m) (i32.const 56)) (i64.const 1700000001) (i32.const 0))
    (i32.store8 offset=72 (local.get $m) (i32.const 1))
    (i32.store8 offset=73 (local.get $m) (i32.const 1))
    (local.set $m (i32.const 0x2550))
    (call $pair (local.get $m) (i32.const 0x10d0) (i32.const 17))
    (call $pair (i32.add (local.get $m) (i32.const 8)) (i32.const 0) (i32.const 0))
    (call $pair (i32.add (local.get $m) (i32.const 16)) (i32.const 0x10e8) (i32.const 3))
    ;; f64-gauge (0); gauge (48 bytes): data-points +32, start-time option<datetime> +40
    ;; (none), time +64
    (i32.store8 offset=24 (local.get $m) (i32.const 0))
    (call $pair (i32.add (local.get $m) (i32.const 32)) (i32.const 0x2420) (i32.const 1))
    (i32.store8 offset=40 (local.get $m) (i32.const 0))
    (call $datetime (i32.add (local.get $m) (i32.const 64)) (i64.const 1700000001) (i32.const 0))
    (local.set $m (i32.const 0x25a0))
    (call $pair (local.get $m) (i32.const 0x1150) (i32.const 13))
    (call $pair (i32.add (local.get $m) (i32.const 8)) (i32.const 0) (i32.const 0))
    (call $pair (i32.add (local.get $m) (i32.const 16)) (i32.const 0x1160) (i32.const 2))
    ;; f64-histogram (2); histogram (48 bytes): data-points +32, start-time +40, time
    ;; +56, temporality +72 (cumulative, 0)
    (i32.store8 offset=24 (local.get $m) (i32.const 2))
    (call $pair (i32.add (local.get $m) (i32.const 32)) (i32.const 0x2600) (i32.const 1))
    (call $datetime (i32.add (local.get $m) (i32.const 40)) (i64.const 1700000000) (i32.const 0))
    (call $datetime (i32.add (local.get $m) (i32.const 56)) (i64.const 1700000001) (i32.const 0))
    (i32.store8 offset=72 (local.get $m) (i32.const 0))
    ;; 0x2600 its data point (104 bytes, align 8): attributes +0, count +8, bounds +16,
    ;; bucket-counts +24, min option<metric-number> +32 (tag; the number's tag at +40,
    ;; the number at +48), max +56, sum metric-number +80 (tag; the number at +88),
    ;; exemplars +96
    (call $pair (i32.const 0x2600) (i32.const 0) (i32.const 0))
    (i64.store (i32.const 0x2608) (i64.const 4))
    (call $pair (i32.const 0x2610) (i32.const 0x2680) (i32.const 3))
    (call $pair (i32.const 0x2618) (i32.const 0x26a0) (i32.const 4))
    (i32.store8 (i32.const 0x2620) (i32.const 1))
    (i32.store8 (i32.const 0x2628) (i32.const 0))
    (f64.store (i32.const 0x2630) (f64.const 0.5))
    (i32.store8 (i32.const 0x2638) (i32.const 1))
    (i32.store8 (i32.const 0x2640) (i32.const 0))
    (f64.store (i32.const 0x2648) (f64.const 12))
    (i32.store8 (i32.const 0x2650) (i32.const 0))
    (f64.store (i32.const 0x2658) (f64.const 17.5))
    (call $pair (i32.const 0x2660) (i32.const 0) (i32.const 0))
    ;; 0x2680 the bounds (f64) and 0x26a0 the bucket counts (u64)
    (f64.store (i32.const 0x2680) (f64.const 1))
    (f64.store (i32.const 0x2688) (f64.const 5))
    (f64.store (i32.const 0x2690) (f64.const 10))
    (i64.store (i32.const 0x26a0) (i64.const 1))
    (i64.store (i32.const 0x26a8) (i64.const 2))
    (i64.store (i32.const 0x26b0) (i64.const 0))
    (i64.store (i32.const 0x26b8) (i64.const 1))
    ;; 0x2400 the sum's and 0x2420 the gauge's data point (32 bytes, align 8):
    ;; attributes +0, value metric-number +8 (tag u8: f64 0, s64 1, u64 2; the number at
    ;; +16), exemplars +24
    (call $pair (i32.const 0x2400) (i32.const 0x2440) (i32.const 1))
    (i32.store8 (i32.const 0x2408) (i32.const 2))
    (i64.store (i32.const 0x2410) (i64.const 1))
    (call $pair (i32.const 0x2418) (i32.const 0) (i32.const 0))
    (call $pair (i32.const 0x2420) (i32.const 0) (i32.const 0))
    (i32.store8 (i32.const 0x2428) (i32.const 0))
    (f64.store (i32.const 0x2430) (f64.const 21.5))
    (call $pair (i32.const 0x2438) (i32.const 0) (i32.const 0))
    ;; 0x2440 the sum point's attributes: path="/"
    (call $pair (i32.const 0x2440) (i32.const 0x10c0) (i32.const 4))
    (call $pair (i32.const 0x2448) (i32.const 0x10c8) (i32.const 3)))

  (func (export "cm32p2|wasi:http/incoming-handler@0.2|handle") (param $request i32) (param $out i32)
    (local $at i32) (local $end i32) (local $seg i32) (local $c i32) (local $many i32)
    (local $n i32) (local $i i32) (local $stream i32)
    ;; the last segment of the path, before any query: [$seg, $at)
    (call $path_with_query (local.get $request) (i32.const 0x120))
    (if (i32.load8_u (i32.const 0x120))
      (then
        (local.set $at (i32.load (i32.const 0x124)))
        (local.set $end (i32.add (local.get $at) (i32.load (i32.const 0x128))))
        (local.set $seg (local.get $at))
        (block $cut
          (loop $next
            (br_if $cut (i32.ge_u (local.get $at) (local.get $end)))
            (local.set $c (i32.load8_u (local.get $at)))
            (br_if $cut (i32.eq (local.get $c) (i32.const 0x3f)))
            (local.set $at (i32.add (local.get $at) (i32.const 1)))
            (if (i32.eq (local.get $c) (i32.const 0x2f)) (then (local.set $seg (local.get $at))))
            (br $next)))))
    ;; a. the outer span-context at 0x140
    (call $outer_span_context (i32.const 0x140))
    (if (call $streq (local.get $seg) (i32.sub (local.get $at) (local.get $seg))
                     (i32.const 0x1010) (i32.const 7))
      (then
        (local.set $stream (call $start_response (local.get $out) (i32.const 200)))
        (call $write (local.get $stream) (i32.load (i32.const 0x140)) (i32.load (i32.const 0x144)))
        (call $write (local.get $stream) (i32.const 0x1018) (i32.const 1))
        (call $write (local.get $stream) (i32.load (i32.const 0x148)) (i32.load (i32.const 0x14c)))
        (call $write (local.get $stream) (i32.const 0x40d) (i32.const 1))
        (call $finish_response (local.get $stream))
        (return)))
    (local.set $many (call $streq (local.get $seg) (i32.sub (local.get $at) (local.get $seg))
                                  (i32.const 0x1008) (i32.const 4)))
    (local.set $n (select (i32.const 2000) (i32.const 1) (local.get $many)))
    (call $span_data)
    (call $log_record)
    (call $scope_metrics)
    ;; b. on-start with the guest's span-context, flat
    (local.set $i (i32.const 0))
    (loop $again
      (call $on_start (i32.load (i32.const 0x140)) (i32.load (i32.const 0x144))
                      (i32.const 0x1020) (i32.const 16)
                      (i32.load8_u (i32.const 0x150)) (i32.const 0)
                      (i32.const 0) (i32.const 0))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $again (i32.lt_u (local.get $i) (local.get $n))))
    ;; c. the log record
    (local.set $i (i32.const 0))
    (loop $again
      (call $on_emit (i32.const 0x2100))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $again (i32.lt_u (local.get $i) (local.get $n))))
    ;; d. the metrics: resource {attributes: [], schema-url: none}, one scope-metrics;
    ;; the result at 0x160 is ignored
    (call $export (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0)
                  (i32.const 0x2300) (i32.const 1) (i32.const 0x160))
    ;; e. on-end with the span-data
    (local.set $i (i32.const 0))
    (loop $again
      (call $on_end (i32.const 0x2000))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $again (i32.lt_u (local.get $i) (local.get $n))))
    (if (local.get $many)
      (then (call $respond (local.get $out) (i32.const 200) (i32.const 0x1008) (i32.const 5)))
      (else (call $respond (local.get $out) (i32.const 200) (i32.const 0x1000) (i32.const 7))))))
