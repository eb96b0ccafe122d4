use es::{Aggregate, aggregate};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, es::Event)]
pub enum DeployEvent {
    Deployed { env: String, fs: String, at: u64, time: u64 },
}

#[aggregate]
#[derive(Debug, Default)]
pub struct Deployment {
    now: u64,
    time: u64,
    env: String,
    fs: String,
}

#[aggregate]
impl Aggregate for Deployment {
    type Event = DeployEvent;

    fn apply(&mut self, event: &DeployEvent) {
        let DeployEvent::Deployed { env, fs, at, time } = event;
        let now = *at;
        let time = *time;
        self.now = now;
        self.time = self.time.max(time);
        self.env.clone_from(env);
        self.fs = fs.to_uppercase();
    }
}

fn main() {
    let mut deployment = Deployment::default();
    for (at, env) in [(10, "staging"), (20, "production")] {
        deployment.apply(&DeployEvent::Deployed { env: env.into(), fs: "ext4".into(), at, time: at * 2 });
    }
    assert_eq!((deployment.now, deployment.time), (20, 40));
    assert_eq!(deployment.env, "production");
    assert_eq!(deployment.fs, "EXT4");
}
