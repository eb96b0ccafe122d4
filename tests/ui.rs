//! Compile-fail and pass tests of the macros. Refresh expected output with
//! `TRYBUILD=overwrite cargo test --test ui` and read the diff.

#[test]
fn event() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/event/*.rs");
    t.pass("tests/ui/event/pass/*.rs");
}

#[test]
fn aggregate() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/aggregate/*.rs");
    t.pass("tests/ui/aggregate/pass/*.rs");
}

#[test]
fn state() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/state/*.rs");
    t.pass("tests/ui/state/pass/*.rs");
}

#[test]
fn command() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/command/*.rs");
}

#[test]
fn view() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/view/*.rs");
}
