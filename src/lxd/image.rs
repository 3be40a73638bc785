//! Images: publishing instances and snapshots, and loading or deleting the result.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use serde_json::{Map, Value, json};

use super::body::{Body, BoxError};
use super::client::Client;
use super::error::{Error, Result};
use super::local::{Progress, file_body, save_stream, save_stream_on_task};
use super::request::{Method, Request, ServerHeader, segment};
use super::response::Operation;

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

/// An image on another server, as a pull source.
#[derive(Debug, Clone, PartialEq)]
pub struct RemoteImage {
    /// `https://host:port` of the server holding it.
    pub server: String,
    /// Its fingerprint.
    pub fingerprint: String,
    /// The server's certificate (PEM), which the pulling server pins.
    pub certificate: String,
    /// The secret of a private image.
    pub secret: Option<String>,
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

    /// `POST /1.0/images` that has the server download the image itself.
    pub fn download(from: &Download, public: bool, auto_update: bool) -> Request {
        let source = match from {
            Download::SimpleStreams { server, alias } => json!({
                "type": "image",
                "mode": "pull",
                "protocol": "simplestreams",
                "server": server,
                "alias": alias,
            }),
            Download::Url(url) => json!({ "type": "url", "url": url }),
        };
        let body = json!({ "source": source, "public": public, "auto_update": auto_update });
        Request::post(super::super::object::IMAGES, body)
    }
}

/// Where a server downloads an image from by itself.
#[derive(Debug, Clone, PartialEq)]
pub enum Download {
    /// An image server speaking simplestreams (`https://images.linuxcontainers.org`), and the
    /// alias there (`debian/12`).
    SimpleStreams {
        /// The server's URL.
        server: String,
        /// The image's alias on it.
        alias: String,
    },
    /// A URL whose answer names the image in LXD's `LXD-Image-URL` and `LXD-Image-Hash`
    /// headers (Incus's: `Incus-Image-*`).
    Url(String),
}

impl Download {
    /// What the server is doing, for its errors: `downloading 'debian/12' from URL`.
    pub fn describe(&self) -> String {
        match self {
            Download::SimpleStreams { server, alias } => {
                format!("downloading '{alias}' from the simplestreams server {server}")
            }
            Download::Url(url) => format!("downloading the image {url} announces"),
        }
    }
}

/// What an image is imported from.
#[derive(Debug, Clone, PartialEq)]
pub enum ImportSource {
    /// Bytes of a unified tarball.
    Bytes(bytes::Bytes),
    /// A unified tarball (metadata.yaml and rootfs/ in one file).
    Unified(PathBuf),
    /// A split image: the metadata tarball and the rootfs (squashfs or tarball).
    Split {
        /// The metadata tarball.
        metadata: PathBuf,
        /// The rootfs file.
        rootfs: PathBuf,
    },
}

/// A `multipart/form-data` body of named files, streamed as the server reads it: each part's
/// head, its file, and the closing boundary. Returns the body and its `Content-Type`.
fn multipart_form(parts: Vec<(&'static str, Body)>) -> Result<(Body, String)> {
    use futures_util::stream::{self, StreamExt};
    let mut random = [0u8; 16];
    rustls::crypto::ring::default_provider()
        .secure_random
        .fill(&mut random)
        .map_err(|_| Error::Config("no secure random numbers for a multipart boundary".into()))?;
    let boundary: String = random.iter().map(|b| format!("{b:02x}")).collect();
    let text = |t: String| stream::once(async move { Ok::<_, BoxError>(Bytes::from(t)) });
    let mut form: BoxStream = Box::pin(stream::empty());
    for (name, file) in parts {
        let head = format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{name}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
        );
        form = Box::pin(
            form.chain(text(head))
                .chain(file)
                .chain(text("\r\n".into())),
        );
    }
    let form = form.chain(text(format!("--{boundary}--\r\n")));
    Ok((
        Body::stream(form),
        format!("multipart/form-data; boundary={boundary}"),
    ))
}

/// A body's chunks, boxed to chain several.
type BoxStream =
    std::pin::Pin<Box<dyn futures_util::Stream<Item = Result<Bytes, BoxError>> + Send>>;

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

    /// Starts a download the server makes itself; the finished operation's metadata holds the
    /// `fingerprint`.
    pub async fn download(
        &self,
        from: &Download,
        public: bool,
        auto_update: bool,
    ) -> Result<Operation> {
        self.client
            .operation(&requests::download(from, public, auto_update))
            .await
    }

    /// Starts importing an image (streamed); the finished operation's metadata holds the
    /// `fingerprint`.
    pub async fn import(
        &self,
        source: &ImportSource,
        public: bool,
        progress: Option<Progress>,
    ) -> Result<Operation> {
        let req = Request::new(Method::POST, super::object::IMAGES)
            .server_header(ServerHeader::Public, if public { "true" } else { "false" });
        let (req, body) = match source {
            ImportSource::Bytes(bytes) => (
                req.header("Content-Type", "application/octet-stream"),
                Body::from(bytes.clone()),
            ),
            ImportSource::Unified(path) => {
                let name = path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let (body, _) = file_body(path, progress).await?;
                (
                    req.header("Content-Type", "application/octet-stream")
                        .server_header(ServerHeader::Filename, name),
                    body,
                )
            }
            ImportSource::Split { metadata, rootfs } => {
                let (metadata, _) = file_body(metadata, None).await?;
                let (rootfs, _) = file_body(rootfs, progress).await?;
                let (form, content_type) =
                    multipart_form(vec![("metadata", metadata), ("rootfs", rootfs)])?;
                (req.header("Content-Type", content_type), form)
            }
        };
        self.client
            .call_with_body(&req, body)
            .await?
            .operation()
            .ok_or_else(|| Error::Decode("image import did not start an operation".into()))
    }

    /// The fingerprint an alias points at.
    pub async fn alias_target(&self, alias: &str) -> Result<String> {
        let meta = self
            .client
            .get(&format!("/1.0/images/aliases/{}", segment(alias)))
            .await
            .map_err(|e| e.naming_missing(|| self.client.missing("Image alias", alias)))?;
        meta.get("target")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| Error::Decode(format!("alias {alias} has no target")))
    }

    /// Points an alias at an image.
    pub async fn add_alias(&self, alias: &str, fingerprint: &str, description: &str) -> Result<()> {
        let body = json!({ "name": alias, "target": fingerprint, "description": description });
        self.client
            .call(&Request::post("/1.0/images/aliases", body))
            .await
            .map(|_| ())
    }

    /// Removes an alias.
    pub async fn delete_alias(&self, alias: &str) -> Result<()> {
        self.client
            .call(&Request::delete(format!(
                "/1.0/images/aliases/{}",
                segment(alias)
            )))
            .await
            .map(|_| ())
    }

    /// Streams an image to `local` (a split image writes `local` and `local.root`); returns the
    /// files written.
    pub async fn export(
        &self,
        fingerprint: &str,
        local: &Path,
        progress: Option<Progress>,
    ) -> Result<Vec<PathBuf>> {
        let req = Request::get(format!("{}/export", path(fingerprint)));
        let resp = self.client.send(&req, None).await?;
        let content_type = resp.header("content-type").unwrap_or_default().to_owned();
        let boundary = multer::parse_boundary(&content_type).ok();
        let Some(boundary) = boundary else {
            let client = self.client.clone();
            save_stream_on_task(resp.into_body(), local, 0o644, progress, move |e| {
                client.transport().body_error(e, &req)
            })
            .await?;
            return Ok(vec![local.to_owned()]);
        };
        // A split image: two parts, metadata then rootfs.
        let mut parts = multer::Multipart::new(resp.into_body(), boundary);
        let mut written = Vec::new();
        while let Some(field) = parts
            .next_field()
            .await
            .map_err(|e| Error::Decode(format!("bad multipart export: {e}")))?
        {
            let target = if field.name() == Some("rootfs") {
                let mut name = local.as_os_str().to_owned();
                name.push(".root");
                PathBuf::from(name)
            } else {
                local.to_owned()
            };
            save_stream(
                field,
                &target,
                0o644,
                progress.clone(),
                |e: multer::Error| Error::Decode(format!("bad multipart export: {e}")),
            )
            .await?;
            written.push(target);
        }
        Ok(written)
    }

    /// A one-time secret that lets another server download a private image.
    pub async fn secret(&self, fingerprint: &str) -> Result<String> {
        let op = self
            .client
            .operation(&Request::post(
                format!("{}/secret", path(fingerprint)),
                json!({}),
            ))
            .await?;
        op.metadata()
            .get("secret")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| Error::Decode("the secret operation has no secret".into()))
    }

    /// Starts pulling an image from another LXD server into this one.
    pub async fn pull_from(&self, source: &RemoteImage, public: bool) -> Result<Operation> {
        let mut src = json!({
            "type": "image",
            "mode": "pull",
            "server": source.server,
            "protocol": "lxd",
            "fingerprint": source.fingerprint,
            "certificate": source.certificate,
        });
        if let Some(secret) = &source.secret {
            src["secret"] = secret.as_str().into();
        }
        let body = json!({ "source": src, "public": public, "auto_update": false });
        self.client
            .operation(&Request::post(super::object::IMAGES, body))
            .await
    }

    /// Starts copying the image `fingerprint` from `source` (whose `GET /1.0` is
    /// `source_info`) into this server, as migration moves an instance: this server pulls it
    /// over HTTPS from the source's first address, pinning the source's certificate; a private
    /// image (`source_public` false) goes with a one-time secret. `public` is the copy's.
    pub async fn copy_from(
        &self,
        source: &Client,
        source_info: &Value,
        fingerprint: &str,
        source_public: bool,
        public: bool,
    ) -> Result<Operation> {
        let (server, certificate) = super::client::pull_address(source_info)?;
        let secret = match source_public {
            true => None,
            false => Some(Images::new(source.clone()).secret(fingerprint).await?),
        };
        let remote = RemoteImage {
            server,
            fingerprint: fingerprint.to_owned(),
            certificate,
            secret,
        };
        self.pull_from(&remote, public).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn downloads_name_their_source() {
        let streams = Download::SimpleStreams {
            server: "https://images.example".into(),
            alias: "debian/12".into(),
        };
        let r = requests::download(&streams, true, false);
        assert_eq!(r.path, "/1.0/images");
        assert_eq!(
            r.body,
            Some(json!({
                "source": {"type": "image", "mode": "pull", "protocol": "simplestreams",
                           "server": "https://images.example", "alias": "debian/12"},
                "public": true, "auto_update": false,
            }))
        );
        let r = requests::download(&Download::Url("http://h/i".into()), false, true);
        assert_eq!(
            r.body,
            Some(
                json!({"source": {"type": "url", "url": "http://h/i"}, "public": false, "auto_update": true})
            )
        );
    }

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
