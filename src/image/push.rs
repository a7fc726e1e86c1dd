//! Pushing both forms of a built image, under advisor's tag scheme.
//!
//! Tag scheme: `--push REPO:TAG` pushes the gzip form as `REPO:TAG` and the
//! eStargz form as `REPO:TAG-esgz` (no tag: `latest` and `latest-esgz`).
//! Owns that mapping and the upload order (layers from their files, config,
//! then the manifest, so a tag never points at missing blobs). Registry
//! traffic goes through `registry::RegistryClient`.
use super::build::{BuiltForm, BuiltImage, Form};
use super::error::Error;
use crate::registry::{MEDIA_TYPE_OCI_MANIFEST, RegistryClient, Repository};
use futures_util::{StreamExt, TryStreamExt};

/// Suffix of the eStargz form's tag.
pub const ESTARGZ_TAG_SUFFIX: &str = "-esgz";
/// Longest tag the distribution spec allows (`[\w][\w.-]{0,127}`).
const MAX_TAG_LEN: usize = 128;
/// Blob uploads in flight at once.
const PUSH_CONCURRENCY: usize = 3;

/// The two references `--push REF` expands to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Targets {
    pub gzip: String,
    pub estargz: String,
}

impl Targets {
    /// Apply the tag scheme to `reference` (a tag, never a digest: the digest
    /// is what the build decides).
    pub fn from_reference(reference: &str, plain_http: bool) -> Result<Self, anyhow::Error> {
        let repo = Repository::parse(reference, plain_http)?;
        if repo.digest.is_some() {
            return Err(Error::PushReference {
                reference: reference.into(),
                problem: "a digest cannot be pushed to; give REPO or REPO:TAG (the eStargz form goes to REPO:TAG-esgz)".into(),
            }
            .into());
        }
        let tag = repo.tag.clone().unwrap_or_else(|| "latest".into());
        if tag.len() + ESTARGZ_TAG_SUFFIX.len() > MAX_TAG_LEN {
            return Err(Error::PushReference {
                reference: reference.into(),
                problem: format!(
                    "tag `{tag}` is too long for the eStargz form's tag `{tag}{ESTARGZ_TAG_SUFFIX}` (at most {MAX_TAG_LEN} characters)"
                ),
            }
            .into());
        }
        let base = format!("{}/{}", repo.registry, repo.repository);
        Ok(Targets {
            gzip: format!("{base}:{tag}"),
            estargz: format!("{base}:{tag}{ESTARGZ_TAG_SUFFIX}"),
        })
    }

    pub fn of(&self, form: Form) -> &str {
        match form {
            Form::Gzip => &self.gzip,
            Form::Estargz => &self.estargz,
        }
    }
}

/// Push both forms; returns the manifest digest each tag now names.
pub async fn push(
    client: &RegistryClient,
    image: &BuiltImage,
    targets: &Targets,
) -> anyhow::Result<[String; 2]> {
    let g = push_form(client, &image.gzip, &targets.gzip).await?;
    let e = push_form(client, &image.estargz, &targets.estargz).await?;
    Ok([g, e])
}

async fn push_form(
    client: &RegistryClient,
    form: &BuiltForm,
    reference: &str,
) -> anyhow::Result<String> {
    futures_util::stream::iter(form.layers.iter().map(|l| async move {
        client
            .push_blob_file(reference, &l.path, &l.written.digest, l.written.size)
            .await
            .map_err(|e| {
                anyhow::Error::new(e).context(format!(
                    "pushing layer `{}` ({}) of the {} form to {reference}",
                    l.name,
                    l.written.digest,
                    form.form.name()
                ))
            })
    }))
    .buffer_unordered(PUSH_CONCURRENCY)
    .try_collect::<Vec<()>>()
    .await?;
    client
        .push_blob_bytes(reference, form.config.clone(), &form.config_digest)
        .await
        .map_err(|e| anyhow::Error::new(e).context(format!("pushing the config to {reference}")))?;
    client
        .push_manifest(reference, form.manifest.clone(), MEDIA_TYPE_OCI_MANIFEST)
        .await
        .map_err(|e| anyhow::Error::new(e).context(format!("pushing the manifest to {reference}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tag_scheme_adds_esgz() {
        let t = Targets::from_reference("127.0.0.1:5000/app:v1", false).unwrap();
        assert_eq!(t.gzip, "127.0.0.1:5000/app:v1");
        assert_eq!(t.estargz, "127.0.0.1:5000/app:v1-esgz");
        let t = Targets::from_reference("localhost:5000/team/app", false).unwrap();
        assert_eq!(t.estargz, "localhost:5000/team/app:latest-esgz");
        let d = format!("127.0.0.1:5000/app@sha256:{}", "a".repeat(64));
        let e = Targets::from_reference(&d, false).unwrap_err().to_string();
        assert!(e.contains("a digest cannot be pushed to"), "{e}");
        let long = format!("127.0.0.1:5000/app:{}", "t".repeat(125));
        let e = Targets::from_reference(&long, false)
            .unwrap_err()
            .to_string();
        assert!(e.contains("too long"), "{e}");
        assert!(Targets::from_reference("UPPER/case:x", false).is_err());
    }
}
