use es::Event;
use serde::{Deserialize, Serialize};

use es::{Json, UpcastError};

fn opened_v1(json: Json) -> Result<Json, UpcastError> {
    Ok(json)
}

fn opened_v1_again(json: Json) -> Result<Json, UpcastError> {
    Ok(json)
}

#[derive(Serialize, Deserialize, Event)]
#[event(version = 2, upcast(1 = opened_v1, 1 = opened_v1_again))]
struct Opened {
    owner: String,
}

fn main() {}
