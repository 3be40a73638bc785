//! `Image`: the result of a publish (the full images manager comes with the objects issue).

use rhai::{Dynamic, Engine, Map};
use serde_json::Value;

use super::client::Client;
use super::convert::{json_to_dynamic, object_to_map};
use super::errors::{RhaiResultOf, reject_change};
use crate::lxd::image::Images;

/// One image.
#[derive(Debug, Clone)]
pub struct Image {
    client: Client,
    fingerprint: String,
    fields: serde_json::Map<String, Value>,
}

impl Image {
    /// Loads an image by fingerprint.
    pub fn load(client: &Client, fingerprint: &str) -> RhaiResultOf<Image> {
        let api = Images::new(client.api.clone());
        let loaded = client.bridge.block_on(api.get(fingerprint))?;
        Ok(Image {
            client: client.clone(),
            fingerprint: fingerprint.to_owned(),
            fields: loaded.fields,
        })
    }

    fn delete(&mut self, wait: bool) -> RhaiResultOf<()> {
        let api = Images::new(self.client.api.clone());
        let op = self.client.bridge.block_on(api.delete(&self.fingerprint))?;
        if let (Some(op), true) = (op, wait) {
            self.client
                .bridge
                .block_on(self.client.api.wait_operation(op.id(), None))?;
        }
        Ok(())
    }
}

/// Image attributes (read-only here).
const ATTRIBUTES: [&str; 8] = [
    "fingerprint",
    "aliases",
    "properties",
    "public",
    "size",
    "architecture",
    "type",
    "created_at",
];

/// Registers `Image`.
pub fn register(engine: &mut Engine) {
    engine.register_type_with_name::<Image>("Image");
    for key in ATTRIBUTES {
        rhai::FuncRegistration::new_getter(key)
            .with_comments([format!("/// The image's `{key}`.")])
            .register_into_engine(engine, move |i: &mut Image| {
                i.fields.get(key).map_or(Dynamic::UNIT, json_to_dynamic)
            });
        rhai::FuncRegistration::new_setter(key)
            .with_comments([format!(
                "/// `{key}` is read-only here: assigning it throws ReadOnly."
            )])
            .register_into_engine(engine, move |i: &mut Image, v: Dynamic| {
                let current = i.fields.get(key).map_or(Dynamic::UNIT, json_to_dynamic);
                reject_change("Image", key, "", &current, &v)
            });
    }
    rhai::FuncRegistration::new("to_map")
        .with_comments(["/// The whole image as a map."])
        .register_into_engine(engine, |i: &mut Image| -> Map { object_to_map(&i.fields) });
    rhai::FuncRegistration::new("delete")
        .with_comments(["/// Deletes the image and waits."])
        .register_into_engine(engine, |i: &mut Image| i.delete(true));
    rhai::FuncRegistration::new("delete")
        .with_comments(["/// Deletes the image; waits when `wait` is true."])
        .register_into_engine(engine, |i: &mut Image, wait: bool| i.delete(wait));
    super::register_display(engine, |i: &Image| format!("Image {}", i.fingerprint));
}
