//! Images: publishing instances and snapshots, and loading or deleting the result.

use serde_json::{Map, Value, json};

use super::client::Client;
use super::error::Result;
use super::request::{Request, segment};
use super::response::{Loaded, Operation};

/// What to publish.
#[derive(Debug, Clone, PartialEq)]
pub enum PublishSource {
    /// An instance (it must be stopped).
    Instance(String),
    /// A snapshot of an instance.
    Snapshot {
        /// The instance.
        instance: String,
        /// The snapshot.
        snapshot: String,
    },
}

/// Options of a publish.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Publish {
    /// Make the image public.
    pub public: bool,
    /// Alias names to create.
    pub aliases: Vec<String>,
    /// Image properties.
    pub properties: Map<String, Value>,
    /// `gzip`, `xz`, `none`, ... (LXD's default when unset).
    pub compression_algorithm: Option<String>,
}

/// The path of one image.
pub fn path(fingerprint: &str) -> String {
    format!("/1.0/images/{}", segment(fingerprint))
}

/// Requests of the image API, as pure functions.
pub mod requests {
    use super::*;

    /// `POST /1.0/images` from an instance or snapshot.
    pub fn publish(source: &PublishSource, opts: &Publish) -> Request {
        let source = match source {
            PublishSource::Instance(name) => json!({ "type": "instance", "name": name }),
            PublishSource::Snapshot { instance, snapshot } => {
                json!({ "type": "snapshot", "name": format!("{instance}/{snapshot}") })
            }
        };
        let mut body = json!({
            "source": source,
            "public": opts.public,
            "properties": opts.properties,
            "aliases": opts.aliases.iter().map(|a| json!({ "name": a })).collect::<Vec<_>>(),
        });
        if let Some(algo) = &opts.compression_algorithm {
            body["compression_algorithm"] = algo.as_str().into();
        }
        Request::post("/1.0/images", body)
    }
}

/// The image API of one client.
#[derive(Debug, Clone)]
pub struct Images {
    client: Client,
}

impl Images {
    /// The images of `client`.
    pub fn new(client: Client) -> Self {
        Images { client }
    }

    /// Starts publishing; the finished operation's metadata holds the `fingerprint`.
    pub async fn publish(&self, source: &PublishSource, opts: &Publish) -> Result<Operation> {
        self.client
            .operation(&requests::publish(source, opts))
            .await
    }

    /// Loads one image by fingerprint.
    pub async fn get(&self, fingerprint: &str) -> Result<Loaded> {
        self.client.object(&Request::get(path(fingerprint))).await
    }

    /// Starts deleting an image.
    pub async fn delete(&self, fingerprint: &str) -> Result<Option<Operation>> {
        self.client.start(&Request::delete(path(fingerprint))).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publish_bodies_name_the_source_and_aliases() {
        let r = requests::publish(
            &PublishSource::Snapshot {
                instance: "c1".into(),
                snapshot: "s0".into(),
            },
            &Publish {
                aliases: vec!["a1".into()],
                ..Publish::default()
            },
        );
        let body = r.body.expect("body");
        assert_eq!(body["source"], json!({"type": "snapshot", "name": "c1/s0"}));
        assert_eq!(body["aliases"], json!([{"name": "a1"}]));
        assert_eq!(body.get("compression_algorithm"), None);
    }
}
