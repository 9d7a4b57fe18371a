//! Loading a component, with errors that say what is wrong and what to do.

use anyhow::{Context as _, bail};
use std::path::Path;
use wasmtime::Engine;
use wasmtime::component::Component;

/// Compiles the component at `path` (binary or text). A core module, a file that is not
/// WebAssembly at all, or one that does not validate is refused with an error naming the
/// file and saying which it is.
fn load_component(engine: &Engine, path: &Path) -> anyhow::Result<Component> {
    let shown = path.display();
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {shown}"))?;
    if bytes.starts_with(b"\0asm") && bytes.get(4..8) == Some(&[1, 0, 0, 0]) {
        bail!(
            "{shown} is a core WebAssembly module, not a component. wasmlens runs WASI 0.2 \
             components; make one with `wasm-tools component new {shown} --adapt \
             wasi_snapshot_preview1.command.wasm -o app.wasm` (the adapter ships with wasmtime)"
        );
    }
    if !bytes.starts_with(b"\0asm") && std::str::from_utf8(&bytes).is_err() {
        bail!(
            "{shown} is not WebAssembly: a component is either binary (starting with the \
             bytes \\0asm) or its text form (WAT), and this file is neither"
        );
    }
    crate::cache::compile(engine, &bytes)
        .map_err(|err| anyhow::anyhow!("{shown} is not a valid component: {err:#}"))
}

/// The names of the interfaces and functions a component exports.
fn describe_exports(engine: &Engine, component: &Component) -> Vec<String> {
    component
        .component_type()
        .exports(engine)
        .map(|(name, _)| name.to_owned())
        .collect()
}

/// Refuses a component that does not export `interface` (matched without its version,
/// so `wasi:cli/run` accepts any `wasi:cli/run@0.2.x`). `hint` says what the command
/// needs and what to do instead.
fn require_export(
    engine: &Engine,
    component: &Component,
    path: &Path,
    interface: &str,
    hint: &str,
) -> anyhow::Result<()> {
    let exports = describe_exports(engine, component);
    let matches = |name: &String| name.split('@').next() == Some(interface);
    if exports.iter().any(matches) {
        return Ok(());
    }
    let exported = if exports.is_empty() {
        "nothing".to_owned()
    } else {
        exports.join(", ")
    };
    bail!(
        "{} does not export {interface}; it exports {exported}. {hint}",
        path.display()
    )
}

/// Loads the component at `path` and refuses it unless it exports `interface` (see
/// [`require_export`]).
pub fn load_exporting(
    engine: &Engine,
    path: &Path,
    interface: &str,
    hint: &str,
) -> anyhow::Result<Component> {
    let component = load_component(engine, path)?;
    require_export(engine, &component, path, interface, hint)?;
    Ok(component)
}

/// The names a binary component exports at its top level (`wasi:http/incoming-handler@0.2.6`,
/// `wasi:cli/run@0.2.0`), read without compiling it: what a front end that is handed a
/// component with no word on how to run it (the containerd shim) goes by.
pub fn exported_names(bytes: &[u8]) -> anyhow::Result<Vec<String>> {
    use wasmparser::{Parser, Payload};
    if !Parser::is_component(bytes) {
        bail!(
            "not a WebAssembly component (a component's binary form starts with \\0asm and layer 1)"
        );
    }
    let mut names = Vec::new();
    // Nested modules and components begin with their own version header and end with
    // their own `End`: only exports at depth 1 are the component's own.
    let mut depth = 0usize;
    for payload in Parser::new(0).parse_all(bytes) {
        match payload? {
            Payload::Version { .. } => depth += 1,
            Payload::End(_) => depth = depth.saturating_sub(1),
            Payload::ComponentExportSection(exports) if depth == 1 => {
                for export in exports {
                    names.push(export?.name.name.to_owned());
                }
            }
            _ => {}
        }
    }
    Ok(names)
}

/// A component's default id (its file stem, `hello` for `dir/hello.wasm`) and its file
/// name (`wasmtime.component.name`).
pub fn component_names(path: &Path) -> (String, String) {
    let lossy = |s: &std::ffi::OsStr| s.to_string_lossy().into_owned();
    let name = path
        .file_name()
        .map_or_else(|| path.display().to_string(), lossy);
    let id = path.file_stem().map_or_else(|| name.clone(), lossy);
    (id, name)
}
