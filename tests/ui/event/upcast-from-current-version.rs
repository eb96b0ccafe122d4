use es::Event;
use serde::{Deserialize, Serialize};

use es::{Json, UpcastError};

fn opened_v2(json: Json) -> Result<Json, UpcastError> {
    Ok(json)
}

#[derive(Serialize, Deserialize, Event)]
enum AccountEvent {
    #[event(version = 2, upcast(2 = opened_v2))]
    Opened { owner: String },
}

fn main() {}
