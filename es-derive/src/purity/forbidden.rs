//! What a replayed handler may not do, as data: each entry is a path pattern, the
//! category it falls in and why it breaks replay. The checker only matches paths
//! against these tables; adding a rule never means adding an `if`.

/// Why something is refused, and what to do instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Category {
    Io,
    Clock,
    Randomness,
    Environment,
    Threads,
    Printing,
    Logging,
    Unsafe,
    Async,
    Static,
}

impl Category {
    /// What the refused code does, as a verb phrase.
    pub fn does(self) -> &'static str {
        match self {
            Category::Io => "does I/O",
            Category::Clock => "reads the clock",
            Category::Randomness => "draws random values",
            Category::Environment => "reads the process environment",
            Category::Threads => "spawns threads or sleeps",
            Category::Printing => "prints",
            Category::Logging => "logs",
            Category::Unsafe => "escapes the check",
            Category::Async => "is asynchronous",
            Category::Static => "keeps state outside the aggregate",
        }
    }

    /// What to do instead.
    pub fn instead(self) -> &'static str {
        match self {
            Category::Io => {
                "do I/O on the command side or in a projection; a handler only changes `self` from the event"
            }
            Category::Clock => {
                "capture the time into the event when the command is decided (inject an `es::Clock`), or override `apply_recorded` and read `recorded.occurred_at()`"
            }
            Category::Randomness => {
                "draw the value when the command is decided and record it in the event (inject an `es::IdSource` for ids)"
            }
            Category::Environment => {
                "read configuration on the command side and record what the decision needs in the event"
            }
            Category::Threads => "a handler is a plain synchronous fold: compute the new state directly",
            Category::Printing | Category::Logging => {
                "log on the command side or in a projection; build strings with `format!` or `write!` if the state needs them"
            }
            Category::Unsafe => {
                "remove the `unsafe` block, or move it into a function named in `#[aggregate(trust(...))]`"
            }
            Category::Async => "a handler is a plain synchronous fold: remove the `async` and `.await`",
            Category::Static => "keep the state in `self`; a fold may only depend on the state and the event",
        }
    }
}

/// How a path pattern matches a normalised path (`::std` and `core`/`alloc` read as
/// `std`, `<T as Trait>::f` as `T::f`).
#[derive(Debug, Clone, Copy)]
pub enum Pattern {
    /// Everything in a crate: the first segment.
    Crate(&'static str),
    /// Everything in a std module, spelled in full (`std::fs::write`) or through the
    /// imported module (`fs::write`).
    Module(&'static str),
    /// A function or method of this name on any type or module, so that an alias of the
    /// type (`use SystemTime as Clock; Clock::now()`) is still caught.
    Name(&'static str),
    /// A type recognised by its own name, imported or not: none of its associated
    /// functions or constructors is a trusted call.
    Type(&'static str),
}

/// One refused path.
#[derive(Debug)]
pub struct Forbidden {
    pub pattern: Pattern,
    pub category: Category,
    pub why: &'static str,
}

const fn rule(pattern: Pattern, category: Category, why: &'static str) -> Forbidden {
    Forbidden { pattern, category, why }
}

use Category::{Clock, Environment, Io, Logging, Randomness, Threads};
use Pattern::{Crate, Module, Name, Type};

const REPEATS: &str = "a replay would repeat the effect, or read different data";
const LATER: &str = "a replay runs later, so it would rebuild a different state";
const DRAWS: &str = "a replay would draw a different value and rebuild a different state";
const ENV: &str = "the environment differs between machines and runs, so a replay could rebuild a different state";
const THREADS: &str = "a fold that waits on or spawns threads depends on scheduling";
const LOGS: &str = "every replay would log again, for events that happened long ago";

/// Refused paths (calls, `use` items, paths to values).
pub static FORBIDDEN: &[Forbidden] = &[
    // I/O in std
    rule(Module("std::fs"), Io, REPEATS),
    rule(Module("std::net"), Io, REPEATS),
    rule(Module("std::io"), Io, REPEATS),
    rule(Module("std::process"), Io, REPEATS),
    rule(Module("std::os"), Io, REPEATS),
    rule(Type("File"), Io, REPEATS),
    rule(Type("OpenOptions"), Io, REPEATS),
    rule(Type("DirBuilder"), Io, REPEATS),
    rule(Type("TcpStream"), Io, REPEATS),
    rule(Type("TcpListener"), Io, REPEATS),
    rule(Type("UdpSocket"), Io, REPEATS),
    rule(Type("UnixStream"), Io, REPEATS),
    rule(Type("UnixListener"), Io, REPEATS),
    rule(Type("Command"), Io, REPEATS),
    rule(Name("stdin"), Io, REPEATS),
    rule(Name("stdout"), Io, REPEATS),
    rule(Name("stderr"), Io, REPEATS),
    // async runtimes, HTTP and database clients
    rule(Crate("tokio"), Io, REPEATS),
    rule(Crate("async_std"), Io, REPEATS),
    rule(Crate("smol"), Io, REPEATS),
    rule(Crate("reqwest"), Io, REPEATS),
    rule(Crate("hyper"), Io, REPEATS),
    rule(Crate("ureq"), Io, REPEATS),
    rule(Crate("surf"), Io, REPEATS),
    rule(Crate("sqlx"), Io, REPEATS),
    rule(Crate("rusqlite"), Io, REPEATS),
    rule(Crate("diesel"), Io, REPEATS),
    rule(Crate("postgres"), Io, REPEATS),
    rule(Crate("tokio_postgres"), Io, REPEATS),
    rule(Crate("redis"), Io, REPEATS),
    rule(Crate("mongodb"), Io, REPEATS),
    rule(Crate("async_nats"), Io, REPEATS),
    // clock
    rule(Type("SystemTime"), Clock, LATER),
    rule(Type("Instant"), Clock, LATER),
    rule(Type("Utc"), Clock, LATER),
    rule(Type("Local"), Clock, LATER),
    rule(Name("now"), Clock, LATER),
    rule(Name("now_utc"), Clock, LATER),
    rule(Name("now_local"), Clock, LATER),
    rule(Name("today"), Clock, LATER),
    rule(Name("elapsed"), Clock, LATER),
    // randomness
    rule(Crate("rand"), Randomness, DRAWS),
    rule(Crate("rand_core"), Randomness, DRAWS),
    rule(Crate("getrandom"), Randomness, DRAWS),
    rule(Crate("fastrand"), Randomness, DRAWS),
    rule(Type("OsRng"), Randomness, DRAWS),
    rule(Type("ThreadRng"), Randomness, DRAWS),
    rule(Name("thread_rng"), Randomness, DRAWS),
    rule(Name("random"), Randomness, DRAWS),
    rule(Name("random_range"), Randomness, DRAWS),
    rule(Name("random_bool"), Randomness, DRAWS),
    rule(Name("gen_range"), Randomness, DRAWS),
    rule(Name("gen_bool"), Randomness, DRAWS),
    rule(Name("fill_bytes"), Randomness, DRAWS),
    rule(Name("from_entropy"), Randomness, DRAWS),
    rule(Name("from_os_rng"), Randomness, DRAWS),
    rule(Name("new_v4"), Randomness, DRAWS),
    rule(Name("now_v7"), Randomness, DRAWS),
    // environment
    rule(Module("std::env"), Environment, ENV),
    rule(Crate("dotenv"), Environment, ENV),
    rule(Crate("dotenvy"), Environment, ENV),
    // threads and sleeping
    rule(Module("std::thread"), Threads, THREADS),
    rule(Name("spawn"), Threads, THREADS),
    rule(Name("sleep"), Threads, THREADS),
    // logging through functions rather than macros
    rule(Crate("log"), Logging, LOGS),
    rule(Crate("tracing"), Logging, LOGS),
];

/// Whether a macro is known to expand to pure code, and how to read its arguments so
/// that they are checked too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MacroArgs {
    /// Comma-separated expressions (`format!`, `assert!`, `write!`, …).
    Exprs,
    /// `vec![a, b]` or `vec![x; n]`.
    Vec,
    /// `matches!(expr, pattern if guard)`.
    Matches,
    /// Tokens that are not code (`stringify!`, `concat!` of literals).
    Opaque,
}

/// Macros whose expansion is known to be pure; their arguments are still checked.
pub static PURE_MACROS: &[(&str, MacroArgs)] = &[
    ("format", MacroArgs::Exprs),
    ("format_args", MacroArgs::Exprs),
    ("write", MacroArgs::Exprs),
    ("writeln", MacroArgs::Exprs),
    ("vec", MacroArgs::Vec),
    ("matches", MacroArgs::Matches),
    ("assert", MacroArgs::Exprs),
    ("assert_eq", MacroArgs::Exprs),
    ("assert_ne", MacroArgs::Exprs),
    ("debug_assert", MacroArgs::Exprs),
    ("debug_assert_eq", MacroArgs::Exprs),
    ("debug_assert_ne", MacroArgs::Exprs),
    ("unreachable", MacroArgs::Exprs),
    ("panic", MacroArgs::Exprs),
    ("todo", MacroArgs::Exprs),
    ("unimplemented", MacroArgs::Exprs),
    ("stringify", MacroArgs::Opaque),
    ("concat", MacroArgs::Exprs),
];

/// Macros refused with a precise reason (any other unknown macro is refused because
/// its expansion is invisible to the checker).
pub static FORBIDDEN_MACROS: &[(&str, Category, &str)] = &[
    ("println", Category::Printing, LOGS),
    ("print", Category::Printing, LOGS),
    ("eprintln", Category::Printing, LOGS),
    ("eprint", Category::Printing, LOGS),
    ("dbg", Category::Printing, LOGS),
    ("trace", Category::Logging, LOGS),
    ("debug", Category::Logging, LOGS),
    ("info", Category::Logging, LOGS),
    ("warn", Category::Logging, LOGS),
    ("error", Category::Logging, LOGS),
    ("log", Category::Logging, LOGS),
    ("event", Category::Logging, LOGS),
    ("span", Category::Logging, LOGS),
    ("info_span", Category::Logging, LOGS),
    ("debug_span", Category::Logging, LOGS),
    ("trace_span", Category::Logging, LOGS),
    ("thread_local", Category::Static, STATIC),
];

/// Why language constructs are refused.
pub const UNSAFE: &str = "the checker cannot see what unsafe code reads or writes (globals, raw memory)";
pub const ASYNC: &str = "awaiting means waiting on the outside world, whose answer a replay cannot reproduce";
pub const STATIC: &str = "a static outlives the fold, so replaying the same events twice can give different states";

/// Free functions of std that are pure and may be called without `#[es::pure]`; also
/// accepted through their imported module (`mem::take`) or imported name (`take`).
pub static PURE_STD_FUNCTIONS: &[&str] = &[
    "std::mem::take",
    "std::mem::replace",
    "std::mem::swap",
    "std::mem::drop",
    "std::mem::discriminant",
    "std::cmp::max",
    "std::cmp::min",
    "std::cmp::max_by",
    "std::cmp::min_by",
    "std::cmp::max_by_key",
    "std::cmp::min_by_key",
    "std::convert::identity",
    "std::iter::once",
    "std::iter::repeat",
    "std::iter::empty",
    "std::iter::zip",
    "std::iter::successors",
    "std::iter::from_fn",
    "std::array::from_fn",
    "std::char::from_u32",
    "std::char::from_digit",
    "std::str::from_utf8",
];

/// Types whose names start lowercase: `u64::saturating_sub` is an associated function.
pub static PRIMITIVES: &[&str] = &[
    "u8", "u16", "u32", "u64", "u128", "usize", "i8", "i16", "i32", "i64", "i128", "isize", "f32", "f64", "bool",
    "char", "str",
];

/// Methods that may be called on `self` without a marker: the aggregate's own handlers
/// (checked by the same attribute) and derived std traits.
pub static TRUSTED_SELF_METHODS: &[&str] =
    &["apply", "apply_recorded", "stream_type", "default", "clone", "to_owned", "eq", "ne", "cmp", "partial_cmp"];
