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
    Order,
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
            Category::Order => "iterates in an order that changes from one process to the next",
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
            Category::Order => {
                "use a `BTreeMap` or `BTreeSet` (ordered by key), or sort the items before folding them; lookups (`get`, `insert`, `entry`, `contains_key`, `remove`) are fine"
            }
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
pub const ORDER: &str =
    "the default hasher is seeded at random in every process, so a replay would visit the entries in another order";
pub const STATIC: &str = "a static outlives the fold, so replaying the same events twice can give different states";

/// Free functions of std that are pure and may be called without `#[es::pure]`, each
/// with generic arguments that instantiate it. Reached in full (`std::mem::take`,
/// `::core::mem::take`) they are std's by construction; reached through an imported
/// module (`mem::take`) or name (`take`) the handler also proves that the name *is*
/// std's function (`same(take, ::std::mem::take::<()>)` only compiles if both name
/// the same function item), so a local `fn take` is not mistaken for it.
pub static PURE_STD_FUNCTIONS: &[(&str, &str)] = &[
    ("std::mem::take", "::<()>"),
    ("std::mem::replace", "::<()>"),
    ("std::mem::swap", "::<()>"),
    ("std::mem::drop", "::<()>"),
    ("std::mem::forget", "::<()>"),
    ("std::mem::discriminant", "::<()>"),
    ("std::mem::size_of", "::<()>"),
    ("std::mem::size_of_val", "::<()>"),
    ("std::mem::align_of", "::<()>"),
    ("std::mem::align_of_val", "::<()>"),
    ("std::mem::needs_drop", "::<()>"),
    ("std::cmp::max", "::<u8>"),
    ("std::cmp::min", "::<u8>"),
    ("std::cmp::max_by", "::<u8, fn(&u8, &u8) -> ::std::cmp::Ordering>"),
    ("std::cmp::min_by", "::<u8, fn(&u8, &u8) -> ::std::cmp::Ordering>"),
    ("std::cmp::max_by_key", "::<u8, fn(&u8) -> u8, u8>"),
    ("std::cmp::min_by_key", "::<u8, fn(&u8) -> u8, u8>"),
    ("std::convert::identity", "::<()>"),
    ("std::iter::once", "::<()>"),
    ("std::iter::repeat", "::<u8>"),
    ("std::iter::repeat_n", "::<u8>"),
    ("std::iter::empty", "::<()>"),
    ("std::iter::zip", "::<::std::vec::Vec<u8>, ::std::vec::Vec<u8>>"),
    ("std::iter::successors", "::<u8, fn(&u8) -> ::std::option::Option<u8>>"),
    ("std::iter::from_fn", "::<u8, fn() -> ::std::option::Option<u8>>"),
    ("std::array::from_fn", "::<u8, 1, fn(usize) -> u8>"),
    ("std::char::from_u32", ""),
    ("std::char::from_digit", ""),
    ("std::str::from_utf8", ""),
    ("std::any::type_name", "::<()>"),
    ("std::hint::black_box", "::<()>"),
];

/// Types and std traits whose every associated function is pure: `String::from`,
/// `Vec::with_capacity`, `u64::saturating_sub`, `Option::unwrap_or`, `Default::default`,
/// `<T as From<U>>::from`, `Iterator::sum`. Matched by the type's own name (the last
/// segment before the function), so `std::string::String::new` and `String::new` both
/// match. Everything else called as `Type::function(..)` needs `#[es::pure]` on the
/// function or its `impl` block, or `trust(Type::function)`.
pub static PURE_STD_TYPES: &[&str] = &[
    // primitives
    "u8",
    "u16",
    "u32",
    "u64",
    "u128",
    "usize",
    "i8",
    "i16",
    "i32",
    "i64",
    "i128",
    "isize",
    "f32",
    "f64",
    "bool",
    "char",
    "str",
    // std types
    "String",
    "Vec",
    "VecDeque",
    "LinkedList",
    "BinaryHeap",
    "BTreeMap",
    "BTreeSet",
    "HashMap",
    "HashSet",
    "Option",
    "Result",
    "Box",
    "Rc",
    "Arc",
    "Cow",
    "Cell",
    "RefCell",
    "OnceCell",
    "Duration",
    "Ordering",
    "Reverse",
    "Wrapping",
    "Saturating",
    "PhantomData",
    "NonZero",
    "NonZeroU8",
    "NonZeroU16",
    "NonZeroU32",
    "NonZeroU64",
    "NonZeroU128",
    "NonZeroUsize",
    "NonZeroI8",
    "NonZeroI16",
    "NonZeroI32",
    "NonZeroI64",
    "NonZeroI128",
    "NonZeroIsize",
    "Range",
    "RangeInclusive",
    "Some",
    "Ok",
    "Err",
    // std traits, called as `Trait::function(..)` or `<T as Trait>::function(..)`
    "Default",
    "Clone",
    "From",
    "Into",
    "TryFrom",
    "TryInto",
    "ToString",
    "ToOwned",
    "AsRef",
    "AsMut",
    "Borrow",
    "BorrowMut",
    "PartialEq",
    "Eq",
    "PartialOrd",
    "Ord",
    "Hash",
    "Iterator",
    "IntoIterator",
    "DoubleEndedIterator",
    "ExactSizeIterator",
    "FromIterator",
    "Extend",
    "Sum",
    "Product",
    "FromStr",
    "Display",
    "Debug",
    "Deref",
    "DerefMut",
    "Add",
    "Sub",
    "Mul",
    "Div",
    "Rem",
    "Neg",
    "Not",
    "AddAssign",
    "SubAssign",
    "MulAssign",
    "DivAssign",
    "RemAssign",
    "BitAnd",
    "BitOr",
    "BitXor",
    "Shl",
    "Shr",
];

/// Macros that call a method on their first argument: `write!(self, ..)` runs the
/// `write_str` of `self`'s `fmt::Write` impl, which needs its marker like a call.
pub static RECEIVER_MACROS: &[(&str, &str)] = &[("write", "write_str"), ("writeln", "write_str")];

/// Collections whose iteration order depends on a per-process random seed.
pub static UNORDERED_TYPES: &[&str] = &["HashMap", "HashSet"];

/// Methods of [`UNORDERED_TYPES`] that visit the entries in that order.
pub static UNORDERED_ITERATION: &[&str] =
    &["iter", "iter_mut", "keys", "values", "values_mut", "into_iter", "into_keys", "into_values", "drain"];

/// Types of `es` whose methods a handler may call on a binding typed with them
/// (`recorded.occurred_at()` in `apply_recorded`): they only read the envelope.
pub static TRUSTED_TYPES: &[&str] = &["Recorded"];

/// Methods of std's derivable and conversion traits, allowed on *any* type
/// (`Money::default()`, `Money::from(cents)`, `<Money as Clone>::clone(&m)`): they are
/// what derives generate, and the same call as a method (`cents.into()`) is a method on
/// a value, which is allowed anyway. A hand-written impl of one of these traits is only
/// read when it is marked `#[es::pure]`.
pub static PURE_TRAIT_FUNCTIONS: &[&str] = &[
    "default",
    "clone",
    "clone_from",
    "eq",
    "ne",
    "cmp",
    "partial_cmp",
    "lt",
    "le",
    "gt",
    "ge",
    "hash",
    "fmt",
    "from",
    "into",
    "try_from",
    "try_into",
    "to_string",
    "to_owned",
    "as_ref",
    "as_mut",
    "from_iter",
    "from_str",
];

/// Methods that, called on a `static` or `thread_local!` reached by a `SCREAMING_CASE`
/// name (`COUNTER.fetch_add(1, ..)`, `CACHE.with(..)`, `CONFIG.lock()`), read or
/// change state that outlives the fold. A `const` cannot be told from a `static` by
/// its name, but a `const` holding an atomic or a lock is a fresh copy at every use,
/// so calling these on it is a mistake too.
pub static INTERIOR_MUTABILITY_METHODS: &[&str] = &[
    "load",
    "store",
    "swap",
    "fetch_add",
    "fetch_sub",
    "fetch_and",
    "fetch_nand",
    "fetch_or",
    "fetch_xor",
    "fetch_max",
    "fetch_min",
    "fetch_update",
    "compare_exchange",
    "compare_exchange_weak",
    "compare_and_swap",
    "with",
    "with_borrow",
    "with_borrow_mut",
    "lock",
    "try_lock",
    "read",
    "try_read",
    "write",
    "try_write",
    "borrow",
    "borrow_mut",
    "try_borrow",
    "try_borrow_mut",
    "set",
    "get_or_init",
    "get_or_try_init",
    "force",
    "call_once",
];

/// Like [`INTERIOR_MUTABILITY_METHODS`], but only without arguments: `COUNTER.get()` on
/// a thread-local `Cell` reads it, while `TABLE.get(i)` on a `const` array is a lookup.
pub static INTERIOR_MUTABILITY_GETTERS: &[&str] = &["get", "take"];

/// Types whose names start lowercase: `u64::saturating_sub` is an associated function.
pub static PRIMITIVES: &[&str] = &[
    "u8", "u16", "u32", "u64", "u128", "usize", "i8", "i16", "i32", "i64", "i128", "isize", "f32", "f64", "bool",
    "char", "str",
];

/// Methods that may be called on `self` without a marker: the aggregate's own handlers
/// (checked by the same attribute) and derived std traits.
pub static TRUSTED_SELF_METHODS: &[&str] =
    &["apply", "apply_recorded", "stream_type", "default", "clone", "to_owned", "eq", "ne", "cmp", "partial_cmp"];
