//! Why a guest failed, in the contract's terms (`error.type`).

use std::fmt;
use wasmlens_telemetry::names::error_type;
use wasmtime::Trap;

/// How a guest failed: each is one of the contract's `error.type` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FailureKind {
    ComponentTrap,
    FuelExhausted,
    Timeout,
    MemoryLimitExceeded,
    InstantiationFailure,
}

impl FailureKind {
    /// Its `error.type`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ComponentTrap => error_type::COMPONENT_TRAP,
            Self::FuelExhausted => error_type::FUEL_EXHAUSTED,
            Self::Timeout => error_type::TIMEOUT,
            Self::MemoryLimitExceeded => error_type::MEMORY_LIMIT_EXCEEDED,
            Self::InstantiationFailure => error_type::INSTANTIATION_FAILURE,
        }
    }

    /// A few words for a person: the one-line reason `run` prints, and the body of the
    /// 500 that `serve` answers (which says no more, so nothing internal leaks).
    pub fn describe(self) -> &'static str {
        match self {
            Self::ComponentTrap => "the component trapped",
            Self::FuelExhausted => "the component ran out of fuel",
            Self::Timeout => "the component ran past its timeout",
            Self::MemoryLimitExceeded => "the component exceeded its memory limit",
            Self::InstantiationFailure => "the component could not be instantiated",
        }
    }
}

/// A classified guest failure with the underlying error's message.
#[derive(Debug)]
pub struct GuestFailure {
    pub kind: FailureKind,
    pub message: String,
}

impl GuestFailure {
    /// Classifies an error from calling into a guest. `instantiating` says whether it
    /// came from instantiation, where anything that is not a limit is an
    /// `InstantiationFailure`.
    pub fn classify(error: &wasmtime::Error, instantiating: bool) -> Self {
        let kind = if error.downcast_ref::<TimedOut>().is_some() {
            FailureKind::Timeout
        } else if error.downcast_ref::<MemoryLimitExceeded>().is_some() {
            FailureKind::MemoryLimitExceeded
        } else {
            match error.downcast_ref::<Trap>() {
                Some(Trap::OutOfFuel) => FailureKind::FuelExhausted,
                Some(Trap::Interrupt) => FailureKind::Timeout,
                _ if instantiating => FailureKind::InstantiationFailure,
                _ => FailureKind::ComponentTrap,
            }
        };
        GuestFailure {
            kind,
            message: root_cause_chain(error),
        }
    }
}

impl fmt::Display for GuestFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind.describe(), self.message)
    }
}

/// The error and its causes on one line, without the wasm backtrace wasmtime attaches
/// as context (which is long and goes to the debug log instead).
fn root_cause_chain(error: &wasmtime::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in error.chain() {
        let text = cause.to_string();
        if text.starts_with("error while executing at wasm backtrace") {
            continue;
        }
        if parts.last() != Some(&text) {
            parts.push(text);
        }
    }
    parts.join(": ")
}

/// The error a guest is stopped with when it passes its timeout.
#[derive(Debug)]
pub struct TimedOut {
    pub timeout: std::time::Duration,
}

impl fmt::Display for TimedOut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "timed out after {:?}", self.timeout)
    }
}

impl std::error::Error for TimedOut {}

/// The error a guest is stopped with when it grows its memory past the limit.
#[derive(Debug)]
pub struct MemoryLimitExceeded {
    pub limit: usize,
    pub requested: usize,
}

impl fmt::Display for MemoryLimitExceeded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "memory limit of {} bytes exceeded (the guest asked for {} bytes)",
            self.limit, self.requested
        )
    }
}

impl std::error::Error for MemoryLimitExceeded {}
