//! Tests that kill or race real processes start this very test binary again as their
//! children. The child runs the *same* test (`--exact`), and an environment variable
//! tells it that it is the child: the test then does the child's work instead of its
//! own checks. No test exists only to be a child, so a normal run counts only tests
//! that assert something.

use std::process::Command;

/// When this process was started by [`rerun_as_child`] with `var` set, its value: the
/// calling test is to do the child's work.
pub fn child_role(var: &str) -> Option<String> {
    std::env::var(var).ok()
}

/// A command that runs this test binary again, only the test named `test`, with
/// `var` set to `value` so that the test knows it is the child.
pub fn rerun_as_child(test: &str, var: &str, value: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut command = Command::new(std::env::current_exe().expect("the test binary's path"));
    command.args(["--exact", test, "--nocapture", "--test-threads=1"]).env(var, value);
    command
}

/// The variable that replays a randomised test: `ES_TEST_SEED=<n> cargo test ...`.
pub const SEED_VAR: &str = "ES_TEST_SEED";

/// The seed of a randomised test: `ES_TEST_SEED` when set, otherwise drawn from the
/// clock. Printed either way, so that a failure can be replayed.
pub fn seed(test: &str) -> u64 {
    let seed = if let Ok(given) = std::env::var(SEED_VAR) {
        given.trim().parse().unwrap_or_else(|_| panic!("{SEED_VAR}={given:?} is not a u64"))
    } else {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        u64::try_from(now.as_nanos() % u128::from(u64::MAX)).unwrap_or_default()
    };
    eprintln!("{test}: seed {seed} (replay with {SEED_VAR}={seed})");
    seed
}

/// A child process that is SIGKILLed (and reaped) however the test ends.
pub struct Killed(pub std::process::Child);

impl Killed {
    /// Sends `signal` (`STOP`, `CONT`, `KILL`) to the child, through kill(1): the
    /// tests forbid unsafe code, so no libc.
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([format!("-{signal}"), self.0.id().to_string()])
            .status()
            .unwrap_or_else(|error| panic!("cannot run kill -{signal}: {error}"));
        assert!(status.success(), "kill -{signal} {} failed: {status}", self.0.id());
    }

    /// Whether the child is still there (running or stopped).
    pub fn is_alive(&mut self) -> bool {
        self.0.try_wait().expect("the child's status").is_none()
    }
}

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill(); // SIGKILL, which also ends a stopped process
        let _ = self.0.wait();
    }
}
