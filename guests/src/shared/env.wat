;; Writes the guest's environment to a stream, one KEY=VALUE a line. Needs $get_environment.
  (func $print_env (param $out i32)
    (local $at i32) (local $end i32)
    (call $get_environment (i32.const 0x110))
    (local.set $at (i32.load (i32.const 0x110)))
    (local.set $end (i32.add (local.get $at) (i32.shl (i32.load (i32.const 0x114)) (i32.const 4))))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $at) (local.get $end)))
        (call $write (local.get $out) (i32.load (local.get $at)) (i32.load offset=4 (local.get $at)))
        (call $write (local.get $out) (i32.const 0x40c) (i32.const 1))
        (call $write (local.get $out) (i32.load offset=8 (local.get $at)) (i32.load offset=12 (local.get $at)))
        (call $write (local.get $out) (i32.const 0x40d) (i32.const 1))
        (local.set $at (i32.add (local.get $at) (i32.const 16)))
        (br $next))))

