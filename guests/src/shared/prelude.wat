  ;; Memory map: 0x100..0x200 return areas, 0x400.. shared strings, 0x1000.. the guest's
  ;; own data, 0x8000.. a bump heap for the canonical ABI's allocations.
  (memory (export "cm32p2_memory") 1)
  (global $heap (mut i32) (i32.const 0x8000))
  (data (i32.const 0x400) "traploopgrow=\n")

  ;; Bump allocator: the canonical ABI calls it to lower lists and strings into the guest.
  ;; Nothing is freed; every instance lives for one invocation.
  (func $realloc (export "cm32p2_realloc")
    (param $old i32) (param $old_size i32) (param $align i32) (param $size i32) (result i32)
    (local $ptr i32)
    (local.set $ptr
      (i32.and (i32.add (global.get $heap) (i32.sub (local.get $align) (i32.const 1)))
               (i32.sub (i32.const 0) (local.get $align))))
    (global.set $heap (i32.add (local.get $ptr) (local.get $size)))
    (block $fits
      (br_if $fits (i32.le_u (global.get $heap) (i32.shl (memory.size) (i32.const 16))))
      (br_if $fits
        (i32.ne
          (memory.grow (i32.add (i32.const 1)
            (i32.shr_u (i32.sub (global.get $heap) (i32.shl (memory.size) (i32.const 16)))
                       (i32.const 16))))
          (i32.const -1)))
      unreachable)
    (local.get $ptr))
  (func (export "cm32p2_initialize"))

  ;; Writes all of [ptr, ptr+len) to an output stream, 4096 bytes at a time (the most
  ;; blocking-write-and-flush takes). A failed write ends the output silently.
  (func $write (param $stream i32) (param $ptr i32) (param $len i32)
    (local $n i32)
    (block $done
      (loop $more
        (br_if $done (i32.eqz (local.get $len)))
        (local.set $n (select (local.get $len) (i32.const 4096)
                              (i32.lt_u (local.get $len) (i32.const 4096))))
        (call $blocking_write_and_flush (local.get $stream) (local.get $ptr) (local.get $n)
                                        (i32.const 0x100))
        (br_if $done (i32.load8_u (i32.const 0x100)))
        (local.set $ptr (i32.add (local.get $ptr) (local.get $n)))
        (local.set $len (i32.sub (local.get $len) (local.get $n)))
        (br $more))))

  (func $streq (param $a i32) (param $al i32) (param $b i32) (param $bl i32) (result i32)
    (if (i32.ne (local.get $al) (local.get $bl)) (then (return (i32.const 0))))
    (block $differ
      (loop $next
        (if (i32.eqz (local.get $al)) (then (return (i32.const 1))))
        (br_if $differ (i32.ne (i32.load8_u (local.get $a)) (i32.load8_u (local.get $b))))
        (local.set $a (i32.add (local.get $a) (i32.const 1)))
        (local.set $b (i32.add (local.get $b) (i32.const 1)))
        (local.set $al (i32.sub (local.get $al) (i32.const 1)))
        (br $next)))
    (i32.const 0))

  ;; Misbehaves if the name is `trap`, `loop` or `grow`; returns otherwise.
  (func $misbehave (param $name i32) (param $len i32)
    (if (call $streq (local.get $name) (local.get $len) (i32.const 0x400) (i32.const 4))
      (then unreachable))
    (if (call $streq (local.get $name) (local.get $len) (i32.const 0x404) (i32.const 4))
      (then (loop $forever (br $forever))))
    (if (call $streq (local.get $name) (local.get $len) (i32.const 0x408) (i32.const 4))
      (then
        ;; Grow until the host refuses, then trap: a limit that fails the grow and one
        ;; that traps inside it both end here.
        (loop $more
          (br_if $more (i32.ne (memory.grow (i32.const 16)) (i32.const -1))))
        unreachable)))
