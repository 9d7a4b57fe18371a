//! A cache of compiled components, so that the second `wasmlens run app.wasm` starts
//! without compiling (as `wasmtime run` does with its own cache). Entries are keyed by
//! the component's bytes and by everything about the engine that shapes the compiled code
//! (wasmtime's version, its settings, the CPU features), so an entry is only ever loaded
//! into an engine that could have produced it.
//!
//! The folder is `$WASMLENS_CACHE_DIR`, else `$XDG_CACHE_HOME/wasmlens`, else
//! `~/.cache/wasmlens`; `WASMLENS_CACHE_DIR=off` turns the cache off. Like wasmtime's, it
//! trusts its folder: whoever can write there can run code in wasmlens.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use wasmtime::Engine;
use wasmtime::component::Component;

fn folder() -> Option<PathBuf> {
    match std::env::var_os("WASMLENS_CACHE_DIR") {
        Some(dir) if dir == "off" => None,
        Some(dir) if !dir.is_empty() => Some(dir.into()),
        _ => std::env::var_os("XDG_CACHE_HOME")
            .filter(|d| !d.is_empty())
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|home| Path::new(&home).join(".cache")))
            .map(|dir| dir.join("wasmlens")),
    }
}

/// 128 bits from two differently seeded hashes of the engine and the bytes.
fn key(engine: &Engine, bytes: &[u8]) -> String {
    let half = |seed: u64| {
        let mut hasher = std::hash::DefaultHasher::new();
        seed.hash(&mut hasher);
        engine.precompile_compatibility_hash().hash(&mut hasher);
        bytes.hash(&mut hasher);
        hasher.finish()
    };
    format!("{:016x}{:016x}", half(1), half(2))
}

/// Compiles `bytes`, or loads what an earlier compilation of the same bytes by an
/// equivalent engine left in the cache. A cache that cannot be read or written is
/// skipped: it never fails a load.
pub(crate) fn compile(engine: &Engine, bytes: &[u8]) -> wasmtime::Result<Component> {
    match folder() {
        Some(folder) => compile_in(&folder, engine, bytes),
        None => Component::new(engine, bytes),
    }
}

fn compile_in(folder: &Path, engine: &Engine, bytes: &[u8]) -> wasmtime::Result<Component> {
    let entry = folder.join(format!("{}.cwasm", key(engine, bytes)));
    // Read, not mapped: a file changed under a mapping would crash the process.
    if let Ok(compiled) = std::fs::read(&entry) {
        // SAFETY: the entry was written by `Component::serialize` for an engine with the
        // same compatibility hash (its name says so), in a folder wasmlens trusts, and
        // wasmtime checks the header against this engine again.
        match unsafe { Component::deserialize(engine, &compiled) } {
            Ok(component) => return Ok(component),
            Err(err) => {
                tracing::debug!("ignoring cache entry {}: {err:#}", entry.display());
                let _ = std::fs::remove_file(&entry);
            }
        }
    }
    let component = Component::new(engine, bytes)?;
    if let Err(err) = store(folder, &entry, &component) {
        tracing::debug!(
            "not caching the compiled component in {}: {err:#}",
            folder.display()
        );
    }
    Ok(component)
}

/// Writes the entry under a temporary name and renames it, so that a reader never sees
/// half of it.
fn store(folder: &Path, entry: &Path, component: &Component) -> anyhow::Result<()> {
    std::fs::create_dir_all(folder)?;
    let serialized = component.serialize()?;
    let partial = entry.with_extension(format!("{}.partial", std::process::id()));
    std::fs::write(&partial, serialized)?;
    std::fs::rename(&partial, entry)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const HELLO: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../guests/components/http-hello.wasm"
    );

    fn engine() -> Engine {
        let mut config = wasmtime::Config::new();
        config.wasm_component_model(true);
        Engine::new(&config).unwrap()
    }

    #[test]
    fn a_compiled_component_is_loaded_from_the_cache_and_a_bad_entry_is_replaced() {
        let folder = std::env::temp_dir().join(format!("wasmlens-cache-{}", std::process::id()));
        let engine = engine();
        let bytes = std::fs::read(HELLO).unwrap();
        let entry = folder.join(format!("{}.cwasm", key(&engine, &bytes)));

        compile_in(&folder, &engine, &bytes).unwrap();
        let written = std::fs::read(&entry).expect("an entry");
        let loaded = compile_in(&folder, &engine, &bytes).unwrap();
        assert_eq!(
            loaded.serialize().unwrap(),
            written,
            "loaded, not compiled again"
        );

        std::fs::write(&entry, b"not a compiled component").unwrap();
        compile_in(&folder, &engine, &bytes).unwrap();
        assert_eq!(
            std::fs::read(&entry).unwrap(),
            written,
            "a bad entry is replaced"
        );

        let other = {
            let mut config = wasmtime::Config::new();
            config.wasm_component_model(true).consume_fuel(true);
            Engine::new(&config).unwrap()
        };
        assert_ne!(
            key(&other, &bytes),
            key(&engine, &bytes),
            "another engine, another entry"
        );
        std::fs::remove_dir_all(folder).unwrap();
    }
}
