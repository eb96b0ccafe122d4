//! What a field type may not contain, shared by `#[derive(Event)]` (a recorded event is
//! an immutable fact) and `#[aggregate]` on the state type (the state is data). The
//! rules are a table of type names by kind; each macro chooses the kinds it refuses and
//! words the message for its own reason.
//!
//! The check is syntactic: it reads the type as written, through generic arguments,
//! tuples, arrays, slices, references and pointers, and matches the *last* segment of
//! every path by name. It cannot see through type aliases or into user types.

use syn::visit::{self, Visit};
use syn::{Ident, Type, TypePath};

/// What a refused type is.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Kind {
    /// Can change behind a shared reference: `Cell`, `Mutex`, atomics, lazies.
    InteriorMutability,
    /// A handle to the outside world: files, streams, sockets, processes.
    Io,
    /// Ownership shared with code outside the state: `Rc`, `Weak`.
    SharedOwnership,
    /// A source of randomness: anything named `…Rng`.
    Randomness,
    /// A global reached through a key: `thread::LocalKey`.
    Global,
    /// A channel end or a thread handle: talks to other threads.
    Concurrency,
    /// `&T`, `&mut T`.
    Reference,
    /// `*const T`, `*mut T`.
    RawPointer,
    /// `fn(..) -> ..`.
    FnPointer,
    /// `impl Trait`.
    ImplTrait,
    /// `dyn Trait`, including `Box<dyn Fn..>`.
    TraitObject,
}

/// Types refused by the last segment of their path, by kind. `Atomic*` and `*Rng` are
/// matched by prefix and suffix (see [`kind_of`]).
const NAMED: &[(&str, Kind)] = &[
    // std::cell, std::sync: value changes behind `&`.
    ("Cell", Kind::InteriorMutability),
    ("RefCell", Kind::InteriorMutability),
    ("UnsafeCell", Kind::InteriorMutability),
    ("SyncUnsafeCell", Kind::InteriorMutability),
    ("OnceCell", Kind::InteriorMutability),
    ("OnceLock", Kind::InteriorMutability),
    ("LazyCell", Kind::InteriorMutability),
    ("LazyLock", Kind::InteriorMutability),
    ("Mutex", Kind::InteriorMutability),
    ("RwLock", Kind::InteriorMutability),
    ("ReentrantLock", Kind::InteriorMutability),
    // parking_lot, tokio::sync, once_cell, arc_swap by name.
    ("ReentrantMutex", Kind::InteriorMutability),
    ("FairMutex", Kind::InteriorMutability),
    ("ArcSwap", Kind::InteriorMutability),
    ("ArcSwapOption", Kind::InteriorMutability),
    ("Condvar", Kind::Concurrency),
    ("Semaphore", Kind::Concurrency),
    ("SyncSender", Kind::Concurrency),
    ("UnboundedSender", Kind::Concurrency),
    ("UnboundedReceiver", Kind::Concurrency),
    ("JoinHandle", Kind::Concurrency),
    // std::rc, std::sync::Weak.
    ("Rc", Kind::SharedOwnership),
    ("Weak", Kind::SharedOwnership),
    // std::thread::LocalKey.
    ("LocalKey", Kind::Global),
    // std::fs, std::io, std::net, std::os::unix::net, std::process.
    ("File", Kind::Io),
    ("BufWriter", Kind::Io),
    ("BufReader", Kind::Io),
    ("LineWriter", Kind::Io),
    ("Stdout", Kind::Io),
    ("Stderr", Kind::Io),
    ("Stdin", Kind::Io),
    ("StdoutLock", Kind::Io),
    ("StderrLock", Kind::Io),
    ("StdinLock", Kind::Io),
    ("ReadDir", Kind::Io),
    ("TcpStream", Kind::Io),
    ("TcpListener", Kind::Io),
    ("UdpSocket", Kind::Io),
    ("UnixStream", Kind::Io),
    ("UnixListener", Kind::Io),
    ("UnixDatagram", Kind::Io),
    ("Child", Kind::Io),
    ("ChildStdin", Kind::Io),
    ("ChildStdout", Kind::Io),
    ("ChildStderr", Kind::Io),
    ("Command", Kind::Io),
];

/// The kind of a path's last segment, if it is refused by name.
pub fn kind_of(ident: &Ident) -> Option<Kind> {
    let name = ident.to_string();
    if let Some(&(_, kind)) = NAMED.iter().find(|(refused, _)| *refused == name) {
        return Some(kind);
    }
    let atomic = name
        .strip_prefix("Atomic")
        .is_some_and(|rest| rest.is_empty() || rest.starts_with(|c: char| c.is_ascii_uppercase()));
    if atomic {
        return Some(Kind::InteriorMutability);
    }
    // `ThreadRng`, `StdRng`, `SmallRng`, `OsRng`, `ChaCha20Rng`, …; `Rng` alone is the
    // trait, which only appears as `dyn Rng`/`impl Rng` and is caught as such.
    if name.len() > 3 && name.ends_with("Rng") {
        return Some(Kind::Randomness);
    }
    None
}

/// One refused type found inside a field's type.
pub struct Finding<'a> {
    /// The offending (possibly nested) type, for the error's span.
    pub ty: &'a Type,
    pub kind: Kind,
    /// The name as written (`Mutex`), or the construct (`&T`).
    pub name: String,
    /// Whether it sits inside an `Arc` (shared with whoever else holds the `Arc`).
    pub in_arc: bool,
}

/// Every refused type inside `ty` whose kind `refuses` accepts. Structural findings
/// (references, pointers, `fn`, `impl`, `dyn`) and I/O handles stop the search below
/// them: whatever is inside is unreachable until they are fixed (`BufWriter<File>` is
/// one handle). Other named ones do not: `Mutex<&str>` has two problems.
pub fn find(ty: &Type, refuses: impl Fn(Kind) -> bool) -> Vec<Finding<'_>> {
    let mut finder = Finder { refuses: &refuses, findings: Vec::new(), arcs: 0, current: None };
    finder.visit_type(ty);
    finder.findings
}

struct Finder<'a, 'r> {
    refuses: &'r dyn Fn(Kind) -> bool,
    findings: Vec<Finding<'a>>,
    /// How many `Arc`s enclose the type being visited.
    arcs: usize,
    /// The type whose path is being visited, for the finding's span.
    current: Option<&'a Type>,
}

impl<'a> Visit<'a> for Finder<'a, '_> {
    fn visit_type(&mut self, ty: &'a Type) {
        let structural = match ty {
            Type::Reference(_) => Some((Kind::Reference, "a reference")),
            Type::Ptr(_) => Some((Kind::RawPointer, "a raw pointer")),
            Type::BareFn(_) => Some((Kind::FnPointer, "a function pointer")),
            Type::ImplTrait(_) => Some((Kind::ImplTrait, "`impl Trait`")),
            Type::TraitObject(_) => Some((Kind::TraitObject, "a trait object (a closure or other code behind `dyn`)")),
            _ => None,
        };
        match structural {
            Some((kind, name)) if (self.refuses)(kind) => {
                self.findings.push(Finding { ty, kind, name: name.to_owned(), in_arc: self.arcs > 0 });
            }
            _ => {
                let outer = self.current.replace(ty);
                visit::visit_type(self, ty);
                self.current = outer;
            }
        }
    }

    fn visit_type_path(&mut self, path: &'a TypePath) {
        let Some(last) = path.path.segments.last() else { return visit::visit_type_path(self, path) };
        let refused = kind_of(&last.ident).filter(|&kind| (self.refuses)(kind));
        if let Some(kind) = refused
            && let Some(ty) = self.current
        {
            self.findings.push(Finding { ty, kind, name: last.ident.to_string(), in_arc: self.arcs > 0 });
        }
        if refused == Some(Kind::Io) {
            // `BufWriter<File>` is one handle: one error is enough.
            return;
        }
        let arc = last.ident == "Arc";
        self.arcs += usize::from(arc);
        visit::visit_type_path(self, path);
        self.arcs -= usize::from(arc);
    }

    // An array length is an expression, not a field type.
    fn visit_expr(&mut self, _: &'a syn::Expr) {}
}

#[cfg(test)]
mod tests {
    use syn::parse_quote;

    use super::{Kind, find};

    fn kinds(ty: &syn::Type) -> Vec<(Kind, String, bool)> {
        find(ty, |_| true).into_iter().map(|finding| (finding.kind, finding.name, finding.in_arc)).collect()
    }

    #[test]
    fn plain_data_has_no_findings() {
        for ty in [
            parse_quote!(std::collections::BTreeMap<String, Vec<(u64, [u8; 4])>>),
            parse_quote!(Option<Box<Vec<String>>>),
            parse_quote!(std::sync::Arc<str>),
            parse_quote!(Arc<String>),
            parse_quote!(Money),
        ] {
            assert!(kinds(&ty).is_empty(), "{}", quote::quote!(#ty));
        }
    }

    #[test]
    fn refused_types_are_found_wherever_they_are_nested() {
        let ty: syn::Type = parse_quote!(Option<Vec<(String, std::cell::Cell<u64>, [Rc<str>; 2])>>);
        assert_eq!(
            kinds(&ty),
            [(Kind::InteriorMutability, "Cell".to_owned(), false), (Kind::SharedOwnership, "Rc".to_owned(), false)]
        );
    }

    #[test]
    fn mutability_inside_an_arc_is_marked_as_shared() {
        let ty: syn::Type = parse_quote!(Arc<RwLock<Vec<u64>>>);
        assert_eq!(kinds(&ty), [(Kind::InteriorMutability, "RwLock".to_owned(), true)]);
    }

    #[test]
    fn an_io_handle_is_one_finding() {
        let ty: syn::Type = parse_quote!(std::io::BufWriter<std::fs::File>);
        assert_eq!(kinds(&ty), [(Kind::Io, "BufWriter".to_owned(), false)]);
    }

    #[test]
    fn atomics_and_generators_are_matched_by_prefix_and_suffix() {
        let ty: syn::Type = parse_quote!((AtomicU64, ChaCha20Rng, Atomically, Rng));
        assert_eq!(
            kinds(&ty),
            [
                (Kind::InteriorMutability, "AtomicU64".to_owned(), false),
                (Kind::Randomness, "ChaCha20Rng".to_owned(), false)
            ]
        );
    }

    #[test]
    fn structural_findings_stop_the_search_below_them() {
        let ty: syn::Type = parse_quote!(Box<dyn Fn(std::cell::Cell<u8>)>);
        assert_eq!(kinds(&ty).iter().map(|(kind, ..)| *kind).collect::<Vec<_>>(), [Kind::TraitObject]);
        let ty: syn::Type = parse_quote!(Option<fn() -> i64>);
        assert_eq!(kinds(&ty).iter().map(|(kind, ..)| *kind).collect::<Vec<_>>(), [Kind::FnPointer]);
    }

    #[test]
    fn a_caller_chooses_the_kinds_it_refuses() {
        let ty: syn::Type = parse_quote!((std::fs::File, std::sync::Mutex<u8>));
        let only_mutability: Vec<_> =
            find(&ty, |kind| kind == Kind::InteriorMutability).into_iter().map(|f| f.kind).collect();
        assert_eq!(only_mutability, [Kind::InteriorMutability]);
    }
}
