;; world: command
;; A wasi:cli command. With no arguments it prints a greeting on stdout and a line on
;; stderr. Its first argument picks something else:
;;   env          prints its environment, one KEY=VALUE a line
;;   args A B ..  prints its arguments after `args`, one a line
;;   cat          copies stdin to stdout
;;   read PATH    copies PATH, opened under its first preopened directory, to stdout
;;   exit N       greets, then exits with code N (0-255) through wasi:cli/exit
;;   fail         returns an error from `run` (exit code 1)
;;   trap | loop | grow   misbehaves
(module
  ;; @include shared/imports-io.wat
  (import "cm32p2|wasi:io/streams@0.2" "[method]input-stream.blocking-read"
    (func $blocking_read (param i32 i64 i32)))
  (import "cm32p2|wasi:cli/environment@0.2" "get-environment" (func $get_environment (param i32)))
  (import "cm32p2|wasi:cli/environment@0.2" "get-arguments" (func $get_arguments (param i32)))
  (import "cm32p2|wasi:cli/exit@0.2" "exit-with-code" (func $exit_with_code (param i32)))
  (import "cm32p2|wasi:cli/stdin@0.2" "get-stdin" (func $get_stdin (result i32)))
  (import "cm32p2|wasi:cli/stdout@0.2" "get-stdout" (func $get_stdout (result i32)))
  (import "cm32p2|wasi:cli/stderr@0.2" "get-stderr" (func $get_stderr (result i32)))
  (import "cm32p2|wasi:filesystem/preopens@0.2" "get-directories" (func $get_directories (param i32)))
  (import "cm32p2|wasi:filesystem/types@0.2" "[method]descriptor.open-at"
    (func $open_at (param i32 i32 i32 i32 i32 i32 i32)))
  (import "cm32p2|wasi:filesystem/types@0.2" "[method]descriptor.read-via-stream"
    (func $read_via_stream (param i32 i64 i32)))
  ;; @include shared/prelude.wat
  ;; @include shared/env.wat
  (data (i32.const 0x1000) "hello from a wasmlens guest\n")
  (data (i32.const 0x1020) "a line on stderr\n")
  (data (i32.const 0x1050) "envargscatexitfailread")
  (data (i32.const 0x1070) "unknown command; try env, args, cat, read PATH, exit N, fail, trap, loop or grow\n")
  (data (i32.const 0x1100) "no preopened directory\n")
  (data (i32.const 0x1120) "cannot open the file\n")

  (func $greet
    (call $write (call $get_stdout) (i32.const 0x1000) (i32.const 28))
    (call $write (call $get_stderr) (i32.const 0x1020) (i32.const 17)))

  ;; Argument i of the list<string> at $args: its pointer and length.
  (func $arg (param $args i32) (param $i i32) (result i32 i32)
    (local $at i32)
    (local.set $at (i32.add (local.get $args) (i32.shl (local.get $i) (i32.const 3))))
    (i32.load (local.get $at))
    (i32.load offset=4 (local.get $at)))

  ;; Copies an input stream to an output stream until it closes.
  (func $copy (param $in i32) (param $out i32)
    (local $mark i32)
    (local.set $mark (global.get $heap))
    (block $closed
      (loop $more
        ;; result<list<u8>, stream-error> at 0x100
        (call $blocking_read (local.get $in) (i64.const 4096) (i32.const 0x100))
        (br_if $closed (i32.load8_u (i32.const 0x100)))
        (call $write (local.get $out) (i32.load (i32.const 0x104)) (i32.load (i32.const 0x108)))
        (global.set $heap (local.get $mark))
        (br $more))))

  ;; Opens the path read-only under the first preopened directory and copies it out.
  (func $read_file (param $out i32) (param $path i32) (param $len i32) (result i32)
    ;; list<tuple<descriptor, string>> at 0x130
    (call $get_directories (i32.const 0x130))
    (if (i32.eqz (i32.load (i32.const 0x134)))
      (then (call $write (call $get_stderr) (i32.const 0x1100) (i32.const 23)) (return (i32.const 1))))
    ;; result<descriptor, error-code> at 0x140: no path flags, no open flags, read
    (call $open_at (i32.load (i32.load (i32.const 0x130))) (i32.const 0) (local.get $path) (local.get $len)
                   (i32.const 0) (i32.const 1) (i32.const 0x140))
    (if (i32.load8_u (i32.const 0x140))
      (then (call $write (call $get_stderr) (i32.const 0x1120) (i32.const 21)) (return (i32.const 1))))
    (call $read_via_stream (i32.load (i32.const 0x144)) (i64.const 0) (i32.const 0x140))
    (if (i32.load8_u (i32.const 0x140))
      (then (call $write (call $get_stderr) (i32.const 0x1120) (i32.const 21)) (return (i32.const 1))))
    (call $copy (i32.load (i32.const 0x144)) (local.get $out))
    (i32.const 0))

  (func $parse_u8 (param $ptr i32) (param $len i32) (result i32)
    (local $n i32)
    (block $done
      (loop $digit
        (br_if $done (i32.eqz (local.get $len)))
        (local.set $n (i32.add (i32.mul (local.get $n) (i32.const 10))
                               (i32.sub (i32.load8_u (local.get $ptr)) (i32.const 48))))
        (local.set $ptr (i32.add (local.get $ptr) (i32.const 1)))
        (local.set $len (i32.sub (local.get $len) (i32.const 1)))
        (br $digit)))
    (i32.and (local.get $n) (i32.const 255)))

  (func (export "cm32p2|wasi:cli/run@0.2|run") (result i32)
    (local $args i32) (local $nargs i32) (local $cmd i32) (local $cmdlen i32)
    (local $stdout i32) (local $i i32)
    (local.set $stdout (call $get_stdout))
    (call $get_arguments (i32.const 0x110))
    (local.set $args (i32.load (i32.const 0x110)))
    (local.set $nargs (i32.load (i32.const 0x114)))
    ;; argument 0 is the program's name
    (if (i32.lt_u (local.get $nargs) (i32.const 2))
      (then (call $greet) (return (i32.const 0))))
    (call $arg (local.get $args) (i32.const 1))
    (local.set $cmdlen)
    (local.set $cmd)
    (call $misbehave (local.get $cmd) (local.get $cmdlen))
    (if (call $streq (local.get $cmd) (local.get $cmdlen) (i32.const 0x1050) (i32.const 3))
      (then (call $print_env (local.get $stdout)) (return (i32.const 0))))
    (if (call $streq (local.get $cmd) (local.get $cmdlen) (i32.const 0x1053) (i32.const 4))
      (then
        (local.set $i (i32.const 2))
        (block $done
          (loop $next
            (br_if $done (i32.ge_u (local.get $i) (local.get $nargs)))
            (local.get $stdout)
            (call $arg (local.get $args) (local.get $i))
            (call $write)
            (call $write (local.get $stdout) (i32.const 0x40d) (i32.const 1))
            (local.set $i (i32.add (local.get $i) (i32.const 1)))
            (br $next)))
        (return (i32.const 0))))
    (if (call $streq (local.get $cmd) (local.get $cmdlen) (i32.const 0x1057) (i32.const 3))
      (then (call $copy (call $get_stdin) (local.get $stdout)) (return (i32.const 0))))
    (if (call $streq (local.get $cmd) (local.get $cmdlen) (i32.const 0x1062) (i32.const 4))
      (then
        (if (i32.lt_u (local.get $nargs) (i32.const 3))
          (then (call $write (call $get_stderr) (i32.const 0x1070) (i32.const 81)) (return (i32.const 1))))
        (return (call $read_file (local.get $stdout) (call $arg (local.get $args) (i32.const 2))))))
    (if (call $streq (local.get $cmd) (local.get $cmdlen) (i32.const 0x105a) (i32.const 4))
      (then
        (call $greet)
        (if (i32.ge_u (local.get $nargs) (i32.const 3))
          (then (call $exit_with_code (call $parse_u8 (call $arg (local.get $args) (i32.const 2))))))
        (call $exit_with_code (i32.const 0))
        (unreachable)))
    (if (call $streq (local.get $cmd) (local.get $cmdlen) (i32.const 0x105e) (i32.const 4))
      (then (return (i32.const 1))))
    (call $write (call $get_stderr) (i32.const 0x1070) (i32.const 81))
    (i32.const 1)))
