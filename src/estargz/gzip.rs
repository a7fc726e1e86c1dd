//! The plain gzip form of a layer: the tar stream a normal `tar | gzip`
//! layer holds, compressed as independent members on all cores.
//!
//! Owns where its members start. Must not write a TOC or landmarks (that is
//! the eStargz form, [`super::writer`]); tar framing is [`super::tar`]'s.
use super::error::{Error, ErrorKind, io_err};
use super::members::{Pipeline, Workers};
use super::tar::{
    BLOCK, EntryHeader, EntryKind, Names, clean_input_path, encode_header, padding, read_tar_stream,
};
use super::writer::{WriterOptions, WrittenLayer};
use std::io::{Read, Write};

/// Uncompressed size of the independent members of the plain gzip form: big
/// enough that the per-member dictionary reset costs little ratio, small
/// enough to spread over cores.
pub const GZIP_MEMBER_SIZE: usize = 1 << 20;

/// A streaming plain gzip layer writer: the same tar stream as a normal
/// `tar | gzip` layer (with end-of-archive blocks), compressed as independent
/// members of about [`GZIP_MEMBER_SIZE`] so all cores work. Any gunzip reads
/// it as one stream.
pub struct GzipWriter<W: Write> {
    pipe: Pipeline<W>,
    opts: WriterOptions,
    names: Names,
}

impl<W: Write> GzipWriter<W> {
    /// A writer compressing on rayon's global pool.
    pub fn new(out: W, opts: WriterOptions) -> Result<Self, Error> {
        Self::with_workers(out, opts, Workers::global())
    }

    /// A writer compressing on `workers` (the output is the same).
    pub fn with_workers(out: W, opts: WriterOptions, workers: Workers) -> Result<Self, Error> {
        opts.validate()?;
        let target = opts.batch_target(GZIP_MEMBER_SIZE, workers.threads());
        Ok(GzipWriter {
            pipe: Pipeline::new(out, opts.level, target, &opts.label, workers),
            opts,
            names: Names::default(),
        })
    }

    /// Append an entry and its payload (`size` bytes are read).
    pub fn append(&mut self, entry: &EntryHeader, mut payload: impl Read) -> Result<(), Error> {
        self.write_entry(entry, &mut payload)
    }

    /// Append every entry of a tar stream (gzip-compressed or not), unchanged.
    pub fn append_tar(&mut self, input: impl Read) -> Result<(), Error> {
        let label = self.opts.label.clone();
        read_tar_stream(&label, input, false, |h, payload| {
            self.write_entry(h, payload)
        })
    }

    /// Write the end-of-archive blocks; returns the result and the output.
    pub fn finish(mut self) -> Result<(WrittenLayer, W), Error> {
        self.pipe.write(&[0u8; 2 * BLOCK as usize]);
        let (out, totals) = self.pipe.finish()?;
        Ok((
            WrittenLayer {
                digest: totals.blob_digest,
                size: totals.compressed,
                diff_id: totals.diff_id,
                uncompressed_size: totals.uncompressed,
                toc: None,
            },
            out,
        ))
    }

    fn write_entry(&mut self, e: &EntryHeader, payload: &mut dyn Read) -> Result<(), Error> {
        let input = |problem: String| {
            Error::new(
                &self.opts.label,
                ErrorKind::Input {
                    path: e.path.clone(),
                    problem,
                },
            )
        };
        let path = clean_input_path(&e.path).map_err(input)?;
        self.names.check_link(e).map_err(input)?;
        let header = encode_header(e, &path).map_err(input)?;
        if self.pipe.member_len() >= GZIP_MEMBER_SIZE {
            self.pipe.cut(None)?;
        }
        self.pipe.write(&header);
        self.names.add(&path);
        if e.kind != EntryKind::Reg {
            return Ok(());
        }
        let mut left = e.size;
        while left > 0 {
            let mut room = GZIP_MEMBER_SIZE.saturating_sub(self.pipe.member_len());
            if room == 0 {
                self.pipe.cut(None)?;
                room = GZIP_MEMBER_SIZE;
            }
            let n = left.min(room as u64) as usize;
            if let Err(source) = self.pipe.fill_from(payload, n) {
                return Err(io_err(
                    &self.opts.label,
                    format!(
                        "reading the payload of `{}` at byte {}",
                        e.path,
                        e.size - left
                    ),
                    source,
                ));
            }
            left -= n as u64;
        }
        self.pipe.write(&vec![0u8; padding(e.size)]);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::estargz::tar::tests::untar;
    use flate2::read::MultiGzDecoder;
    use std::io;

    #[test]
    fn gzip_form_is_a_plain_tar_gz_in_many_members() {
        let big: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        let mut w = GzipWriter::new(Vec::new(), WriterOptions::default()).unwrap();
        w.append(&EntryHeader::dir("d"), io::empty()).unwrap();
        w.append(&EntryHeader::file("d/big", big.len() as u64), &big[..])
            .unwrap();
        let (layer, blob) = w.finish().unwrap();
        assert!(layer.toc.is_none());
        assert!(layer.annotations().is_empty());
        let files = untar(&blob);
        assert_eq!(files.len(), 2);
        assert_eq!(files[1].1, big);
        let mut raw = Vec::new();
        MultiGzDecoder::new(&blob[..])
            .read_to_end(&mut raw)
            .unwrap();
        assert_eq!(layer.diff_id, crate::estargz::sha256_digest(&raw));
        assert_eq!(layer.uncompressed_size, raw.len() as u64);
        assert_eq!(raw.len() % 512, 0);
        assert!(raw.ends_with(&[0u8; 1024]));
        // More than one member: the first member alone is not the whole stream.
        let mut first = Vec::new();
        flate2::read::GzDecoder::new(&blob[..])
            .read_to_end(&mut first)
            .unwrap();
        assert!(first.len() < raw.len());
    }
}
