//! Where to connect: socket discovery and the `lxc` client configuration (remotes, certificates).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::error::{Error, Result};
use super::tls::{ServerVerification, TlsSettings, read_certificate};
use super::transport::Endpoint;

/// A fully resolved connection target.
#[derive(Debug, Clone)]
pub struct Target {
    /// Where the server is.
    pub endpoint: Endpoint,
    /// TLS settings (HTTPS only).
    pub tls: Option<TlsSettings>,
    /// The project to use, when not the default one.
    pub project: Option<String>,
    /// The remote name this came from, if any.
    pub remote: Option<String>,
}

/// Finds the local unix socket: `$LXD_SOCKET`, `$LXD_DIR/unix.socket`, the snap's socket, then
/// `/var/lib/lxd/unix.socket`.
pub fn discover_socket() -> PathBuf {
    if let Some(s) = std::env::var_os("LXD_SOCKET").filter(|s| !s.is_empty()) {
        return PathBuf::from(s);
    }
    if let Some(dir) = std::env::var_os("LXD_DIR").filter(|s| !s.is_empty()) {
        return PathBuf::from(dir).join("unix.socket");
    }
    let snap = PathBuf::from("/var/snap/lxd/common/lxd/unix.socket");
    if snap.exists() {
        return snap;
    }
    PathBuf::from("/var/lib/lxd/unix.socket")
}

/// One remote of `config.yml`.
#[derive(Debug, Clone, Deserialize)]
pub struct Remote {
    /// `unix://`, `unix:///path` or `https://host:port`.
    pub addr: String,
    /// The remote's project.
    #[serde(default)]
    pub project: Option<String>,
    /// `lxd` or `simplestreams`.
    #[serde(default)]
    pub protocol: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct ConfigFile {
    #[serde(rename = "default-remote", default)]
    default_remote: Option<String>,
    #[serde(default)]
    remotes: BTreeMap<String, Remote>,
}

/// The `lxc` client configuration directory and its `config.yml`.
#[derive(Debug, Default)]
pub struct ClientConfig {
    dir: Option<PathBuf>,
    file: ConfigFile,
}

impl ClientConfig {
    /// Finds the configuration directory (`$LXD_CONF`, `~/.config/lxc`, the snap's
    /// `~/snap/lxd/common/config`) and reads its `config.yml`; a missing file is an empty config.
    pub fn discover() -> Result<ClientConfig> {
        match config_dir() {
            Some(dir) => ClientConfig::load(&dir),
            None => Ok(ClientConfig::default()),
        }
    }

    /// Reads the configuration of one directory.
    pub fn load(dir: &Path) -> Result<ClientConfig> {
        let path = dir.join("config.yml");
        let file = match std::fs::read_to_string(&path) {
            Ok(text) => parse_config(&text).map_err(|e| {
                Error::Config(format!(
                    "cannot read {}: {e}; fix the file or point LXD_CONF elsewhere",
                    path.display()
                ))
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => ConfigFile::default(),
            Err(e) => {
                return Err(Error::Config(format!(
                    "cannot read {}: {e}",
                    path.display()
                )));
            }
        };
        Ok(ClientConfig {
            dir: Some(dir.to_owned()),
            file,
        })
    }

    /// The default remote's name, if the configuration names one.
    pub fn default_remote(&self) -> Option<&str> {
        self.file.default_remote.as_deref()
    }

    /// The names of the configured remotes.
    pub fn remote_names(&self) -> impl Iterator<Item = &str> {
        self.file.remotes.keys().map(String::as_str)
    }

    /// Resolves a remote by name.
    pub fn remote(&self, name: &str) -> Result<Target> {
        let remote = match self.file.remotes.get(name) {
            Some(r) => r,
            None if name == "local" => &Remote {
                addr: "unix://".to_owned(),
                project: None,
                protocol: None,
            },
            None => {
                let known: Vec<&str> = self.file.remotes.keys().map(String::as_str).collect();
                return Err(Error::Config(format!(
                    "no remote named '{name}' in {} (known: {}); add it with `lxc remote add`",
                    self.describe_file(),
                    if known.is_empty() {
                        "none".to_owned()
                    } else {
                        known.join(", ")
                    }
                )));
            }
        };
        if remote.protocol.as_deref().is_some_and(|p| p != "lxd") {
            return Err(Error::Config(format!(
                "remote '{name}' is an image server ({}), not an LXD server",
                remote.protocol.as_deref().unwrap_or_default()
            )));
        }
        let project = remote.project.clone().filter(|p| p != "default");
        let endpoint = parse_addr(&remote.addr)?;
        let tls = match &endpoint {
            Endpoint::Unix(_) => None,
            Endpoint::Https(_) => Some(self.tls_for_remote(name)?),
        };
        Ok(Target {
            endpoint,
            tls,
            project,
            remote: Some(name.to_owned()),
        })
    }

    /// The TLS settings of a remote: the client cert/key beside `config.yml` and the pinned
    /// `servercerts/<remote>.crt`.
    fn tls_for_remote(&self, name: &str) -> Result<TlsSettings> {
        let dir = self.dir.clone().unwrap_or_default();
        let pinned = dir.join("servercerts").join(format!("{name}.crt"));
        if !pinned.exists() {
            return Err(Error::Tls(format!(
                "no pinned server certificate for remote '{name}' ({} is missing); add the remote with `lxc remote add` or pass verify: PATH",
                pinned.display()
            )));
        }
        Ok(TlsSettings {
            client_identity: Some(self.ensure_client_identity()?),
            server: ServerVerification::Pinned {
                der: read_certificate(&pinned)?,
                source: pinned,
            },
        })
    }

    /// The client certificate and key beside `config.yml`, when both exist.
    pub fn client_identity(&self) -> Option<(PathBuf, PathBuf)> {
        let dir = self.dir.as_ref()?;
        let (crt, key) = (dir.join("client.crt"), dir.join("client.key"));
        (crt.exists() && key.exists()).then_some((crt, key))
    }

    /// The client certificate and key, generated first when there are none (as `lxc` does on
    /// first use): an ECDSA P-384 self-signed certificate, the key written with mode 0600.
    pub fn ensure_client_identity(&self) -> Result<(PathBuf, PathBuf)> {
        if let Some(identity) = self.client_identity() {
            return Ok(identity);
        }
        let dir = match &self.dir {
            Some(d) => d.clone(),
            None => default_config_dir().ok_or_else(|| {
                Error::Config("no lxc configuration directory: set LXD_CONF or HOME".to_owned())
            })?,
        };
        generate_identity(&dir)
    }

    /// The pinned certificate of the remote whose address is `url`, if any.
    pub fn pinned_for_url(&self, url: &str) -> Option<PathBuf> {
        let dir = self.dir.as_ref()?;
        let url = url.trim_end_matches('/');
        self.file
            .remotes
            .iter()
            .find(|(_, r)| r.addr.trim_end_matches('/') == url)
            .map(|(name, _)| dir.join("servercerts").join(format!("{name}.crt")))
            .filter(|p| p.exists())
    }

    fn describe_file(&self) -> String {
        match &self.dir {
            Some(d) => d.join("config.yml").display().to_string(),
            None => "the lxc configuration (none found)".to_owned(),
        }
    }
}

fn parse_config(text: &str) -> std::result::Result<ConfigFile, serde_yaml::Error> {
    if text.trim().is_empty() {
        return Ok(ConfigFile::default());
    }
    serde_yaml::from_str(text)
}

/// Where a new configuration goes: `$LXD_CONF`, else `~/.config/lxc`.
fn default_config_dir() -> Option<PathBuf> {
    std::env::var_os("LXD_CONF")
        .filter(|s| !s.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config/lxc")))
}

/// Writes a new client certificate and key into `dir`.
fn generate_identity(dir: &Path) -> Result<(PathBuf, PathBuf)> {
    use std::io::Write;
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};

    let io = |what: &Path, e: std::io::Error| {
        Error::Config(format!("cannot write {}: {e}", what.display()))
    };
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| io(dir, e))?;
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384)
        .map_err(|e| Error::Tls(format!("cannot generate a client key: {e}")))?;
    let user = std::env::var("USER").unwrap_or_else(|_| "root".to_owned());
    let host = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new())
        .map_err(|e| Error::Tls(format!("cannot make a client certificate: {e}")))?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, format!("{user}@{}", host.trim()));
    params
        .distinguished_name
        .push(rcgen::DnType::OrganizationName, "lxd-script");
    params.not_after = rcgen::date_time_ymd(2036, 1, 1);
    let cert = params
        .self_signed(&key)
        .map_err(|e| Error::Tls(format!("cannot sign a client certificate: {e}")))?;
    let (crt_path, key_path) = (dir.join("client.crt"), dir.join("client.key"));
    let mut key_file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&key_path)
        .map_err(|e| io(&key_path, e))?;
    key_file
        .write_all(key.serialize_pem().as_bytes())
        .map_err(|e| io(&key_path, e))?;
    std::fs::write(&crt_path, cert.pem()).map_err(|e| io(&crt_path, e))?;
    Ok((crt_path, key_path))
}

/// The configuration directory, if one is set or exists.
fn config_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("LXD_CONF").filter(|s| !s.is_empty()) {
        return Some(PathBuf::from(dir));
    }
    let home = PathBuf::from(std::env::var_os("HOME")?);
    let candidates = [
        home.join(".config/lxc"),
        home.join("snap/lxd/common/config"),
    ];
    candidates.into_iter().find(|d| d.exists())
}

/// Parses an address as written in `config.yml` or by a user: `unix://` (discovery),
/// `unix:///path`, `unix:/path`, `/path`, or `https://host:port`.
pub fn parse_addr(addr: &str) -> Result<Endpoint> {
    if addr == "unix://" || addr == "unix:" {
        return Ok(Endpoint::Unix(discover_socket()));
    }
    if let Some(path) = addr
        .strip_prefix("unix://")
        .or_else(|| addr.strip_prefix("unix:"))
    {
        return Ok(Endpoint::Unix(PathBuf::from(path)));
    }
    if addr.starts_with('/') {
        return Ok(Endpoint::Unix(PathBuf::from(addr)));
    }
    if addr.starts_with("https://") {
        return Ok(Endpoint::Https(addr.trim_end_matches('/').to_owned()));
    }
    Err(Error::InvalidArgument(format!(
        "'{addr}' is not an LXD address: use a socket path (/path or unix:/path) or https://host:port"
    )))
}

/// How the server certificate of an explicit HTTPS endpoint is checked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Verify {
    /// Pin the certificate saved for this address in the `lxc` configuration (required).
    #[default]
    Pinned,
    /// Pin the certificate in this file.
    PinnedFile(PathBuf),
    /// Do not verify: only when the user explicitly asked for it.
    Disabled,
}

/// What a user asked to connect to, before resolution.
#[derive(Debug, Clone, Default)]
pub struct ConnectSpec {
    /// A remote name of the `lxc` configuration.
    pub remote: Option<String>,
    /// A socket path or `https://` URL; wins over `remote`.
    pub endpoint: Option<String>,
    /// Client certificate (PEM) for HTTPS.
    pub cert: Option<PathBuf>,
    /// Client key (PEM) for HTTPS.
    pub key: Option<PathBuf>,
    /// Server verification for an explicit HTTPS endpoint.
    pub verify: Verify,
    /// The project, overriding the remote's.
    pub project: Option<String>,
}

/// Resolves what to connect to: an explicit endpoint, else the named remote, else the `lxc`
/// configuration's default remote, else the local socket found by discovery.
pub fn resolve(spec: &ConnectSpec, config: &ClientConfig) -> Result<Target> {
    let mut target = if let Some(endpoint) = &spec.endpoint {
        let endpoint = parse_addr(endpoint)?;
        let tls = match &endpoint {
            Endpoint::Unix(_) => None,
            Endpoint::Https(url) => Some(explicit_tls(url, spec, config)?),
        };
        Target {
            endpoint,
            tls,
            project: None,
            remote: None,
        }
    } else if let Some(remote) = spec.remote.as_deref().or(config.default_remote()) {
        config.remote(remote)?
    } else {
        Target {
            endpoint: Endpoint::Unix(discover_socket()),
            tls: None,
            project: None,
            remote: None,
        }
    };
    if let Some(project) = &spec.project {
        target.project = (project != "default").then(|| project.clone());
    }
    Ok(target)
}

fn explicit_tls(url: &str, spec: &ConnectSpec, config: &ClientConfig) -> Result<TlsSettings> {
    let client_identity = match (&spec.cert, &spec.key) {
        (Some(c), Some(k)) => Some((c.clone(), k.clone())),
        (None, None) => Some(config.ensure_client_identity()?),
        _ => {
            return Err(Error::InvalidArgument(
                "give both cert and key (PEM file paths), or neither".to_owned(),
            ));
        }
    };
    let server = match &spec.verify {
        Verify::Disabled => ServerVerification::Disabled,
        Verify::PinnedFile(path) => ServerVerification::Pinned {
            der: read_certificate(path)?,
            source: path.clone(),
        },
        Verify::Pinned => match config.pinned_for_url(url) {
            Some(path) => ServerVerification::Pinned {
                der: read_certificate(&path)?,
                source: path,
            },
            None => {
                return Err(Error::Tls(format!(
                    "no pinned certificate for {url}: add it as a remote with `lxc remote add`, or pass verify: \"/path/to/server.crt\""
                )));
            }
        },
    };
    Ok(TlsSettings {
        client_identity,
        server,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_parse() {
        assert_eq!(
            parse_addr("unix:///x/unix.socket").expect("unix"),
            Endpoint::Unix("/x/unix.socket".into())
        );
        assert_eq!(
            parse_addr("/x/s").expect("path"),
            Endpoint::Unix("/x/s".into())
        );
        assert_eq!(
            parse_addr("https://h:1/").expect("https"),
            Endpoint::Https("https://h:1".into())
        );
        assert!(parse_addr("http://h").is_err());
    }

    #[test]
    fn config_files_parse_and_unknown_remotes_are_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(
            dir.path().join("config.yml"),
            "default-remote: second\nremotes:\n  second: {addr: 'https://127.0.0.1:18444', protocol: lxd, project: p1}\n  images: {addr: 'https://images', protocol: simplestreams}\naliases: {}\n",
        )
        .expect("write");
        let cfg = ClientConfig::load(dir.path()).expect("load");
        assert_eq!(cfg.default_remote(), Some("second"));
        let err = cfg.remote("nope").expect_err("unknown");
        assert!(err.to_string().contains("images, second"), "{err}");
        assert!(cfg.remote("images").is_err());
        // No pinned certificate: a clear Tls error, never an unverified connection.
        let err = cfg.remote("second").expect_err("unpinned");
        assert!(err.to_string().contains("servercerts/second.crt"), "{err}");
        assert!(matches!(
            cfg.remote("local").expect("local").endpoint,
            Endpoint::Unix(_)
        ));
    }

    #[test]
    fn a_missing_identity_is_generated_with_a_private_key() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let conf = dir.path().join("conf");
        let cfg = ClientConfig {
            dir: Some(conf.clone()),
            file: ConfigFile::default(),
        };
        let (crt, key) = cfg.ensure_client_identity().expect("generated");
        assert_eq!(
            std::fs::metadata(&key).expect("key").permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(
            std::fs::metadata(&conf).expect("dir").permissions().mode() & 0o777,
            0o700
        );
        assert!(read_certificate(&crt).is_ok());
        assert_eq!(cfg.ensure_client_identity().expect("kept"), (crt, key));
    }

    proptest::proptest! {
        /// No config.yml, however broken, makes reading it panic.
        #[test]
        fn any_config_text_is_handled(text in ".{0,200}", yaml in "(default-remote: [a-z]{0,5}\n)?remotes:\n(  [a-z]{1,5}: \\{addr: '[a-z:/.0-9]{0,20}'\\}\n){0,3}") {
            let _ = parse_config(&text);
            let _ = parse_config(&yaml);
        }

        /// Any address a user types is parsed or refused, never a panic.
        #[test]
        fn any_address_is_handled(addr in ".{0,60}") {
            let _ = parse_addr(&addr);
        }
    }

    #[test]
    fn empty_and_broken_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("config.yml"), "").expect("write");
        assert!(ClientConfig::load(dir.path()).is_ok());
        std::fs::write(dir.path().join("config.yml"), "remotes: [1, 2").expect("write");
        assert!(ClientConfig::load(dir.path()).is_err());
    }
}
