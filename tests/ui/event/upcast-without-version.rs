use es::Event;
use serde::{Deserialize, Serialize};

use es::{Json, UpcastError};

fn opened_v1(json: Json) -> Result<Json, UpcastError> {
    Ok(json)
}

#[derive(Serialize, Deserialize, Event)]
#[event(upcast(1 = opened_v1))]
struct Opened {
    owner: String,
}

fn main() {}
